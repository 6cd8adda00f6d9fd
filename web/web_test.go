package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testDataDir is the project's DICOM test files, which every handler test
// runs over.
const testDataDir = "../testdata"

// newTestServer serves the handler over real TLS on loopback.
func newTestServer(t testing.TB, dir string) *httptest.Server {
	t.Helper()
	h, err := New(Config{TestData: dir})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path and returns the response with its body read.
func get(t testing.TB, srv *httptest.Server, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatalf("request %s: %v", path, err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return res, body
}

// listed returns GET /api/files.
func listed(t testing.TB, srv *httptest.Server) []fileSummary {
	t.Helper()
	res, body := get(t, srv, "/api/files")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/files: %s: %s", res.Status, body)
	}
	var out struct{ Files []fileSummary }
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET /api/files: %v", err)
	}
	return out.Files
}

func TestNewRejectsMissingFolder(t *testing.T) {
	for _, dir := range []string{filepath.Join(t.TempDir(), "nope"), "web_test.go"} {
		if _, err := New(Config{TestData: dir}); err == nil {
			t.Errorf("New(%q): no error", dir)
		}
	}
}

func TestIndexAndStatic(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	cases := []struct {
		path, ctype, contains string
	}{
		{"/", "text/html", `src="/static/app.js"`},
		{"/static/app.js", "javascript", "/api/files"},
		{"/static/app.css", "text/css", "--accent"},
		{"/static/favicon.svg", "image/svg+xml", "<svg"},
		{"/favicon.ico", "image/svg+xml", "<svg"},
	}
	for _, c := range cases {
		res, body := get(t, srv, c.path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", c.path, res.Status)
			continue
		}
		if ct := res.Header.Get("Content-Type"); !strings.Contains(ct, c.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", c.path, ct, c.ctype)
		}
		if !strings.Contains(string(body), c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
	}
}

// The UI must run under the CSP it is served with: no inline script or
// style, no event-handler attributes.
func TestUIHasNoInlineCode(t *testing.T) {
	b, err := staticFS.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, bad := range []string{"<script>", "<style", " style=", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("index.html contains %q, which the CSP blocks", bad)
		}
	}
	js, err := staticFS.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	// Header values and DICOM text go in as text, never as markup.
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(string(js), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	for _, p := range []string{"/", "/api/files", "/api/files/0000000000000000", "/nowhere"} {
		res, _ := get(t, srv, p)
		want := map[string]string{
			"Content-Security-Policy":   "default-src 'self'",
			"Strict-Transport-Security": "max-age=",
			"X-Content-Type-Options":    "nosniff",
			"X-Frame-Options":           "DENY",
		}
		for k, v := range want {
			if got := res.Header.Get(k); !strings.Contains(got, v) {
				t.Errorf("GET %s: %s = %q, want it to contain %q", p, k, got, v)
			}
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: CSP %q lacks frame-ancestors 'none'", p, csp)
		}
		if strings.Contains(res.Header.Get("Content-Security-Policy"), "unsafe-") {
			t.Errorf("GET %s: CSP allows unsafe sources", p)
		}
	}
	res, _ := get(t, srv, "/api/files")
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("/api/files Cache-Control %q, want no-store", cc)
	}
}

func TestUnknownRoutes(t *testing.T) {
	srv := newTestServer(t, testDataDir)
	for _, p := range []string{"/nowhere", "/api/nowhere", "/api/files/x/y", "/static/nope.js"} {
		res, body := get(t, srv, p)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", p, res.Status)
		}
		if strings.HasPrefix(p, "/api") {
			var e apiError
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Errorf("GET %s: body %q is not {error}", p, body)
			}
		}
	}
	res, err := srv.Client().Post(srv.URL+"/api/files", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/files: %s, want 405", res.Status)
	}
}

// A broken file in the folder is listed with its error, never hidden, and
// its endpoints answer 422 with that error.
func TestBrokenFilesListed(t *testing.T) {
	dir := t.TempDir()
	real, err := os.ReadFile(filepath.Join(testDataDir, "ct-signed-rescale-small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "good.dcm"), real, 0o644))
	must(os.WriteFile(filepath.Join(dir, "truncated.dcm"), real[:200], 0o644))
	must(os.WriteFile(filepath.Join(dir, "text.dcm"), []byte("hello, not DICOM"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "README.md"), []byte("# not listed"), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "sub", "NOEXT"), real, 0o644)) // found by its DICM mark
	srv := newTestServer(t, dir)
	files := listed(t, srv)
	byName := map[string]fileSummary{}
	for _, f := range files {
		byName[f.Name] = f
	}
	if len(files) != 4 {
		t.Errorf("listed %d files, want 4: %+v", len(files), files)
	}
	for _, n := range []string{"good.dcm", "sub/NOEXT"} {
		if f, ok := byName[n]; !ok || f.Error != "" || f.Frames != 1 {
			t.Errorf("%s: %+v, want a readable one-frame file", n, f)
		}
	}
	for _, n := range []string{"truncated.dcm", "text.dcm"} {
		f, ok := byName[n]
		if !ok || f.Error == "" {
			t.Errorf("%s: %+v, want it listed with an error", n, f)
			continue
		}
		if strings.Contains(f.Error, dir) {
			t.Errorf("%s: error %q reveals the server's folder", n, f.Error)
		}
		for _, p := range []string{"/api/files/" + f.ID, "/api/files/" + f.ID + "/frames/0/render"} {
			res, body := get(t, srv, p)
			var e apiError
			if res.StatusCode != http.StatusUnprocessableEntity || json.Unmarshal(body, &e) != nil || e.Error != f.Error {
				t.Errorf("GET %s (%s): %s %s, want 422 with %q", p, n, res.Status, body, f.Error)
			}
		}
	}
}

// TestDICOMwebMount: the DICOMweb handler gets its requests under
// /dicom-web, with the path it expects, behind the security headers.
func TestDICOMwebMount(t *testing.T) {
	var seen string
	h, err := New(Config{TestData: testDataDir, DICOMweb: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.URL.Path
		w.WriteHeader(http.StatusTeapot)
	})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	res, _ := get(t, srv, "/dicom-web/studies?PatientID=1")
	if res.StatusCode != http.StatusTeapot || seen != "/dicom-web/studies" {
		t.Errorf("status %s, handler saw %q", res.Status, seen)
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("no security headers on /dicom-web")
	}
	// Without it, the path is simply unknown.
	plain := newTestServer(t, testDataDir)
	if res, _ := get(t, plain, "/dicom-web/studies"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unmounted /dicom-web: %s", res.Status)
	}
}

// tail is the end of a long log, for a failure message.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
