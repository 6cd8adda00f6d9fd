package dicomweb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/suyashkumar/dicom/pkg/tag"

	"lightbox/dicom"
	"lightbox/storage"
)

const explicitLE = "1.2.840.10008.1.2.1"

// frameTypes maps the encapsulated transfer syntaxes to the media type of
// their frames (PS3.18 Table 8.7.3-2); the rest are sent as
// application/octet-stream.
var frameTypes = map[string]string{
	"1.2.840.10008.1.2.4.50":  "image/jpeg",
	"1.2.840.10008.1.2.4.51":  "image/jpeg",
	"1.2.840.10008.1.2.4.57":  "image/jpeg",
	"1.2.840.10008.1.2.4.70":  "image/jpeg",
	"1.2.840.10008.1.2.4.80":  "image/jls",
	"1.2.840.10008.1.2.4.81":  "image/jls",
	"1.2.840.10008.1.2.4.90":  "image/jp2",
	"1.2.840.10008.1.2.4.91":  "image/jp2",
	"1.2.840.10008.1.2.4.92":  "image/jpx",
	"1.2.840.10008.1.2.4.93":  "image/jpx",
	"1.2.840.10008.1.2.4.201": "image/jphc",
	"1.2.840.10008.1.2.4.202": "image/jphc",
	"1.2.840.10008.1.2.4.203": "image/jphc",
	"1.2.840.10008.1.2.5":     "image/dicom-rle",
}

// mediaRange is one entry of an Accept header.
type mediaRange struct {
	typ    string // lower case
	params map[string]string
}

// parseAccept splits an Accept header; entries that do not parse are
// skipped. An empty header accepts anything.
func parseAccept(h string) []mediaRange {
	if strings.TrimSpace(h) == "" {
		return []mediaRange{{typ: "*/*"}}
	}
	var out []mediaRange
	for _, part := range splitOutsideQuotes(h, ',') {
		mt, params, err := parseMediaType(part)
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
				continue
			}
		}
		out = append(out, mediaRange{typ: strings.ToLower(mt), params: params})
	}
	return out
}

// splitOutsideQuotes splits s on sep where it is not in a quoted string.
func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// errMediaType is returned for a media type without a type and subtype.
var errMediaType = errors.New("malformed media type")

// parseMediaType reads "type/subtype; name=value; ..." like
// mime.ParseMediaType, but also takes the unquoted parameter values DICOMweb
// clients commonly send (type=application/dicom, which RFC 2045 would
// have quoted). Type and parameter names are lower-cased.
func parseMediaType(s string) (string, map[string]string, error) {
	fields := splitOutsideQuotes(s, ';')
	mt := strings.ToLower(strings.TrimSpace(fields[0]))
	if i := strings.IndexByte(mt, '/'); i <= 0 || i == len(mt)-1 || strings.ContainsAny(mt, " \t\"") {
		return "", nil, errMediaType
	}
	params := map[string]string{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`)
		}
		params[k] = v
	}
	return mt, params, nil
}

// instanceTS says which stored transfer syntaxes an Accept header for
// multipart/related; type="application/dicom" allows; nil means any. A
// range without a transfer-syntax parameter takes the instances as stored
// (what Orthanc, OHIF and most servers do), as does transfer-syntax=*.
func instanceTS(accept string) (map[string]bool, bool) {
	set := map[string]bool{}
	ok := false
	for _, m := range parseAccept(accept) {
		switch m.typ {
		case "*/*", "multipart/*":
			return nil, true
		case "multipart/related":
			if t := strings.ToLower(m.params["type"]); t != "" && t != "application/dicom" && t != "application/*" {
				continue
			}
			ts := m.params["transfer-syntax"]
			if ts == "" || ts == "*" {
				return nil, true
			}
			set[ts], ok = true, true
		}
	}
	return set, ok
}

// retrieve answers WADO-RS study, series and instance retrieval with the
// stored Part 10 files, unchanged, as multipart/related.
func (s *server) retrieve(w http.ResponseWriter, r *http.Request) {
	allowed, ok := instanceTS(r.Header.Get("Accept"))
	if !ok {
		httpError(w, http.StatusNotAcceptable, `WADO-RS retrieves instances as multipart/related; type="application/dicom"`)
		return
	}
	ins, found := s.instances(w, r)
	if !found {
		return
	}
	if allowed != nil {
		for _, in := range ins {
			if !allowed[in.TransferSyntaxUID] {
				httpError(w, http.StatusNotAcceptable, "instance "+in.SOPInstanceUID+" is stored in transfer syntax "+in.TransferSyntaxUID+"; ask for transfer-syntax=* to have it as stored")
				return
			}
		}
	}
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", `multipart/related; type="application/dicom"; boundary=`+mw.Boundary())
	w.WriteHeader(http.StatusOK)
	for _, in := range ins {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", "application/dicom; transfer-syntax="+in.TransferSyntaxUID)
		h.Set("Content-Length", strconv.FormatInt(in.Size, 10))
		h.Set("Content-Location", instanceURL(s.baseURL(r), in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID))
		pw, err := mw.CreatePart(h)
		if err != nil {
			s.abort(r, err)
		}
		rc, err := s.store.Blobs.Get(r.Context(), in.BlobKey)
		if err != nil {
			s.abort(r, fmt.Errorf("instance %s: %w", in.SOPInstanceUID, err))
		}
		n, err := io.Copy(pw, rc)
		rc.Close()
		if err == nil && n != in.Size {
			err = fmt.Errorf("blob has %d bytes, catalog says %d", n, in.Size)
		}
		if err != nil {
			s.abort(r, fmt.Errorf("instance %s: %w", in.SOPInstanceUID, err))
		}
	}
	if err := mw.Close(); err != nil {
		s.abort(r, err)
	}
}

// instances finds what the path names — a study, a series or one instance
// — or answers 404.
func (s *server) instances(w http.ResponseWriter, r *http.Request) ([]storage.Instance, bool) {
	study, series, sop := chi.URLParam(r, "study"), chi.URLParam(r, "series"), chi.URLParam(r, "instance")
	if sop != "" {
		in, ok := s.instance(w, r)
		return []storage.Instance{in}, ok
	}
	match := map[string]string{"StudyInstanceUID": study}
	if series != "" {
		match["SeriesInstanceUID"] = series
	}
	ins, err := s.store.Catalog.Instances(r.Context(), storage.Query{Match: match})
	if errors.Is(err, storage.ErrBadQuery) {
		httpError(w, http.StatusNotFound, "no such study or series")
		return nil, false
	}
	if err != nil {
		s.serverError(w, r, err)
		return nil, false
	}
	if len(ins) == 0 {
		httpError(w, http.StatusNotFound, "no such study or series")
		return nil, false
	}
	return ins, true
}

// instance finds the instance the path names, within its study and series.
func (s *server) instance(w http.ResponseWriter, r *http.Request) (storage.Instance, bool) {
	study, series, sop := chi.URLParam(r, "study"), chi.URLParam(r, "series"), chi.URLParam(r, "instance")
	in, err := s.store.Catalog.GetInstance(r.Context(), sop)
	if err == nil && (in.StudyInstanceUID != study || in.SeriesInstanceUID != series) {
		err = storage.ErrNotFound
	}
	if errors.Is(err, storage.ErrNotFound) {
		httpError(w, http.StatusNotFound, "no such instance")
		return in, false
	}
	if err != nil {
		s.serverError(w, r, err)
		return in, false
	}
	return in, true
}

// metadata answers WADO-RS metadata: the header of every instance the path
// names, as a DICOM JSON array.
func (s *server) metadata(w http.ResponseWriter, r *http.Request) {
	if !acceptsJSON(r.Header.Get("Accept")) {
		httpError(w, http.StatusNotAcceptable, "metadata is served as application/dicom+json")
		return
	}
	ins, ok := s.instances(w, r)
	if !ok {
		return
	}
	// The first instance is encoded before the status is sent, so that a
	// broken store gives a 500, not a cut body.
	first, err := s.instanceJSON(r.Context(), ins[0])
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/dicom+json")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "[")
	w.Write(first)
	for _, in := range ins[1:] {
		b, err := s.instanceJSON(r.Context(), in)
		if err != nil {
			s.abort(r, err)
		}
		io.WriteString(w, ",")
		w.Write(b)
	}
	io.WriteString(w, "]")
}

func (s *server) instanceJSON(ctx context.Context, in storage.Instance) ([]byte, error) {
	f, done, err := s.open(ctx, in)
	if err != nil {
		return nil, err
	}
	defer done()
	o, err := FromDataset(f.Dataset.Elements)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", in.SOPInstanceUID, err)
	}
	o.SetString(tag.AvailableTransferSyntaxUID.Uint32(), "UI", in.TransferSyntaxUID)
	return o.MarshalJSON()
}

// open parses the stored instance's header (see storage.Store.Open).
func (s *server) open(ctx context.Context, in storage.Instance) (*dicom.File, func(), error) {
	return s.store.Open(ctx, in)
}

// frameList parses "1,3,5" (frame numbers from 1) against n frames.
func frameList(s string, n int) ([]int, error) {
	parts := strings.Split(s, ",")
	if len(parts) > max(n, 1) {
		return nil, fmt.Errorf("%d frames asked of an instance with %d", len(parts), n)
	}
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		k, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || k < 1 {
			return nil, fmt.Errorf("%q is not a frame number", p)
		}
		if k > n {
			return nil, fmt.Errorf("%w: frame %d of %d", dicom.ErrNoFrame, k, n)
		}
		out = append(out, k)
	}
	return out, nil
}

// explicitBE is Explicit VR Big Endian: its frames are stored big endian
// and sent converted to little endian, as the media type says.
const explicitBE = "1.2.840.10008.1.2.2"

// frameMode is how frames are sent: as stored, or decoded to native.
type frameMode int

const (
	framesNone frameMode = iota
	framesStored
	framesNative
	// framesStoredOctet: the stored bytes, labelled as the client asked,
	// application/octet-stream, with the transfer syntax they are in
	// (what OHIF asks for: type="application/octet-stream"; transfer-syntax=*).
	framesStoredOctet
)

// chooseFrames reads the Accept header of a frames request for an
// instance stored in ts.
func chooseFrames(accept, ts string) frameMode {
	stored := frameTypes[ts]
	if stored == "" {
		stored = "application/octet-stream"
	}
	mode := framesNone
	for _, m := range parseAccept(accept) {
		switch m.typ {
		case "*/*", "multipart/*":
			return framesStored
		case "multipart/related":
		default:
			continue
		}
		t := strings.ToLower(m.params["type"])
		if t == "" {
			t = "application/octet-stream"
		}
		want := m.params["transfer-syntax"]
		typeOK := t == stored || t == "*/*" || strings.HasSuffix(t, "/*") && strings.HasPrefix(stored, strings.TrimSuffix(t, "*"))
		switch {
		case want == "*" && t == "application/octet-stream":
			return framesStoredOctet
		case want == "*", typeOK && (want == "" || want == ts):
			return framesStored
		case t == "application/octet-stream" && (want == "" || want == explicitLE):
			mode = framesNative
		}
	}
	return mode
}

// frames answers WADO-RS frame retrieval: the frames' bytes as stored
// (the compressed codestream of an encapsulated instance), or decoded to
// native little-endian samples when the client only takes
// application/octet-stream.
func (s *server) frames(w http.ResponseWriter, r *http.Request) {
	in, ok := s.instance(w, r)
	if !ok {
		return
	}
	mode := chooseFrames(r.Header.Get("Accept"), in.TransferSyntaxUID)
	if mode == framesNone {
		httpError(w, http.StatusNotAcceptable, "frames of this instance are available as multipart/related; type=\""+frameType(in.TransferSyntaxUID)+"\" or application/octet-stream")
		return
	}
	list, err := frameList(chi.URLParam(r, "frames"), in.NumberOfFrames)
	if errors.Is(err, dicom.ErrNoFrame) {
		httpError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.acquire(r.Context()); err != nil {
		return
	}
	defer s.release()
	f, done, err := s.open(r.Context(), in)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	defer done()
	ctype, ts := frameType(in.TransferSyntaxUID), in.TransferSyntaxUID
	switch {
	case mode == framesNative:
		ctype, ts = "application/octet-stream", explicitLE
	case frameTypes[in.TransferSyntaxUID] == "":
		// Native frames go as little endian (big endian ones are
		// converted, below).
		ctype, ts = "application/octet-stream", explicitLE
	case mode == framesStoredOctet:
		ctype = "application/octet-stream"
	}
	mw := multipart.NewWriter(w)
	started := false
	for _, k := range list {
		var data []byte
		if mode == framesNative && frameTypes[in.TransferSyntaxUID] != "" {
			data, err = nativeFrame(f, k-1)
		} else {
			data, err = storedFrame(f, k-1)
			if err == nil && in.TransferSyntaxUID == explicitBE {
				data = littleEndian(data, f.Meta.Image.BitsAllocated)
			}
		}
		if err != nil {
			if started {
				s.abort(r, err)
			}
			s.serverError(w, r, fmt.Errorf("instance %s frame %d: %w", in.SOPInstanceUID, k, err))
			return
		}
		if !started {
			w.Header().Set("Content-Type", `multipart/related; type="`+ctype+`"; boundary=`+mw.Boundary())
			w.WriteHeader(http.StatusOK)
			started = true
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", ctype+"; transfer-syntax="+ts)
		h.Set("Content-Length", strconv.Itoa(len(data)))
		pw, err := mw.CreatePart(h)
		if err == nil {
			_, err = pw.Write(data)
		}
		if err != nil {
			s.abort(r, err)
		}
	}
	if err := mw.Close(); err != nil {
		s.abort(r, err)
	}
}

func frameType(ts string) string {
	if t := frameTypes[ts]; t != "" {
		return t
	}
	return "application/octet-stream"
}

// storedFrame returns frame i as stored; a 1-bit frame that does not start
// on a byte boundary is shifted so that it does.
func storedFrame(f *dicom.File, i int) ([]byte, error) {
	data, bit, err := f.FrameData(i)
	if err != nil || bit == 0 {
		return data, err
	}
	im := &f.Meta.Image
	bits := im.Rows * im.Columns * im.SamplesPerPixel
	out := make([]byte, (bits+7)/8)
	for j := 0; j < bits; j++ {
		src := bit + j
		if src/8 >= len(data) {
			break
		}
		if data[src/8]>>(src%8)&1 != 0 {
			out[j/8] |= 1 << (j % 8)
		}
	}
	return out, nil
}

// littleEndian turns big endian 16-bit samples into little endian, in
// place; the layout (planar configuration) stays. 8-bit samples, and
// 32-bit ones in OW, need nothing: FrameData has already undone OW's word
// swap.
func littleEndian(b []byte, bitsAllocated int) []byte {
	if bitsAllocated == 16 {
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
	return b
}

// nativeFrame decodes frame i and writes its samples as native little
// endian data of the instance's Bits Allocated, colour interleaved.
func nativeFrame(f *dicom.File, i int) ([]byte, error) {
	fr, err := f.Frame(i)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	switch f.Meta.Image.BitsAllocated {
	case 1:
		out := make([]byte, (len(fr.Pix)+7)/8)
		for j, v := range fr.Pix {
			if v&1 != 0 {
				out[j/8] |= 1 << (j % 8)
			}
		}
		return out, nil
	case 8:
		b.Grow(len(fr.Pix))
		for _, v := range fr.Pix {
			b.WriteByte(byte(v))
		}
	case 16:
		b.Grow(2 * len(fr.Pix))
		for _, v := range fr.Pix {
			b.Write(binary.LittleEndian.AppendUint16(nil, uint16(v)))
		}
	default:
		b.Grow(4 * len(fr.Pix))
		for j := range fr.Pix {
			b.Write(binary.LittleEndian.AppendUint32(nil, uint32(fr.Stored(j))))
		}
	}
	return b.Bytes(), nil
}
