package web

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"lightbox/dicom"
	"lightbox/storage"
)

// The stored-studies API: what the catalog holds, for the study list and
// the viewer. Requests name studies, series and instances by UID; a UID is
// checked for shape before it reaches the catalog.

// studyRoutes mounts the stored-studies API and upload on r (under /api).
func (s *server) studyRoutes(r chi.Router) {
	r.Get("/studies", s.listStudies)
	r.Get("/studies/{study}/series", s.listSeries)
	r.Get("/series/{series}/instances", s.listInstances)
	r.Get("/instances/{sop}", s.getInstance)
	r.Get("/instances/{sop}/frames/{n}/render", s.renderInstance)
	r.With(sameOrigin).Post("/upload", s.upload)
}

// Paging of the study list.
const (
	defaultStudyPage = 50
	maxStudyPage     = 200
	maxOffset        = 1_000_000
	// maxSeriesInstances bounds one series listing; a CT series has a few
	// thousand instances at most.
	maxSeriesInstances = 10000
)

// studyRow is one row of GET /api/studies.
type studyRow struct {
	StudyUID    string   `json:"studyUID"`
	PatientName string   `json:"patientName"`
	PatientID   string   `json:"patientId"`
	BirthDate   string   `json:"birthDate,omitempty"`
	Sex         string   `json:"sex,omitempty"`
	StudyDate   string   `json:"studyDate"`
	StudyTime   string   `json:"studyTime,omitempty"`
	Accession   string   `json:"accession"`
	Description string   `json:"description"`
	Modalities  []string `json:"modalities"`
	Series      int      `json:"series"`
	Instances   int      `json:"instances"`
}

// seriesRow is one row of GET /api/studies/{study}/series, with the
// instance and frame that stand for it as a thumbnail (the middle one, as
// the middle slice of a CT shows the most).
type seriesRow struct {
	SeriesUID   string `json:"seriesUID"`
	Number      *int   `json:"number"`
	Modality    string `json:"modality"`
	Description string `json:"description"`
	Instances   int    `json:"instances"`
	ThumbSOP    string `json:"thumbSOP,omitempty"`
	ThumbFrame  int    `json:"thumbFrame"`
}

// instanceRow is one instance of a series, in viewing order.
type instanceRow struct {
	SOPInstanceUID    string `json:"sopInstanceUID"`
	Number            *int   `json:"number"`
	Frames            int    `json:"frames"`
	Rows              int    `json:"rows"`
	Columns           int    `json:"columns"`
	TransferSyntaxUID string `json:"transferSyntaxUID"`
	Size              int64  `json:"size"`
}

// uidRE is the shape of a DICOM UID (PS3.5 9.1): digits and dots, at most
// 64 characters.
var uidRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

func validUID(s string) bool { return len(s) <= 64 && uidRE.MatchString(s) }

// uidParam returns the URL parameter k if it is shaped like a UID, else
// answers 404 and returns "".
func uidParam(w http.ResponseWriter, r *http.Request, k, what string) string {
	u := chi.URLParam(r, k)
	if !validUID(u) {
		writeError(w, http.StatusNotFound, "unknown "+what)
		return ""
	}
	return u
}

// studyQuery turns the study list's search fields into a catalog query.
// Free text is matched anywhere in the field (the catalog's * wildcard);
// patient names ignore case, as the catalog's PN matching does.
func studyQuery(q url.Values) (storage.Query, error) {
	m := map[string]string{}
	contains := func(v string) string {
		v = strings.TrimSpace(v)
		if v == "" {
			return ""
		}
		return "*" + v + "*"
	}
	if v := strings.TrimSpace(q.Get("patientName")); v != "" {
		// People type "doe john" or "Doe, John"; the stored form is
		// DOE^JOHN. Every separator becomes a wildcard.
		parts := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '^' })
		m["PatientName"] = "*" + strings.Join(parts, "*") + "*"
	}
	if v := contains(q.Get("patientId")); v != "" {
		m["PatientID"] = v
	}
	if v := contains(q.Get("accession")); v != "" {
		m["AccessionNumber"] = v
	}
	if v := strings.ToUpper(strings.TrimSpace(q.Get("modality"))); v != "" {
		if len(v) > 16 || strings.ContainsAny(v, `*?\,`) {
			return storage.Query{}, badRequest("modality must be one code, e.g. CT")
		}
		m["ModalitiesInStudy"] = v
	}
	from, err := queryDate(q.Get("from"), "from")
	if err != nil {
		return storage.Query{}, err
	}
	to, err := queryDate(q.Get("to"), "to")
	if err != nil {
		return storage.Query{}, err
	}
	if from != "" && to != "" && from > to {
		return storage.Query{}, badRequest("the date range ends before it starts")
	}
	if from != "" || to != "" {
		if from == to {
			m["StudyDate"] = from
		} else {
			m["StudyDate"] = from + "-" + to
		}
	}
	limit, err := intParam(q, "limit", defaultStudyPage, 1, maxStudyPage)
	if err != nil {
		return storage.Query{}, err
	}
	offset, err := intParam(q, "offset", 0, 0, maxOffset)
	if err != nil {
		return storage.Query{}, err
	}
	return storage.Query{Match: m, Limit: limit, Offset: offset}, nil
}

// queryDate accepts YYYY-MM-DD (what a date input sends) or YYYYMMDD and
// returns the DICOM DA form.
func queryDate(v, name string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		t, err = time.Parse("20060102", v)
	}
	if err != nil {
		return "", badRequest(name + " must be a date, YYYY-MM-DD")
	}
	return t.Format("20060102"), nil
}

func intParam(q url.Values, k string, def, lo, hi int) (int, error) {
	v := q.Get(k)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest(fmt.Sprintf("%s must be a whole number from %d to %d", k, lo, hi))
	}
	return n, nil
}

// catalogError answers for a failed catalog call.
func (s *server) catalogError(w http.ResponseWriter, op string, err error) {
	if errors.Is(err, storage.ErrBadQuery) {
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "storage: "))
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Error("catalog", "op", op, "err", err)
	writeError(w, http.StatusInternalServerError, "the study catalog cannot be read")
}

func (s *server) listStudies(w http.ResponseWriter, r *http.Request) {
	q, err := studyQuery(r.URL.Query())
	if err != nil {
		st, msg := statusOf(err)
		writeError(w, st, msg)
		return
	}
	page := q.Limit
	q.Limit++ // one more tells whether there is a next page
	recs, err := s.store.Catalog.Studies(r.Context(), q)
	if err != nil {
		s.catalogError(w, "studies", err)
		return
	}
	more := len(recs) > page
	if more {
		recs = recs[:page]
	}
	out := make([]studyRow, 0, len(recs))
	for _, st := range recs {
		mods := st.ModalitiesInStudy
		if mods == nil {
			mods = []string{}
		}
		out = append(out, studyRow{
			StudyUID: st.StudyInstanceUID, PatientName: st.PatientName, PatientID: st.PatientID,
			BirthDate: st.PatientBirthDate, Sex: st.PatientSex,
			StudyDate: st.StudyDate, StudyTime: st.StudyTime, Accession: st.AccessionNumber,
			Description: st.StudyDescription, Modalities: mods,
			Series: st.NumberOfStudyRelatedSeries, Instances: st.NumberOfStudyRelatedInstances,
		})
	}
	writeJSON(w, http.StatusOK, struct {
		Studies []studyRow `json:"studies"`
		Offset  int        `json:"offset"`
		Limit   int        `json:"limit"`
		More    bool       `json:"more"`
	}{out, q.Offset, page, more})
}

func (s *server) listSeries(w http.ResponseWriter, r *http.Request) {
	uid := uidParam(w, r, "study", "study")
	if uid == "" {
		return
	}
	ctx := r.Context()
	recs, err := s.store.Catalog.Series(ctx, storage.Query{Match: map[string]string{"StudyInstanceUID": uid}})
	if err != nil {
		s.catalogError(w, "series", err)
		return
	}
	if len(recs) == 0 {
		writeError(w, http.StatusNotFound, "unknown study")
		return
	}
	out := make([]seriesRow, 0, len(recs))
	for _, se := range recs {
		row := seriesRow{SeriesUID: se.SeriesInstanceUID, Number: se.SeriesNumber, Modality: se.Modality,
			Description: se.SeriesDescription, Instances: se.NumberOfSeriesRelatedInstances}
		mid, err := s.store.Catalog.Instances(ctx, storage.Query{
			Match: map[string]string{"SeriesInstanceUID": se.SeriesInstanceUID},
			Limit: 1, Offset: se.NumberOfSeriesRelatedInstances / 2,
		})
		if err != nil {
			s.catalogError(w, "series thumbnail", err)
			return
		}
		if len(mid) == 1 && mid[0].NumberOfFrames > 0 {
			row.ThumbSOP, row.ThumbFrame = mid[0].SOPInstanceUID, mid[0].NumberOfFrames/2
		}
		out = append(out, row)
	}
	st := recs[0]
	writeJSON(w, http.StatusOK, struct {
		StudyUID    string      `json:"studyUID"`
		PatientName string      `json:"patientName"`
		PatientID   string      `json:"patientId"`
		StudyDate   string      `json:"studyDate"`
		Description string      `json:"description"`
		Series      []seriesRow `json:"series"`
	}{uid, st.PatientName, st.PatientID, st.StudyDate, st.StudyDescription, out})
}

func (s *server) listInstances(w http.ResponseWriter, r *http.Request) {
	uid := uidParam(w, r, "series", "series")
	if uid == "" {
		return
	}
	ins, err := s.store.Catalog.Instances(r.Context(), storage.Query{
		Match: map[string]string{"SeriesInstanceUID": uid}, Limit: maxSeriesInstances + 1,
	})
	if err != nil {
		s.catalogError(w, "instances", err)
		return
	}
	if len(ins) == 0 {
		writeError(w, http.StatusNotFound, "unknown series")
		return
	}
	more := len(ins) > maxSeriesInstances
	if more {
		ins = ins[:maxSeriesInstances]
	}
	sortForViewing(ins)
	out := make([]instanceRow, 0, len(ins))
	for _, in := range ins {
		out = append(out, instanceRow{SOPInstanceUID: in.SOPInstanceUID, Number: in.InstanceNumber, Frames: in.NumberOfFrames,
			Rows: in.Rows, Columns: in.Columns, TransferSyntaxUID: in.TransferSyntaxUID, Size: in.Size})
	}
	first := ins[0]
	writeJSON(w, http.StatusOK, struct {
		StudyUID    string        `json:"studyUID"`
		SeriesUID   string        `json:"seriesUID"`
		Number      *int          `json:"number"`
		Modality    string        `json:"modality"`
		Description string        `json:"description"`
		Instances   []instanceRow `json:"instances"`
		More        bool          `json:"more"`
	}{first.StudyInstanceUID, uid, first.SeriesNumber, first.Modality, first.SeriesDescription, out, more})
}

// sortForViewing orders a series as it is scrolled: by Instance Number,
// instances without one last, ties by SOP Instance UID so the order is
// stable. The catalog already sorts by number; this makes the viewing
// order a property of this API, not of a database's NULL ordering.
func sortForViewing(ins []storage.Instance) {
	less := func(a, b storage.Instance) bool {
		switch {
		case a.InstanceNumber == nil && b.InstanceNumber == nil:
		case a.InstanceNumber == nil:
			return false
		case b.InstanceNumber == nil:
			return true
		case *a.InstanceNumber != *b.InstanceNumber:
			return *a.InstanceNumber < *b.InstanceNumber
		}
		return a.SOPInstanceUID < b.SOPInstanceUID
	}
	// Insertion sort: the input is nearly always sorted already.
	for i := 1; i < len(ins); i++ {
		for j := i; j > 0 && less(ins[j], ins[j-1]); j-- {
			ins[j], ins[j-1] = ins[j-1], ins[j]
		}
	}
}

// instance looks up the instance the URL's {sop} names, answering 404 (or
// 500) itself when it cannot.
func (s *server) instance(w http.ResponseWriter, r *http.Request) (storage.Instance, bool) {
	uid := uidParam(w, r, "sop", "instance")
	if uid == "" {
		return storage.Instance{}, false
	}
	in, err := s.store.Catalog.GetInstance(r.Context(), uid)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, "unknown instance")
		return in, false
	}
	if err != nil {
		s.catalogError(w, "instance", err)
		return in, false
	}
	return in, true
}

// openStored parses a stored instance's header, answering the client
// itself on failure. Frames are read from the blob later, so done must be
// called once the File is no longer used.
func (s *server) openStored(w http.ResponseWriter, r *http.Request, in storage.Instance) (*dicom.File, func(), bool) {
	f, done, err := s.store.Open(r.Context(), in)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			s.log.Error("stored instance has no blob", "sop", in.SOPInstanceUID, "err", err)
			writeError(w, http.StatusInternalServerError, "the stored file is missing")
			return nil, nil, false
		}
		s.log.Warn("stored instance unreadable", "sop", in.SOPInstanceUID, "err", err)
		writeError(w, http.StatusUnprocessableEntity, cleanStored(err))
		return nil, nil, false
	}
	return f, done, true
}

// instanceDetail is GET /api/instances/{sop}: the same summary and header
// as a testdata file (the viewer reads both alike), and where it belongs.
type instanceDetail struct {
	fileDetail
	StudyUID   string    `json:"studyUID"`
	SeriesUID  string    `json:"seriesUID"`
	ReceivedAt time.Time `json:"receivedAt"`
}

func (s *server) getInstance(w http.ResponseWriter, r *http.Request) {
	in, ok := s.instance(w, r)
	if !ok {
		return
	}
	f, done, ok := s.openStored(w, r, in)
	if !ok {
		return
	}
	defer done()
	e := &entry{ID: in.SOPInstanceUID, Size: in.Size, Meta: &f.Meta, Frames: f.NumFrames()}
	writeJSON(w, http.StatusOK, instanceDetail{
		fileDetail: fileDetail{fileSummary: summarize(e), Meta: &f.Meta},
		StudyUID:   in.StudyInstanceUID, SeriesUID: in.SeriesInstanceUID, ReceivedAt: in.ReceivedAt,
	})
}

func (s *server) renderInstance(w http.ResponseWriter, r *http.Request) {
	in, ok := s.instance(w, r)
	if !ok {
		return
	}
	f, done, ok := s.openStored(w, r, in)
	if !ok {
		return
	}
	defer done()
	s.serveFrame(w, r, frameSource{
		id: in.SOPInstanceUID,
		// A stored copy never changes, and each has its own blob key.
		version: in.BlobKey,
		meta:    &f.Meta,
		frames:  f.NumFrames(),
		render:  func(n int, v view) (rendered, error) { return renderFile(f, n, v) },
		clean:   cleanStored,
	})
}

// cleanStored is an error about a stored instance as the client may see
// it: the blob store's paths stay on the server.
func cleanStored(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "the stored file cannot be read"
	}
	return err.Error()
}

// redactQuery is the query string as the request log may show it: search
// fields that hold patient data are replaced.
func redactQuery(u *url.URL) string {
	if u.RawQuery == "" || !strings.HasPrefix(u.Path, "/api/studies") {
		return u.RawQuery
	}
	q := u.Query()
	for _, k := range []string{"patientName", "patientId", "accession"} {
		if q.Has(k) {
			q.Set(k, "redacted")
		}
	}
	return q.Encode()
}
