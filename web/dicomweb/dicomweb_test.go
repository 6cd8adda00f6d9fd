package dicomweb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"

	"lightbox/dicom"
	"lightbox/storage"
)

// The tokens the tests' Authenticate accepts.
var tokens = map[string]string{"s3cret-pacs-token": "pacs1", "other-token": "viewer"}

const token = "s3cret-pacs-token"

func authenticate(_ context.Context, tok string) (string, bool) {
	name, ok := tokens[tok]
	return name, ok
}

// testServer is a DICOMweb server over a real SQLite catalog and disk blob
// store in a temporary folder, mounted at /dicom-web as the web edge does.
type testServer struct {
	*httptest.Server
	store *storage.Store
}

func newStore(t testing.TB) *storage.Store {
	t.Helper()
	store, err := storage.Open(context.Background(), "", "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Catalog.Close() })
	return store
}

func newTestServer(t testing.TB, store *storage.Store, tls bool) *testServer {
	t.Helper()
	r := chi.NewRouter()
	r.Mount("/dicom-web", New(Config{Store: store, Authenticate: authenticate}))
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(r)
	} else {
		srv = httptest.NewServer(r)
	}
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, store: store}
}

// do sends a request with the test token.
func (ts *testServer) do(t testing.TB, method, path string, body io.Reader, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+"/dicom-web"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testFile is one file of testdata with what its header says.
type testFile struct {
	path  string
	bytes []byte
	meta  dicom.Meta
	file  *dicom.File
}

var (
	filesOnce sync.Once
	files     []testFile
	filesErr  error
)

// testFiles reads every DICOM file of /work/main/testdata (the repository's
// testdata folder), sorted by name.
func testFiles(t testing.TB) []testFile {
	t.Helper()
	filesOnce.Do(func() {
		paths, err := filepath.Glob("../../testdata/*.dcm")
		if err != nil || len(paths) == 0 {
			filesErr = fmt.Errorf("no DICOM files in ../../testdata (%v)", err)
			return
		}
		sort.Strings(paths)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				filesErr = err
				return
			}
			f, err := dicom.Parse(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				filesErr = fmt.Errorf("%s: %w", p, err)
				return
			}
			files = append(files, testFile{path: p, bytes: b, meta: f.Meta, file: f})
		}
	})
	if filesErr != nil {
		t.Fatal(filesErr)
	}
	return files
}

// firstCopies keeps the first file of each SOP Instance UID: testdata holds
// several encodings of the same instance, and the store keeps the first
// copy it receives.
func firstCopies(fs []testFile) map[string]testFile {
	out := map[string]testFile{}
	for _, f := range fs {
		if _, ok := out[f.meta.SOPInstanceUID]; !ok {
			out[f.meta.SOPInstanceUID] = f
		}
	}
	return out
}

// part is one part of a multipart/related body.
type part struct {
	ctype string
	body  []byte
}

func dicomParts(fs []testFile) []part {
	var ps []part
	for _, f := range fs {
		ps = append(ps, part{"application/dicom", f.bytes})
	}
	return ps
}

// multipartBody builds a STOW-RS body and its Content-Type.
func multipartBody(t testing.TB, parts []part) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		if p.ctype != "" {
			h.Set("Content-Type", p.ctype)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.body)
	}
	mw.Close()
	return b.Bytes(), `multipart/related; type="application/dicom"; boundary=` + mw.Boundary()
}

// stowResponse is the decoded Store Instances Response.
type stowResponse struct {
	status   int
	refs     []map[string]jsonAttr
	failures []map[string]jsonAttr
	raw      map[string]jsonAttr
}

type jsonAttr struct {
	VR           string            `json:"vr"`
	Value        []json.RawMessage `json:"Value"`
	InlineBinary string            `json:"InlineBinary"`
}

func (a jsonAttr) str(t testing.TB) string {
	t.Helper()
	if len(a.Value) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(a.Value[0], &s); err != nil {
		t.Fatalf("value %s is not a string: %v", a.Value[0], err)
	}
	return s
}

func (a jsonAttr) num(t testing.TB) float64 {
	t.Helper()
	if len(a.Value) == 0 {
		t.Fatalf("no value")
	}
	var f float64
	if err := json.Unmarshal(a.Value[0], &f); err != nil {
		t.Fatalf("value %s is not a number: %v", a.Value[0], err)
	}
	return f
}

func items(t testing.TB, a jsonAttr) []map[string]jsonAttr {
	t.Helper()
	var out []map[string]jsonAttr
	for _, v := range a.Value {
		var m map[string]jsonAttr
		if err := json.Unmarshal(v, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (ts *testServer) stow(t testing.TB, path string, parts []part) stowResponse {
	t.Helper()
	body, ctype := multipartBody(t, parts)
	resp := ts.do(t, "POST", path, bytes.NewReader(body), "Content-Type", ctype, "Accept", "application/dicom+json")
	b := readAll(t, resp)
	out := stowResponse{status: resp.StatusCode}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/dicom+json" {
		t.Fatalf("STOW answered %d %s: %s", resp.StatusCode, ct, b)
	}
	if err := json.Unmarshal(b, &out.raw); err != nil {
		t.Fatalf("STOW response %s: %v", b, err)
	}
	out.refs = items(t, out.raw["00081199"])
	out.failures = items(t, out.raw["00081198"])
	return out
}

var (
	sharedOnce sync.Once
	shared     *testServer
	sharedResp stowResponse
)

// sharedServer is one server holding every testdata file, stored by one
// STOW-RS request, for the tests that only read.
func sharedServer(t *testing.T) (*testServer, stowResponse) {
	t.Helper()
	fs := testFiles(t)
	sharedOnce.Do(func() {
		// Not t.TempDir: the server outlives the test that first asks.
		dir, err := os.MkdirTemp("", "dicomweb-shared-*")
		if err != nil {
			t.Fatal(err)
		}
		cat, err := storage.OpenSQLite(context.Background(), filepath.Join(dir, "lightbox.db"))
		if err != nil {
			t.Fatal(err)
		}
		blobs, err := storage.OpenDisk(filepath.Join(dir, "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		store := &storage.Store{Catalog: cat, Blobs: blobs, TempDir: dir}
		r := chi.NewRouter()
		r.Mount("/dicom-web", New(Config{Store: store, Authenticate: authenticate}))
		shared = &testServer{Server: httptest.NewServer(r), store: store}
		sharedDir = dir
		sharedResp = shared.stow(t, "/studies", dicomParts(fs))
	})
	if shared == nil {
		t.Fatal("shared server failed to start")
	}
	return shared, sharedResp
}

var sharedDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
		shared.store.Catalog.Close()
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

func TestAuth(t *testing.T) {
	ts := newTestServer(t, newStore(t), false)
	cases := []struct {
		name, header string
		want         int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"basic", "Basic cGFjczpwYXNz", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"good token", "Bearer " + token, http.StatusOK},
		{"scheme case", "bearer " + token, http.StatusOK},
	}
	for _, tc := range cases {
		for _, path := range []string{"/studies", "/studies/1.2.3/series/4.5/instances/6.7", "/nowhere"} {
			req, _ := http.NewRequest("GET", ts.URL+"/dicom-web"+path, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := tc.want
			if want == http.StatusOK && path != "/studies" {
				want = http.StatusNotFound
			}
			if resp.StatusCode != want {
				t.Errorf("%s GET %s: %d, want %d", tc.name, path, resp.StatusCode, want)
			}
			if want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", tc.name, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// STOW without a token stores nothing.
	fs := testFiles(t)
	body, ctype := multipartBody(t, dicomParts(fs[:1]))
	req, _ := http.NewRequest("POST", ts.URL+"/dicom-web/studies", bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("STOW without token: %d", resp.StatusCode)
	}
	if ok, _ := ts.store.Catalog.HasInstance(context.Background(), fs[0].meta.SOPInstanceUID); ok {
		t.Fatal("STOW without token stored the instance")
	}
}

// A nil Authenticate refuses everything rather than letting all in.
func TestAuthNil(t *testing.T) {
	h := New(Config{Store: newStore(t)})
	req := httptest.NewRequest("GET", "/studies", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("nil Authenticate: %d", rec.Code)
	}
}

func TestBaseURL(t *testing.T) {
	cases := []struct {
		base string
		tls  bool
		want string
	}{
		{"", false, "http://example.org:8443/dicom-web"},
		{"", true, "https://example.org:8443/dicom-web"},
		{"/dw/", false, "http://example.org:8443/dw"},
		{"https://pacs.example/dicom-web/", false, "https://pacs.example/dicom-web"},
	}
	for _, tc := range cases {
		srv := newServer(Config{BaseURL: tc.base})
		scheme := "http"
		if tc.tls {
			scheme = "https"
		}
		r := httptest.NewRequest("GET", scheme+"://example.org:8443/dicom-web/studies", nil)
		if got := srv.baseURL(r); got != tc.want {
			t.Errorf("BaseURL %q tls %v: %q, want %q", tc.base, tc.tls, got, tc.want)
		}
	}
}
