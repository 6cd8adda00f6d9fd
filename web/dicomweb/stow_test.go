package dicomweb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"lightbox/dicom"
	"lightbox/storage"
)

// Every testdata file in one request: all are stored or, for later
// encodings of an instance already received, kept out with a warning.
func TestSTOWAllTestdata(t *testing.T) {
	ts, resp := sharedServer(t)
	fs := testFiles(t)
	first := firstCopies(fs)
	if len(resp.failures) != 0 {
		for _, f := range resp.failures {
			t.Errorf("failed: %s reason %v", f["00081155"].str(t), f["00081197"].num(t))
		}
	}
	if len(resp.refs) != len(fs) {
		t.Fatalf("%d referenced instances for %d files", len(resp.refs), len(fs))
	}
	warnings := 0
	for i, ref := range resp.refs {
		f := fs[i]
		if got := ref["00081155"].str(t); got != f.meta.SOPInstanceUID {
			t.Errorf("%s: referenced %s", f.path, got)
		}
		if got := ref["00081150"].str(t); got != f.meta.SOPClassUID {
			t.Errorf("%s: class %s", f.path, got)
		}
		want := ts.URL + "/dicom-web/studies/" + f.meta.Study.InstanceUID + "/series/" + f.meta.Series.InstanceUID + "/instances/" + f.meta.SOPInstanceUID
		if got := ref["00081190"].str(t); got != want {
			t.Errorf("%s: RetrieveURL %s, want %s", f.path, got, want)
		}
		_, warned := ref["00081196"]
		isFirst := first[f.meta.SOPInstanceUID].path == f.path
		if warned == isFirst {
			t.Errorf("%s: warning %v, first copy %v", f.path, warned, isFirst)
		}
		if warned {
			warnings++
			if got := ref["00081196"].num(t); got != warnDiscarded {
				t.Errorf("%s: warning reason %04X", f.path, int(got))
			}
		}
	}
	want := http.StatusOK
	if warnings > 0 {
		want = http.StatusAccepted
	}
	if resp.status != want {
		t.Errorf("status %d, want %d", resp.status, want)
	}
	t.Logf("%d files, %d instances, %d later copies kept out", len(fs), len(first), warnings)
	for uid := range first {
		if ok, err := ts.store.Catalog.HasInstance(context.Background(), uid); !ok || err != nil {
			t.Errorf("%s not in the catalog (%v)", uid, err)
		}
	}
}

// A part that is not DICOM, and one of another media type, fail with
// 0xC000 while the other parts of the same request are stored.
func TestSTOWMixed(t *testing.T) {
	ts := newTestServer(t, newStore(t), false)
	fs := testFiles(t)
	a, b := fs[0], fs[len(fs)-1]
	resp := ts.stow(t, "/studies", []part{
		{"application/dicom", a.bytes},
		{"application/dicom", []byte("this is not a DICOM file, only text of some length to read past a preamble")},
		{"application/dicom", b.bytes},
		{"text/plain", []byte("hello")},
		{"application/dicom", a.bytes[:200]}, // truncated in the meta group
	})
	if resp.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202", resp.status)
	}
	if len(resp.refs) != 2 || len(resp.failures) != 3 {
		t.Fatalf("%d stored, %d failed; want 2, 3", len(resp.refs), len(resp.failures))
	}
	for _, f := range resp.failures {
		if got := int(f["00081197"].num(t)); got != failUnderstand {
			t.Errorf("failure reason %04X, want C000", got)
		}
	}
	for _, f := range []testFile{a, b} {
		if ok, _ := ts.store.Catalog.HasInstance(context.Background(), f.meta.SOPInstanceUID); !ok {
			t.Errorf("%s not stored", f.path)
		}
	}
}

func TestSTOWAllFail(t *testing.T) {
	ts := newTestServer(t, newStore(t), false)
	resp := ts.stow(t, "/studies", []part{{"application/dicom", []byte("DICM? no")}})
	if resp.status != http.StatusConflict || len(resp.failures) != 1 || len(resp.refs) != 0 {
		t.Fatalf("status %d, %d failed, %d stored; want 409, 1, 0", resp.status, len(resp.failures), len(resp.refs))
	}
	if _, ok := resp.raw["00081199"]; !ok {
		t.Error("no Referenced SOP Sequence: Orthanc's client needs it even empty")
	}
}

// The same instance twice is stored once, and a second copy with other
// bytes is kept out with a warning while the first stays.
func TestSTOWDuplicateAndConflict(t *testing.T) {
	ts := newTestServer(t, newStore(t), false)
	f := testFiles(t)[0]
	for i := 0; i < 2; i++ {
		resp := ts.stow(t, "/studies", dicomParts([]testFile{f}))
		if resp.status != http.StatusOK || len(resp.refs) != 1 {
			t.Fatalf("send %d: status %d, %d stored", i+1, resp.status, len(resp.refs))
		}
		if _, warned := resp.refs[0]["00081196"]; warned {
			t.Fatalf("send %d: warning for identical bytes", i+1)
		}
	}
	changed := bytes.Clone(f.bytes)
	changed[len(changed)-1] ^= 0xFF // last pixel byte
	resp := ts.stow(t, "/studies", []part{{"application/dicom", changed}})
	if resp.status != http.StatusAccepted || len(resp.refs) != 1 {
		t.Fatalf("conflicting copy: status %d, %d referenced", resp.status, len(resp.refs))
	}
	if got := int(resp.refs[0]["00081196"].num(t)); got != warnDiscarded {
		t.Fatalf("warning reason %04X, want B006", got)
	}
	in, err := ts.store.Catalog.GetInstance(context.Background(), f.meta.SOPInstanceUID)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ts.store.Blobs.Get(context.Background(), in.BlobKey)
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(kept, f.bytes) {
		t.Fatal("the stored copy changed")
	}
}

// POST /studies/{study} stores only instances of that study.
func TestSTOWStudyInPath(t *testing.T) {
	ts := newTestServer(t, newStore(t), false)
	f := testFiles(t)[0]
	resp := ts.stow(t, "/studies/1.2.3.4", dicomParts([]testFile{f}))
	if resp.status != http.StatusConflict || len(resp.failures) != 1 {
		t.Fatalf("other study: status %d, %d failures", resp.status, len(resp.failures))
	}
	fail := resp.failures[0]
	if got := int(fail["00081197"].num(t)); got != failMismatch {
		t.Errorf("reason %04X, want A900", got)
	}
	if got := fail["00081155"].str(t); got != f.meta.SOPInstanceUID {
		t.Errorf("failed item names %q", got)
	}
	if ok, _ := ts.store.Catalog.HasInstance(context.Background(), f.meta.SOPInstanceUID); ok {
		t.Fatal("an instance of another study was stored")
	}
	resp = ts.stow(t, "/studies/"+f.meta.Study.InstanceUID, dicomParts([]testFile{f}))
	if resp.status != http.StatusOK || len(resp.refs) != 1 {
		t.Fatalf("right study: status %d, %d stored", resp.status, len(resp.refs))
	}
	if entries, _ := os.ReadDir(ts.store.TempDir); len(entries) != 0 {
		t.Errorf("%d files left in the spool folder", len(entries))
	}
}

func TestSTOWLimits(t *testing.T) {
	fs := testFiles(t)
	t.Run("too large", func(t *testing.T) {
		store := newStore(t)
		store.MaxInstance = 1000
		ts := newTestServer(t, store, false)
		big, small := fs[0], testFile{}
		for _, f := range fs {
			if len(f.bytes) <= 1000 {
				small = f
			}
		}
		if len(big.bytes) <= 1000 {
			t.Fatalf("%s is small", big.path)
		}
		parts := dicomParts([]testFile{big})
		if small.path != "" {
			parts = append(parts, dicomParts([]testFile{small})...)
		}
		resp := ts.stow(t, "/studies", parts)
		if len(resp.failures) != 1 || int(resp.failures[0]["00081197"].num(t)) != failResources {
			t.Fatalf("status %d failures %v", resp.status, resp.failures)
		}
		if len(resp.refs) != len(parts)-1 {
			t.Fatalf("%d stored after the large one, want %d", len(resp.refs), len(parts)-1)
		}
	})
	t.Run("SOP class", func(t *testing.T) {
		store := newStore(t)
		store.SOPClasses = map[string]bool{fs[0].meta.SOPClassUID: true}
		ts := newTestServer(t, store, false)
		var other testFile
		for _, f := range fs {
			if f.meta.SOPClassUID != fs[0].meta.SOPClassUID {
				other = f
				break
			}
		}
		resp := ts.stow(t, "/studies", dicomParts([]testFile{fs[0], other}))
		if resp.status != http.StatusAccepted || len(resp.failures) != 1 || int(resp.failures[0]["00081197"].num(t)) != failSOPClass {
			t.Fatalf("status %d failures %v", resp.status, resp.failures)
		}
	})
}

func TestSTOWBadRequests(t *testing.T) {
	ts := newTestServer(t, newStore(t), false)
	f := testFiles(t)[0]
	good, ctype := multipartBody(t, dicomParts([]testFile{f}))
	boundary := strings.TrimPrefix(ctype[strings.Index(ctype, "boundary="):], "boundary=")
	cases := []struct {
		name, ctype, accept string
		body                []byte
		want                int
	}{
		{"single part", "application/dicom", "", f.bytes, http.StatusUnsupportedMediaType},
		{"no content type", "", "", good, http.StatusUnsupportedMediaType},
		{"xml metadata", `multipart/related; type="application/dicom+xml"; boundary=` + boundary, "", good, http.StatusUnsupportedMediaType},
		{"form data", "multipart/form-data; boundary=" + boundary, "", good, http.StatusUnsupportedMediaType},
		{"no boundary", `multipart/related; type="application/dicom"`, "", good, http.StatusBadRequest},
		{"garbage", ctype, "", []byte("no boundary anywhere in here"), http.StatusBadRequest},
		{"no parts", ctype, "", []byte("--" + boundary + "--\r\n"), http.StatusBadRequest},
		{"huge part header", ctype, "", []byte("--" + boundary + "\r\nX-Pad: " + strings.Repeat("a", 100<<10) + "\r\n\r\n"), http.StatusBadRequest},
		{"huge preamble", ctype, "", append(bytes.Repeat([]byte("preamble "), 10<<10), good...), http.StatusBadRequest},
		{"xml answer", ctype, "application/dicom+xml", good, http.StatusNotAcceptable},
	}
	for _, tc := range cases {
		hdr := []string{"Accept", tc.accept}
		if tc.ctype != "" {
			hdr = append(hdr, "Content-Type", tc.ctype)
		}
		resp := ts.do(t, "POST", "/studies", bytes.NewReader(tc.body), hdr...)
		b := readAll(t, resp)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, b, tc.want)
		}
	}
	if ok, _ := ts.store.Catalog.HasInstance(context.Background(), f.meta.SOPInstanceUID); ok {
		t.Fatal("a refused request stored an instance")
	}
	// A body cut off in its second part: the first is stored and reported,
	// the cut one fails.
	cut := append(bytes.Clone(good[:len(good)-len("\r\n--"+boundary+"--\r\n")]),
		[]byte("\r\n--"+boundary+"\r\nContent-Type: application/dicom\r\n\r\n")...)
	cut = append(cut, f.bytes[:len(f.bytes)/2]...)
	resp := ts.do(t, "POST", "/studies", bytes.NewReader(cut), "Content-Type", ctype)
	b := readAll(t, resp)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(b), `"00081198"`) {
		t.Fatalf("cut body: %d %s", resp.StatusCode, b)
	}
	if ok, _ := ts.store.Catalog.HasInstance(context.Background(), f.meta.SOPInstanceUID); !ok {
		t.Fatal("the complete first part of a cut body was not stored")
	}
}

// newUID makes a UID of length n, different for each i.
func newUID(n, i int) string {
	return "2.25.1" + fmt.Sprintf("%0*d", n-6, i)
}

// copies streams a STOW-RS body of count copies of tmpl, each with its
// SOP Instance UID replaced by a new one of the same length, without
// holding more than one instance in memory.
func copies(tmpl testFile, count int) (io.Reader, string) { return copiesFrom(tmpl, count, 0) }

// copiesFrom is copies with UIDs numbered from first.
func copiesFrom(tmpl testFile, count, first int) (io.Reader, string) {
	old := []byte(tmpl.meta.SOPInstanceUID)
	var segs [][]byte
	rest := tmpl.bytes
	for {
		i := bytes.Index(rest, old)
		if i < 0 {
			segs = append(segs, rest)
			break
		}
		segs = append(segs, rest[:i])
		rest = rest[i+len(old):]
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		h := textproto.MIMEHeader{"Content-Type": {"application/dicom"}}
		for i := 0; i < count; i++ {
			w, err := mw.CreatePart(h)
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			uid := []byte(newUID(len(old), first+i))
			for j, s := range segs {
				if j > 0 {
					w.Write(uid)
				}
				if _, err := w.Write(s); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
		}
		pw.CloseWithError(mw.Close())
	}()
	return pr, `multipart/related; type="application/dicom"; boundary=` + mw.Boundary()
}

// template picks the largest single-frame native CT of testdata.
func template(t testing.TB) testFile {
	for _, f := range testFiles(t) {
		if strings.HasSuffix(f.path, "ct-signed-implicit-512.dcm") {
			return f
		}
	}
	t.Fatal("no ct-signed-implicit-512.dcm in testdata")
	return testFile{}
}

// A 300 MB STOW-RS body streams through with the Go heap bounded: parts
// are never held whole.
func TestSTOWStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 300 MB")
	}
	ts := newTestServer(t, newStore(t), false)
	tmpl := template(t)
	count := (300 << 20) / len(tmpl.bytes)
	body, ctype := copies(tmpl, count)

	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	req, _ := http.NewRequest("POST", ts.URL+"/dicom-web/studies", body)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %.300s", resp.StatusCode, b)
	}
	recs, err := ts.store.Catalog.Instances(context.Background(), storage.Query{Match: map[string]string{"StudyInstanceUID": tmpl.meta.Study.InstanceUID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != count {
		t.Fatalf("%d instances stored, want %d", len(recs), count)
	}
	const bound = 64 << 20
	t.Logf("%d instances, %d MB; peak heap in use %.1f MB", count, count*len(tmpl.bytes)>>20, float64(peak.Load())/(1<<20))
	if peak.Load() > bound {
		t.Fatalf("peak heap in use %d MB, want under %d MB", peak.Load()>>20, bound>>20)
	}
}

func FuzzSTOW(f *testing.F) {
	fs := testFiles(f)
	var small []testFile
	for _, tf := range fs {
		if len(tf.bytes) < 4<<10 { // small seeds: the fuzzer minimises each new input for up to a minute
			small = append(small, tf)
		}
	}
	const boundary = "fuzzboundary"
	seed := func(parts ...[]byte) []byte {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.SetBoundary(boundary)
		for _, p := range parts {
			w, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/dicom"}})
			w.Write(p)
		}
		mw.Close()
		return b.Bytes()
	}
	for _, tf := range small[:min(4, len(small))] {
		f.Add(seed(tf.bytes))
	}
	if len(small) >= 2 {
		f.Add(seed(small[0].bytes, []byte("not dicom"), small[1].bytes))
	}
	f.Add(seed())
	f.Add([]byte("--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\nDICM"))
	f.Add([]byte("--" + boundary + "--"))
	f.Add([]byte{})

	// The reader is fuzzed with the real header parser behind it; storing
	// (SQLite, fsync) is covered by the other tests and would slow the
	// fuzzer to a crawl.
	f.Fuzz(func(t *testing.T, body []byte) {
		results, err := readParts(bytes.NewReader(body), boundary, func(ctype string, r io.Reader) stowResult {
			b, err := io.ReadAll(io.LimitReader(r, 1<<20))
			if err != nil {
				return stowResult{failure: failProcessing}
			}
			pf, err := dicom.Parse(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				return stowResult{failure: failUnderstand}
			}
			return stowResult{stored: true, sopUID: pf.Meta.SOPInstanceUID}
		})
		if n := bytes.Count(body, []byte("--"+boundary)); len(results) > n {
			t.Fatalf("%d parts from %d boundaries", len(results), n)
		}
		// A body cut inside a part's content must fail the walk. One cut
		// within the header of a part not yet started reads as the end
		// (mime/multipart returns io.EOF there), losing nothing received.
		if err == nil && !bytes.Contains(body, []byte("--"+boundary+"--")) && bytes.Count(body, []byte("--"+boundary)) < len(results)+1 {
			t.Fatalf("%d parts and no error without a closing boundary", len(results))
		}
	})
}

// BenchmarkSTOW measures STOW-RS ingest of 512×512 CT slices, 64 a request.
func BenchmarkSTOW(b *testing.B) {
	ts := newTestServer(b, newStore(b), false)
	tmpl := template(b)
	const per = 64
	b.SetBytes(int64(per * len(tmpl.bytes)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		body, ctype := copiesFrom(tmpl, per, i*per)
		req, _ := http.NewRequest("POST", ts.URL+"/dicom-web/studies", body)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N*per)/time.Since(start).Seconds(), "instances/s")
}
