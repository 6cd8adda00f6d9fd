package dicomweb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/suyashkumar/dicom/pkg/tag"

	"lightbox/storage"
)

// STOW-RS failure and warning reasons (PS3.18 Table 10.5.3-3, I.2-1; the
// codes are the C-STORE statuses of PS3.4 Annex B).
const (
	failProcessing   = 0x0110 // processing failure
	failSOPClass     = 0x0122 // SOP class not supported
	failResources    = 0xA700 // out of resources
	failMismatch     = 0xA900 // data set does not match SOP class (or the request)
	failUnderstand   = 0xC000 // cannot understand
	warnDiscarded    = 0xB006 // elements discarded
	maxPartHeader    = 16 << 10
	multipartLookahd = 4096 // mime/multipart's read-ahead, on top of a header
)

// errHeaderTooLarge stops a part whose MIME header (or a preamble) runs
// past maxPartHeader.
var errHeaderTooLarge = errors.New("multipart: part header too large")

// headerGuard bounds what the multipart reader may read while it looks for
// the next part's header: the standard library allows 10 MiB per header,
// far more than a STOW-RS part needs.
type headerGuard struct {
	r      io.Reader
	armed  bool
	budget int64
}

func (g *headerGuard) Read(p []byte) (int, error) {
	if !g.armed {
		return g.r.Read(p)
	}
	if g.budget <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > g.budget {
		p = p[:g.budget]
	}
	n, err := g.r.Read(p)
	g.budget -= int64(n)
	return n, err
}

// partReader remembers a read error of the request body, to tell a broken
// stream from a refused instance.
type partReader struct {
	r   io.Reader
	err error
}

func (p *partReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil && err != io.EOF && p.err == nil {
		p.err = err
	}
	return n, err
}

// stowResult is what became of one part.
type stowResult struct {
	classUID, sopUID string
	study, series    string
	failure, warning int // 0 when none
	stored           bool
	reason           string // for the log
}

// stow stores the instances of a multipart/related; type="application/dicom"
// body, one part at a time, each streamed into Store.Ingest.
func (s *server) stow(w http.ResponseWriter, r *http.Request) {
	mt, params, err := parseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, "multipart/related") {
		httpError(w, http.StatusUnsupportedMediaType, `STOW-RS takes multipart/related; type="application/dicom"`)
		return
	}
	if t := params["type"]; t != "" && !strings.EqualFold(t, "application/dicom") {
		httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("STOW-RS of %s is not supported; send application/dicom parts", t))
		return
	}
	boundary := params["boundary"]
	if boundary == "" {
		httpError(w, http.StatusBadRequest, "multipart/related without a boundary")
		return
	}
	if !acceptsJSON(r.Header.Get("Accept")) {
		httpError(w, http.StatusNotAcceptable, "STOW-RS answers in application/dicom+json")
		return
	}
	study := chi.URLParam(r, "study")
	source := "stow:" + client(r.Context())
	results, broken := readParts(r.Body, boundary, func(ctype string, body io.Reader) stowResult {
		return s.stowPart(r.Context(), ctype, body, source, study)
	})
	for _, res := range results {
		s.logResult(source, res)
	}
	if broken != nil {
		if errors.Is(r.Context().Err(), context.Canceled) {
			return
		}
		s.log.Warn("stow: malformed multipart body", "source", source, "after", len(results), "err", broken)
		if len(results) == 0 {
			httpError(w, http.StatusBadRequest, "malformed multipart body: "+broken.Error())
			return
		}
		results = append(results, stowResult{failure: failUnderstand, reason: "malformed multipart body"})
	}
	if len(results) == 0 {
		httpError(w, http.StatusBadRequest, "the multipart body holds no instances")
		return
	}
	s.stowAnswer(w, r, results)
}

// readParts walks a multipart body part by part, calling store with each
// part's Content-Type and a reader of its bytes. It returns what store
// said of each part, and the error that broke the walk, if any: a
// malformed body, a part header beyond maxPartHeader, or a body cut short
// (then the part it cut is not reported). Nothing is buffered beyond the
// multipart reader's own 4 KiB.
func readParts(body io.Reader, boundary string, store func(ctype string, body io.Reader) stowResult) ([]stowResult, error) {
	guard := &headerGuard{r: body}
	mr := multipart.NewReader(guard, boundary)
	var results []stowResult
	for {
		guard.armed, guard.budget = true, maxPartHeader+multipartLookahd
		part, err := mr.NextPart()
		guard.armed = false
		if err == io.EOF {
			return results, nil
		}
		if err != nil {
			return results, err
		}
		pr := &partReader{r: part}
		res := store(part.Header.Get("Content-Type"), pr)
		// Drain what store left (a refused or too large part) before the
		// header guard is armed again.
		if _, err := io.Copy(io.Discard, pr); err != nil && pr.err == nil {
			pr.err = err
		}
		part.Close()
		if pr.err != nil && !res.stored {
			return results, pr.err
		}
		results = append(results, res)
		if pr.err != nil {
			return results, pr.err
		}
	}
}

// stowPart stores one part and says how it went.
func (s *server) stowPart(ctx context.Context, ctype string, body io.Reader, source, study string) stowResult {
	if ctype != "" {
		mt, _, err := parseMediaType(ctype)
		if err != nil || !strings.EqualFold(mt, "application/dicom") {
			return stowResult{failure: failUnderstand, reason: "part is " + ctype + ", not application/dicom"}
		}
	}
	// Ingest checks the study the URL names before storing anything, and
	// returns the header's UIDs even when it refuses, for the report.
	out, err := s.store.Ingest(ctx, body, source, storage.Expect{StudyInstanceUID: study})
	in := out.Instance
	res := stowResult{classUID: in.SOPClassUID, sopUID: in.SOPInstanceUID, study: in.StudyInstanceUID, series: in.SeriesInstanceUID}
	if err != nil {
		return failed(res, err)
	}
	res.stored, res.reason = true, out.Outcome.String()
	if out.Outcome == storage.Conflict {
		// The first copy stays; this one's elements are all discarded.
		res.warning = warnDiscarded
	}
	return res
}

// failed maps an ingest error to a STOW-RS failure reason.
func failed(res stowResult, err error) stowResult {
	res.reason = err.Error()
	switch {
	case errors.Is(err, storage.ErrNotDICOM), errors.Is(err, storage.ErrBadInstance):
		res.failure = failUnderstand
	case errors.Is(err, storage.ErrSOPClass):
		res.failure = failSOPClass
	case errors.Is(err, storage.ErrMismatch):
		res.failure = failMismatch
	case errors.Is(err, storage.ErrTooLarge):
		res.failure = failResources
	default:
		res.failure = failProcessing
	}
	return res
}

func (s *server) logResult(source string, res stowResult) {
	args := []any{"source", source, "sop", res.sopUID, "study", res.study}
	switch {
	case res.failure == failProcessing:
		s.log.Error("stow: instance failed", append(args, "reason", res.reason)...)
	case res.failure != 0:
		s.log.Warn("stow: instance refused", append(args, "status", fmt.Sprintf("%04X", res.failure), "reason", res.reason)...)
	case res.warning != 0:
		s.log.Warn("stow: instance differs from the stored copy; first copy kept", args...)
	default:
		s.log.Info("stow: instance "+res.reason, args...)
	}
}

// stowAnswer writes the Store Instances Response (PS3.18 10.5.3): 200 when
// every instance is stored, 202 with warnings or some failures, 409 when
// none is.
func (s *server) stowAnswer(w http.ResponseWriter, r *http.Request, results []stowResult) {
	base := s.baseURL(r)
	resp := Object{}
	var refs, fails []any
	warnings, studies := 0, map[string]bool{}
	for _, res := range results {
		item := Object{}
		if res.classUID != "" {
			item.SetString(tag.ReferencedSOPClassUID.Uint32(), "UI", res.classUID)
		}
		if res.sopUID != "" {
			item.SetString(tag.ReferencedSOPInstanceUID.Uint32(), "UI", res.sopUID)
		}
		if res.failure != 0 {
			item.Set(tag.FailureReason.Uint32(), "US", int64(res.failure))
			fails = append(fails, item)
			continue
		}
		item.SetString(tag.RetrieveURL.Uint32(), "UR", instanceURL(base, res.study, res.series, res.sopUID))
		if res.warning != 0 {
			item.Set(tag.WarningReason.Uint32(), "US", int64(res.warning))
			warnings++
		}
		refs = append(refs, item)
		studies[res.study] = true
	}
	// Orthanc's client requires the Referenced SOP Sequence, even empty.
	resp.Set(tag.ReferencedSOPSequence.Uint32(), "SQ", refs...)
	if len(fails) > 0 {
		resp.Set(tag.FailedSOPSequence.Uint32(), "SQ", fails...)
	}
	if len(studies) == 1 {
		for st := range studies {
			resp.SetString(tag.RetrieveURL.Uint32(), "UR", studyURL(base, st))
		}
	}
	status := http.StatusOK
	switch {
	case len(refs) == 0:
		status = http.StatusConflict
	case len(fails) > 0 || warnings > 0:
		status = http.StatusAccepted
	}
	writeJSON(w, status, resp)
}

// acceptsJSON reports whether an Accept header allows DICOM JSON.
func acceptsJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, rng := range strings.Split(accept, ",") {
		mt, _, err := parseMediaType(rng)
		if err != nil {
			continue
		}
		switch strings.ToLower(mt) {
		case "application/dicom+json", "application/json", "application/*", "*/*":
			return true
		}
	}
	return false
}

// writeJSON answers with one DICOM JSON value.
func writeJSON(w http.ResponseWriter, status int, v interface{ MarshalJSON() ([]byte, error) }) {
	b, err := v.MarshalJSON()
	if err != nil {
		httpError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/dicom+json")
	w.WriteHeader(status)
	w.Write(b)
}
