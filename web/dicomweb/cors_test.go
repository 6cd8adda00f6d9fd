package dicomweb

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestNormalizeOrigin(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://viewer.example.org", "https://viewer.example.org"},
		{"HTTPS://Viewer.Example.ORG/", "https://viewer.example.org"},
		{"https://viewer.example.org:443", "https://viewer.example.org"},
		{"http://viewer.example.org:80", "http://viewer.example.org"},
		{"https://viewer.example.org:8443", "https://viewer.example.org:8443"},
		{"http://127.0.0.1:3000", "http://127.0.0.1:3000"},
		{"http://[::1]:3000", "http://[::1]:3000"},
		{"*", ""},
		{"viewer.example.org", ""},
		{"ftp://viewer.example.org", ""},
		{"https://viewer.example.org/ohif", ""},
		{"https://viewer.example.org?x=1", ""},
		{"https://user@viewer.example.org", ""},
		{"https://", ""},
		{"", ""},
	} {
		got, err := NormalizeOrigin(c.in)
		if got != c.want || (c.want == "") != errors.Is(err, ErrBadOrigin) {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestCORS: preflights from allowed origins are answered before
// authentication; answers to them name the origin; other origins, and a
// server with none allowed, get no CORS headers.
func TestCORS(t *testing.T) {
	const viewer = "https://viewer.example.org"
	allowing := New(Config{Store: newStore(t), Authenticate: authenticate, AllowedOrigins: []string{"HTTPS://viewer.example.org:443", "not an origin"}})
	closed := New(Config{Store: newStore(t), Authenticate: authenticate})
	preflight := map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
	for _, c := range []struct {
		name     string
		h        http.Handler
		method   string
		hdr      map[string]string
		status   int
		acao     string // Access-Control-Allow-Origin
		preflown bool   // Access-Control-Allow-Methods present
	}{
		{"preflight, allowed", allowing, "OPTIONS", merge(preflight, "Origin", viewer), 204, viewer, true},
		{"preflight, other origin", allowing, "OPTIONS", merge(preflight, "Origin", "https://evil.example"), 403, "", false},
		{"preflight, no origin allowed", closed, "OPTIONS", merge(preflight, "Origin", viewer), 401, "", false},
		{"query, allowed", allowing, "GET", map[string]string{"Origin": viewer, "Authorization": "Bearer " + token}, 200, viewer, false},
		{"query, allowed, no token", allowing, "GET", map[string]string{"Origin": viewer}, 401, viewer, false},
		{"query, other origin", allowing, "GET", map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer " + token}, 200, "", false},
		{"query, no origin (a PACS)", allowing, "GET", map[string]string{"Authorization": "Bearer " + token}, 200, "", false},
		{"query, invalid entry", allowing, "GET", map[string]string{"Origin": "not an origin", "Authorization": "Bearer " + token}, 200, "", false},
		{"query, no origin allowed", closed, "GET", map[string]string{"Origin": viewer, "Authorization": "Bearer " + token}, 200, "", false},
	} {
		req := httptest.NewRequest(c.method, "/studies", nil)
		for k, v := range c.hdr {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		c.h.ServeHTTP(w, req)
		h := w.Result().Header
		switch {
		case w.Code != c.status:
			t.Errorf("%s: status %d, want %d", c.name, w.Code, c.status)
		case h.Get("Access-Control-Allow-Origin") != c.acao:
			t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", c.name, h.Get("Access-Control-Allow-Origin"), c.acao)
		case (h.Get("Access-Control-Allow-Methods") != "") != c.preflown:
			t.Errorf("%s: Access-Control-Allow-Methods %q", c.name, h.Get("Access-Control-Allow-Methods"))
		case c.preflown && h.Get("Access-Control-Allow-Headers") != "Authorization, Accept, Content-Type":
			t.Errorf("%s: Access-Control-Allow-Headers %q", c.name, h.Get("Access-Control-Allow-Headers"))
		case c.acao != "" && !c.preflown && h.Get("Access-Control-Expose-Headers") == "":
			t.Errorf("%s: no Access-Control-Expose-Headers", c.name)
		case (c.h == allowing) != (h.Get("Vary") != ""):
			t.Errorf("%s: Vary %q", c.name, h.Values("Vary"))
		}
	}
}

func merge(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}
