package web

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"lightbox/dicom"
	"lightbox/dicom/codec"
)

// fileSummary is one row of GET /api/files: enough to draw the list
// without fetching every header.
type fileSummary struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Size              int64  `json:"size"`
	Error             string `json:"error,omitempty"`
	PatientName       string `json:"patientName,omitempty"`
	PatientID         string `json:"patientId,omitempty"`
	StudyDate         string `json:"studyDate,omitempty"`
	StudyDescription  string `json:"studyDescription,omitempty"`
	SeriesDescription string `json:"seriesDescription,omitempty"`
	SeriesNumber      int    `json:"seriesNumber,omitempty"`
	InstanceNumber    int    `json:"instanceNumber,omitempty"`
	Modality          string `json:"modality,omitempty"`
	BodyPart          string `json:"bodyPart,omitempty"`
	Rows              int    `json:"rows,omitempty"`
	Columns           int    `json:"columns,omitempty"`
	Frames            int    `json:"frames"`
	Photometric       string `json:"photometric,omitempty"`
	TransferSyntaxUID string `json:"transferSyntaxUID,omitempty"`
	TransferSyntax    string `json:"transferSyntax,omitempty"`
	Lossy             bool   `json:"lossy"`
}

// fileDetail is GET /api/files/{id}: the listing row and the whole header.
type fileDetail struct {
	fileSummary
	Meta *dicom.Meta `json:"meta,omitempty"`
}

// tsName is the transfer syntax's name without the UID that codec.Name
// appends; the UID travels in its own field.
func tsName(uid string) string {
	n := codec.Name(uid)
	return strings.TrimSuffix(n, " ("+uid+")")
}

func summarize(e *entry) fileSummary {
	s := fileSummary{ID: e.ID, Name: e.Name, Size: e.Size, Error: e.Err}
	m := e.Meta
	if m == nil {
		return s
	}
	s.PatientName = strings.ReplaceAll(m.Patient.Name, "^", " ")
	s.PatientName = strings.Join(strings.Fields(s.PatientName), " ")
	s.PatientID = m.Patient.ID
	s.StudyDate = m.Study.Date
	s.StudyDescription = m.Study.Description
	s.SeriesDescription = m.Series.Description
	s.SeriesNumber = m.Series.Number
	s.InstanceNumber = m.Instance.Number
	s.Modality = m.Series.Modality
	s.BodyPart = m.Series.BodyPart
	s.Rows = m.Image.Rows
	s.Columns = m.Image.Columns
	s.Frames = e.Frames
	s.Photometric = m.Image.Photometric
	s.TransferSyntaxUID = m.TransferSyntaxUID
	s.TransferSyntax = tsName(m.TransferSyntaxUID)
	s.Lossy = m.Image.LossyCompression
	return s
}

func (s *server) listFiles(w http.ResponseWriter, r *http.Request) {
	entries := s.cat.files()
	out := make([]fileSummary, 0, len(entries))
	for _, e := range entries {
		out = append(out, summarize(e))
	}
	writeJSON(w, http.StatusOK, struct {
		Files []fileSummary `json:"files"`
	}{out})
}

// lookup finds the entry the URL's {id} names; ids are checked for shape
// before the map is consulted, so nothing else of the request reaches it.
func (s *server) lookup(w http.ResponseWriter, r *http.Request) *entry {
	id := chi.URLParam(r, "id")
	if !validID(id) {
		writeError(w, http.StatusNotFound, "unknown file id")
		return nil
	}
	e := s.cat.get(id)
	if e == nil {
		writeError(w, http.StatusNotFound, "unknown file id")
	}
	return e
}

// validID reports whether id has the shape fileID makes: 16 lowercase hex
// digits.
func validID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *server) getFile(w http.ResponseWriter, r *http.Request) {
	e := s.lookup(w, r)
	if e == nil {
		return
	}
	if e.Meta == nil {
		writeError(w, http.StatusUnprocessableEntity, e.Err)
		return
	}
	writeJSON(w, http.StatusOK, fileDetail{fileSummary: summarize(e), Meta: e.Meta})
}

// presetInfo is one named CT window as the UI offers it.
type presetInfo struct {
	Name   string  `json:"name"`
	Label  string  `json:"label"`
	Shows  string  `json:"shows,omitempty"`
	Center float64 `json:"center"`
	Width  float64 `json:"width"`
}

func (s *server) listPresets(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, struct {
		Presets []presetInfo `json:"presets"`
	}{presetList()})
}

// view is a parsed, validated render request.
type view struct {
	mode   string // "" (the file's default), "window", "preset", "index", "voilut", "minmax"
	center float64
	width  float64
	preset string
	index  int
	w, h   int
	format string // "png" or "jpeg"
	q      int    // JPEG quality
}

// key is the view in one canonical spelling, for the ETag: two requests
// that mean the same render share a cache entry.
func (v view) key() string {
	return fmt.Sprintf("%s|%g|%g|%s|%d|%d|%d|%s|%d", v.mode, v.center, v.width, v.preset, v.index, v.w, v.h, v.format, v.q)
}

// maxSide bounds the requested output size: a render allocates w*h*4
// bytes, so this caps one request at 64 MiB.
const maxSide = 4096

func parseView(q url.Values) (view, error) {
	v := view{format: "png", q: 90}
	chosen := 0
	for _, k := range []string{"window", "preset", "windowIndex", "voiLUT", "minmax"} {
		if _, ok := q[k]; ok {
			chosen++
		}
	}
	if chosen > 1 {
		return v, badRequest("give only one of window, preset, windowIndex, voiLUT, minmax")
	}
	switch {
	case q.Has("window"):
		c, wd, ok := strings.Cut(q.Get("window"), ",")
		center, err1 := strconv.ParseFloat(strings.TrimSpace(c), 64)
		width, err2 := strconv.ParseFloat(strings.TrimSpace(wd), 64)
		if !ok || err1 != nil || err2 != nil || !finite(center) || !finite(width) {
			return v, badRequest("window must be CENTER,WIDTH (two numbers), e.g. window=40,400")
		}
		if width <= 0 || math.Abs(center) > 1e9 || width > 1e9 {
			return v, badRequest("window width must be positive and both values reasonable")
		}
		v.mode, v.center, v.width = "window", center, width
	case q.Has("preset"):
		name := strings.ToLower(q.Get("preset"))
		if !knownPreset(name) {
			return v, badRequest(fmt.Sprintf("unknown preset %q (known: %s)", q.Get("preset"), strings.Join(presetNames(), ", ")))
		}
		v.mode, v.preset = "preset", name
	case q.Has("windowIndex"):
		i, err := strconv.Atoi(q.Get("windowIndex"))
		if err != nil || i < 0 {
			return v, badRequest("windowIndex must be a whole number from 0")
		}
		v.mode, v.index = "index", i
	case q.Has("voiLUT"):
		i, err := strconv.Atoi(q.Get("voiLUT"))
		if err != nil || i < 0 {
			return v, badRequest("voiLUT must be a whole number from 0")
		}
		v.mode, v.index = "voilut", i
	case q.Has("minmax"):
		switch q.Get("minmax") {
		case "", "1", "true":
			v.mode = "minmax"
		default:
			return v, badRequest("minmax takes no value")
		}
	}
	var err error
	if v.w, err = side(q, "w"); err != nil {
		return v, err
	}
	if v.h, err = side(q, "h"); err != nil {
		return v, err
	}
	switch f := q.Get("format"); f {
	case "", "png":
		v.format = "png"
	case "jpeg", "jpg":
		v.format = "jpeg"
		if qs := q.Get("q"); qs != "" {
			n, err := strconv.Atoi(qs)
			if err != nil || n < 1 || n > 100 {
				return v, badRequest("q must be a JPEG quality from 1 to 100")
			}
			v.q = n
		}
	default:
		return v, badRequest(fmt.Sprintf("unknown format %q (png or jpeg)", f))
	}
	if v.format == "png" {
		v.q = 0
	}
	return v, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// side parses an optional output dimension.
func side(q url.Values, k string) (int, error) {
	s := q.Get(k)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxSide {
		return 0, badRequest(fmt.Sprintf("%s must be a whole number from 1 to %d", k, maxSide))
	}
	return n, nil
}

func (s *server) renderFrame(w http.ResponseWriter, r *http.Request) {
	e := s.lookup(w, r)
	if e == nil {
		return
	}
	if e.Meta == nil {
		writeError(w, http.StatusUnprocessableEntity, e.Err)
		return
	}
	s.serveFrame(w, r, frameSource{
		id:      e.ID,
		version: e.version(),
		meta:    e.Meta,
		frames:  e.Frames,
		render:  func(n int, v view) (rendered, error) { return renderEntry(e, n, v) },
		clean:   func(err error) string { return cleanError(err, s.cat.root, e.Name, e.Path) },
	})
}

// frameSource is what serveFrame needs of an instance, wherever its bytes
// live (a testdata file, a stored blob).
type frameSource struct {
	id      string // opaque id or SOP Instance UID: logged and in the ETag
	version string // changes whenever the bytes may have changed
	meta    *dicom.Meta
	frames  int
	render  func(n int, v view) (rendered, error)
	clean   func(error) string // an error as the client may see it
}

// serveFrame answers GET …/frames/{n}/render for src: it checks the frame
// and view, answers 304 for a matching ETag, and otherwise renders under
// the render semaphore.
func (s *server) serveFrame(w http.ResponseWriter, r *http.Request, src frameSource) {
	if src.frames == 0 {
		writeError(w, http.StatusNotFound, "this instance has no pixel data")
		return
	}
	n, err := strconv.Atoi(chi.URLParam(r, "n"))
	if err != nil || n < 0 || n >= src.frames {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no frame %s: frames are numbered 0 to %d", chi.URLParam(r, "n"), src.frames-1))
		return
	}
	v, err := parseView(r.URL.Query())
	if err != nil {
		st, msg := statusOf(err)
		writeError(w, st, msg)
		return
	}
	if ws := src.meta.Image.WindowsOf(n); v.mode == "index" && v.index >= len(ws) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("windowIndex %d: frame %d has %d window(s)", v.index, n, len(ws)))
		return
	}
	if ls := src.meta.Image.VOILUTs; v.mode == "voilut" && v.index >= len(ls) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("voiLUT %d: the file has %d VOI LUT(s)", v.index, len(ls)))
		return
	}

	sum := sha256.Sum256([]byte(s.epoch + "|" + src.id + "|" + src.version + "|" + strconv.Itoa(n) + "|" + v.key()))
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	w.Header().Set("ETag", etag)
	// Revalidate every time (no-cache) but keep the bytes in the private
	// browser cache, so scrolling back costs a 304 and no render.
	w.Header().Set("Cache-Control", "private, no-cache")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatch(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}

	// The semaphore covers decode, render and encode, not the write: a
	// slow client must not hold a render slot.
	select {
	case s.render <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	out, err := src.render(n, v)
	<-s.render
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			writeError(w, he.status, he.msg)
			return
		}
		// Anything the decoder or the pipeline refuses is a fact about
		// the file, not a server failure: 422 with the decoder's words.
		msg := src.clean(err)
		s.log.Warn("render failed", "id", src.id, "frame", n, "err", msg)
		w.Header().Del("ETag")
		w.Header().Set("Cache-Control", "no-store")
		writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	w.Header().Set("Content-Type", out.ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(out.body)))
	if out.window != "" {
		w.Header().Set("X-Lightbox-Window", out.window)
	}
	_, _ = w.Write(out.body)
}

// etagMatch reports whether an If-None-Match header names etag.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
