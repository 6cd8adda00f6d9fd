package dicomweb

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/suyashkumar/dicom/pkg/tag"

	"lightbox/storage"
)

// qidoQuery is a parsed QIDO-RS request.
type qidoQuery struct {
	q       storage.Query
	include map[string]bool // keywords asked for by includefield
	all     bool            // includefield=all
	limited bool            // the limit was cut to the server's maximum
}

// maxQueryParams bounds the parameters of one query.
const maxQueryParams = 64

// parseQuery reads the query parameters of a QIDO-RS request at level
// (PS3.18 8.3.4): matching keys by keyword or tag, includefield, limit,
// offset; fuzzymatching is accepted and ignored. Keys the level cannot
// match give an error naming them.
func parseQuery(rawQuery string, level storage.Level, maxResults int) (qidoQuery, error) {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return qidoQuery{}, fmt.Errorf("query string: %v", err)
	}
	if len(vals) > maxQueryParams {
		return qidoQuery{}, fmt.Errorf("more than %d query parameters", maxQueryParams)
	}
	qq := qidoQuery{q: storage.Query{Match: map[string]string{}}, include: map[string]bool{}}
	supported := map[string]bool{}
	for _, k := range storage.SupportedKeys(level) {
		supported[k] = true
	}
	limit := -1
	for key, vs := range vals {
		switch strings.ToLower(key) {
		case "limit", "offset":
			if len(vs) != 1 {
				return qidoQuery{}, fmt.Errorf("%s given %d times", key, len(vs))
			}
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 0 {
				return qidoQuery{}, fmt.Errorf("%s must be a whole number, not %q", key, vs[0])
			}
			if strings.EqualFold(key, "limit") {
				limit = n
			} else {
				qq.q.Offset = n
			}
		case "fuzzymatching":
			// Lightbox matches exactly; PS3.18 lets it ignore the request.
		case "includefield":
			for _, v := range vs {
				for _, f := range strings.Split(v, ",") {
					f = strings.TrimSpace(f)
					if strings.EqualFold(f, "all") {
						qq.all = true
						continue
					}
					kw, err := keyword(f)
					if err != nil {
						return qidoQuery{}, fmt.Errorf("includefield: %v", err)
					}
					qq.include[kw] = true
				}
			}
		default:
			kw, err := keyword(key)
			if err != nil {
				return qidoQuery{}, err
			}
			if !supported[kw] {
				return qidoQuery{}, fmt.Errorf("%s is not a matching key here; supported: %s", kw, strings.Join(storage.SupportedKeys(level), ", "))
			}
			if _, dup := qq.q.Match[kw]; dup || len(vs) != 1 {
				return qidoQuery{}, fmt.Errorf("%s given more than once", kw)
			}
			qq.q.Match[kw] = vs[0]
		}
	}
	if limit <= 0 || limit > maxResults {
		qq.limited = true
		limit = maxResults
	}
	qq.q.Limit = limit
	return qq, nil
}

// keyword resolves a QIDO attribute name — a keyword or eight hex digits
// of a tag — to its keyword.
func keyword(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty attribute name")
	}
	if strings.Contains(s, ".") {
		return "", fmt.Errorf("%q: sequence matching is not supported", s)
	}
	if len(s) == 8 {
		if n, err := strconv.ParseUint(s, 16, 32); err == nil {
			info, err := tag.Find(tag.Tag{Group: uint16(n >> 16), Element: uint16(n)})
			if err != nil {
				return "", fmt.Errorf("%q is not a tag Lightbox knows", s)
			}
			return info.Keyword, nil
		}
	}
	info, err := tag.FindByKeyword(s)
	if err != nil || info.Keyword != s {
		return "", fmt.Errorf("%q is not a DICOM keyword", s)
	}
	return s, nil
}

// qido answers a QIDO-RS search at level.
func (s *server) qido(level storage.Level) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !acceptsJSON(r.Header.Get("Accept")) {
			httpError(w, http.StatusNotAcceptable, "QIDO-RS answers in application/dicom+json")
			return
		}
		qq, err := parseQuery(r.URL.RawQuery, level, s.maxResults)
		if err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		study, series := chi.URLParam(r, "study"), chi.URLParam(r, "series")
		for k, v := range map[string]string{"StudyInstanceUID": study, "SeriesInstanceUID": series} {
			if v == "" {
				continue
			}
			if old, ok := qq.q.Match[k]; ok && old != v {
				httpError(w, http.StatusBadRequest, k+" in the query differs from the one in the path")
				return
			}
			qq.q.Match[k] = v
		}
		// One more than asked tells whether the answer was cut short.
		want := qq.q.Limit
		qq.q.Limit++
		base := s.baseURL(r)
		var out []Object
		ctx := r.Context()
		switch level {
		case storage.LevelStudy:
			recs, e := s.store.Catalog.Studies(ctx, qq.q)
			err = e
			for _, rec := range recs {
				out = append(out, studyAttrs(rec, base, qq))
			}
		case storage.LevelSeries:
			recs, e := s.store.Catalog.Series(ctx, qq.q)
			err = e
			for _, rec := range recs {
				out = append(out, seriesAttrs(rec, base, qq, study == ""))
			}
		default:
			recs, e := s.store.Catalog.Instances(ctx, qq.q)
			err = e
			for _, rec := range recs {
				out = append(out, instanceAttrs(rec, base, qq, study == "", series == ""))
			}
		}
		if errors.Is(err, storage.ErrBadQuery) {
			httpError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "storage: "))
			return
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if len(out) > want {
			out = out[:want]
			if qq.limited {
				w.Header().Set("Warning", `299 lightbox "The number of results exceeded the maximum supported by the server. Additional results can be requested."`)
			}
		}
		writeJSON(w, http.StatusOK, jsonArray(out))
	}
}

// jsonArray is a DICOM JSON answer: an array of data sets, [] when empty.
type jsonArray []Object

// MarshalJSON writes the array.
func (a jsonArray) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	for i, o := range a {
		if i > 0 {
			b = append(b, ',')
		}
		ob, err := o.MarshalJSON()
		if err != nil {
			return nil, err
		}
		b = append(b, ob...)
	}
	return append(b, ']'), nil
}

// attrSet adds attributes to a QIDO-RS answer: always those of the level
// (PS3.18 Tables 10.6.3-3 to -5), and those of higher levels only when
// the search was not scoped to them or includefield asks.
type attrSet struct {
	o     Object
	qq    qidoQuery
	extra bool // the higher-level attributes go in whatever includefield says
}

func (a attrSet) put(t tag.Tag, kw, vr, v string, always bool) {
	if always || a.extra || a.qq.all || a.qq.include[kw] {
		a.o.SetString(t.Uint32(), vr, v)
	}
}

func (a attrSet) putInt(t tag.Tag, kw, vr string, v *int, always bool) {
	if !(always || a.extra || a.qq.all || a.qq.include[kw]) {
		return
	}
	if v == nil {
		a.o.Set(t.Uint32(), vr)
		return
	}
	a.o.Set(t.Uint32(), vr, int64(*v))
}

func (a attrSet) patientStudy(p storage.Patient, st storage.Study, always bool) {
	a.put(tag.StudyInstanceUID, "StudyInstanceUID", "UI", st.StudyInstanceUID, true)
	a.put(tag.StudyDate, "StudyDate", "DA", st.StudyDate, always)
	a.put(tag.StudyTime, "StudyTime", "TM", st.StudyTime, always)
	a.put(tag.AccessionNumber, "AccessionNumber", "SH", st.AccessionNumber, always)
	a.put(tag.ReferringPhysicianName, "ReferringPhysicianName", "PN", st.ReferringPhysicianName, always)
	a.put(tag.StudyDescription, "StudyDescription", "LO", st.StudyDescription, always)
	a.put(tag.StudyID, "StudyID", "SH", st.StudyID, always)
	a.put(tag.PatientName, "PatientName", "PN", p.PatientName, always)
	a.put(tag.PatientID, "PatientID", "LO", p.PatientID, always)
	a.put(tag.PatientBirthDate, "PatientBirthDate", "DA", p.PatientBirthDate, always)
	a.put(tag.PatientSex, "PatientSex", "CS", p.PatientSex, always)
}

func studyAttrs(rec storage.StudyRecord, base string, qq qidoQuery) Object {
	a := attrSet{o: Object{}, qq: qq}
	a.patientStudy(rec.Patient, rec.Study, true)
	mods := make([]any, 0, len(rec.ModalitiesInStudy))
	for _, m := range rec.ModalitiesInStudy {
		mods = append(mods, m)
	}
	a.o.Set(tag.ModalitiesInStudy.Uint32(), "CS", mods...)
	a.o.Set(tag.NumberOfStudyRelatedSeries.Uint32(), "IS", int64(rec.NumberOfStudyRelatedSeries))
	a.o.Set(tag.NumberOfStudyRelatedInstances.Uint32(), "IS", int64(rec.NumberOfStudyRelatedInstances))
	a.o.SetString(tag.InstanceAvailability.Uint32(), "CS", "ONLINE")
	a.o.SetString(tag.RetrieveURL.Uint32(), "UR", studyURL(base, rec.StudyInstanceUID))
	return a.o
}

func (a attrSet) series(se storage.Series, always bool) {
	a.put(tag.SeriesInstanceUID, "SeriesInstanceUID", "UI", se.SeriesInstanceUID, true)
	a.put(tag.Modality, "Modality", "CS", se.Modality, always)
	a.put(tag.SeriesDescription, "SeriesDescription", "LO", se.SeriesDescription, always)
	a.putInt(tag.SeriesNumber, "SeriesNumber", "IS", se.SeriesNumber, always)
}

func seriesAttrs(rec storage.SeriesRecord, base string, qq qidoQuery, allStudies bool) Object {
	a := attrSet{o: Object{}, qq: qq, extra: allStudies}
	a.patientStudy(rec.Patient, rec.Study, false)
	a.series(rec.Series, true)
	a.o.Set(tag.NumberOfSeriesRelatedInstances.Uint32(), "IS", int64(rec.NumberOfSeriesRelatedInstances))
	a.o.SetString(tag.InstanceAvailability.Uint32(), "CS", "ONLINE")
	a.o.SetString(tag.RetrieveURL.Uint32(), "UR", seriesURL(base, rec.StudyInstanceUID, rec.SeriesInstanceUID))
	return a.o
}

func instanceAttrs(in storage.Instance, base string, qq qidoQuery, allStudies, allSeries bool) Object {
	a := attrSet{o: Object{}, qq: qq, extra: allStudies}
	a.patientStudy(in.Patient, in.Study, false)
	a.extra = allSeries
	a.series(in.Series, false)
	a.extra = false
	a.put(tag.SOPClassUID, "SOPClassUID", "UI", in.SOPClassUID, true)
	a.put(tag.SOPInstanceUID, "SOPInstanceUID", "UI", in.SOPInstanceUID, true)
	a.putInt(tag.InstanceNumber, "InstanceNumber", "IS", in.InstanceNumber, true)
	if in.Rows > 0 {
		a.o.Set(tag.Rows.Uint32(), "US", int64(in.Rows))
		a.o.Set(tag.Columns.Uint32(), "US", int64(in.Columns))
	}
	if in.NumberOfFrames > 0 {
		a.o.Set(tag.NumberOfFrames.Uint32(), "IS", int64(in.NumberOfFrames))
	}
	a.put(tag.AvailableTransferSyntaxUID, "AvailableTransferSyntaxUID", "UI", in.TransferSyntaxUID, false)
	a.o.SetString(tag.InstanceAvailability.Uint32(), "CS", "ONLINE")
	a.o.SetString(tag.RetrieveURL.Uint32(), "UR", instanceURL(base, in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID))
	return a.o
}
