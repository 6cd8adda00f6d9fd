package dicomweb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"lightbox/storage"
)

func TestParseQuery(t *testing.T) {
	cases := []struct {
		raw     string
		level   storage.Level
		match   map[string]string
		include []string
		all     bool
		limit   int
		offset  int
		err     string
	}{
		{raw: "", level: storage.LevelStudy, match: map[string]string{}, limit: 100},
		{raw: "PatientName=DOE*&StudyDate=20200101-20201231", level: storage.LevelStudy,
			match: map[string]string{"PatientName": "DOE*", "StudyDate": "20200101-20201231"}, limit: 100},
		{raw: "00100010=DOE%5EJOHN&0020000D=1.2.3", level: storage.LevelStudy,
			match: map[string]string{"PatientName": "DOE^JOHN", "StudyInstanceUID": "1.2.3"}, limit: 100},
		{raw: "0020000d=1.2.3", level: storage.LevelStudy, match: map[string]string{"StudyInstanceUID": "1.2.3"}, limit: 100},
		{raw: "limit=10&offset=20&fuzzymatching=true", level: storage.LevelStudy, match: map[string]string{}, limit: 10, offset: 20},
		{raw: "limit=1000", level: storage.LevelStudy, match: map[string]string{}, limit: 100},
		{raw: "limit=0", level: storage.LevelStudy, match: map[string]string{}, limit: 100},
		{raw: "includefield=PatientBirthDate,00100040&includefield=StudyID", level: storage.LevelSeries,
			match: map[string]string{}, include: []string{"PatientBirthDate", "PatientSex", "StudyID"}, limit: 100},
		{raw: "includefield=all", level: storage.LevelInstance, match: map[string]string{}, all: true, limit: 100},
		{raw: "SOPInstanceUID=1.2", level: storage.LevelInstance, match: map[string]string{"SOPInstanceUID": "1.2"}, limit: 100},
		{raw: "SOPInstanceUID=1.2", level: storage.LevelStudy, err: "not a matching key here"},
		{raw: "Modality=CT", level: storage.LevelStudy, err: "not a matching key here"},
		{raw: "PatientsName=DOE", level: storage.LevelStudy, err: "not a DICOM keyword"},
		{raw: "Patient%27s+Name=DOE", level: storage.LevelStudy, err: "not a DICOM keyword"},
		{raw: "FFFF0001=1", level: storage.LevelStudy, err: "not a tag"},
		{raw: "WindowCenter=40", level: storage.LevelInstance, err: "not a matching key here"},
		{raw: "ReferencedStudySequence.StudyInstanceUID=1", level: storage.LevelStudy, err: "sequence matching"},
		{raw: "PatientID=1&PatientID=2", level: storage.LevelStudy, err: "more than once"},
		{raw: "PatientID=1&00100020=2", level: storage.LevelStudy, err: "more than once"},
		{raw: "limit=-1", level: storage.LevelStudy, err: "whole number"},
		{raw: "limit=ten", level: storage.LevelStudy, err: "whole number"},
		{raw: "offset=1&offset=2", level: storage.LevelStudy, err: "given 2 times"},
		{raw: "includefield=Nonsense", level: storage.LevelStudy, err: "includefield"},
		{raw: "a=%zz", level: storage.LevelStudy, err: "query string"},
	}
	for _, tc := range cases {
		got, err := parseQuery(tc.raw, tc.level, 100)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.raw, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.raw, err)
			continue
		}
		if fmt.Sprint(got.q.Match) != fmt.Sprint(tc.match) || got.q.Limit != tc.limit || got.q.Offset != tc.offset || got.all != tc.all {
			t.Errorf("%q: %+v, want match %v limit %d offset %d all %v", tc.raw, got, tc.match, tc.limit, tc.offset, tc.all)
		}
		var inc []string
		for k := range got.include {
			inc = append(inc, k)
		}
		sort.Strings(inc)
		if fmt.Sprint(inc) != fmt.Sprint(tc.include) && len(inc)+len(tc.include) > 0 {
			t.Errorf("%q: includes %v, want %v", tc.raw, inc, tc.include)
		}
	}
}

// qido runs a search and decodes the answer.
func (ts *testServer) qido(t *testing.T, path string) []map[string]jsonAttr {
	t.Helper()
	resp := ts.do(t, "GET", path, nil, "Accept", "application/dicom+json")
	b := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/dicom+json" {
		t.Fatalf("GET %s: Content-Type %s", path, ct)
	}
	var out []map[string]jsonAttr
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
	if out == nil {
		t.Fatalf("GET %s: %s is not an array", path, b)
	}
	return out
}

func uidsOf(t *testing.T, res []map[string]jsonAttr, tag string) []string {
	var out []string
	for _, r := range res {
		out = append(out, r[tag].str(t))
	}
	sort.Strings(out)
	return out
}

func TestQIDO(t *testing.T) {
	ts, _ := sharedServer(t)
	first := firstCopies(testFiles(t))
	studies := map[string][]testFile{}
	for _, f := range first {
		studies[f.meta.Study.InstanceUID] = append(studies[f.meta.Study.InstanceUID], f)
	}
	var want []string
	for uid := range studies {
		want = append(want, uid)
	}
	sort.Strings(want)

	all := ts.qido(t, "/studies")
	if got := uidsOf(t, all, "0020000D"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("studies %v, want %v", got, want)
	}
	for _, st := range all {
		uid := st["0020000D"].str(t)
		if n := int(st["00201208"].num(t)); n != len(studies[uid]) {
			t.Errorf("study %s: %d instances, want %d", uid, n, len(studies[uid]))
		}
		if got := st["00081190"].str(t); got != ts.URL+"/dicom-web/studies/"+uid {
			t.Errorf("study RetrieveURL %s", got)
		}
		mods := map[string]bool{}
		for _, f := range studies[uid] {
			if f.meta.Series.Modality != "" {
				mods[f.meta.Series.Modality] = true
			}
		}
		if len(st["00080061"].Value) != len(mods) {
			t.Errorf("study %s: ModalitiesInStudy %v, want %v", uid, st["00080061"].Value, mods)
		}
		if st["00100010"].VR != "PN" || st["00201206"].VR != "IS" || st["00080020"].VR != "DA" {
			t.Errorf("study %s: VRs %+v", uid, st)
		}
	}

	// One file's keys find its study, whichever way they are written.
	var f testFile
	for _, c := range first {
		if c.meta.Patient.Name != "" && c.meta.Study.Date != "" && len(c.meta.Patient.Name) > 3 {
			f = c
			break
		}
	}
	if f.path == "" {
		t.Fatal("no testdata file with a patient name and a study date")
	}
	st := f.meta.Study.InstanceUID
	prefix := strings.ToLower(f.meta.Patient.Name[:3])
	for _, q := range []string{
		"PatientName=" + url.QueryEscape(prefix) + "*",
		"00100010=" + url.QueryEscape(prefix) + "*",
		"StudyDate=" + f.meta.Study.Date,
		"StudyDate=" + f.meta.Study.Date + "-",
		"StudyDate=-" + f.meta.Study.Date,
		"StudyDate=19000101-" + f.meta.Study.Date,
		"StudyInstanceUID=" + st,
		"0020000D=" + st,
		"StudyInstanceUID=1.2.3," + st,
		"PatientID=" + url.QueryEscape(f.meta.Patient.ID),
		"ModalitiesInStudy=" + f.meta.Series.Modality,
		"fuzzymatching=true&StudyInstanceUID=" + st,
	} {
		res := ts.qido(t, "/studies?"+q)
		found := false
		for _, r := range res {
			found = found || r["0020000D"].str(t) == st
		}
		if !found {
			t.Errorf("%s: study %s not found among %d", q, st, len(res))
		}
		if strings.HasPrefix(q, "PatientName") {
			for _, r := range res {
				var pn struct{ Alphabetic string }
				json.Unmarshal(r["00100010"].Value[0], &pn)
				if !strings.HasPrefix(strings.ToLower(pn.Alphabetic), prefix) {
					t.Errorf("%s matched %q", q, pn.Alphabetic)
				}
			}
		}
	}
	for _, q := range []string{"StudyDate=18000101-18001231", "StudyInstanceUID=1.2.3", "PatientName=NOBODY*"} {
		if res := ts.qido(t, "/studies?"+q); len(res) != 0 {
			t.Errorf("%s: %d studies, want none", q, len(res))
		}
	}

	// limit and offset page through the stable order.
	if len(all) < 4 {
		t.Fatalf("only %d studies", len(all))
	}
	page := ts.qido(t, "/studies?limit=2&offset=1")
	if len(page) != 2 || page[0]["0020000D"].str(t) != all[1]["0020000D"].str(t) || page[1]["0020000D"].str(t) != all[2]["0020000D"].str(t) {
		t.Errorf("limit=2&offset=1 gave %v", uidsOf(t, page, "0020000D"))
	}
	if res := ts.qido(t, fmt.Sprintf("/studies?offset=%d", len(all))); len(res) != 0 {
		t.Errorf("offset past the end: %d", len(res))
	}

	// Series of one study: study attributes only when asked.
	series := ts.qido(t, "/studies/"+st+"/series")
	if len(series) == 0 {
		t.Fatal("no series")
	}
	if _, ok := series[0]["00100010"]; ok {
		t.Error("series of a study carry PatientName without includefield")
	}
	for _, inc := range []string{"PatientName", "00100010", "all"} {
		res := ts.qido(t, "/studies/"+st+"/series?includefield="+inc)
		if _, ok := res[0]["00100010"]; !ok {
			t.Errorf("includefield=%s: no PatientName", inc)
		}
	}
	// All series: study attributes come along (PS3.18 10.6.3.3.2).
	res := ts.qido(t, "/series?Modality="+f.meta.Series.Modality)
	for _, r := range res {
		if r["00080060"].str(t) != f.meta.Series.Modality {
			t.Errorf("Modality=%s matched %s", f.meta.Series.Modality, r["00080060"].str(t))
		}
		if _, ok := r["00100020"]; !ok {
			t.Error("/series without PatientID")
		}
	}

	// Instances of one series.
	se := f.meta.Series.InstanceUID
	var inSeries []string
	for _, c := range first {
		if c.meta.Series.InstanceUID == se {
			inSeries = append(inSeries, c.meta.SOPInstanceUID)
		}
	}
	sort.Strings(inSeries)
	ins := ts.qido(t, "/studies/"+st+"/series/"+se+"/instances")
	if got := uidsOf(t, ins, "00080018"); fmt.Sprint(got) != fmt.Sprint(inSeries) {
		t.Errorf("instances %v, want %v", got, inSeries)
	}
	for _, r := range ins {
		want := ts.URL + "/dicom-web/studies/" + st + "/series/" + se + "/instances/" + r["00080018"].str(t)
		if got := r["00081190"].str(t); got != want {
			t.Errorf("instance RetrieveURL %s, want %s", got, want)
		}
		if _, ok := r["0020000E"]; !ok {
			t.Error("instance without SeriesInstanceUID")
		}
	}
	if res := ts.qido(t, "/instances?SOPInstanceUID="+f.meta.SOPInstanceUID); len(res) != 1 || res[0]["00100020"].VR == "" {
		t.Errorf("/instances by SOPInstanceUID: %v", res)
	}
	if res := ts.qido(t, "/studies/"+st+"/instances?includefield=AvailableTransferSyntaxUID"); len(res) == 0 || res[0]["00083002"].str(t) == "" {
		t.Errorf("study instances with includefield=AvailableTransferSyntaxUID: %v", res)
	}

	// Bad requests.
	for _, path := range []string{
		"/studies?Modality=CT", "/studies?NotAKey=1", "/studies?StudyDate=yesterday",
		"/studies?limit=x", "/series?SOPInstanceUID=abc", "/studies?includefield=Nope",
		"/studies/" + st + "/series?StudyInstanceUID=1.2.3",
	} {
		resp := ts.do(t, "GET", path, nil)
		b := readAll(t, resp)
		if resp.StatusCode != http.StatusBadRequest || len(b) < 5 {
			t.Errorf("GET %s: %d %q, want 400 with a message", path, resp.StatusCode, b)
		}
	}
	if resp := ts.do(t, "GET", "/studies", nil, "Accept", "application/dicom+xml"); resp.StatusCode != http.StatusNotAcceptable {
		t.Errorf("XML QIDO: %d", resp.StatusCode)
	}
}

// Without a limit, answers stop at MaxResults with a Warning.
func TestQIDOMaxResults(t *testing.T) {
	ts, _ := sharedServer(t)
	h := New(Config{Store: ts.store, Authenticate: authenticate, MaxResults: 2})
	for _, tc := range []struct {
		query   string
		n       int
		warning bool
	}{{"", 2, true}, {"?limit=1", 1, false}, {"?limit=50", 2, true}} {
		req := httptest.NewRequest("GET", "/studies"+tc.query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var res []any
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != 200 {
			t.Fatalf("%s: %d %v", tc.query, rec.Code, err)
		}
		if len(res) != tc.n || (rec.Header().Get("Warning") != "") != tc.warning {
			t.Errorf("%s: %d results, Warning %q", tc.query, len(res), rec.Header().Get("Warning"))
		}
	}
}

func FuzzQIDOQuery(f *testing.F) {
	for _, s := range []string{
		"PatientName=DOE*&StudyDate=20200101-20201231&limit=10&offset=5",
		"00100010=D%3FE&includefield=all&fuzzymatching=true",
		"StudyInstanceUID=1.2.3%5C4.5.6&ModalitiesInStudy=CT,MR",
		"StudyTime=10-12&AccessionNumber=*",
		"SeriesNumber=3&InstanceNumber=+7&Rows=512",
		"includefield=00100010,StudyID&limit=0",
		"a=%zz&b",
	} {
		f.Add(s, uint8(1))
	}
	store := newStore(f)
	f.Fuzz(func(t *testing.T, raw string, lvl uint8) {
		level := storage.Level(lvl%3) + storage.LevelStudy
		qq, err := parseQuery(raw, level, 10)
		if err != nil {
			return
		}
		if qq.q.Limit < 1 || qq.q.Limit > 10 || qq.q.Offset < 0 {
			t.Fatalf("limit %d offset %d", qq.q.Limit, qq.q.Offset)
		}
		ctx := context.Background()
		switch level {
		case storage.LevelStudy:
			_, err = store.Catalog.Studies(ctx, qq.q)
		case storage.LevelSeries:
			_, err = store.Catalog.Series(ctx, qq.q)
		default:
			_, err = store.Catalog.Instances(ctx, qq.q)
		}
		if err != nil && !errors.Is(err, storage.ErrBadQuery) {
			t.Fatalf("%q: %v", raw, err)
		}
	})
}

// BenchmarkQIDO measures QIDO-RS study searches over 10,000 studies,
// through HTTP, and reports the latency percentiles.
func BenchmarkQIDO(b *testing.B) {
	store := newStore(b)
	ctx := context.Background()
	names := []string{"SMITH^JOHN", "JONES^MARY", "TAYLOR^ANN", "BROWN^DAVID", "WILSON^EMMA", "EVANS^TOM", "THOMAS^LUCY", "ROBERTS^SAM"}
	mods := []string{"CT", "MR", "CR", "DX", "US"}
	const studies = 10000
	start := time.Now()
	for i := 0; i < studies; i++ {
		n := i + 1
		in := storage.Instance{
			Patient: storage.Patient{PatientID: fmt.Sprintf("P%05d", i/2), PatientName: fmt.Sprintf("%s%d", names[i%len(names)], i/len(names)), PatientSex: "O"},
			Study: storage.Study{StudyInstanceUID: fmt.Sprintf("1.2.826.0.1.3680043.10.1.%d", i), StudyDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i%3650).Format("20060102"),
				StudyTime: "101500", AccessionNumber: fmt.Sprintf("A%06d", i), StudyDescription: "CHEST"},
			Series:         storage.Series{SeriesInstanceUID: fmt.Sprintf("1.2.826.0.1.3680043.10.2.%d", i), Modality: mods[i%len(mods)], SeriesNumber: &n},
			SOPClassUID:    "1.2.840.10008.5.1.4.1.1.2",
			SOPInstanceUID: fmt.Sprintf("1.2.826.0.1.3680043.10.3.%d", i), InstanceNumber: &n,
			TransferSyntaxUID: explicitLE, Size: 1, BlobKey: storage.NewBlobKey(fmt.Sprintf("1.2.826.0.1.3680043.10.3.%d", i)),
		}
		if _, err := store.Catalog.PutInstance(ctx, in, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("catalog of %d studies filled in %v", studies, time.Since(start).Round(time.Millisecond))
	ts := newTestServer(b, store, false)
	queries := []string{
		"/studies?limit=25",
		"/studies?PatientName=SMITH*&limit=25",
		"/studies?PatientID=P01234",
		"/studies?StudyDate=20200101-20200131&limit=50",
		"/studies?ModalitiesInStudy=CT&limit=25&offset=100",
		"/studies?AccessionNumber=A004321",
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := queries[i%len(queries)]
		t0 := time.Now()
		resp := ts.do(b, "GET", q, nil)
		body := readAll(b, resp)
		lat = append(lat, time.Since(t0))
		if resp.StatusCode != 200 || len(body) < 3 {
			b.Fatalf("%s: %d %s", q, resp.StatusCode, body)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
}
