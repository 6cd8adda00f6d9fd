package dicomweb

import (
	"bytes"
	"errors"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"net/url"
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
