package web

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
	"unicode"

	"lightbox/storage"
)

// Browser upload: POST /api/upload with one file as the body (the browser
// sends each file of a drop on its own, so each gets its own progress bar
// and its own answer). The body streams into storage's one ingest path; a
// zip is spooled to a temporary file first, since its directory is at the
// end, and then each entry streams into ingest in turn.

// defaultMaxUpload bounds one upload's body: the largest instance ingest
// takes, or a zip of that size.
const defaultMaxUpload = 4 << 30

// Limits on a zip's directory, checked before archive/zip reads it: it
// holds every entry's record in memory.
const (
	maxZipEntries   = 100_000
	maxZipDirectory = 32 << 20
)

// uploadIdle is how long an upload may stall before the connection is
// dropped. The server's whole-request timeouts are too short for a large
// file on a slow link, so an upload moves its deadlines forward while
// bytes keep coming.
const uploadIdle = time.Minute

// Upload statuses, one per file or zip entry.
const (
	statusStored    = "stored"
	statusDuplicate = "duplicate"
	statusConflict  = "conflict"
	statusRejected  = "rejected" // the file's fault: not DICOM, damaged, too large
	statusFailed    = "failed"   // the server's or the connection's: try again
)

// uploadResult is the answer for one file or zip entry.
type uploadResult struct {
	Name           string `json:"name"`
	Status         string `json:"status"`
	Reason         string `json:"reason,omitempty"`
	StudyUID       string `json:"studyUID,omitempty"`
	SOPInstanceUID string `json:"sopInstanceUID,omitempty"`
}

// uploadResponse is the body of every POST /api/upload answer.
type uploadResponse struct {
	Zip     bool           `json:"zip"`
	Results []uploadResult `json:"results"`
}

// sameOrigin refuses a request another site's page makes the browser send.
// Upload also needs the X-Filename header, which no plain form can set, so
// a cross-site script would need a CORS preflight, which is never granted.
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || u.Host != r.Host {
				writeError(w, http.StatusForbidden, "cross-origin request refused")
				return
			}
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			writeError(w, http.StatusForbidden, "cross-origin request refused")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// uploadName is the X-Filename header as shown back to the user: the
// browser sends it percent-encoded (headers are ASCII); control
// characters are dropped and the length bounded. It is never used as a
// path and never logged: file names often carry patient names.
func uploadName(h string) string {
	if u, err := url.PathUnescape(h); err == nil {
		h = u
	}
	h = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, h)
	if len(h) > 512 {
		h = h[:512]
	}
	return h
}

// bodyReader reads an upload's body, moving the connection's deadlines
// forward while bytes arrive, and remembers why reading stopped, so that a
// broken connection is told apart from a refusal of what was read.
type bodyReader struct {
	r    io.Reader
	rc   *http.ResponseController
	last time.Time
	err  error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(b.last) > time.Second {
		b.last = now
		_ = b.rc.SetReadDeadline(now.Add(uploadIdle))
		_ = b.rc.SetWriteDeadline(now.Add(uploadIdle))
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (s *server) upload(w http.ResponseWriter, r *http.Request) {
	if _, ok := r.Header["X-Filename"]; !ok {
		writeError(w, http.StatusBadRequest, "X-Filename header missing: send one file per request, its name in X-Filename")
		return
	}
	name := uploadName(r.Header.Get("X-Filename"))
	rc := http.NewResponseController(w)
	body := &bodyReader{r: http.MaxBytesReader(w, r.Body, s.maxUpload), rc: rc}
	br := bufio.NewReaderSize(body, 4096)
	if isZip(name, r.Header.Get("Content-Type"), br) {
		s.uploadZip(w, r, name, br, body)
		return
	}
	res := s.ingestOne(r.Context(), name, br, body)
	code := http.StatusOK
	switch res.Status {
	case statusRejected:
		code = http.StatusUnprocessableEntity
		var mbe *http.MaxBytesError
		if errors.As(body.err, &mbe) {
			code = http.StatusRequestEntityTooLarge
		}
	case statusFailed:
		code = http.StatusInternalServerError
		if body.err != nil {
			code = http.StatusBadRequest
		}
	}
	_ = rc.SetWriteDeadline(time.Now().Add(uploadIdle))
	writeJSON(w, code, uploadResponse{Results: []uploadResult{res}})
}

// isZip decides whether an upload is a zip: by its name or type, or by the
// local-file-header mark at its start when it is not also a Part 10 file
// (a DICOM preamble may hold anything).
func isZip(name, ctype string, br *bufio.Reader) bool {
	if strings.EqualFold(path.Ext(name), ".zip") {
		return true
	}
	switch strings.TrimSpace(strings.SplitN(ctype, ";", 2)[0]) {
	case "application/zip", "application/x-zip-compressed", "application/x-zip":
		return true
	}
	head, _ := br.Peek(132)
	return bytes.HasPrefix(head, []byte("PK\x03\x04")) && !(len(head) == 132 && string(head[128:]) == "DICM")
}

// ingestOne streams one file into the store and says what became of it.
// body, when not nil, tells a broken upload from a refused file.
func (s *server) ingestOne(ctx context.Context, name string, r io.Reader, body *bodyReader) uploadResult {
	res := uploadResult{Name: name}
	got, err := s.store.Ingest(ctx, r, "upload", storage.Expect{})
	if err != nil {
		var readErr error
		if body != nil {
			readErr = body.err
		}
		res.Status, res.Reason = refusal(err, readErr, s.instanceLimit())
		if res.Status == statusFailed && readErr == nil {
			s.log.Error("upload failed", "err", err)
		} else {
			s.log.Warn("upload refused", "status", res.Status, "reason", res.Reason)
		}
		return res
	}
	res.StudyUID, res.SOPInstanceUID = got.Instance.StudyInstanceUID, got.Instance.SOPInstanceUID
	switch got.Outcome {
	case storage.Stored:
		res.Status = statusStored
	case storage.Duplicate:
		res.Status, res.Reason = statusDuplicate, "already stored"
	case storage.Conflict:
		res.Status = statusConflict
		res.Reason = "a different file with the same instance UID is already stored; the stored one was kept"
	}
	lvl := s.log.Info
	if got.Outcome == storage.Conflict {
		lvl = s.log.Warn
	}
	lvl("upload", "sop", res.SOPInstanceUID, "status", res.Status, "bytes", got.Instance.Size)
	return res
}

// refusal words an ingest error as a clinician would understand it. readErr
// is why reading the upload stopped, if it did not reach its end.
// limit is the largest instance the store takes.
func refusal(err, readErr error, limit int64) (status, reason string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(readErr, &mbe), errors.Is(err, storage.ErrTooLarge):
		if mbe != nil {
			limit = mbe.Limit
		}
		return statusRejected, "too large: one file may be at most " + sizeWords(limit)
	case errors.Is(err, zip.ErrChecksum):
		return statusRejected, "damaged file inside the zip (checksum error)"
	case errors.Is(err, zip.ErrFormat), errors.Is(err, zip.ErrAlgorithm):
		return statusRejected, "this entry of the zip cannot be unpacked (damaged, or a compression method not supported)"
	case readErr != nil:
		return statusFailed, "the upload was interrupted; please try again"
	case errors.Is(err, storage.ErrNotDICOM):
		return statusRejected, "not a DICOM file"
	case errors.Is(err, storage.ErrSOPClass):
		return statusRejected, "a kind of DICOM object Lightbox does not store (" + detail(err, storage.ErrSOPClass) + ")"
	case errors.Is(err, storage.ErrBadInstance), errors.Is(err, storage.ErrMismatch):
		return statusRejected, "damaged file: " + detail(err, storage.ErrBadInstance)
	case errors.Is(err, context.Canceled):
		return statusFailed, "the upload was interrupted; please try again"
	}
	return statusFailed, "the server could not store this file; please try again"
}

// instanceLimit is the largest instance the store takes (its default is
// storage's).
func (s *server) instanceLimit() int64 {
	if s.store.MaxInstance > 0 {
		return s.store.MaxInstance
	}
	return 4 << 30
}

// detail is an error's text after the sentinel's, without package prefixes.
func detail(err, sentinel error) string {
	msg := err.Error()
	if i := strings.Index(msg, sentinel.Error()+": "); i >= 0 {
		msg = msg[i+len(sentinel.Error())+2:]
	}
	for _, p := range []string{"dicom: ", "storage: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

// sizeWords is a byte limit in words: "4.3 GB", "300 MB".
func sizeWords(n int64) string {
	if n >= 1e9 {
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	}
	return fmt.Sprintf("%.0f MB", float64(n)/1e6)
}

// uploadZip spools a zip to a temporary file and ingests every entry.
func (s *server) uploadZip(w http.ResponseWriter, r *http.Request, name string, br io.Reader, body *bodyReader) {
	rc := http.NewResponseController(w)
	fail := func(code int, status, reason string) {
		_ = rc.SetWriteDeadline(time.Now().Add(uploadIdle))
		writeJSON(w, code, uploadResponse{Zip: true, Results: []uploadResult{{Name: name, Status: status, Reason: reason}}})
	}
	tmp, err := os.CreateTemp(s.store.TempDir, "upload-*.zip")
	if err != nil {
		s.log.Error("upload: spool zip", "err", err)
		fail(http.StatusInternalServerError, statusFailed, "the server could not store this file; please try again")
		return
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	size, err := io.Copy(tmp, br)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(body.err, &mbe):
			fail(http.StatusRequestEntityTooLarge, statusRejected, "too large: a zip may be at most "+sizeWords(mbe.Limit))
		case body.err != nil:
			fail(http.StatusBadRequest, statusFailed, "the upload was interrupted; please try again")
		default:
			s.log.Error("upload: spool zip", "err", err)
			fail(http.StatusInternalServerError, statusFailed, "the server could not store this file; please try again")
		}
		return
	}
	if err := checkZipDirectory(tmp, size); err != nil {
		s.log.Warn("upload refused", "status", statusRejected, "reason", err.Error())
		fail(http.StatusUnprocessableEntity, statusRejected, err.Error())
		return
	}
	zr, err := zip.NewReader(tmp, size)
	if err != nil {
		s.log.Warn("upload refused", "status", statusRejected, "reason", "unreadable zip", "err", err)
		fail(http.StatusUnprocessableEntity, statusRejected, "not a readable zip file")
		return
	}
	out := uploadResponse{Zip: true, Results: []uploadResult{}}
	for _, zf := range zr.File {
		if r.Context().Err() != nil {
			return // the browser went away; nobody reads the answer
		}
		if skipEntry(zf) {
			continue
		}
		_ = rc.SetWriteDeadline(time.Now().Add(uploadIdle))
		out.Results = append(out.Results, s.ingestEntry(r.Context(), zf))
	}
	if len(out.Results) == 0 {
		fail(http.StatusUnprocessableEntity, statusRejected, "the zip holds no files")
		return
	}
	_ = rc.SetWriteDeadline(time.Now().Add(uploadIdle))
	writeJSON(w, http.StatusOK, out)
}

// skipEntry leaves out folders and what archivers add beside the files
// (macOS resource forks, hidden files), as lightbox import does.
func skipEntry(zf *zip.File) bool {
	if zf.FileInfo().IsDir() || strings.HasPrefix(zf.Name, "__MACOSX/") {
		return true
	}
	return strings.HasPrefix(path.Base(zf.Name), ".")
}

func (s *server) ingestEntry(ctx context.Context, zf *zip.File) uploadResult {
	name := uploadName(zf.Name)
	if strings.EqualFold(path.Ext(zf.Name), ".zip") {
		s.log.Warn("upload refused", "status", statusRejected, "reason", "nested zip")
		return uploadResult{Name: name, Status: statusRejected, Reason: "a zip inside the zip: unpack it and upload what it holds"}
	}
	rd, err := zf.Open()
	if err != nil {
		st, reason := refusal(err, nil, s.instanceLimit())
		s.log.Warn("upload refused", "status", st, "reason", reason)
		return uploadResult{Name: name, Status: st, Reason: reason}
	}
	defer rd.Close()
	return s.ingestOne(ctx, name, rd, nil)
}

// checkZipDirectory reads the end-of-central-directory record (and its
// zip64 form) and refuses a directory too large to hold in memory, before
// archive/zip reads it.
func checkZipDirectory(f io.ReaderAt, size int64) error {
	const eocdLen, maxComment = 22, 65535
	tail := min(size, eocdLen+maxComment)
	buf := make([]byte, tail)
	if _, err := f.ReadAt(buf, size-tail); err != nil && err != io.EOF {
		return errors.New("not a readable zip file")
	}
	i := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if i < 0 || len(buf)-i < eocdLen {
		return errors.New("not a readable zip file")
	}
	e := buf[i:]
	entries := uint64(binary.LittleEndian.Uint16(e[10:]))
	dirSize := uint64(binary.LittleEndian.Uint32(e[12:]))
	if entries == 0xffff || dirSize == 0xffffffff {
		// zip64: the locator sits just before the record and points at
		// the zip64 end record, which holds the real numbers.
		loc := size - tail + int64(i) - 20
		var l [20]byte
		if loc < 0 {
			return errors.New("not a readable zip file")
		}
		if _, err := f.ReadAt(l[:], loc); err != nil || string(l[:4]) != "PK\x06\x07" {
			return errors.New("not a readable zip file")
		}
		off := int64(binary.LittleEndian.Uint64(l[8:]))
		var z [56]byte
		if off < 0 || off > size-56 {
			return errors.New("not a readable zip file")
		}
		if _, err := f.ReadAt(z[:], off); err != nil || string(z[:4]) != "PK\x06\x06" {
			return errors.New("not a readable zip file")
		}
		entries = binary.LittleEndian.Uint64(z[32:])
		dirSize = binary.LittleEndian.Uint64(z[40:])
	}
	if entries > maxZipEntries || dirSize > maxZipDirectory {
		return fmt.Errorf("the zip holds too many files (at most %d): split it into smaller zips", maxZipEntries)
	}
	return nil
}
