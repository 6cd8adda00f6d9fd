package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"lightbox/dicom"
	"lightbox/storage"

	"lightbox/internal/chromium"
)

// storedStudy is what the catalog must say of one study, worked out from
// the files that were stored.
type storedStudy struct {
	uid, patientName, patientID, date, accession string
	series                                       map[string]int // series UID → instances
	modalities                                   map[string]bool
	instances                                    int
}

func storedStudies(t testing.TB, want expected) map[string]*storedStudy {
	t.Helper()
	out := map[string]*storedStudy{}
	// A study shows the patient of its first instance received: the
	// catalog identifies patients by ID, name and birth date together,
	// so files without an ID never share a name.
	for _, p := range want.order {
		f, err := dicom.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		m := f.Meta
		st := out[m.Study.InstanceUID]
		if st == nil {
			st = &storedStudy{uid: m.Study.InstanceUID, patientName: m.Patient.Name, patientID: m.Patient.ID,
				date: storage.NormalizeDA(m.Study.Date), accession: m.Study.AccessionNumber, series: map[string]int{}, modalities: map[string]bool{}}
			out[st.uid] = st
		}
		st.series[m.Series.InstanceUID]++
		if m.Series.Modality != "" {
			st.modalities[m.Series.Modality] = true
		}
		st.instances++
	}
	return out
}

type studyPage struct {
	Studies []studyRow `json:"studies"`
	Offset  int        `json:"offset"`
	Limit   int        `json:"limit"`
	More    bool       `json:"more"`
}

func getStudies(t testing.TB, srv *httptest.Server, q url.Values) studyPage {
	t.Helper()
	res, body := get(t, srv, "/api/studies?"+q.Encode())
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/studies?%s: %s %s", q.Encode(), res.Status, body)
	}
	var p studyPage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func uids(rows []studyRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.StudyUID)
	}
	return out
}

// TestStudyList: after uploading testdata, the list shows every study with
// its counts, and each search field and paging select what they should.
func TestStudyList(t *testing.T) {
	srv, _, logs := newStoreServer(t)
	want := storedStudies(t, uploadAll(t, srv))

	all := getStudies(t, srv, url.Values{"limit": {"200"}})
	if len(all.Studies) != len(want) || all.More {
		t.Fatalf("%d studies listed (more=%v), %d stored", len(all.Studies), all.More, len(want))
	}
	for _, r := range all.Studies {
		w := want[r.StudyUID]
		if w == nil {
			t.Errorf("unknown study %s listed", r.StudyUID)
			continue
		}
		var mods []string
		for m := range w.modalities {
			mods = append(mods, m)
		}
		sort.Strings(mods)
		if r.Instances != w.instances || r.Series != len(w.series) || r.PatientID != w.patientID || r.PatientName != w.patientName ||
			r.StudyDate != w.date || strings.Join(r.Modalities, ",") != strings.Join(mods, ",") {
			t.Errorf("study %s: %+v, want %+v %v", r.StudyUID, r, *w, mods)
		}
	}
	for i := 1; i < len(all.Studies); i++ {
		if all.Studies[i-1].StudyDate < all.Studies[i].StudyDate {
			t.Errorf("not newest first: %s before %s", all.Studies[i-1].StudyDate, all.Studies[i].StudyDate)
		}
	}

	// Each search field against the same selection made by hand.
	var named, withID, dated *storedStudy
	for _, s := range want {
		fam := strings.Split(s.patientName, "^")[0]
		if len(fam) >= 3 && named == nil {
			named = s
		}
		if len(s.patientID) >= 3 && withID == nil {
			withID = s
		}
		if len(s.date) == 8 && dated == nil {
			dated = s
		}
	}
	if named == nil || withID == nil || dated == nil {
		t.Fatal("testdata lacks a named, identified or dated study")
	}
	fam := strings.Split(named.patientName, "^")[0]
	frag := strings.ToLower(fam[1 : len(fam)-1])
	d := dated.date
	for _, c := range []struct {
		name string
		q    url.Values
		keep func(*storedStudy) bool
	}{
		{"patient name, any case, part", url.Values{"patientName": {frag}}, func(s *storedStudy) bool {
			return strings.Contains(strings.ToLower(s.patientName), frag)
		}},
		{"patient ID", url.Values{"patientId": {withID.patientID}}, func(s *storedStudy) bool { return strings.Contains(s.patientID, withID.patientID) }},
		{"modality", url.Values{"modality": {"mr"}}, func(s *storedStudy) bool { return s.modalities["MR"] }},
		{"one day", url.Values{"from": {d[:4] + "-" + d[4:6] + "-" + d[6:]}, "to": {d}}, func(s *storedStudy) bool { return s.date == d }},
		{"from a day", url.Values{"from": {d}}, func(s *storedStudy) bool { return s.date >= d }},
		{"up to a day", url.Values{"to": {d}}, func(s *storedStudy) bool { return s.date != "" && s.date <= d }},
		{"accession", url.Values{"accession": {"no-such-accession"}}, func(s *storedStudy) bool { return false }},
		{"name and modality", url.Values{"patientName": {frag}, "modality": {"CT"}}, func(s *storedStudy) bool {
			return strings.Contains(strings.ToLower(s.patientName), frag) && s.modalities["CT"]
		}},
	} {
		c.q.Set("limit", "200")
		got := uids(getStudies(t, srv, c.q).Studies)
		var exp []string
		for _, s := range want {
			if c.keep(s) {
				exp = append(exp, s.uid)
			}
		}
		sort.Strings(got)
		sort.Strings(exp)
		if strings.Join(got, " ") != strings.Join(exp, " ") {
			t.Errorf("%s: %d studies %v, want %d %v", c.name, len(got), got, len(exp), exp)
		}
		if c.name == "modality" && len(exp) == 0 {
			t.Error("no MR study to find")
		}
	}

	// Pages of 4 add up to the whole list, in the same order.
	var paged []string
	for off := 0; ; off += 4 {
		p := getStudies(t, srv, url.Values{"limit": {"4"}, "offset": {fmt.Sprint(off)}})
		if len(p.Studies) > 4 || p.Offset != off || p.Limit != 4 {
			t.Fatalf("page at %d: %d rows, offset %d limit %d", off, len(p.Studies), p.Offset, p.Limit)
		}
		paged = append(paged, uids(p.Studies)...)
		if !p.More {
			break
		}
	}
	if !slices.Equal(paged, uids(all.Studies)) {
		t.Errorf("pages give %v\nthe whole list %v", paged, uids(all.Studies))
	}

	for _, q := range []string{"limit=0", "limit=201", "limit=x", "offset=-1", "from=2020-13-45", "to=yesterday",
		"from=2021-01-02&to=2021-01-01", "modality=C*", "modality=CT%5CMR"} {
		res, body := get(t, srv, "/api/studies?"+q)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: %s %s, want 400", q, res.Status, body)
		}
	}
	if log := logs.String(); strings.Contains(log, "patientName="+frag) || !strings.Contains(log, "patientName=redacted") {
		t.Errorf("the request log shows the searched name:\n%s", tail(log, 1500))
	}
}

type seriesPage struct {
	StudyUID string      `json:"studyUID"`
	Series   []seriesRow `json:"series"`
}

type instancePage struct {
	StudyUID  string        `json:"studyUID"`
	SeriesUID string        `json:"seriesUID"`
	Instances []instanceRow `json:"instances"`
	More      bool          `json:"more"`
}

// TestSeriesAndInstances: every study's series, every series' instances in
// viewing order, and 404 for what does not exist or is not a UID.
func TestSeriesAndInstances(t *testing.T) {
	srv, _, _ := newStoreServer(t)
	want := storedStudies(t, uploadAll(t, srv))
	for _, st := range want {
		res, body := get(t, srv, "/api/studies/"+st.uid+"/series")
		if res.StatusCode != 200 {
			t.Fatalf("series of %s: %s %s", st.uid, res.Status, body)
		}
		var sp seriesPage
		if err := json.Unmarshal(body, &sp); err != nil {
			t.Fatal(err)
		}
		if len(sp.Series) != len(st.series) || sp.StudyUID != st.uid {
			t.Errorf("study %s: %d series, want %d", st.uid, len(sp.Series), len(st.series))
		}
		for _, se := range sp.Series {
			if se.Instances != st.series[se.SeriesUID] {
				t.Errorf("series %s: %d instances, want %d", se.SeriesUID, se.Instances, st.series[se.SeriesUID])
			}
			res, body := get(t, srv, "/api/series/"+se.SeriesUID+"/instances")
			if res.StatusCode != 200 {
				t.Fatalf("instances of %s: %s %s", se.SeriesUID, res.Status, body)
			}
			var ip instancePage
			if err := json.Unmarshal(body, &ip); err != nil {
				t.Fatal(err)
			}
			if len(ip.Instances) != se.Instances || ip.StudyUID != st.uid || ip.SeriesUID != se.SeriesUID || ip.More {
				t.Errorf("series %s: %d instances listed, want %d", se.SeriesUID, len(ip.Instances), se.Instances)
			}
			thumb := se.ThumbSOP == ""
			for i, in := range ip.Instances {
				if in.SOPInstanceUID == se.ThumbSOP {
					thumb = true
					if se.ThumbFrame < 0 || se.ThumbFrame >= max(in.Frames, 1) {
						t.Errorf("thumbnail frame %d of %d", se.ThumbFrame, in.Frames)
					}
				}
				if i > 0 {
					a, b := ip.Instances[i-1].Number, in.Number
					if a != nil && b != nil && *a > *b || a == nil && b != nil {
						t.Errorf("series %s: instance %d before %d", se.SeriesUID, num(a), num(b))
					}
				}
			}
			if !thumb {
				t.Errorf("series %s: thumbnail %s is not one of its instances", se.SeriesUID, se.ThumbSOP)
			}
		}
	}
	for _, p := range []string{"/api/studies/1.2.3.4/series", "/api/studies/abc/series", "/api/studies/1..2/series",
		"/api/studies/" + strings.Repeat("1.", 40) + "1/series", "/api/series/1.2.3/instances", "/api/series/..%2f..%2fetc/instances",
		"/api/instances/1.2.3", "/api/instances/x", "/api/instances/1.2.3/frames/0/render"} {
		res, body := get(t, srv, p)
		if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"error"`) {
			t.Errorf("GET %s: %s %s, want 404", p, res.Status, body)
		}
	}
}

func num(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// TestStoredRender: every stored instance's first and last frame, rendered
// from the blob store, is pixel for pixel what the core renders from the
// original file; views reach the pipeline as they do for testdata files.
func TestStoredRender(t *testing.T) {
	srv, _, _ := newStoreServer(t)
	want := uploadAll(t, srv)
	checkStoredRenders(t, srv, want)
}

func checkStoredRenders(t *testing.T, srv *httptest.Server, want expected) {
	t.Helper()
	n := 0
	for sop, path := range want.first {
		f, err := dicom.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		frames := f.NumFrames()
		if frames == 0 {
			continue
		}
		for _, fr := range slices.Compact([]int{0, frames - 1}) {
			exp, expErr := directRender(path, fr, dicom.View{})
			res, body := get(t, srv, fmt.Sprintf("/api/instances/%s/frames/%d/render", sop, fr))
			if expErr != nil {
				if res.StatusCode != http.StatusUnprocessableEntity {
					t.Errorf("%s frame %d: core fails (%v), server %s", filepath.Base(path), fr, expErr, res.Status)
				}
				continue
			}
			if res.StatusCode != 200 {
				t.Errorf("%s frame %d: %s %s", filepath.Base(path), fr, res.Status, body)
				continue
			}
			got, err := png.Decode(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(got, exp); d != 0 {
				t.Errorf("%s frame %d: stored render differs from the file's by %d", filepath.Base(path), fr, d)
			}
			n++
		}
	}
	if n < 30 {
		t.Errorf("only %d frames compared", n)
	}
}

// TestStoredViews: the render parameters mean the same for a stored
// instance; ETags revalidate; a bad view is 400.
func TestStoredViews(t *testing.T) {
	srv, _, _ := newStoreServer(t)
	ct := filepath.Join(testDataDir, "ct-signed-implicit-512.dcm")
	_, r := postFile(t, srv, ct)
	for _, c := range []struct {
		q string
		v view
	}{
		{"preset=lung&w=128&h=128", view{mode: "preset", preset: "lung", w: 128, h: 128}},
		{"window=40,400", view{mode: "window", center: 40, width: 400}},
		{"minmax&w=300", view{mode: "minmax", w: 300}},
		{"windowIndex=0", view{mode: "index", index: 0}},
	} {
		res, body := get(t, srv, "/api/instances/"+r.SOPInstanceUID+"/frames/0/render?"+c.q)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %s %s", c.q, res.Status, body)
		}
		got, err := png.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		exp, err := directRender(ct, 0, dicomView(c.v))
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(got, exp); d != 0 {
			t.Errorf("%s: differs by %d", c.q, d)
		}
		etag := res.Header.Get("ETag")
		if res2, _ := get(t, srv, "/api/instances/"+r.SOPInstanceUID+"/frames/0/render?"+c.q, "If-None-Match", etag); etag == "" || res2.StatusCode != http.StatusNotModified {
			t.Errorf("%s: ETag %q revalidates as %s", c.q, etag, res2.Status)
		}
	}
	for _, q := range []string{"window=1", "preset=nope", "windowIndex=9", "w=0", "format=gif"} {
		if res, body := get(t, srv, "/api/instances/"+r.SOPInstanceUID+"/frames/0/render?"+q); res.StatusCode != 400 {
			t.Errorf("%s: %s %s, want 400", q, res.Status, body)
		}
	}
	for _, fr := range []string{"1", "-1", "x"} {
		if res, _ := get(t, srv, "/api/instances/"+r.SOPInstanceUID+"/frames/"+fr+"/render"); res.StatusCode != 404 {
			t.Errorf("frame %s: %s, want 404", fr, res.Status)
		}
	}
}

// TestStoredMeta: GET /api/instances/{sop} has the header exactly as the
// core reads the original file, and where the instance belongs.
func TestStoredMeta(t *testing.T) {
	srv, _, _ := newStoreServer(t)
	want := uploadAll(t, srv)
	for sop, path := range want.first {
		res, body := get(t, srv, "/api/instances/"+sop)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %s %s", filepath.Base(path), res.Status, body)
		}
		var d struct {
			ID        string          `json:"id"`
			Frames    int             `json:"frames"`
			StudyUID  string          `json:"studyUID"`
			SeriesUID string          `json:"seriesUID"`
			Meta      json.RawMessage `json:"meta"`
		}
		if err := json.Unmarshal(body, &d); err != nil {
			t.Fatal(err)
		}
		f, err := dicom.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		exp, _ := json.Marshal(f.Meta)
		var a, b any
		json.Unmarshal(d.Meta, &a)
		json.Unmarshal(exp, &b)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) || d.ID != sop || d.Frames != f.NumFrames() || d.StudyUID != f.Meta.Study.InstanceUID || d.SeriesUID != f.Meta.Series.InstanceUID {
			t.Errorf("%s: detail differs from the core's header", filepath.Base(path))
		}
	}
}

// streamOnly is a blob store whose reads are plain streams, as S3's are:
// the server must then read through ranged reads.
type streamOnly struct{ storage.Blobs }

func (s streamOnly) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := s.Blobs.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return struct{ io.ReadCloser }{rc}, nil
}

// TestStoredRenderRanged renders every stored instance from a store that
// only streams, so every read goes through rangeReaderAt.
func TestStoredRenderRanged(t *testing.T) {
	srv, store, _ := newStoreServer(t)
	want := uploadAll(t, srv)
	store.Blobs = streamOnly{store.Blobs}
	checkStoredRenders(t, srv, want)
}

func TestSortForViewing(t *testing.T) {
	n := func(i int) *int { return &i }
	ins := []storage.Instance{
		{SOPInstanceUID: "1.5"}, {SOPInstanceUID: "1.4", InstanceNumber: n(10)}, {SOPInstanceUID: "1.3", InstanceNumber: n(2)},
		{SOPInstanceUID: "1.1"}, {SOPInstanceUID: "1.2", InstanceNumber: n(2)},
	}
	sortForViewing(ins)
	var got []string
	for _, in := range ins {
		got = append(got, in.SOPInstanceUID)
	}
	if w := "1.2 1.3 1.4 1.1 1.5"; strings.Join(got, " ") != w {
		t.Errorf("order %v, want %s", got, w)
	}
}

func TestStudiesPage(t *testing.T) {
	srv, _, _ := newStoreServer(t)
	res, body := get(t, srv, "/studies")
	if res.StatusCode != 200 || !strings.Contains(string(body), "studies.js") {
		t.Fatalf("/studies: %s", res.Status)
	}
	html := string(body)
	for _, bad := range []string{"<script>", "<style", " style=", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("studies.html contains %q, which the CSP blocks", bad)
		}
	}
	js, err := staticFS.ReadFile("static/studies.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(string(js), bad) {
			t.Errorf("studies.js uses %s", bad)
		}
	}
	// Without a store there is no studies page and no study API.
	plain := newTestServer(t, t.TempDir())
	for _, p := range []string{"/studies", "/api/studies"} {
		if res, _ := get(t, plain, p); res.StatusCode != 404 {
			t.Errorf("GET %s without a store: %s", p, res.Status)
		}
	}
}

// ctStack makes a three-slice CT series from one test CT with dcmodify:
// each copy gets its own SOP Instance UID and Instance Number, written in
// an order that differs from the numbers, so that viewing order must come
// from the numbers. It returns the files in upload order and the SOP
// Instance UIDs in viewing order.
func ctStack(t *testing.T) ([]string, []string) {
	t.Helper()
	tool, err := exec.LookPath("dcmodify")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("dcmodify not found: install the Debian package dcmtk")
		}
		t.Skip("dcmodify not found (apt-get install -y -qq dcmtk)")
	}
	src := mustRead(t, filepath.Join(testDataDir, "ct-signed-implicit-512.dcm"))
	dir := t.TempDir()
	var files []string
	sops := make([]string, 3)
	for i, n := range []int{3, 1, 2} {
		p := filepath.Join(dir, fmt.Sprintf("slice-%d.dcm", i))
		if err := os.WriteFile(p, src, 0o644); err != nil {
			t.Fatal(err)
		}
		sop := fmt.Sprintf("1.2.826.0.1.3680043.10.1234.7.%d", n)
		out, err := exec.Command(tool, "-nb", "-i", "(0008,0018)="+sop, "-i", fmt.Sprintf("(0020,0013)=%d", n),
			"-i", "(0020,000E)=1.2.826.0.1.3680043.10.1234.7.100", "-i", "(0008,103E)=Stack of three", p).CombinedOutput()
		if err != nil {
			t.Fatalf("dcmodify: %v\n%s", err, out)
		}
		files = append(files, p)
		sops[n-1] = sop
	}
	return files, sops
}

// setFiles puts files into a file input through the devtools protocol, as
// a user choosing them in the file dialog would.
func setFiles(c *chromium.Page, selector string, files []string) {
	var r struct {
		Result struct {
			ObjectID string `json:"objectId"`
		} `json:"result"`
	}
	c.Call("Runtime.evaluate", map[string]any{"expression": "document.querySelector(" + strconv.Quote(selector) + ")"}, &r)
	c.Call("DOM.setFileInputFiles", map[string]any{"files": files, "objectId": r.Result.ObjectID}, nil)
}

func screenshot(t *testing.T, c *chromium.Page, name string) string {
	t.Helper()
	var shot struct{ Data []byte }
	c.Call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	p := filepath.Join(shotDir(t), name+".png")
	if err := os.WriteFile(p, shot.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return p
}

// TestBrowserStudies drives the studies page in headless Chromium: files
// chosen in the file input upload with progress, the non-DICOM one is
// listed as not imported with its reason, the studies appear, a study's
// series show thumbnails, and a series opens in the viewer, which scrolls
// across its instances in Instance Number order.
func TestBrowserStudies(t *testing.T) {
	bin := chromium.Find(t)
	stack, sops := ctStack(t)
	srv, _, _ := newStoreServer(t)
	c := chromium.Start(t, bin, srv.URL+"/studies", 1400, 900)
	c.WaitFor("the empty list", `document.body.dataset.studies === "0" && !document.getElementById("table-empty").hidden`)

	abs := func(name string) string {
		p, err := filepath.Abs(filepath.Join(testDataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := append([]string{abs("mr-small.dcm"), abs("xa-jpeg-baseline-96frame.dcm"), abs("cr-chest-monochrome1.dcm"),
		abs("us-palette-rle-10frame.dcm"), abs("LICENSES.md")}, stack...)
	setFiles(c, "#file-input", files)
	c.WaitFor("the upload to finish", `document.body.dataset.upload === "done"`)
	if got := c.Eval(`document.querySelectorAll("#upload-list .up-item").length`); got != strconv.Itoa(len(files)) {
		t.Errorf("%s rows for %d files", got, len(files))
	}
	if got := c.Eval(`document.getElementById("overall-pct").textContent`); got != "100%" {
		t.Errorf("overall progress %q at the end", got)
	}
	if got := c.Eval(`[...document.querySelectorAll(".up-item .fill")].every(f => parseFloat(f.style.width) === 100)`); got != "true" {
		t.Errorf("a file's progress bar did not reach the end")
	}
	if s, r := c.Eval(`document.getElementById("n-stored").textContent`), c.Eval(`document.getElementById("n-rejected").textContent`); s != "7" || r != "1" {
		t.Errorf("%s stored and %s rejected, want 7 and 1", s, r)
	}
	if got := c.Eval(`document.getElementById("rejected-list").textContent`); !strings.Contains(got, "LICENSES.md") || !strings.Contains(got, "not a DICOM file") {
		t.Errorf("rejection list %q", got)
	}
	c.WaitFor("the studies", `document.querySelectorAll("#study-rows tr").length === 5`)

	// The stack's study: its series with a thumbnail.
	row := c.Eval(`(() => { const tr = [...document.querySelectorAll("#study-rows tr")].find(tr => tr.querySelector("td.n:last-child").textContent === "3"); tr.click(); return tr.dataset.study })()`)
	if row == "" {
		t.Fatal("no study with three images listed")
	}
	c.WaitFor("a thumbnail", `(() => { const i = document.querySelector(".series-card img"); return i && i.complete && i.naturalWidth > 0 })()`)
	screenshot(t, c, "studies")

	// Search narrows the list; Clear brings it back.
	c.Eval(`document.querySelector("[name=modality]").value = "XA"; document.getElementById("filters").requestSubmit()`)
	c.WaitFor("the XA study alone", `document.querySelectorAll("#study-rows tr").length === 1 && document.querySelector("#study-rows .mod-badge").textContent === "XA"`)
	c.Eval(`document.getElementById("clear").click()`)
	c.WaitFor("all studies again", `document.querySelectorAll("#study-rows tr").length === 5`)

	// Open the stack in the viewer and scroll through it.
	c.Eval(`document.querySelector('.series-card[data-series="1.2.826.0.1.3680043.10.1234.7.100"]').click()`)
	vp := `document.getElementById("viewport").dataset`
	c.WaitFor("the first slice", vp+`.state === "loaded" && `+vp+`.rendered === "`+sops[0]+`/0" && `+vp+`.query.includes("format=png")`)
	if got := c.Eval(`document.getElementById("frame-label").textContent`); got != "1 / 3" {
		t.Errorf("frame label %q, want 1 / 3", got)
	}
	if got := c.Eval(`document.querySelectorAll("#file-list .file[data-series]").length`); got != "1" {
		t.Errorf("%s series listed beside the viewer, want 1", got)
	}
	c.Key("ArrowDown", "ArrowDown", 40)
	c.WaitFor("the second slice", vp+`.rendered === "`+sops[1]+`/0" && `+vp+`.query.includes("format=png")`)
	c.Key("End", "End", 35)
	c.WaitFor("the last slice", vp+`.rendered === "`+sops[2]+`/0" && `+vp+`.query.includes("format=png")`)
	c.WaitFor("its header", `document.getElementById("ov-tr").textContent.includes("Im 3")`)
	if got := c.Eval(`location.hash`); got != "#series/1.2.826.0.1.3680043.10.1234.7.100/3" {
		t.Errorf("hash %q", got)
	}
	p := screenshot(t, c, "viewer-stored-series")
	img, err := png.Decode(bytes.NewReader(mustRead(t, p)))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if sd, levels := spread(img, image.Rect(b.Dx()*2/5, b.Dy()*3/10, b.Dx()*3/5, b.Dy()*7/10)); sd < 8 || levels < 32 {
		t.Errorf("viewport looks blank (std dev %.1f, %d levels)", sd, levels)
	}

	// The multi-frame XA from the viewer's series list: a lone series.
	c.Call("Page.navigate", map[string]any{"url": srv.URL + "/studies"}, nil)
	c.WaitFor("the list again", `document.querySelectorAll("#study-rows tr").length === 5`)
	c.Eval(`[...document.querySelectorAll("#study-rows tr")].find(tr => tr.querySelector(".mod-badge").textContent === "XA").click()`)
	c.WaitFor("the XA series", `document.querySelector(".series-card")`)
	c.Eval(`document.querySelector(".series-card").click()`)
	c.WaitFor("the XA", vp+`.state === "loaded" && `+vp+`.rendered.endsWith("/0")`)
	if got := c.Eval(`document.getElementById("frame-label").textContent`); got != "1 / 96" {
		t.Errorf("frame label %q, want 1 / 96", got)
	}
}
