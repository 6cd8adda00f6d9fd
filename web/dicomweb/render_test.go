package dicomweb

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"lightbox/dicom"
)

func TestParseRender(t *testing.T) {
	cases := []struct {
		accept, query string
		format        string
		view          dicom.View
		quality       int
		err           string
	}{
		{"", "", "image/jpeg", dicom.View{Upscale: true}, 90, ""},
		{"image/png", "", "image/png", dicom.View{Upscale: true}, 90, ""},
		{"image/gif, image/png;q=0.5, image/jpeg", "", "image/png", dicom.View{Upscale: true}, 90, ""},
		{"image/png;q=0, image/*", "", "image/jpeg", dicom.View{Upscale: true}, 90, ""},
		{"image/jpeg", "window=40,400,linear&viewport=256,128&quality=75", "image/jpeg",
			dicom.View{Window: dicom.WindowExplicit, Center: 40, Width: 400, Function: dicom.VOILinear, MaxW: 256, MaxH: 128, Upscale: true}, 75, ""},
		{"image/jpeg", "window=-600,1500,SIGMOID", "image/jpeg",
			dicom.View{Window: dicom.WindowExplicit, Center: -600, Width: 1500, Function: dicom.VOISigmoid, Upscale: true}, 90, ""},
		{"image/jpeg", "window=1,2,linear-exact&annotation=patient", "image/jpeg",
			dicom.View{Window: dicom.WindowExplicit, Center: 1, Width: 2, Function: dicom.VOILinearExact, Upscale: true}, 90, ""},
		{"image/gif", "", "", dicom.View{}, 0, "image/jpeg or image/png"},
		{"", "window=40,400", "", dicom.View{}, 0, "center,width,function"},
		{"", "window=a,400,linear", "", dicom.View{}, 0, "numbers"},
		{"", "window=40,400,cubic", "", dicom.View{}, 0, "linear, linear-exact or sigmoid"},
		{"", "viewport=0,10", "", dicom.View{}, 0, "viewport sides"},
		{"", "viewport=100000,10", "", dicom.View{}, 0, "viewport sides"},
		{"", "viewport=10,10,0,0,5,5", "", dicom.View{}, 0, "cropping"},
		{"", "quality=101", "", dicom.View{}, 0, "quality"},
	}
	for _, tc := range cases {
		q, _ := url.ParseQuery(tc.query)
		got, err := parseRender(tc.accept, q)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q %q: error %v, want %q", tc.accept, tc.query, err, tc.err)
			}
			continue
		}
		if err != nil || got.format != tc.format || got.view != tc.view || got.quality != tc.quality {
			t.Errorf("%q %q: %+v %v", tc.accept, tc.query, got, err)
		}
	}
}

// Every instance with pixels renders to a decodable JPEG and PNG of the
// size asked for, through the DICOM core's pipeline.
func TestRendered(t *testing.T) {
	ts, _ := sharedServer(t)
	for _, f := range firstCopies(testFiles(t)) {
		n := f.file.NumFrames()
		if n == 0 {
			resp := ts.do(t, "GET", instancePath(f.meta)+"/rendered", nil)
			if resp.StatusCode != http.StatusNotAcceptable {
				t.Errorf("%s without pixels: %d", f.path, resp.StatusCode)
			}
			continue
		}
		// The file's own size, as JPEG.
		resp := ts.do(t, "GET", instancePath(f.meta)+"/rendered", nil, "Accept", "image/jpeg")
		img := decodeImage(t, f.path, resp, "jpeg")
		if img != nil && (img.Bounds().Dx() != f.meta.Image.Columns || img.Bounds().Dy() != f.meta.Image.Rows) {
			t.Errorf("%s: rendered %v, want %d×%d", f.path, img.Bounds(), f.meta.Image.Columns, f.meta.Image.Rows)
		}
		// The last frame, fitted to a 64×64 viewport, as PNG.
		resp = ts.do(t, "GET", instancePath(f.meta)+"/frames/"+strconv.Itoa(n)+"/rendered?viewport=64,64", nil, "Accept", "image/png")
		img = decodeImage(t, f.path, resp, "png")
		if img != nil && max(img.Bounds().Dx(), img.Bounds().Dy()) != 64 {
			t.Errorf("%s: viewport 64,64 gave %v", f.path, img.Bounds())
		}
	}
	// An explicit window on a CT.
	var ct testFile
	for _, f := range firstCopies(testFiles(t)) {
		if f.meta.Series.Modality == "CT" && f.meta.Image.SamplesPerPixel == 1 && f.file.NumFrames() > 0 {
			ct = f
			break
		}
	}
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"window=40,400,linear", http.StatusOK},
		{"window=-600,1500,sigmoid&quality=50", http.StatusOK},
		{"window=40,0,linear", http.StatusBadRequest}, // a width the function cannot use
		{"window=40,400", http.StatusBadRequest},
	} {
		resp := ts.do(t, "GET", instancePath(ct.meta)+"/rendered?"+tc.query, nil)
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", ct.path, tc.query, resp.StatusCode, tc.want)
		}
	}
	for _, tc := range []struct {
		path, accept string
		want         int
	}{
		{"/frames/1,2/rendered", "", http.StatusBadRequest},
		{"/frames/99999/rendered", "", http.StatusNotFound},
		{"/rendered", "image/gif", http.StatusNotAcceptable},
		{"/rendered", "application/dicom", http.StatusNotAcceptable},
	} {
		resp := ts.do(t, "GET", instancePath(ct.meta)+tc.path, nil, "Accept", tc.accept)
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s (Accept %q): %d, want %d", tc.path, tc.accept, resp.StatusCode, tc.want)
		}
	}
}

func decodeImage(t *testing.T, name string, resp *http.Response, format string) image.Image {
	t.Helper()
	b := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "image/"+format {
		t.Errorf("%s: Content-Type %s", name, ct)
	}
	img, got, err := image.Decode(bytes.NewReader(b))
	if err != nil || got != format {
		t.Errorf("%s: %s image does not decode: %v", name, got, errors.Unwrap(err))
		return nil
	}
	return img
}

// TestThumbnail: a series' thumbnail is its middle instance's, an
// instance's is its middle frame rendered within 128×128, a frame's is that
// frame; a small image is not enlarged, and a viewport is honoured.
func TestThumbnail(t *testing.T) {
	if _, err := exec.LookPath("dcmodify"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("dcmodify (Debian package dcmtk) is needed")
		}
		t.Skip("dcmodify not installed")
	}
	ts := newTestServer(t, newStore(t), false)
	get := func(path string, hdr ...string) []byte {
		t.Helper()
		resp := ts.do(t, "GET", path, nil, hdr...)
		b := readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	// A series of three CT slices that render differently (their windows
	// differ), numbered 1 to 3, and two more files of other studies.
	ct, err := os.ReadFile("../../testdata/ct-signed-implicit-512.dcm")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var parts []part
	for i, wc := range []string{"40", "300", "-600"} {
		p := filepath.Join(dir, fmt.Sprintf("ct%d.dcm", i))
		if err := os.WriteFile(p, ct, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("dcmodify", "-nb", "-q",
			"-m", fmt.Sprintf("(0008,0018)=1.2.826.0.1.3680043.9.7433.3.%d", i+1),
			"-m", fmt.Sprintf("(0020,0013)=%d", i+1),
			"-i", "(0028,1050)="+wc, "-i", "(0028,1051)=400", p).CombinedOutput(); err != nil {
			t.Fatalf("dcmodify: %v %s", err, out)
		}
		b, _ := os.ReadFile(p)
		parts = append(parts, part{"application/dicom", b})
	}
	var xa, mr testFile
	for _, f := range testFiles(t) {
		switch filepath.Base(f.path) {
		case "xa-jpeg-baseline-96frame.dcm":
			xa = f
		case "mr-small.dcm":
			mr = f
		}
	}
	parts = append(parts, part{"application/dicom", xa.bytes}, part{"application/dicom", mr.bytes})
	ts.stow(t, "/studies", parts)

	f, err := dicom.Parse(bytes.NewReader(ct), int64(len(ct)))
	if err != nil {
		t.Fatal(err)
	}
	series := "/studies/" + f.Meta.Study.InstanceUID + "/series/" + f.Meta.Series.InstanceUID
	middle := series + "/instances/1.2.826.0.1.3680043.9.7433.3.2"
	want := get(middle+"/rendered?viewport=128,128", "Accept", "image/jpeg")
	for _, path := range []string{series + "/thumbnail", "/studies/" + f.Meta.Study.InstanceUID + "/thumbnail", middle + "/thumbnail"} {
		if got := get(path, "Accept", "image/jpeg"); !bytes.Equal(got, want) {
			t.Errorf("%s is not the middle slice's 128×128 rendering", path)
		}
	}
	if bytes.Equal(get(series+"/instances/1.2.826.0.1.3680043.9.7433.3.1/thumbnail", "Accept", "image/jpeg"), want) {
		t.Error("the slices render alike: the test cannot tell them apart")
	}
	// A multi-frame instance: its middle frame, 49 of 96.
	if got, want := get(instancePath(xa.meta)+"/thumbnail"), get(instancePath(xa.meta)+"/frames/49/rendered?viewport=128,128"); !bytes.Equal(got, want) {
		t.Error("the XA thumbnail is not frame 49")
	}
	if got, want := get(instancePath(xa.meta)+"/frames/3/thumbnail"), get(instancePath(xa.meta)+"/frames/3/rendered?viewport=128,128"); !bytes.Equal(got, want) {
		t.Error("the frame 3 thumbnail is not frame 3")
	}
	for _, c := range []struct {
		path string
		side int
	}{
		{instancePath(mr.meta) + "/thumbnail", 64}, // 64×64: not enlarged
		{instancePath(xa.meta) + "/thumbnail?viewport=32,32", 32},
	} {
		resp := ts.do(t, "GET", c.path, nil, "Accept", "image/png")
		img := decodeImage(t, c.path, resp, "png")
		if img != nil && max(img.Bounds().Dx(), img.Bounds().Dy()) != c.side {
			t.Errorf("%s: %v, want %d on the long side", c.path, img.Bounds(), c.side)
		}
	}
	resp := ts.do(t, "GET", instancePath(xa.meta)+"/frames/97/thumbnail", nil)
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("frame 97 of 96: %d", resp.StatusCode)
	}
}
