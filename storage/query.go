package storage

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Level is a QIDO-RS query level.
type Level int

// The query levels, each including the keys of the levels above it.
const (
	LevelStudy Level = iota + 1
	LevelSeries
	LevelInstance
)

// keyKind says how a matching key's value is interpreted.
type keyKind int

const (
	kindText       keyKind = iota + 1 // exact or * ? wildcard, case-sensitive
	kindPN                            // like kindText on the normalised name
	kindUID                           // exact, or a list of UIDs
	kindDate                          // DA: exact or range
	kindTime                          // TM: exact or range
	kindInt                           // IS/US: exact integer
	kindModalities                    // any series of the study matches
)

type keySpec struct {
	level  Level
	kind   keyKind
	column string // SQL expression over the aliases p, st, se, i
}

// maxListValues bounds UID list matching so that one query cannot exceed
// the databases' limits on bound parameters.
const maxListValues = 1000

// maxMatchValue bounds a single matching value other than a list; DICOM
// values are short (LO 64, PN 64 per group), so anything far longer is not
// a query.
const maxMatchValue = 1024

var matchKeys = map[string]keySpec{
	"PatientID":              {LevelStudy, kindText, "p.patient_id"},
	"PatientName":            {LevelStudy, kindPN, "p.patient_name_norm"},
	"PatientBirthDate":       {LevelStudy, kindDate, "p.birth_date"},
	"PatientSex":             {LevelStudy, kindText, "p.sex"},
	"StudyInstanceUID":       {LevelStudy, kindUID, "st.study_uid"},
	"StudyDate":              {LevelStudy, kindDate, "st.study_date"},
	"StudyTime":              {LevelStudy, kindTime, "st.study_time"},
	"AccessionNumber":        {LevelStudy, kindText, "st.accession_number"},
	"ModalitiesInStudy":      {LevelStudy, kindModalities, "m.modality"},
	"StudyDescription":       {LevelStudy, kindText, "st.study_description"},
	"ReferringPhysicianName": {LevelStudy, kindPN, "st.referring_physician_norm"},
	"StudyID":                {LevelStudy, kindText, "st.study_id"},
	"SeriesInstanceUID":      {LevelSeries, kindUID, "se.series_uid"},
	"Modality":               {LevelSeries, kindText, "se.modality"},
	"SeriesNumber":           {LevelSeries, kindInt, "se.series_number"},
	"SeriesDescription":      {LevelSeries, kindText, "se.series_description"},
	"SOPClassUID":            {LevelInstance, kindUID, "i.sop_class_uid"},
	"SOPInstanceUID":         {LevelInstance, kindUID, "i.sop_uid"},
	"InstanceNumber":         {LevelInstance, kindInt, "i.instance_number"},
	"TransferSyntaxUID":      {LevelInstance, kindUID, "i.transfer_syntax_uid"},
	"NumberOfFrames":         {LevelInstance, kindInt, "i.number_of_frames"},
	"Rows":                   {LevelInstance, kindInt, "i.pixel_rows"},
	"Columns":                {LevelInstance, kindInt, "i.pixel_columns"},
}

// SupportedKeys lists the matching keys a query at level accepts, sorted.
func SupportedKeys(level Level) []string {
	var keys []string
	for k, s := range matchKeys {
		if s.level <= level {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// whereBuilder collects SQL conditions and their arguments, numbering the
// placeholders $1, $2, ... (both PostgreSQL and SQLite accept that form).
type whereBuilder struct {
	d     *dialect
	conds []string
	args  []any
}

func (w *whereBuilder) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *whereBuilder) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// build turns q's matching keys into conditions for a query at level. Keys
// are handled in sorted order so that the same query gives the same SQL.
func (w *whereBuilder) build(level Level, q Query) error {
	if q.Limit < 0 || q.Offset < 0 {
		return fmt.Errorf("%w: negative limit or offset", ErrBadQuery)
	}
	keys := make([]string, 0, len(q.Match))
	for k := range q.Match {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		spec, ok := matchKeys[k]
		if !ok || spec.level > level {
			return fmt.Errorf("%w: %q is not a matching key at this level", ErrBadQuery, k)
		}
		if err := w.add(spec, q.Match[k]); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func (w *whereBuilder) add(spec keySpec, v string) error {
	limit := maxMatchValue
	if spec.kind == kindUID || spec.kind == kindModalities {
		limit = maxListValues * (64 + 1) // a list of the longest UIDs
	}
	if len(v) > limit {
		return fmt.Errorf("%w: value longer than %d bytes", ErrBadQuery, limit)
	}
	switch spec.kind {
	case kindText:
		return w.addText(spec.column, v)
	case kindPN:
		return w.addText(spec.column, normalizePN(v))
	case kindUID:
		return w.addUIDs(spec.column, v)
	case kindDate:
		return w.addRange(spec.column, NormalizeDA(v), validDate, "")
	case kindTime:
		return w.addRange(spec.column, NormalizeTM(v), validTime, "~")
	case kindInt:
		return w.addInt(spec.column, v)
	case kindModalities:
		return w.addModalities(v)
	}
	return fmt.Errorf("%w: unknown key kind", ErrBadQuery)
}

// addText adds single value, wildcard or universal matching.
func (w *whereBuilder) addText(col, v string) error {
	switch {
	case strings.Trim(v, "*") == "":
		// Universal matching: "" and "*" match everything, even empty.
		return nil
	case strings.ContainsAny(v, "*?"):
		w.conds = append(w.conds, w.d.wildcard(col, w.arg(w.d.pattern(v))))
	default:
		w.conds = append(w.conds, col+" = "+w.arg(v))
	}
	return nil
}

func (w *whereBuilder) addUIDs(col, v string) error {
	if v == "" {
		return nil
	}
	uids := splitList(v)
	if len(uids) == 0 {
		return fmt.Errorf("%w: %q lists no UID", ErrBadQuery, v)
	}
	if len(uids) > maxListValues {
		return fmt.Errorf("%w: more than %d UIDs", ErrBadQuery, maxListValues)
	}
	phs := make([]string, 0, len(uids))
	for _, u := range uids {
		if !validUID(u) {
			return fmt.Errorf("%w: %q is not a UID", ErrBadQuery, u)
		}
		phs = append(phs, w.arg(u))
	}
	if len(phs) == 1 {
		w.conds = append(w.conds, col+" = "+phs[0])
	} else {
		w.conds = append(w.conds, col+" IN ("+strings.Join(phs, ", ")+")")
	}
	return nil
}

// addRange adds exact or range matching for DA and TM, whose stored forms
// sort as strings. An empty stored value never matches a range (PS3.4
// C.2.2.2.5).
// hiPad is appended to an upper bound so that it includes everything
// within its precision: for TM, "-10" means up to 10:59:59.999999.
func (w *whereBuilder) addRange(col, v string, valid func(string) bool, hiPad string) error {
	if v == "" {
		return nil
	}
	lo, hi, isRange := strings.Cut(v, "-")
	if !isRange {
		if !valid(v) {
			return fmt.Errorf("%w: %q", ErrBadQuery, v)
		}
		w.conds = append(w.conds, col+" = "+w.arg(v))
		return nil
	}
	if lo == "" && hi == "" || lo != "" && !valid(lo) || hi != "" && !valid(hi) {
		return fmt.Errorf("%w: bad range %q", ErrBadQuery, v)
	}
	w.conds = append(w.conds, col+" <> ''")
	if lo != "" {
		w.conds = append(w.conds, col+" >= "+w.arg(lo))
	}
	if hi != "" {
		w.conds = append(w.conds, col+" <= "+w.arg(hi+hiPad))
	}
	return nil
}

func (w *whereBuilder) addInt(col, v string) error {
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return fmt.Errorf("%w: %q is not an integer", ErrBadQuery, v)
	}
	w.conds = append(w.conds, col+" = "+w.arg(int(n)))
	return nil
}

// addModalities matches a study if any of its series has one of the
// listed modalities (or matches the wildcard).
func (w *whereBuilder) addModalities(v string) error {
	if v == "" || v == "*" {
		return nil
	}
	list := splitList(v)
	if len(list) == 0 {
		return fmt.Errorf("%w: %q lists no modality", ErrBadQuery, v)
	}
	var alts []string
	for _, m := range list {
		if len(alts) == maxListValues {
			return fmt.Errorf("%w: more than %d modalities", ErrBadQuery, maxListValues)
		}
		if strings.ContainsAny(m, "*?") {
			alts = append(alts, w.d.wildcard("m.modality", w.arg(w.d.pattern(m))))
		} else {
			alts = append(alts, "m.modality = "+w.arg(m))
		}
	}
	w.conds = append(w.conds, "EXISTS (SELECT 1 FROM series m WHERE m.study_pk = st.id AND ("+
		strings.Join(alts, " OR ")+"))")
	return nil
}

// splitList splits a multi-valued QIDO value: DICOM separates values with
// a backslash, QIDO URLs with a comma.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == '\\' || r == ',' })
}

func validUID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// NormalizeDA turns the ACR-NEMA date form "YYYY.MM.DD", which old
// modalities still write (PS3.5 6.2, note), into DICOM's YYYYMMDD, in a
// single date or either end of a range; other values are returned as they
// are. The catalog stores and matches dates in the DICOM form only.
func NormalizeDA(v string) string {
	if !strings.Contains(v, ".") {
		return v
	}
	lo, hi, isRange := strings.Cut(v, "-")
	fix := func(d string) string {
		if len(d) == 10 && d[4] == '.' && d[7] == '.' && validDate(d[:4]+d[5:7]+d[8:]) {
			return d[:4] + d[5:7] + d[8:]
		}
		return d
	}
	if isRange {
		return fix(lo) + "-" + fix(hi)
	}
	return fix(v)
}

// NormalizeTM turns the ACR-NEMA time form "HH:MM:SS[.F]" into DICOM's
// HHMMSS[.F], in a single time or either end of a range.
func NormalizeTM(v string) string {
	if !strings.Contains(v, ":") {
		return v
	}
	lo, hi, isRange := strings.Cut(v, "-")
	fix := func(t string) string {
		if whole, frac, hasFrac := strings.Cut(t, "."); len(whole) == 8 && whole[2] == ':' && whole[5] == ':' {
			t = whole[:2] + whole[3:5] + whole[6:]
			if hasFrac {
				t += "." + frac
			}
		}
		return t
	}
	if isRange {
		return fix(lo) + "-" + fix(hi)
	}
	return fix(v)
}

// validDate accepts DA values: YYYYMMDD.
func validDate(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validTime accepts TM values: HH, HHMM, HHMMSS, HHMMSS.F{1,6}.
func validTime(s string) bool {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if len(whole) != 2 && len(whole) != 4 && len(whole) != 6 || hasFrac && (len(whole) != 6 || len(frac) < 1 || len(frac) > 6) {
		return false
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

// normalizePN gives the form person names are stored and matched in: upper
// case (PN matching may ignore case, PS3.4 C.2.2.2.1), without padding,
// trailing empty components or trailing empty component groups, so that
// "Smith^John^^^" and "SMITH^JOHN" are the same name.
func normalizePN(s string) string {
	groups := strings.Split(strings.ToUpper(strings.TrimSpace(s)), "=")
	for i, g := range groups {
		comps := strings.Split(g, "^")
		for j := range comps {
			comps[j] = strings.TrimSpace(comps[j])
		}
		for len(comps) > 0 && comps[len(comps)-1] == "" {
			comps = comps[:len(comps)-1]
		}
		groups[i] = strings.Join(comps, "^")
	}
	for len(groups) > 0 && groups[len(groups)-1] == "" {
		groups = groups[:len(groups)-1]
	}
	return strings.Join(groups, "=")
}
