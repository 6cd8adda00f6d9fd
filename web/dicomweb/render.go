package dicomweb

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"lightbox/dicom"
	"lightbox/storage"
)

// renderReq is a parsed WADO-RS rendered request (PS3.18 8.3.5).
type renderReq struct {
	view    dicom.View
	format  string // "image/jpeg" or "image/png"
	quality int
}

// parseRender reads the Accept header and the query parameters window,
// viewport and quality. Parameters Lightbox does not apply (annotation,
// charset, iccprofile) are accepted and ignored.
func parseRender(accept string, q url.Values) (renderReq, error) {
	rr := renderReq{view: dicom.View{Upscale: true}, quality: 90}
	for _, m := range parseAccept(accept) {
		switch m.typ {
		case "image/jpeg", "image/*", "*/*":
			rr.format = "image/jpeg"
		case "image/png":
			rr.format = "image/png"
		}
		if rr.format != "" {
			break // the first acceptable range wins
		}
	}
	if rr.format == "" {
		return rr, errNotAcceptable
	}
	if v := q.Get("window"); v != "" {
		parts := strings.Split(v, ",")
		if len(parts) != 3 {
			return rr, fmt.Errorf("window must be center,width,function, not %q", v)
		}
		c, err1 := strconv.ParseFloat(parts[0], 64)
		wd, err2 := strconv.ParseFloat(parts[1], 64)
		if err1 != nil || err2 != nil {
			return rr, fmt.Errorf("window center and width must be numbers, not %q", v)
		}
		fn, ok := map[string]string{"linear": dicom.VOILinear, "linear-exact": dicom.VOILinearExact, "sigmoid": dicom.VOISigmoid}[strings.ToLower(parts[2])]
		if !ok {
			return rr, fmt.Errorf("window function must be linear, linear-exact or sigmoid, not %q", parts[2])
		}
		rr.view.Window, rr.view.Center, rr.view.Width, rr.view.Function = dicom.WindowExplicit, c, wd, fn
	}
	if v := q.Get("viewport"); v != "" {
		parts := strings.Split(v, ",")
		if len(parts) != 2 {
			return rr, fmt.Errorf("viewport must be width,height (cropping is not supported), not %q", v)
		}
		vw, err1 := strconv.Atoi(parts[0])
		vh, err2 := strconv.Atoi(parts[1])
		if err1 != nil || err2 != nil || vw < 1 || vh < 1 || vw > dicom.MaxOutputSide || vh > dicom.MaxOutputSide {
			return rr, fmt.Errorf("viewport sides must be 1 to %d pixels, not %q", dicom.MaxOutputSide, v)
		}
		rr.view.MaxW, rr.view.MaxH = vw, vh
	}
	if v := q.Get("quality"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return rr, fmt.Errorf("quality must be 1 to 100, not %q", v)
		}
		rr.quality = n
	}
	return rr, nil
}

var errNotAcceptable = errors.New("rendered images are served as image/jpeg or image/png")

// rendered answers WADO-RS rendered instance and frame requests: the frame
// through the DICOM core's display pipeline, encoded as JPEG or PNG. An
// instance renders its first frame.
func (s *server) rendered(w http.ResponseWriter, r *http.Request) {
	rr, ok := renderRequest(w, r)
	if !ok {
		return
	}
	in, ok := s.instance(w, r)
	if !ok {
		return
	}
	if in.NumberOfFrames == 0 {
		httpError(w, http.StatusNotAcceptable, "the instance has no pixel data to render")
		return
	}
	s.serveRendered(w, r, rr, in, 0)
}

// renderRequest parses a rendered or thumbnail request, answering 406 or
// 400 when it cannot be served.
func renderRequest(w http.ResponseWriter, r *http.Request) (renderReq, bool) {
	rr, err := parseRender(r.Header.Get("Accept"), r.URL.Query())
	if errors.Is(err, errNotAcceptable) {
		httpError(w, http.StatusNotAcceptable, err.Error())
		return rr, false
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return rr, false
	}
	return rr, true
}

// serveRendered renders frame i (from 0) of in, or the one frame the path
// names, and writes the picture.
func (s *server) serveRendered(w http.ResponseWriter, r *http.Request, rr renderReq, in storage.Instance, i int) {
	if fs := chi.URLParam(r, "frames"); fs != "" {
		list, err := frameList(fs, in.NumberOfFrames)
		switch {
		case errors.Is(err, dicom.ErrNoFrame):
			httpError(w, http.StatusNotFound, err.Error())
			return
		case err != nil:
			httpError(w, http.StatusBadRequest, err.Error())
			return
		case len(list) != 1:
			httpError(w, http.StatusBadRequest, "a rendered frame or its thumbnail names one frame")
			return
		}
		i = list[0] - 1
	}
	if err := s.acquire(r.Context()); err != nil {
		return
	}
	body, err := s.render1(r, in, i, rr)
	s.release()
	if err != nil {
		if requestFault(err) {
			httpError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "dicom: "))
			return
		}
		s.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", rr.format)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func (s *server) render1(r *http.Request, in storage.Instance, i int, rr renderReq) ([]byte, error) {
	f, done, err := s.open(r.Context(), in)
	if err != nil {
		return nil, err
	}
	defer done()
	fr, err := f.Frame(i)
	if err != nil {
		return nil, fmt.Errorf("instance %s frame %d: %w", in.SOPInstanceUID, i+1, err)
	}
	img, err := dicom.Render(&f.Meta, fr, rr.view)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if rr.format == "image/png" {
		err = dicom.EncodePNG(&b, img)
	} else {
		err = dicom.EncodeJPEG(&b, img, rr.quality)
	}
	return b.Bytes(), err
}

// requestFault reports whether a pipeline error is about what the request
// asked for rather than about the stored instance.
func requestFault(err error) bool {
	for _, target := range []error{dicom.ErrWindowWidth, dicom.ErrVOIFunction, dicom.ErrSize, dicom.ErrQuality} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// thumbnailSide bounds a thumbnail when the request names no viewport.
const thumbnailSide = 128

// thumbnail answers the thumbnail resources of a study, series, instance
// or frame (PS3.18 10.4.4, Supplement 203): a rendered picture the server
// chooses. Here it is the middle frame of the middle instance with pixels
// of the first series, or of the instance or the frame named, fitted
// within 128×128 unless a viewport says otherwise, and never enlarged.
func (s *server) thumbnail(w http.ResponseWriter, r *http.Request) {
	rr, ok := renderRequest(w, r)
	if !ok {
		return
	}
	rr.view.Upscale = false
	if r.URL.Query().Get("viewport") == "" {
		rr.view.MaxW, rr.view.MaxH = thumbnailSide, thumbnailSide
	}
	ins, ok := s.instances(w, r)
	if !ok {
		return
	}
	var pick []storage.Instance // the first series' instances with pixels, in order
	for _, in := range ins {
		if in.NumberOfFrames > 0 && (len(pick) == 0 || in.SeriesInstanceUID == pick[0].SeriesInstanceUID) {
			pick = append(pick, in)
		}
	}
	if len(pick) == 0 {
		httpError(w, http.StatusNotAcceptable, "nothing here has pixel data to show")
		return
	}
	in := pick[len(pick)/2]
	s.serveRendered(w, r, rr, in, in.NumberOfFrames/2)
}
