package web

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lightbox/dicom"
	"lightbox/storage"
)

// syncBuffer is a log destination the server's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// openStore opens a real store (SQLite catalog, disk blobs) in a temporary
// folder.
func openStore(t testing.TB) *storage.Store {
	t.Helper()
	store, err := storage.Open(context.Background(), "", "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Catalog.Close() })
	return store
}

// newStoreServer serves a fresh store over TLS, logging into the returned
// buffer.
func newStoreServer(t testing.TB, cfgs ...func(*Config)) (*httptest.Server, *storage.Store, *syncBuffer) {
	t.Helper()
	store := openStore(t)
	logs := &syncBuffer{}
	cfg := Config{TestData: t.TempDir(), Store: store, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	for _, f := range cfgs {
		f(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv, store, logs
}

// post uploads body as one file named name.
func post(t testing.TB, srv *httptest.Server, name string, body io.Reader, hdr ...string) (int, uploadResponse) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/upload", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Filename", url.PathEscape(name))
	req.Header.Set("Content-Type", "application/octet-stream")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", name, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out uploadResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: %s %.300s", name, res.Status, raw)
	}
	return res.StatusCode, out
}

func postFile(t testing.TB, srv *httptest.Server, path string) (int, uploadResult) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	code, out := post(t, srv, filepath.Base(path), f)
	if len(out.Results) != 1 {
		t.Fatalf("%s: %d results for one file", path, len(out.Results))
	}
	return code, out.Results[0]
}

// testdataFiles is every DICOM file of testdata, sorted.
func testdataFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testDataDir, "*.dcm"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	sort.Strings(files)
	return files
}

// expected predicts what uploading files in order must give, from the
// files themselves: the first copy of a SOP Instance UID is stored, the
// same bytes again are a duplicate, other bytes a conflict; what the core
// cannot parse is rejected.
type expected struct {
	status map[string]string // path → status
	first  map[string]string // SOP Instance UID → path of the stored copy
	sop    map[string]string // path → SOP Instance UID
	order  []string          // paths stored, in upload order
}

func predict(t testing.TB, files []string) expected {
	t.Helper()
	e := expected{status: map[string]string{}, first: map[string]string{}, sop: map[string]string{}}
	sums := map[string][32]byte{}
	for _, p := range files {
		f, err := dicom.Open(p)
		if err != nil || f.Meta.SOPInstanceUID == "" || f.Meta.Study.InstanceUID == "" || f.Meta.Series.InstanceUID == "" || f.Meta.SOPClassUID == "" {
			e.status[p] = statusRejected
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(raw)
		uid := f.Meta.SOPInstanceUID
		e.sop[p] = uid
		switch old, ok := sums[uid]; {
		case !ok:
			sums[uid], e.first[uid], e.status[p] = sum, p, statusStored
			e.order = append(e.order, p)
		case old == sum:
			e.status[p] = statusDuplicate
		default:
			e.status[p] = statusConflict
		}
	}
	return e
}

// uploadAll uploads every testdata file and checks each answer against
// the prediction.
func uploadAll(t testing.TB, srv *httptest.Server) expected {
	t.Helper()
	files := testdataFiles(t)
	want := predict(t, files)
	for _, p := range files {
		code, r := postFile(t, srv, p)
		if r.Status != want.status[p] {
			t.Errorf("%s: %s (%s), want %s", filepath.Base(p), r.Status, r.Reason, want.status[p])
			continue
		}
		wantCode := map[string]int{statusStored: 200, statusDuplicate: 200, statusConflict: 200, statusRejected: 422}[r.Status]
		if code != wantCode {
			t.Errorf("%s: HTTP %d for %s, want %d", filepath.Base(p), code, r.Status, wantCode)
		}
		if r.Name != filepath.Base(p) {
			t.Errorf("name %q, want %q", r.Name, filepath.Base(p))
		}
		if r.Status != statusRejected && r.SOPInstanceUID != want.sop[p] {
			t.Errorf("%s: SOP %q, want %q", filepath.Base(p), r.SOPInstanceUID, want.sop[p])
		}
		if r.Status == statusRejected && r.Reason == "" {
			t.Errorf("%s: rejected without a reason", filepath.Base(p))
		}
	}
	return want
}

// TestUploadEveryFile uploads every test file, then all of them again (all
// duplicates or conflicts now), plus files that are not DICOM, damaged, or
// another copy of a stored instance.
func TestUploadEveryFile(t *testing.T) {
	srv, store, logs := newStoreServer(t)
	want := uploadAll(t, srv)
	stored := 0
	for _, s := range want.status {
		if s == statusStored {
			stored++
		}
	}
	if stored < 30 {
		t.Fatalf("only %d files stored", stored)
	}
	n := 0
	if err := store.Blobs.List(context.Background(), "", func(storage.BlobInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != stored {
		t.Errorf("%d blobs for %d stored instances", n, stored)
	}

	// Again: nothing new.
	for _, p := range testdataFiles(t) {
		_, r := postFile(t, srv, p)
		w := want.status[p]
		if w == statusStored {
			w = statusDuplicate
		}
		if r.Status != w {
			t.Errorf("second upload of %s: %s, want %s", filepath.Base(p), r.Status, w)
		}
	}

	// The copy of mr-small stored first (it is in testdata in several
	// transfer syntaxes).
	mr := want.first[want.sop[filepath.Join(testDataDir, "mr-small.dcm")]]
	raw, err := os.ReadFile(mr)
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Clone(raw)
	changed[len(changed)-1] ^= 0xff // one pixel differs
	for _, c := range []struct {
		name   string
		body   []byte
		code   int
		status string
		reason string
	}{
		{"LICENSES.md", mustRead(t, filepath.Join(testDataDir, "LICENSES.md")), 422, statusRejected, "not a DICOM file"},
		{"empty.dcm", nil, 422, statusRejected, "not a DICOM file"},
		{"truncated.dcm", raw[:len(raw)/2], 422, statusRejected, "damaged file: "},
		{"header-only.dcm", raw[:300], 422, statusRejected, "damaged file: "},
		{"changed.dcm", changed, 200, statusConflict, "the stored one was kept"},
		{"Dóe, Jöhn 1.dcm", raw, 200, statusDuplicate, "already stored"},
	} {
		code, out := post(t, srv, c.name, bytes.NewReader(c.body))
		r := out.Results[0]
		if code != c.code || r.Status != c.status || !strings.Contains(r.Reason, c.reason) || r.Name != c.name {
			t.Errorf("%s: HTTP %d %+v, want %d %s %q", c.name, code, r, c.code, c.status, c.reason)
		}
	}
	// The log names instances by UID, never by file name or patient.
	log := logs.String()
	for _, bad := range []string{"Dóe", "mr-", "LICENSES", "^"} {
		if strings.Contains(log, bad) {
			t.Errorf("log contains %q", bad)
		}
	}
	if !strings.Contains(log, want.sop[mr]) {
		t.Errorf("log does not name the SOP Instance UID %s", want.sop[mr])
	}
	if !strings.Contains(log, "reason=\"not a DICOM file\"") {
		t.Errorf("log does not say why a file was refused:\n%s", tail(log, 2000))
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUploadZip sends zips: each entry is answered on its own, folders and
// archivers' extras are skipped, a damaged zip is refused as a whole.
func TestUploadZip(t *testing.T) {
	srv, _, _ := newStoreServer(t)
	mr := mustRead(t, filepath.Join(testDataDir, "mr-small.dcm"))
	ct := mustRead(t, filepath.Join(testDataDir, "ct-signed-implicit-512.dcm"))
	xa := mustRead(t, filepath.Join(testDataDir, "xa-jpeg-baseline-96frame.dcm"))
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	add := func(name string, b []byte, method uint16) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	add("study/", nil, zip.Store)
	add("study/MR1", mr, zip.Deflate)
	add("study/CT1", ct, zip.Store)
	add("study/XA1.dcm", xa, zip.Deflate)
	add("study/MR1-again", mr, zip.Deflate)
	add("study/notes.txt", []byte("patient was calm"), zip.Deflate)
	add("study/inner.zip", []byte("PK\x03\x04"), zip.Store)
	add("__MACOSX/study/._MR1", []byte{0, 5, 22, 7}, zip.Store)
	add("study/.DS_Store", []byte{0, 0, 0, 1}, zip.Store)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zipBytes := zbuf.Bytes()

	// Known by its name, by its type, or by its bytes alone.
	for i, c := range []struct{ name, ctype string }{
		{"export.ZIP", "application/octet-stream"},
		{"export", "application/zip"},
		{"export.bin", ""},
	} {
		code, out := post(t, srv, c.name, bytes.NewReader(zipBytes), "Content-Type", c.ctype)
		if code != 200 || !out.Zip {
			t.Fatalf("%s: HTTP %d zip=%v %+v", c.name, code, out.Zip, out)
		}
		var got []string
		for _, r := range out.Results {
			got = append(got, r.Name+"="+r.Status)
		}
		first := "stored"
		if i > 0 {
			first = "duplicate"
		}
		want := []string{"study/MR1=" + first, "study/CT1=" + first, "study/XA1.dcm=" + first, "study/MR1-again=duplicate",
			"study/notes.txt=rejected", "study/inner.zip=rejected"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: %v\nwant %v", c.name, got, want)
		}
		if r := out.Results[4]; r.Reason != "not a DICOM file" {
			t.Errorf("notes.txt: reason %q", r.Reason)
		}
		if r := out.Results[5]; !strings.Contains(r.Reason, "zip inside the zip") {
			t.Errorf("inner.zip: reason %q", r.Reason)
		}
	}

	// A zip whose stored entry was damaged in transit: its checksum fails.
	bad := bytes.Clone(zipBytes)
	i := bytes.Index(bad, ct[1000:1100])
	if i < 0 {
		t.Fatal("CT bytes not found in the zip")
	}
	bad[i+10] ^= 0xff
	_, out := post(t, srv, "damaged.zip", bytes.NewReader(bad))
	var ctRes uploadResult
	for _, r := range out.Results {
		if r.Name == "study/CT1" {
			ctRes = r
		}
	}
	if ctRes.Status != statusRejected || !strings.Contains(ctRes.Reason, "checksum") {
		t.Errorf("damaged entry: %+v", ctRes)
	}

	for _, c := range []struct {
		name   string
		body   []byte
		reason string
	}{
		{"cut.zip", zipBytes[:len(zipBytes)-30], "not a readable zip file"},
		{"empty.zip", emptyZip(t), "holds no files"},
		{"huge-directory.zip", fakeEOCD(10, 64<<20), "too many files"},
	} {
		code, out := post(t, srv, c.name, bytes.NewReader(c.body))
		if code != 422 || len(out.Results) != 1 || out.Results[0].Status != statusRejected || !strings.Contains(out.Results[0].Reason, c.reason) {
			t.Errorf("%s: HTTP %d %+v, want 422 %q", c.name, code, out.Results, c.reason)
		}
	}
}

func emptyZip(t testing.TB) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	zw.Create("folder/")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fakeEOCD is a zip that is only an end-of-central-directory record
// claiming entries and a directory of dirSize bytes.
func fakeEOCD(entries uint16, dirSize uint32) []byte {
	b := []byte("PK\x05\x06")
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint16(b, entries)
	b = binary.LittleEndian.AppendUint16(b, entries)
	b = binary.LittleEndian.AppendUint32(b, dirSize)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return binary.LittleEndian.AppendUint16(b, 0)
}

func TestCheckZipDirectory(t *testing.T) {
	var big bytes.Buffer
	zw := zip.NewWriter(&big)
	for i := 0; i < 3; i++ {
		w, _ := zw.Create("f" + string(rune('a'+i)))
		w.Write([]byte("x"))
	}
	zw.Close()
	for _, c := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"real zip", big.Bytes(), true},
		{"empty zip", emptyZip(t), true},
		{"small directory", fakeEOCD(3, 1000), true},
		{"directory too large", fakeEOCD(3, maxZipDirectory+1), false},
		{"zip64 marker without locator", fakeEOCD(0xffff, 0xffffffff), false},
		{"no record", []byte("PK\x03\x04 not a zip at all"), false},
		{"nothing", nil, false},
	} {
		err := checkZipDirectory(bytes.NewReader(c.b), int64(len(c.b)))
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func FuzzCheckZipDirectory(f *testing.F) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create("a")
	w.Write([]byte("hello"))
	zw.Close()
	f.Add(b.Bytes())
	f.Add(fakeEOCD(0xffff, 0xffffffff))
	f.Add(emptyZip(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkZipDirectory(bytes.NewReader(b), int64(len(b))) == nil {
			// What passes must be safe for archive/zip to read.
			zip.NewReader(bytes.NewReader(b), int64(len(b)))
		}
	})
}

// TestUploadRefusesForeignRequests: another site's page cannot make the
// browser upload, and a request without a file name is not an upload.
func TestUploadRefusesForeignRequests(t *testing.T) {
	srv, store, _ := newStoreServer(t)
	raw := mustRead(t, filepath.Join(testDataDir, "mr-small.dcm"))
	for _, hdr := range [][]string{
		{"Origin", "https://evil.example"},
		{"Sec-Fetch-Site", "cross-site"},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/upload", bytes.NewReader(raw))
		req.Header.Set("X-Filename", "a.dcm")
		req.Header.Set(hdr[0], hdr[1])
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403", hdr[0], res.Status)
		}
	}
	res, err := srv.Client().Post(srv.URL+"/api/upload", "text/plain", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("no X-Filename: %s, want 400", res.Status)
	}
	// Same origin is fine.
	code, out := post(t, srv, "a.dcm", bytes.NewReader(raw), "Origin", srv.URL, "Sec-Fetch-Site", "same-origin")
	if code != 200 || out.Results[0].Status != statusStored {
		t.Errorf("same-origin upload: %d %+v", code, out)
	}
	if ok, _ := store.Catalog.HasInstance(context.Background(), out.Results[0].SOPInstanceUID); !ok {
		t.Error("stored instance not in the catalog")
	}
}

// TestUploadLimits: a body over the limit is refused as too large, and the
// auth hook wraps upload and the study API.
func TestUploadLimits(t *testing.T) {
	var guarded atomic.Int64
	srv, _, _ := newStoreServer(t, func(c *Config) {
		c.MaxUpload = 10000
		c.Auth = func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				guarded.Add(1)
				if r.Header.Get("X-Test-Deny") != "" {
					writeError(w, http.StatusUnauthorized, "sign in first")
					return
				}
				next.ServeHTTP(w, r)
			})
		}
	})
	raw := mustRead(t, filepath.Join(testDataDir, "ct-signed-implicit-512.dcm"))
	code, out := post(t, srv, "big.dcm", bytes.NewReader(raw))
	if r := out.Results[0]; code != http.StatusRequestEntityTooLarge || r.Status != statusRejected || !strings.Contains(r.Reason, "too large") {
		t.Errorf("over the limit: %d %+v", code, r)
	}
	code, out = post(t, srv, "big.zip", bytes.NewReader(append([]byte("PK\x03\x04"), raw...)))
	if r := out.Results[0]; code != http.StatusRequestEntityTooLarge || !strings.Contains(r.Reason, "too large") {
		t.Errorf("zip over the limit: %d %+v", code, r)
	}
	if guarded.Load() != 2 {
		t.Errorf("auth hook saw %d uploads, want 2", guarded.Load())
	}
	for _, p := range []string{"/api/studies", "/api/instances/1.2.3"} {
		res, _ := get(t, srv, p, "X-Test-Deny", "1")
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s past the auth hook: %s", p, res.Status)
		}
	}
	if res, _ := get(t, srv, "/api/presets", "X-Test-Deny", "1"); res.StatusCode != 200 {
		t.Errorf("presets are not behind the hook: %s", res.Status)
	}
}

// TestRefusalWords: each ingest error reads as a clinician would say it.
func TestRefusalWords(t *testing.T) {
	for _, c := range []struct {
		err, read error
		status    string
		reason    string
	}{
		{fmt.Errorf("%w: no DICM", storage.ErrNotDICOM), nil, statusRejected, "not a DICOM file"},
		{fmt.Errorf("%w: dicom: pixel data is 10 bytes, the header needs 20", storage.ErrBadInstance), nil, statusRejected, "damaged file: pixel data is 10 bytes, the header needs 20"},
		{fmt.Errorf("%w: 1.2.3", storage.ErrSOPClass), nil, statusRejected, "a kind of DICOM object Lightbox does not store (1.2.3)"},
		{fmt.Errorf("%w: more than 5 bytes", storage.ErrTooLarge), nil, statusRejected, "too large: one file may be at most 4.3 GB"},
		{fmt.Errorf("spool: %w", &http.MaxBytesError{Limit: 300e6}), &http.MaxBytesError{Limit: 300e6}, statusRejected, "too large: one file may be at most 300 MB"},
		{fmt.Errorf("spool: %w", zip.ErrChecksum), nil, statusRejected, "damaged file inside the zip (checksum error)"},
		{fmt.Errorf("spool: %w", io.ErrUnexpectedEOF), io.ErrUnexpectedEOF, statusFailed, "the upload was interrupted; please try again"},
		{fmt.Errorf("ingest 1.2: %w", errors.New("disk full")), nil, statusFailed, "the server could not store this file; please try again"},
	} {
		st, reason := refusal(c.err, c.read, 4<<30)
		if st != c.status || reason != c.reason {
			t.Errorf("%v: %s %q, want %s %q", c.err, st, reason, c.status, c.reason)
		}
	}
}

func TestUploadName(t *testing.T) {
	for in, want := range map[string]string{
		"a.dcm":                  "a.dcm",
		"CT%2FIM%200001":         "CT/IM 0001",
		"D%C3%B3e.dcm":           "Dóe.dcm",
		"bad%ZZ":                 "bad%ZZ",
		"x%0Ay%00z":              "xyz",
		strings.Repeat("a", 600): strings.Repeat("a", 512),
	} {
		if got := uploadName(in); got != want {
			t.Errorf("uploadName(%q) = %q, want %q", in, got, want)
		}
	}
}

// bigDICOM streams a multi-frame 16-bit CT of frames 512×512 frames whose
// pixel data is made on the fly: a real header, then size bytes of pixels,
// never held in memory.
func bigDICOM(t testing.TB, frames int) (io.Reader, int64, string) {
	t.Helper()
	const rows, cols = 512, 512
	sop := "1.2.826.0.1.3680043.10.1234.99.1"
	var h bytes.Buffer
	if err := dicom.WriteFileMeta(&h, dicom.FileMeta{TransferSyntaxUID: "1.2.840.10008.1.2.1", SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", SOPInstanceUID: sop}); err != nil {
		t.Fatal(err)
	}
	str := func(g, e uint16, vr, v string) {
		if len(v)%2 == 1 {
			pad := " "
			if vr == "UI" {
				pad = "\x00"
			}
			v += pad
		}
		binary.Write(&h, binary.LittleEndian, [2]uint16{g, e})
		h.WriteString(vr)
		binary.Write(&h, binary.LittleEndian, uint16(len(v)))
		h.WriteString(v)
	}
	us := func(e uint16, v uint16) {
		binary.Write(&h, binary.LittleEndian, [2]uint16{0x0028, e})
		h.WriteString("US")
		binary.Write(&h, binary.LittleEndian, uint16(2))
		binary.Write(&h, binary.LittleEndian, v)
	}
	str(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2")
	str(0x0008, 0x0018, "UI", sop)
	str(0x0008, 0x0060, "CS", "CT")
	str(0x0010, 0x0010, "PN", "MEMORY^TEST")
	str(0x0010, 0x0020, "LO", "MEM-1")
	str(0x0020, 0x000D, "UI", "1.2.826.0.1.3680043.10.1234.99.2")
	str(0x0020, 0x000E, "UI", "1.2.826.0.1.3680043.10.1234.99.3")
	us(0x0002, 1)
	str(0x0028, 0x0004, "CS", "MONOCHROME2")
	str(0x0028, 0x0008, "IS", strconv.Itoa(frames))
	us(0x0010, rows)
	us(0x0011, cols)
	us(0x0100, 16)
	us(0x0101, 12)
	us(0x0102, 11)
	us(0x0103, 0)
	n := int64(rows * cols * 2 * frames)
	binary.Write(&h, binary.LittleEndian, [2]uint16{0x7FE0, 0x0010})
	h.WriteString("OW\x00\x00")
	binary.Write(&h, binary.LittleEndian, uint32(n))
	return io.MultiReader(bytes.NewReader(h.Bytes()), io.LimitReader(&ramp{}, n)), int64(h.Len()) + n, sop
}

// ramp is an endless 12-bit gradient, so that frames are not flat.
type ramp struct{ i uint64 }

func (r *ramp) Read(p []byte) (int, error) {
	for k := range p {
		// Little-endian 16-bit samples: low byte, then a high byte
		// within 12 bits.
		if r.i%2 == 0 {
			p[k] = byte(r.i / 2)
		} else {
			p[k] = byte(r.i/2>>8) & 0x0f
		}
		r.i++
	}
	return len(p), nil
}

// TestUploadMemory streams a ~300 MB instance through upload while heap
// in use is sampled: it must stay bounded, far below the body's size.
func TestUploadMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 600 MB to disk")
	}
	srv, store, _ := newStoreServer(t)
	body, size, sop := bigDICOM(t, 600)
	if size < 300e6 {
		t.Fatalf("body only %d bytes", size)
	}
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/upload", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("X-Filename", "big-ct.dcm")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out uploadResponse
	err = json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	close(stop)
	<-done
	if err != nil || res.StatusCode != 200 || out.Results[0].Status != statusStored || out.Results[0].SOPInstanceUID != sop {
		t.Fatalf("upload: %s %+v %v", res.Status, out, err)
	}
	const limit = 64 << 20
	t.Logf("%d MB uploaded; peak heap in use %.1f MB", size>>20, float64(peak.Load())/(1<<20))
	if peak.Load() > limit {
		t.Errorf("peak heap in use %d MB while uploading, limit %d MB", peak.Load()>>20, limit>>20)
	}
	in, err := store.Catalog.GetInstance(context.Background(), sop)
	if err != nil || in.Size != size || in.NumberOfFrames != 600 {
		t.Fatalf("stored: %+v %v", in, err)
	}
	// Its last frame renders from the blob without reading the rest.
	res2, png := get(t, srv, "/api/instances/"+sop+"/frames/599/render?w=256&h=256")
	if res2.StatusCode != 200 || len(png) < 100 {
		t.Errorf("render last frame: %s %.200s", res2.Status, png)
	}
}
