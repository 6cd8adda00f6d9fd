// Package dicomweb serves DICOMweb (PS3.18) over a storage.Store: STOW-RS
// to store instances (each through Store.Ingest, streamed), QIDO-RS to
// search the catalog, and WADO-RS to retrieve instances, metadata, frames
// and rendered images. Every request needs a bearer token.
//
// It is an HTTP edge: it logs through Config.Logger, UIDs and token names
// only, never patient data.
package dicomweb

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"

	"github.com/go-chi/chi/v5"

	"lightbox/storage"
)

// Config is what New needs.
type Config struct {
	// Store receives STOW-RS instances and answers QIDO-RS and WADO-RS.
	Store *storage.Store
	// Authenticate checks a bearer token and names its holder (the name
	// becomes the ingest source "stow:NAME"). Nil refuses every request.
	Authenticate func(ctx context.Context, token string) (name string, ok bool)
	// BaseURL is the DICOMweb root as clients reach it, used in
	// RetrieveURL attributes: an absolute URL
	// ("https://lightbox.example/dicom-web"), or a path that is put after
	// the scheme and host of each request. Empty means "/dicom-web".
	BaseURL string
	// Logger receives one line per STOW-RS instance and server-side
	// failures; nil discards them. Lines carry UIDs and token names only.
	Logger *slog.Logger
	// MaxRenders bounds concurrent frame decodes and renders, each of
	// which holds a decoded frame in memory; 0 means the number of CPUs.
	MaxRenders int
	// MaxResults caps one QIDO-RS response; a larger or absent limit is
	// cut to it with a Warning header. 0 means 1000.
	MaxResults int
	// AllowedOrigins are the web origins (e.g. "https://viewer.example.org")
	// whose pages may call DICOMweb from a browser (CORS); none by default,
	// which leaves Lightbox's own pages only. Entries that NormalizeOrigin
	// refuses allow nothing.
	AllowedOrigins []string
}

// server is the state behind the handler.
type server struct {
	store      *storage.Store
	auth       func(ctx context.Context, token string) (string, bool)
	base       string
	log        *slog.Logger
	render     chan struct{}
	maxResults int
	origins    map[string]bool
}

// New builds the DICOMweb handler, to be mounted at the DICOMweb root
// (e.g. r.Mount("/dicom-web", dicomweb.New(cfg))).
func New(cfg Config) http.Handler {
	return newServer(cfg).routes()
}

func newServer(cfg Config) *server {
	s := &server{store: cfg.Store, auth: cfg.Authenticate, base: strings.TrimSuffix(cfg.BaseURL, "/"), log: cfg.Logger, maxResults: cfg.MaxResults}
	if s.base == "" {
		s.base = "/dicom-web"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	n := cfg.MaxRenders
	if n <= 0 {
		n = runtime.NumCPU()
	}
	s.render = make(chan struct{}, n)
	if s.maxResults <= 0 {
		s.maxResults = 1000
	}
	s.origins = map[string]bool{}
	for _, o := range cfg.AllowedOrigins {
		if n, err := NormalizeOrigin(o); err == nil {
			s.origins[n] = true
		}
	}
	return s
}

func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.cors, s.authenticate)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		httpError(w, http.StatusNotFound, "no such DICOMweb resource")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
	})

	// STOW-RS
	r.Post("/studies", s.stow)
	r.Post("/studies/{study}", s.stow)

	// QIDO-RS
	r.Get("/studies", s.qido(storage.LevelStudy))
	r.Get("/series", s.qido(storage.LevelSeries))
	r.Get("/instances", s.qido(storage.LevelInstance))
	r.Get("/studies/{study}/series", s.qido(storage.LevelSeries))
	r.Get("/studies/{study}/instances", s.qido(storage.LevelInstance))
	r.Get("/studies/{study}/series/{series}/instances", s.qido(storage.LevelInstance))

	// WADO-RS
	r.Get("/studies/{study}", s.retrieve)
	r.Get("/studies/{study}/series/{series}", s.retrieve)
	r.Get("/studies/{study}/series/{series}/instances/{instance}", s.retrieve)
	r.Get("/studies/{study}/metadata", s.metadata)
	r.Get("/studies/{study}/series/{series}/metadata", s.metadata)
	r.Get("/studies/{study}/series/{series}/instances/{instance}/metadata", s.metadata)
	r.Get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}", s.frames)
	r.Get("/studies/{study}/series/{series}/instances/{instance}/rendered", s.rendered)
	r.Get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered", s.rendered)
	r.Get("/studies/{study}/thumbnail", s.thumbnail)
	r.Get("/studies/{study}/series/{series}/thumbnail", s.thumbnail)
	r.Get("/studies/{study}/series/{series}/instances/{instance}/thumbnail", s.thumbnail)
	r.Get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/thumbnail", s.thumbnail)
	return r
}

type ctxKey struct{}

// authenticate lets a request through only with a bearer token that
// Config.Authenticate accepts (RFC 6750).
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lightbox"`)
			httpError(w, http.StatusUnauthorized, "a bearer token is required")
			return
		}
		name, ok := "", false
		if s.auth != nil {
			name, ok = s.auth(r.Context(), token)
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lightbox", error="invalid_token"`)
			httpError(w, http.StatusUnauthorized, "the bearer token is not valid")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, name)))
	})
}

// client is the name of the token holder of an authenticated request.
func client(ctx context.Context) string {
	name, _ := ctx.Value(ctxKey{}).(string)
	return name
}

// baseURL is the DICOMweb root for RetrieveURLs in answers to r.
func (s *server) baseURL(r *http.Request) string {
	if !strings.HasPrefix(s.base, "/") {
		return s.base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + s.base
}

func studyURL(base, study string) string { return base + "/studies/" + study }
func seriesURL(base, study, series string) string {
	return studyURL(base, study) + "/series/" + series
}
func instanceURL(base, study, series, sop string) string {
	return seriesURL(base, study, series) + "/instances/" + sop
}

// httpError answers with a status and a one-line plain-text reason.
func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// serverError logs a failure that is not the client's and answers 500
// without its detail.
func (s *server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	s.log.Error("dicomweb", "method", r.Method, "path", r.URL.Path, "err", err)
	httpError(w, http.StatusInternalServerError, "internal error")
}

// abort ends a response whose status is already sent: the client sees a
// truncated body rather than a complete-looking wrong one.
func (s *server) abort(r *http.Request, err error) {
	if !errors.Is(err, context.Canceled) {
		s.log.Error("dicomweb: response cut short", "path", r.URL.Path, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// acquire takes a render slot, or fails when the request is cancelled.
func (s *server) acquire(ctx context.Context) error {
	select {
	case s.render <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *server) release() { <-s.render }
