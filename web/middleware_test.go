package web

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRequestLog: one line per request with method, path and status, and
// nothing of the patient even when the response carries it.
func TestRequestLog(t *testing.T) {
	var logs bytes.Buffer
	h, err := New(Config{TestData: testDataDir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	files := listed(t, srv)
	var names []string
	for _, f := range files {
		if f.Error == "" && len(f.PatientName) > 3 {
			names = append(names, f.PatientName)
			get(t, srv, "/api/files/"+f.ID)
		}
	}
	if len(names) == 0 {
		t.Fatal("no patient names in testdata: the test proves nothing")
	}
	get(t, srv, "/api/files/0000000000000000")
	out := logs.String()
	if n := strings.Count(out, "msg=http"); n != len(names)+2 {
		t.Errorf("%d request lines for %d requests:\n%s", n, len(names)+2, out)
	}
	if !strings.Contains(out, "method=GET path=/api/files ") || !strings.Contains(out, "status=200") || !strings.Contains(out, "status=404") {
		t.Errorf("log lacks path or status:\n%s", out)
	}
	for _, n := range names {
		if strings.Contains(strings.ToLower(out), strings.ToLower(n)) {
			t.Errorf("log carries patient name %q", n)
		}
	}
}

func TestRecoverer(t *testing.T) {
	var logs bytes.Buffer
	s := &server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	h := s.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	var e apiError
	if rec.Code != http.StatusInternalServerError || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
		t.Errorf("panic answered %d %q", rec.Code, rec.Body.String())
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged: %q", logs.String())
	}
}
