package dicomweb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"lightbox/dicom"
)

type gotPart struct {
	ctype  string
	params map[string]string
	body   []byte
}

// parts reads a multipart/related answer.
func parts(t *testing.T, resp *http.Response, wantType string) []gotPart {
	t.Helper()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/related" || params["type"] != wantType {
		t.Fatalf("Content-Type %q, want multipart/related; type=%q", resp.Header.Get("Content-Type"), wantType)
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	var out []gotPart
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		ct, ps, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		if cl := p.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(b)) {
			t.Errorf("part Content-Length %s for %d bytes", cl, len(b))
		}
		out = append(out, gotPart{ct, ps, b})
	}
}

func instancePath(m dicom.Meta) string {
	return "/studies/" + m.Study.InstanceUID + "/series/" + m.Series.InstanceUID + "/instances/" + m.SOPInstanceUID
}

// Every stored instance comes back byte for byte, alone and within its
// series and study.
func TestRetrieve(t *testing.T) {
	ts, _ := sharedServer(t)
	first := firstCopies(testFiles(t))
	byStudy := map[string]map[string]bool{}
	for _, f := range first {
		resp := ts.do(t, "GET", instancePath(f.meta), nil, "Accept", `multipart/related; type="application/dicom"; transfer-syntax=*`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", f.path, resp.StatusCode, readAll(t, resp))
		}
		ps := parts(t, resp, "application/dicom")
		if len(ps) != 1 || !bytes.Equal(ps[0].body, f.bytes) {
			t.Errorf("%s: %d parts, not the bytes sent", f.path, len(ps))
			continue
		}
		if ps[0].ctype != "application/dicom" || ps[0].params["transfer-syntax"] != f.meta.TransferSyntaxUID {
			t.Errorf("%s: part %s %v", f.path, ps[0].ctype, ps[0].params)
		}
		if byStudy[f.meta.Study.InstanceUID] == nil {
			byStudy[f.meta.Study.InstanceUID] = map[string]bool{}
		}
		byStudy[f.meta.Study.InstanceUID][string(f.bytes)] = true
	}
	for st, want := range byStudy {
		resp := ts.do(t, "GET", "/studies/"+st, nil)
		ps := parts(t, resp, "application/dicom")
		if len(ps) != len(want) {
			t.Errorf("study %s: %d parts, want %d", st, len(ps), len(want))
		}
		for _, p := range ps {
			if !want[string(p.body)] {
				t.Errorf("study %s: a part that was not sent", st)
			}
		}
	}
	// A series.
	for _, f := range first {
		resp := ts.do(t, "GET", "/studies/"+f.meta.Study.InstanceUID+"/series/"+f.meta.Series.InstanceUID, nil, "Accept", "multipart/related; type=application/dicom")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("series of %s: %d %s", f.path, resp.StatusCode, readAll(t, resp))
		}
		n := 0
		for _, g := range first {
			if g.meta.Series.InstanceUID == f.meta.Series.InstanceUID {
				n++
			}
		}
		if ps := parts(t, resp, "application/dicom"); len(ps) != n {
			t.Errorf("series of %s: %d parts, want %d", f.path, len(ps), n)
		}
		break
	}
}

func TestRetrieveRefusals(t *testing.T) {
	ts, _ := sharedServer(t)
	var jpeg, native testFile
	for _, f := range firstCopies(testFiles(t)) {
		switch f.meta.TransferSyntaxUID {
		case "1.2.840.10008.1.2.4.50":
			jpeg = f
		case explicitLE:
			native = f
		}
	}
	if jpeg.path == "" || native.path == "" {
		t.Fatal("testdata lacks a baseline JPEG or an explicit VR little endian instance")
	}
	cases := []struct {
		path, accept string
		want         int
	}{
		{instancePath(jpeg.meta), `multipart/related; type="application/dicom"; transfer-syntax=` + explicitLE, http.StatusNotAcceptable},
		{instancePath(native.meta), `multipart/related; type="application/dicom"; transfer-syntax=` + explicitLE, http.StatusOK},
		{instancePath(jpeg.meta), `multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50`, http.StatusOK},
		{instancePath(jpeg.meta), `multipart/related; type="application/dicom"; transfer-syntax=` + explicitLE + `, multipart/related; type="application/dicom"; transfer-syntax=*`, http.StatusOK},
		{instancePath(jpeg.meta), "application/json", http.StatusNotAcceptable},
		{instancePath(jpeg.meta), `multipart/related; type="application/octet-stream"`, http.StatusNotAcceptable},
		{"/studies/1.2.3", "", http.StatusNotFound},
		{"/studies/1.2.3/series/4.5", "", http.StatusNotFound},
		{"/studies/1.2.3/series/4.5/instances/" + jpeg.meta.SOPInstanceUID, "", http.StatusNotFound},
		{"/studies/not-a-uid", "", http.StatusNotFound},
		{"/studies/1.2.3/series/4.5/instances/6.7/metadata", "", http.StatusNotFound},
	}
	for _, tc := range cases {
		resp := ts.do(t, "GET", tc.path, nil, "Accept", tc.accept)
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s (Accept %s): %d, want %d", tc.path, tc.accept, resp.StatusCode, tc.want)
		}
	}
}

func TestInstanceTS(t *testing.T) {
	cases := []struct {
		accept string
		any    bool
		set    []string
		ok     bool
	}{
		{"", true, nil, true},
		{"*/*", true, nil, true},
		{`multipart/related; type="application/dicom"`, true, nil, true},
		{`multipart/related; type="application/dicom"; transfer-syntax=*`, true, nil, true},
		{`multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1`, false, []string{explicitLE}, true},
		{`multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1;q=0`, false, nil, false},
		{`multipart/related; type="application/octet-stream"`, false, nil, false},
		{`application/dicom`, false, nil, false},
		{`garbage;;;`, false, nil, false},
	}
	for _, tc := range cases {
		set, ok := instanceTS(tc.accept)
		if ok != tc.ok || (set == nil) != tc.any && ok {
			t.Errorf("%q: %v %v", tc.accept, set, ok)
		}
		for _, ts := range tc.set {
			if !set[ts] {
				t.Errorf("%q: %s not allowed", tc.accept, ts)
			}
		}
	}
}

func TestMetadata(t *testing.T) {
	ts, _ := sharedServer(t)
	first := firstCopies(testFiles(t))
	for _, f := range first {
		resp := ts.do(t, "GET", instancePath(f.meta)+"/metadata", nil, "Accept", "application/dicom+json")
		b := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/dicom+json" {
			t.Fatalf("%s: %d %s", f.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var md []map[string]jsonAttr
		if err := json.Unmarshal(b, &md); err != nil || len(md) != 1 {
			t.Fatalf("%s: %v, %d objects", f.path, err, len(md))
		}
		m := md[0]
		if got := m["00080018"].str(t); got != f.meta.SOPInstanceUID {
			t.Errorf("%s: SOPInstanceUID %q", f.path, got)
		}
		if got := m["0020000E"].str(t); got != f.meta.Series.InstanceUID {
			t.Errorf("%s: SeriesInstanceUID %q", f.path, got)
		}
		if got := m["00083002"].str(t); got != f.meta.TransferSyntaxUID {
			t.Errorf("%s: AvailableTransferSyntaxUID %q", f.path, got)
		}
		if _, ok := m["7FE00010"]; ok {
			t.Errorf("%s: Pixel Data in metadata", f.path)
		}
		if _, ok := m["00020010"]; ok {
			t.Errorf("%s: file meta in metadata", f.path)
		}
		if f.file.NumFrames() > 0 {
			if got := int(m["00280010"].num(t)); got != f.meta.Image.Rows {
				t.Errorf("%s: Rows %d, want %d", f.path, got, f.meta.Image.Rows)
			}
		}
	}
	f := testFiles(t)[0]
	resp := ts.do(t, "GET", "/studies/"+f.meta.Study.InstanceUID+"/metadata", nil)
	var md []map[string]jsonAttr
	if err := json.Unmarshal(readAll(t, resp), &md); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range first {
		if g.meta.Study.InstanceUID == f.meta.Study.InstanceUID {
			n++
		}
	}
	if len(md) != n {
		t.Errorf("study metadata: %d objects, want %d", len(md), n)
	}
}

// frameBytes is what a frames request should return for frame i as stored.
func frameBytes(t *testing.T, f testFile, i int) []byte {
	b, err := storedFrame(f.file, i)
	if err != nil {
		t.Fatalf("%s frame %d: %v", f.path, i+1, err)
	}
	return b
}

func TestFrames(t *testing.T) {
	ts, _ := sharedServer(t)
	for _, f := range firstCopies(testFiles(t)) {
		n := f.file.NumFrames()
		if n == 0 {
			continue
		}
		list := []string{}
		for i := 1; i <= min(n, 4); i++ {
			list = append(list, strconv.Itoa(i))
		}
		if n > 4 {
			list = append(list, strconv.Itoa(n))
		}
		path := instancePath(f.meta) + "/frames/" + strings.Join(list, ",")
		resp := ts.do(t, "GET", path, nil, "Accept", `multipart/related; type="application/octet-stream"; transfer-syntax=*`)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", f.path, resp.StatusCode, readAll(t, resp))
			continue
		}
		// The bytes as stored, labelled as asked: application/octet-stream
		// with the transfer syntax they are in.
		ps := parts(t, resp, "application/octet-stream")
		wantType := frameType(f.meta.TransferSyntaxUID)
		if len(ps) != len(list) {
			t.Fatalf("%s: %d frames for %d asked", f.path, len(ps), len(list))
		}
		im := f.meta.Image
		for j, p := range ps {
			k, _ := strconv.Atoi(list[j])
			want := frameBytes(t, f, k-1)
			if f.meta.TransferSyntaxUID == explicitBE { // sent little endian
				want = littleEndian(bytes.Clone(want), im.BitsAllocated)
			}
			if !bytes.Equal(p.body, want) {
				t.Errorf("%s frame %d: %d bytes, not the %d stored", f.path, k, len(p.body), len(want))
			}
			if p.ctype != "application/octet-stream" {
				t.Errorf("%s: part type %s, want application/octet-stream", f.path, p.ctype)
			}
			if wantType == "application/octet-stream" {
				size := (im.Rows*im.Columns*im.SamplesPerPixel*im.BitsAllocated + 7) / 8
				if im.Photometric == "YBR_FULL_422" {
					size = im.Rows * im.Columns * 2 * im.BitsAllocated / 8
				}
				if len(p.body) != size {
					t.Errorf("%s frame %d: %d bytes, want %d", f.path, k, len(p.body), size)
				}
			} else if p.params["transfer-syntax"] != f.meta.TransferSyntaxUID {
				t.Errorf("%s: part transfer syntax %q", f.path, p.params["transfer-syntax"])
			}
		}

		// Asked by their own media type, compressed frames come labelled so.
		if wantType != "application/octet-stream" {
			resp := ts.do(t, "GET", instancePath(f.meta)+"/frames/1", nil, "Accept", `multipart/related; type="`+wantType+`"`)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s as %s: %d %s", f.path, wantType, resp.StatusCode, readAll(t, resp))
				continue
			}
			if ps := parts(t, resp, wantType); len(ps) != 1 || !bytes.Equal(ps[0].body, frameBytes(t, f, 0)) || ps[0].params["transfer-syntax"] != f.meta.TransferSyntaxUID {
				t.Errorf("%s as %s: not the stored frame", f.path, wantType)
			}
		}

		// A client that takes only uncompressed frames gets them decoded.
		if wantType != "application/octet-stream" {
			resp := ts.do(t, "GET", instancePath(f.meta)+"/frames/1", nil, "Accept", `multipart/related; type="application/octet-stream"`)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s decoded: %d %s", f.path, resp.StatusCode, readAll(t, resp))
				continue
			}
			ps := parts(t, resp, "application/octet-stream")
			fr, err := f.file.Frame(0)
			if err != nil {
				t.Fatal(err)
			}
			size := (len(fr.Pix)*im.BitsAllocated + 7) / 8
			if len(ps) != 1 || len(ps[0].body) != size || ps[0].params["transfer-syntax"] != explicitLE {
				t.Errorf("%s decoded: %d parts, %d bytes (want %d), %v", f.path, len(ps), len(ps[0].body), size, ps[0].params)
			}
		}
	}
}

func TestFramesRefusals(t *testing.T) {
	ts, _ := sharedServer(t)
	var f testFile
	for _, c := range firstCopies(testFiles(t)) {
		if c.file.NumFrames() > 1 {
			f = c
			break
		}
	}
	n := f.file.NumFrames()
	base := instancePath(f.meta) + "/frames/"
	for _, tc := range []struct {
		frames, accept string
		want           int
	}{
		{"0", "", http.StatusBadRequest},
		{"x", "", http.StatusBadRequest},
		{"1,,2", "", http.StatusBadRequest},
		{strconv.Itoa(n + 1), "", http.StatusNotFound},
		{strings.Repeat("1,", n) + "1", "", http.StatusBadRequest},
		{"1", "image/png", http.StatusNotAcceptable},
		{"1", `multipart/related; type="image/gif"`, http.StatusNotAcceptable},
	} {
		resp := ts.do(t, "GET", base+tc.frames, nil, "Accept", tc.accept)
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != tc.want {
			t.Errorf("frames %s (Accept %q): %d, want %d", tc.frames, tc.accept, resp.StatusCode, tc.want)
		}
	}
}

func TestChooseFrames(t *testing.T) {
	const jls = "1.2.840.10008.1.2.4.80"
	cases := []struct {
		accept, ts string
		want       frameMode
	}{
		{"", jls, framesStored},
		{"*/*", explicitLE, framesStored},
		{`multipart/related; type="application/octet-stream"; transfer-syntax=*`, jls, framesStoredOctet},
		{`multipart/related; type="image/jls"`, jls, framesStored},
		{`multipart/related; type="image/jls"; transfer-syntax=` + jls, jls, framesStored},
		{`multipart/related; type="image/*"`, jls, framesStored},
		{`multipart/related; type="image/jls"; transfer-syntax=1.2.840.10008.1.2.4.81`, jls, framesNone},
		{`multipart/related; type="application/octet-stream"`, jls, framesNative},
		{`multipart/related; type="application/octet-stream"`, explicitLE, framesStored},
		{`multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1`, jls, framesNative},
		{`multipart/related; type="application/octet-stream", multipart/related; type="image/jls"`, jls, framesStored},
		{`multipart/related; type="image/jp2"`, jls, framesNone},
		{`image/jls`, jls, framesNone},
	}
	for _, tc := range cases {
		if got := chooseFrames(tc.accept, tc.ts); got != tc.want {
			t.Errorf("%q for %s: %d, want %d", tc.accept, tc.ts, got, tc.want)
		}
	}
}

func TestParseMediaType(t *testing.T) {
	cases := []struct {
		in, typ string
		params  map[string]string
		err     bool
	}{
		{`multipart/related; type="application/dicom"; boundary=abc`, "multipart/related", map[string]string{"type": "application/dicom", "boundary": "abc"}, false},
		{`Multipart/Related; Type=application/dicom; transfer-syntax=*`, "multipart/related", map[string]string{"type": "application/dicom", "transfer-syntax": "*"}, false},
		{`multipart/related; boundary="a;b,c"`, "multipart/related", map[string]string{"boundary": "a;b,c"}, false},
		{`image/jpeg;q=0.9`, "image/jpeg", map[string]string{"q": "0.9"}, false},
		{`text`, "", nil, true},
		{`/x`, "", nil, true},
		{``, "", nil, true},
	}
	for _, tc := range cases {
		typ, params, err := parseMediaType(tc.in)
		if (err != nil) != tc.err || typ != tc.typ || !tc.err && fmt.Sprint(params) != fmt.Sprint(tc.params) {
			t.Errorf("%q: %q %v %v", tc.in, typ, params, err)
		}
	}
}
