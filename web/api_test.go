package web

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lightbox/dicom"
)

// TestListFiles: every DICOM file of testdata is listed once, by an opaque
// id, with the header fields the list shows, and no server path leaks.
func TestListFiles(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	res, body := get(t, srv, "/api/files")
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	abs, _ := filepath.Abs(testDataDir)
	if bytes.Contains(body, []byte(abs)) {
		t.Errorf("listing reveals the server's folder %s", abs)
	}
	files := listed(t, srv)
	want, _ := filepath.Glob(filepath.Join(testDataDir, "*.dcm"))
	if len(want) == 0 {
		t.Fatal("no .dcm files in testdata")
	}
	ids := map[string]bool{}
	names := map[string]fileSummary{}
	for _, f := range files {
		if ids[f.ID] {
			t.Errorf("id %s listed twice", f.ID)
		}
		ids[f.ID] = true
		if !validID(f.ID) {
			t.Errorf("%s: id %q has not the documented shape", f.Name, f.ID)
		}
		names[f.Name] = f
	}
	for _, p := range want {
		name := filepath.Base(p)
		f, ok := names[name]
		if !ok {
			t.Errorf("%s not listed", name)
			continue
		}
		df, err := dicom.Open(p)
		if err != nil {
			if f.Error == "" {
				t.Errorf("%s: dicom.Open fails (%v) but the listing shows no error", name, err)
			}
			continue
		}
		if f.Error != "" {
			t.Errorf("%s: listed with error %q, but it opens", name, f.Error)
			continue
		}
		m := df.Meta
		if f.Modality != m.Series.Modality || f.Rows != m.Image.Rows || f.Columns != m.Image.Columns ||
			f.Frames != df.NumFrames() || f.TransferSyntaxUID != m.TransferSyntaxUID || f.Lossy != m.Image.LossyCompression {
			t.Errorf("%s: summary %+v does not match the header", name, f)
		}
		if f.TransferSyntax == "" || strings.Contains(f.TransferSyntax, "(") && strings.Contains(f.TransferSyntax, m.TransferSyntaxUID) {
			t.Errorf("%s: transfer syntax name %q", name, f.TransferSyntax)
		}
	}
}

// TestFileMeta: GET /api/files/{id} returns the header exactly as the DICOM
// core reads it.
func TestFileMeta(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	for _, f := range listed(t, srv) {
		if f.Error != "" {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			res, body := get(t, srv, "/api/files/"+f.ID)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", res.Status, body)
			}
			var d struct {
				ID   string          `json:"id"`
				Meta json.RawMessage `json:"meta"`
			}
			if err := json.Unmarshal(body, &d); err != nil {
				t.Fatal(err)
			}
			df, err := dicom.Open(filepath.Join(testDataDir, filepath.FromSlash(f.Name)))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(df.Meta)
			var a, b any
			if err := json.Unmarshal(d.Meta, &a); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal(want, &b)
			if d.ID != f.ID || fmt.Sprint(a) != fmt.Sprint(b) {
				t.Errorf("meta differs from dicom.Open's:\n got %s\nwant %s", d.Meta, want)
			}
		})
	}
}

// TestRenderEveryFile renders the first and last frame of every file as
// PNG. A frame the core decodes must come back at the frame's size with
// the pixels of dicom.Render; one it cannot decode must come back 422
// with the decoder's own message.
func TestRenderEveryFile(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	ok := 0
	for _, f := range listed(t, srv) {
		if f.Error != "" || f.Frames == 0 {
			continue
		}
		for _, n := range uniq(0, f.Frames-1) {
			t.Run(fmt.Sprintf("%s/%d", f.Name, n), func(t *testing.T) {
				path := filepath.Join(testDataDir, filepath.FromSlash(f.Name))
				want, wantErr := directRender(path, n, dicom.View{})
				res, body := get(t, srv, fmt.Sprintf("/api/files/%s/frames/%d/render", f.ID, n))
				if wantErr != nil {
					var e apiError
					if res.StatusCode != http.StatusUnprocessableEntity || json.Unmarshal(body, &e) != nil {
						t.Fatalf("core fails (%v); server answered %s %.200s, want 422 JSON", wantErr, res.Status, body)
					}
					if !strings.Contains(wantErr.Error(), e.Error) && !strings.Contains(e.Error, strings.TrimPrefix(wantErr.Error(), path+": ")) {
						t.Errorf("422 message %q does not carry the core's %q", e.Error, wantErr)
					}
					if strings.Contains(e.Error, "/") && strings.Contains(e.Error, filepath.Dir(path)) {
						t.Errorf("message %q reveals a server path", e.Error)
					}
					return
				}
				if res.StatusCode != http.StatusOK {
					t.Fatalf("%s: %s", res.Status, body)
				}
				if ct := res.Header.Get("Content-Type"); ct != "image/png" {
					t.Errorf("Content-Type %q", ct)
				}
				img, err := png.Decode(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("decode PNG: %v", err)
				}
				if img.Bounds().Dx() != f.Columns || img.Bounds().Dy() != f.Rows {
					t.Errorf("size %v, want %d×%d", img.Bounds().Size(), f.Columns, f.Rows)
				}
				if d := maxDiff(img, want); d != 0 {
					t.Errorf("differs from dicom.Render by up to %d levels", d)
				}
				ok++
			})
		}
	}
	if ok < 10 {
		t.Errorf("only %d frames rendered: the test would prove little", ok)
	}
}

func uniq(a, b int) []int {
	if a == b {
		return []int{a}
	}
	return []int{a, b}
}

// directRender is what the server must send, computed without it.
func directRender(path string, n int, v dicom.View) (image.Image, error) {
	f, err := dicom.Open(path)
	if err != nil {
		return nil, err
	}
	fr, err := f.Frame(n)
	if err != nil {
		return nil, err
	}
	return dicom.Render(&f.Meta, fr, v)
}

// maxDiff is the largest difference of any channel of any pixel, 256 when
// the sizes differ.
func maxDiff(a, b image.Image) int {
	if a.Bounds().Size() != b.Bounds().Size() {
		return 256
	}
	d := 0
	ab, bb := a.Bounds(), b.Bounds()
	for y := 0; y < ab.Dy(); y++ {
		for x := 0; x < ab.Dx(); x++ {
			r1, g1, b1, _ := a.At(ab.Min.X+x, ab.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(bb.Min.X+x, bb.Min.Y+y).RGBA()
			for _, p := range [][2]uint32{{r1, r2}, {g1, g2}, {b1, b2}} {
				v := int(p[0]>>8) - int(p[1]>>8)
				if v < 0 {
					v = -v
				}
				d = max(d, v)
			}
		}
	}
	return d
}

// findFile returns the listed file of that name.
func findFile(t testing.TB, files []fileSummary, name string) fileSummary {
	t.Helper()
	for _, f := range files {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("%s not listed", name)
	return fileSummary{}
}

// TestRenderViews: each way of choosing the window and the size reaches
// the pipeline as the View it means.
func TestRenderViews(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	files := listed(t, srv)
	ct := findFile(t, files, "ct-enhanced-multiframe.dcm")
	xr := findFile(t, files, "cr-chest-monochrome1.dcm")
	cases := []struct {
		file   fileSummary
		frame  int
		query  string
		view   dicom.View
		format string
		window string // X-Lightbox-Window, when the test knows it
	}{
		{ct, 0, "", dicom.View{}, "png", ""},
		{ct, 1, "window=40,400", dicom.View{Window: dicom.WindowExplicit, Center: 40, Width: 400}, "png", "40,400"},
		{ct, 0, "preset=lung", dicom.View{Window: dicom.WindowPreset, Preset: "lung"}, "png", "-600,1500"},
		{ct, 0, "preset=Bone", dicom.View{Window: dicom.WindowPreset, Preset: "bone"}, "png", "400,1800"},
		{ct, 0, "windowIndex=0", dicom.View{Window: dicom.WindowFile, Index: 1}, "png", ""},
		{ct, 0, "minmax", dicom.View{Window: dicom.WindowMinMax}, "png", ""},
		{ct, 0, "minmax=1&w=128&h=128", dicom.View{Window: dicom.WindowMinMax, MaxW: 128, MaxH: 128, Upscale: true}, "png", ""},
		{xr, 0, "w=300&h=300", dicom.View{MaxW: 300, MaxH: 300, Upscale: true}, "png", "511,1023"},
		{xr, 0, "w=300&h=300&format=jpeg&q=80", dicom.View{MaxW: 300, MaxH: 300, Upscale: true}, "jpeg", ""},
		{ct, 0, "w=1024", dicom.View{MaxW: 1024, Upscale: true}, "png", ""},
	}
	for _, c := range cases {
		t.Run(c.file.Name+"?"+c.query, func(t *testing.T) {
			res, body := get(t, srv, fmt.Sprintf("/api/files/%s/frames/%d/render?%s", c.file.ID, c.frame, c.query))
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", res.Status, body)
			}
			want, err := directRender(filepath.Join(testDataDir, c.file.Name), c.frame, c.view)
			if err != nil {
				t.Fatal(err)
			}
			var got image.Image
			if c.format == "jpeg" {
				if res.Header.Get("Content-Type") != "image/jpeg" {
					t.Errorf("Content-Type %q", res.Header.Get("Content-Type"))
				}
				got, err = jpeg.Decode(bytes.NewReader(body))
			} else {
				got, err = png.Decode(bytes.NewReader(body))
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Bounds().Size() != want.Bounds().Size() {
				t.Fatalf("size %v, want %v", got.Bounds().Size(), want.Bounds().Size())
			}
			limit := 0
			if c.format == "jpeg" {
				limit = 40 // lossy, but still the same picture
			}
			if d := maxDiff(got, want); d > limit {
				t.Errorf("differs from dicom.Render(%+v) by %d levels", c.view, d)
			}
			if c.window != "" && res.Header.Get("X-Lightbox-Window") != c.window {
				t.Errorf("X-Lightbox-Window %q, want %q", res.Header.Get("X-Lightbox-Window"), c.window)
			}
		})
	}
	// The size asked for is a box the frame fits in, aspect kept.
	res, body := get(t, srv, fmt.Sprintf("/api/files/%s/frames/0/render?w=214&h=500", xr.ID))
	img, err := png.Decode(bytes.NewReader(body))
	if res.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("%s %v", res.Status, err)
	}
	if got, want := img.Bounds().Size(), image.Pt(214, int(math.Round(float64(xr.Rows)*214/float64(xr.Columns)))); got != want {
		t.Errorf("fit into 214×500: %v, want %v", got, want)
	}
}

func TestRenderBadRequests(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	files := listed(t, srv)
	ct := findFile(t, files, "ct-enhanced-multiframe.dcm")
	base := "/api/files/" + ct.ID + "/frames/0/render?"
	for _, q := range []string{
		"window=abc", "window=40", "window=40,", "window=,400", "window=40,0", "window=40,-10",
		"window=NaN,400", "window=40,Inf", "window=1e300,400", "window=40,0.5",
		"preset=kidney", "preset=", "windowIndex=-1", "windowIndex=x", "windowIndex=7", "voiLUT=0",
		"minmax=yes", "window=40,400&preset=lung", "preset=lung&minmax",
		"w=0", "w=-5", "w=99999", "h=abc", "format=gif", "format=jpeg&q=0", "format=jpeg&q=101",
	} {
		res, body := get(t, srv, base+q)
		var e apiError
		if res.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("?%s: %s %s, want 400 with a message", q, res.Status, body)
		}
	}
}

func TestNotFound(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	files := listed(t, srv)
	ct := findFile(t, files, "ct-enhanced-multiframe.dcm") // 2 frames
	for _, p := range []string{
		"/api/files/0123456789abcdef",
		"/api/files/0123456789abcdef/frames/0/render",
		"/api/files/nothex",
		"/api/files/" + strings.ToUpper(ct.ID),
		"/api/files/" + ct.ID + "x",
		"/api/files/" + ct.ID + "/frames/2/render",
		"/api/files/" + ct.ID + "/frames/-1/render",
		"/api/files/" + ct.ID + "/frames/1e3/render",
		"/api/files/" + ct.ID + "/frames/99999999999999999999/render",
		"/api/files/" + ct.ID + "/frames/x/render",
	} {
		res, body := get(t, srv, p)
		var e apiError
		if res.StatusCode != http.StatusNotFound || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("GET %s: %s %s, want 404 JSON", p, res.Status, body)
		}
	}
}

// TestPathTraversal: no request reaches a file outside the walked list,
// however the path is spelt.
func TestPathTraversal(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	secrets := []string{"module lightbox", "package web", "root:x:0", "SHA256", "# Test DICOM"}
	for _, p := range []string{
		"/api/files/..%2f..%2fgo.mod",
		"/api/files/../../go.mod",
		"/api/files/%2e%2e%2f%2e%2e%2fgo.mod",
		"/api/files/..%2fSOURCES.md",
		"/api/files/%2fetc%2fpasswd",
		"/api/files/..%2f..%2fgo.mod/frames/0/render",
		"/api/files/cr-chest-monochrome1.dcm",
		"/api/files/cr-chest-monochrome1.dcm/frames/0/render",
		"/api/files/SOURCES.md",
		"/static/../../go.mod",
		"/static/..%2f..%2fgo.mod",
		"/static/..%2fweb.go",
		"/static/%2e%2e/web.go",
		"/static/../web.go",
		"/..%2fgo.mod",
		"/../../../../etc/passwd",
		"/static/%2fetc%2fpasswd",
		"/static//etc/passwd",
	} {
		u, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		// Send the path exactly as written: url.Parse would clean "..".
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.URL.Opaque = "//" + u.Host + p
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(res.Body)
		res.Body.Close()
		body := buf.String()
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("GET %s: %s returns a file outside the list (%q)", p, res.Status, s)
			}
		}
		if res.StatusCode == http.StatusOK && !strings.Contains(body, "<!doctype html>") {
			t.Errorf("GET %s: 200 with %.80q", p, body)
		}
		if res.StatusCode >= 500 {
			t.Errorf("GET %s: %s", p, res.Status)
		}
	}
}

func TestRenderETag(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	ct := findFile(t, listed(t, srv), "ct-enhanced-multiframe.dcm")
	url := "/api/files/" + ct.ID + "/frames/0/render?preset=lung&w=256&h=256"
	res, _ := get(t, srv, url)
	etag := res.Header.Get("ETag")
	if res.StatusCode != http.StatusOK || etag == "" {
		t.Fatalf("%s, ETag %q", res.Status, etag)
	}
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "private") {
		t.Errorf("Cache-Control %q: renders of patient images must stay private", cc)
	}
	res, body := get(t, srv, url, "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match: %s with %d bytes, want 304", res.Status, len(body))
	}
	// The same view spelt another way shares the tag; any other view,
	// frame or file does not.
	same, _ := get(t, srv, "/api/files/"+ct.ID+"/frames/0/render?h=256&preset=LUNG&w=256&format=png")
	if same.Header.Get("ETag") != etag {
		t.Errorf("same view, other spelling: ETag %q, want %q", same.Header.Get("ETag"), etag)
	}
	seen := map[string]string{etag: url}
	for _, u := range []string{
		"/api/files/" + ct.ID + "/frames/1/render?preset=lung&w=256&h=256",
		"/api/files/" + ct.ID + "/frames/0/render?preset=bone&w=256&h=256",
		"/api/files/" + ct.ID + "/frames/0/render?preset=lung&w=128&h=256",
		"/api/files/" + ct.ID + "/frames/0/render?preset=lung&w=256&h=256&format=jpeg",
		"/api/files/" + findFile(t, listed(t, srv), "ct-rle.dcm").ID + "/frames/0/render?preset=lung&w=256&h=256",
	} {
		r, _ := get(t, srv, u)
		tag := r.Header.Get("ETag")
		if prev, dup := seen[tag]; dup {
			t.Errorf("%s and %s share ETag %s", u, prev, tag)
		}
		seen[tag] = u
	}
}

func TestPresets(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	res, body := get(t, srv, "/api/presets")
	var out struct{ Presets []presetInfo }
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("%s %s", res.Status, body)
	}
	want := []string{"brain", "subdural", "stroke", "lung", "mediastinum", "abdomen", "liver", "bone"}
	got := []string{}
	for _, p := range out.Presets {
		got = append(got, p.Name)
		if p.Width <= 0 || p.Label == "" {
			t.Errorf("preset %+v", p)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("presets %v, want %v", got, want)
	}
}

func TestParseView(t *testing.T) {
	cases := []struct {
		q    string
		want view
	}{
		{"", view{format: "png"}},
		{"window=40,400", view{mode: "window", center: 40, width: 400, format: "png"}},
		{"window=-600.5,%201500", view{mode: "window", center: -600.5, width: 1500, format: "png"}},
		{"preset=LUNG", view{mode: "preset", preset: "lung", format: "png"}},
		{"windowIndex=2", view{mode: "index", index: 2, format: "png"}},
		{"voiLUT=1", view{mode: "voilut", index: 1, format: "png"}},
		{"minmax", view{mode: "minmax", format: "png"}},
		{"minmax=true&w=10&h=20", view{mode: "minmax", w: 10, h: 20, format: "png"}},
		{"format=jpeg", view{format: "jpeg", q: 90}},
		{"format=jpg&q=55", view{format: "jpeg", q: 55}},
		{"format=png&q=55", view{format: "png"}},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.q)
		got, err := parseView(q)
		if err != nil || got != c.want {
			t.Errorf("parseView(%q) = %+v, %v; want %+v", c.q, got, err, c.want)
		}
	}
}

// FuzzParseView: any query either fails with a 400 or yields a view the
// pipeline can take.
func FuzzParseView(f *testing.F) {
	for _, s := range []string{"", "window=40,400", "preset=lung", "windowIndex=0", "minmax", "w=10&h=10&format=jpeg&q=90", "window=1e9,1e9", "voiLUT=3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		v, err := parseView(q)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || he.status != http.StatusBadRequest {
				t.Fatalf("parseView(%q): %v is not a 400", s, err)
			}
			return
		}
		if v.w < 0 || v.h < 0 || v.w > maxSide || v.h > maxSide || (v.format != "png" && v.format != "jpeg") {
			t.Fatalf("parseView(%q) = %+v", s, v)
		}
		if v.mode == "window" && !(v.width > 0) {
			t.Fatalf("parseView(%q): width %g", s, v.width)
		}
		if v.format == "jpeg" && (v.q < 1 || v.q > 100) {
			t.Fatalf("parseView(%q): quality %d", s, v.q)
		}
	})
}

func TestETagMatch(t *testing.T) {
	cases := []struct {
		header string
		want   bool
	}{
		{`"abc"`, true}, {`W/"abc"`, true}, {`"x", "abc"`, true}, {`*`, true},
		{`"abd"`, false}, {``, false}, {`abc`, false},
	}
	for _, c := range cases {
		if got := etagMatch(c.header, `"abc"`); got != c.want {
			t.Errorf("etagMatch(%q) = %v", c.header, got)
		}
	}
}

func BenchmarkRenderCT(b *testing.B) {
	srv := newTestServer(b, testDataDir)
	ct := findFile(b, listed(b, srv), "ct-signed-implicit-512.dcm")
	for _, format := range []string{"jpeg", "png"} {
		b.Run(format, func(b *testing.B) {
			u := srv.URL + "/api/files/" + ct.ID + "/frames/0/render?preset=abdomen&format=" + format
			for b.Loop() {
				res, err := srv.Client().Get(u)
				if err != nil {
					b.Fatal(err)
				}
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatal(res.Status)
				}
			}
		})
	}
}

func BenchmarkListFiles(b *testing.B) {
	srv := newTestServer(b, testDataDir)
	for b.Loop() {
		res, err := srv.Client().Get(srv.URL + "/api/files")
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
	}
}

// TestRenderUndecodable: a frame the decoder refuses answers 422 with the
// decoder's message, naming the frame; the server keeps serving.
func TestRenderUndecodable(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testDataDir, "ct-rle.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	// The last item tag opens the one RLE fragment; its first word is
	// the RLE header's segment count, which a 16-bit CT needs to be 2.
	i := bytes.LastIndex(src, []byte{0xFE, 0xFF, 0x00, 0xE0})
	if i < 0 || i+12 > len(src) {
		t.Fatal("no fragment in ct-rle.dcm")
	}
	bad := append([]byte(nil), src...)
	binary.LittleEndian.PutUint32(bad[i+8:], 7)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad-rle.dcm"), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, wantErr := directRender(filepath.Join(dir, "bad-rle.dcm"), 0, dicom.View{})
	if wantErr == nil {
		t.Fatal("the core decodes the damaged file: the test damages the wrong bytes")
	}
	srv := newTestServer(t, dir)
	f := findFile(t, listed(t, srv), "bad-rle.dcm")
	if f.Error != "" {
		t.Fatalf("header should still read: %s", f.Error)
	}
	res, body := get(t, srv, "/api/files/"+f.ID+"/frames/0/render")
	var e apiError
	if res.StatusCode != http.StatusUnprocessableEntity || json.Unmarshal(body, &e) != nil {
		t.Fatalf("%s %s, want 422 JSON", res.Status, body)
	}
	if e.Error != wantErr.Error() || !strings.Contains(e.Error, "frame 1") || !strings.Contains(e.Error, "rle") {
		t.Errorf("message %q, want the core's %q", e.Error, wantErr)
	}
	if res.Header.Get("ETag") != "" || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("an error must not be cached: ETag %q, Cache-Control %q", res.Header.Get("ETag"), res.Header.Get("Cache-Control"))
	}
	if res, _ := get(t, srv, "/api/files"); res.StatusCode != http.StatusOK {
		t.Errorf("after the failure: %s", res.Status)
	}
}
