package dicomweb

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ErrBadOrigin: an allowed origin that is not scheme://host[:port].
var ErrBadOrigin = errors.New("not a web origin")

// NormalizeOrigin checks that s is a web origin — http or https, a host,
// an optional port, nothing else — and returns it as browsers send it in
// the Origin header: scheme and host in lower case, no default port, no
// trailing slash. "*" is refused: DICOMweb answers carry patient data, so
// every origin allowed to read them is named.
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: %q: %v", ErrBadOrigin, s, err)
	case u.Scheme != "http" && u.Scheme != "https",
		u.Host == "", u.User != nil, u.Path != "", u.RawQuery != "", u.Fragment != "", u.Opaque != "":
		return "", fmt.Errorf("%w: %q (want scheme://host[:port], e.g. https://viewer.example.org)", ErrBadOrigin, s)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "80" && u.Scheme == "http" || port == "443" && u.Scheme == "https" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host, nil
}

// cors lets the pages of the allowed origins call DICOMweb from a browser
// (the Fetch standard's CORS protocol): a viewer such as OHIF served from
// another host. It answers preflight requests itself, before
// authentication, since browsers send them without the Authorization
// header. Requests from other origins get no CORS headers, so browsers
// keep the answers from their pages; requests without an Origin (PACS,
// scripts) are unaffected. With no allowed origins it does nothing.
func (s *server) cors(next http.Handler) http.Handler {
	if len(s.origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !s.origins[origin] {
			if preflight {
				httpError(w, http.StatusForbidden, "origin not allowed")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", "Authorization, Accept, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		// What a client reads beyond the CORS-safelisted headers: QIDO's
		// truncation warning, STOW's locations, the challenge of a 401.
		h.Set("Access-Control-Expose-Headers", "Content-Location, Location, Warning, WWW-Authenticate, ETag")
		next.ServeHTTP(w, r)
	})
}
