// Package web is Lightbox's HTTP edge: the JSON API, the render endpoint and
// the static viewer UI, behind security headers and request logging. It
// holds no TLS or listener code; cmd/lightbox serves the handler.
package web

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"lightbox/storage"
)

//go:embed static
var staticFS embed.FS

// Config is what New needs to build the handler.
type Config struct {
	// TestData is a folder whose DICOM files the viewer also lists, as
	// they are on disk (make run's demo, a developer's files); "" lists
	// none.
	TestData string
	// Logger receives one line per request and server-side failures; nil
	// discards them. Lines never carry patient data.
	Logger *slog.Logger
	// MaxRenders bounds concurrent frame renders, each of which holds a
	// decoded frame in memory; 0 means the number of CPUs.
	MaxRenders int
	// DICOMweb, when set, is mounted at /dicom-web (package
	// web/dicomweb), behind the same logging and security headers.
	DICOMweb http.Handler
	// Store, when set, serves the stored studies (/api/studies, /api/series,
	// /api/instances), browser upload (POST /api/upload) and the /studies
	// page.
	Store *storage.Store
	// Auth, when set, wraps every route that reads or writes stored
	// studies, upload included: the hook the sign-in middleware slots into.
	// Until users exist the server listens on loopback only.
	Auth func(http.Handler) http.Handler
	// MaxUpload bounds one upload's body in bytes (0: 4 GiB).
	MaxUpload int64
}

// server is the state behind the handler.
type server struct {
	cat    *catalog
	log    *slog.Logger
	render chan struct{} // semaphore of concurrent renders
	// epoch is part of every ETag: a restarted server may run a changed
	// pipeline, so its renders never match an older cache entry.
	epoch string

	store     *storage.Store // nil: no stored studies
	maxUpload int64
}

// New builds the HTTP handler: routes, middleware and the embedded UI. It
// walks cfg.TestData once before returning, so the first page load lists
// the files at once.
func New(cfg Config) (http.Handler, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cat, err := newCatalog(cfg.TestData)
	if err != nil {
		return nil, err
	}
	n := cfg.MaxRenders
	if n <= 0 {
		n = runtime.NumCPU()
	}
	s := &server{cat: cat, log: log, render: make(chan struct{}, n), epoch: strconv.FormatInt(time.Now().UnixNano(), 36)}
	s.store, s.maxUpload = cfg.Store, cfg.MaxUpload
	if s.maxUpload <= 0 {
		s.maxUpload = defaultMaxUpload
	}

	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}

	r := chi.NewRouter()
	r.Use(s.recoverer, s.logRequests, securityHeaders)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such page")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})

	r.Route("/api", func(r chi.Router) {
		r.Use(noStore)
		r.Get("/files", s.listFiles)
		r.Get("/files/{id}", s.getFile)
		r.Get("/files/{id}/frames/{n}/render", s.renderFrame)
		r.Get("/presets", s.listPresets)
		if s.store != nil {
			r.Group(func(r chi.Router) {
				if cfg.Auth != nil {
					r.Use(cfg.Auth)
				}
				s.studyRoutes(r)
			})
		}
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "no such endpoint")
		})
	})

	if cfg.DICOMweb != nil {
		r.Mount("/dicom-web", cfg.DICOMweb)
	}

	files := http.FileServer(http.FS(static))
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "index.html")
	})
	if s.store != nil {
		r.Get("/studies", func(w http.ResponseWriter, r *http.Request) {
			http.ServeFileFS(w, r, static, "studies.html")
		})
	}
	r.Get("/static/*", http.StripPrefix("/static/", files).ServeHTTP)
	r.Get("/favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "favicon.svg")
	})
	return r, nil
}

// apiError is the body of every error the API returns.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"cannot encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// httpError carries a status with a message for the client.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(msg string) error { return &httpError{http.StatusBadRequest, msg} }

// statusOf maps an error to the status and message the client sees.
func statusOf(err error) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.msg
	}
	return http.StatusInternalServerError, "internal error"
}
