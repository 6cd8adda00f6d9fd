package storage

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"
)

// needEnv returns the environment variable that names a test service. When
// it is unset the test is skipped, except under CI, where that would hide
// a whole back-end from the run: there it fails.
func needEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set under CI: run the tests with scripts/test-services.sh", name)
		}
		t.Skipf("%s is not set; run under scripts/test-services.sh to test this back-end", name)
	}
	return v
}

// catalogMaker prepares an empty database of one kind and returns a
// function that opens a catalog over it (callable many times).
type catalogMaker struct {
	name string
	new  func(t testing.TB) func() (Catalog, error)
}

var catalogMakers = []catalogMaker{
	{"sqlite", func(t testing.TB) func() (Catalog, error) {
		path := filepath.Join(t.TempDir(), "catalog.db")
		return func() (Catalog, error) { return OpenSQLite(context.Background(), path) }
	}},
	{"postgres", func(t testing.TB) func() (Catalog, error) {
		url := newPostgresSchema(t, needEnv(t, "LIGHTBOX_TEST_POSTGRES"))
		return func() (Catalog, error) { return OpenPostgres(context.Background(), url) }
	}},
}

// mustOpen opens a catalog that is closed when the test ends.
func mustOpen(t testing.TB, open func() (Catalog, error)) Catalog {
	t.Helper()
	c, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// forEachCatalog runs f against a fresh catalog of each kind.
func forEachCatalog(t *testing.T, f func(t *testing.T, c Catalog)) {
	for _, m := range catalogMakers {
		t.Run(m.name, func(t *testing.T) {
			f(t, mustOpen(t, m.new(t)))
		})
	}
}

func intp(n int) *int { return &n }

// testInstance makes a complete record; the blob key and hash follow the UID.
func testInstance(study, series, inst int) Instance {
	sop := fmt.Sprintf("1.2.3.%d.%d.%d", study, series, inst)
	return Instance{
		Patient: Patient{PatientID: fmt.Sprintf("P%d", study), PatientName: "Doe^Jane", PatientSex: "F"},
		Study: Study{StudyInstanceUID: fmt.Sprintf("1.2.3.%d", study), StudyDate: "20240102",
			StudyTime: "120000", StudyDescription: "study"},
		Series: Series{SeriesInstanceUID: fmt.Sprintf("1.2.3.%d.%d", study, series), Modality: "CT",
			SeriesNumber: intp(series)},
		SOPClassUID:       "1.2.840.10008.5.1.4.1.1.2",
		SOPInstanceUID:    sop,
		InstanceNumber:    intp(inst),
		NumberOfFrames:    1,
		Rows:              512,
		Columns:           512,
		TransferSyntaxUID: "1.2.840.10008.1.2.1",
		Size:              1000 + int64(inst),
		CRC32C:            crcOf([]byte(sop)),
		BlobKey:           BlobKey(sop) + "-0.dcm",
		Source:            "import",
	}
}

// qidoFixture is a small archive with the cases QIDO matching must tell
// apart: two patients called Smith, a name with non-ASCII letters, an empty
// study date, LIKE's own specials in a value, a series without a number.
func qidoFixture() []Instance {
	var out []Instance
	add := func(pat Patient, st Study, se Series, n int, mod func(*Instance)) {
		for i := 1; i <= n; i++ {
			in := testInstance(0, 0, 0)
			in.Patient, in.Study, in.Series = pat, st, se
			in.SOPInstanceUID = fmt.Sprintf("%s.%d", se.SeriesInstanceUID, i)
			in.InstanceNumber = intp(i)
			in.BlobKey = BlobKey(in.SOPInstanceUID) + "-0.dcm"
			in.CRC32C = crcOf([]byte(in.SOPInstanceUID))
			if mod != nil {
				mod(&in)
			}
			out = append(out, in)
		}
	}
	p1 := Patient{"P1", "Smith^John", "19700101", "M"}
	p2 := Patient{"P2", "SMITHSON^Jane^^^", "19800202", "F"}
	p3 := Patient{"P3", "Müller^Jürgen", "", "M"}
	s1 := Study{"1.2.3.1", "20200115", "101500", "ACC1", "CT HEAD", "Jones^Alice", "1"}
	s2 := Study{"1.2.3.2", "20201231", "235959", "ACC2", "Chest PA", "", "2"}
	s3 := Study{"1.2.3.3", "20210301", "080000", "ACC3", "MR Knee", "", "3"}
	s4 := Study{"1.2.3.4", "", "", "A_C%4", "ct head", "", "4"}
	add(p1, s1, Series{"1.2.3.1.1", "CT", intp(1), "Axial"}, 3, nil)
	add(p1, s1, Series{"1.2.3.1.2", "CT", intp(2), "Coronal"}, 2, nil)
	add(p2, s2, Series{"1.2.3.2.1", "CR", intp(1), "PA"}, 1, nil)
	add(p2, s2, Series{"1.2.3.2.2", "SR", nil, "Report"}, 1, func(in *Instance) {
		in.Rows, in.Columns, in.InstanceNumber = 0, 0, nil
	})
	add(p1, s3, Series{"1.2.3.3.1", "MR", intp(1), "Sag PD"}, 2, nil)
	add(p3, s4, Series{"1.2.3.4.1", "CT", intp(1), "Axial"}, 1, nil)
	return out
}

func putAll(t testing.TB, c Catalog, ins []Instance) {
	t.Helper()
	for _, in := range ins {
		if _, err := c.PutInstance(context.Background(), in, nil); err != nil {
			t.Fatalf("put %s: %v", in.SOPInstanceUID, err)
		}
	}
}

func TestCatalogPutGet(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		in := testInstance(1, 1, 1)
		in.ReceivedAt = time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
		got, err := c.PutInstance(ctx, in, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := in
		want.ReceivedAt = time.Date(2026, 11, 25, 9, 0, 0, 123456000, time.UTC)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("PutInstance returned\n%+v\nwant\n%+v", got, want)
		}
		back, err := c.GetInstance(ctx, in.SOPInstanceUID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, want) {
			t.Errorf("GetInstance returned\n%+v\nwant\n%+v", back, want)
		}
		if ok, err := c.HasInstance(ctx, in.SOPInstanceUID); !ok || err != nil {
			t.Errorf("HasInstance = %v, %v", ok, err)
		}
		if ok, err := c.HasInstance(ctx, "1.2.3.9"); ok || err != nil {
			t.Errorf("HasInstance(missing) = %v, %v", ok, err)
		}
		if _, err := c.GetInstance(ctx, "1.2.3.9"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetInstance(missing) = %v, want ErrNotFound", err)
		}

		// Zero time and frames are filled in.
		in2 := testInstance(1, 1, 2)
		in2.NumberOfFrames = 0
		before := time.Now().Add(-time.Second)
		got2, err := c.PutInstance(ctx, in2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got2.NumberOfFrames != 1 || got2.ReceivedAt.Before(before) || got2.ReceivedAt.Location() != time.UTC {
			t.Errorf("defaults: frames %d, received %v", got2.NumberOfFrames, got2.ReceivedAt)
		}
	})
}

// TestCatalogReady: the rows commit only if ready, called once before the
// commit, says so; a refusal leaves nothing, not even the new patient.
func TestCatalogReady(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		calls := 0
		broken := errors.New("blob not durable")
		in := testInstance(7, 1, 1)
		if _, err := c.PutInstance(ctx, in, func() error { calls++; return broken }); !errors.Is(err, broken) {
			t.Errorf("PutInstance with a failing ready = %v, want its error", err)
		}
		if ok, err := c.HasInstance(ctx, in.SOPInstanceUID); ok || err != nil {
			t.Errorf("after a failing ready, HasInstance = %v, %v", ok, err)
		}
		if st, err := c.Studies(ctx, Query{}); err != nil || len(st) != 0 {
			t.Errorf("after a failing ready, %d studies (%v)", len(st), err)
		}
		if _, err := c.PutInstance(ctx, in, func() error { calls++; return nil }); err != nil {
			t.Fatal(err)
		}
		if calls != 2 {
			t.Errorf("ready called %d times for two puts", calls)
		}
		if ok, err := c.HasInstance(ctx, in.SOPInstanceUID); !ok || err != nil {
			t.Errorf("after ready, HasInstance = %v, %v", ok, err)
		}
	})
}

func TestCatalogInvalid(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		for _, f := range []func(*Instance){
			func(in *Instance) { in.SOPInstanceUID = "" },
			func(in *Instance) { in.SeriesInstanceUID = "" },
			func(in *Instance) { in.StudyInstanceUID = "" },
			func(in *Instance) { in.SOPClassUID = "" },
			func(in *Instance) { in.BlobKey = "" },
			func(in *Instance) { in.Size = -1 },
		} {
			in := testInstance(1, 1, 1)
			f(&in)
			if _, err := c.PutInstance(context.Background(), in, nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutInstance(%+v) = %v, want ErrInvalid", in, err)
			}
		}
		if ok, _ := c.HasInstance(context.Background(), "1.2.3.1.1.1"); ok {
			t.Error("an invalid record was stored")
		}
	})
}

func TestCatalogDuplicateKeepsFirst(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		first, err := c.PutInstance(ctx, testInstance(1, 1, 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		second := testInstance(1, 1, 1)
		second.CRC32C = crcOf([]byte("other bytes"))
		second.BlobKey = "other"
		second.Size = 5
		got, err := c.PutInstance(ctx, second, nil)
		if !errors.Is(err, ErrExists) {
			t.Fatalf("second put: %v, want ErrExists", err)
		}
		if !reflect.DeepEqual(got, first) {
			t.Errorf("ErrExists came with\n%+v\nwant the stored\n%+v", got, first)
		}
		back, _ := c.GetInstance(ctx, first.SOPInstanceUID)
		if !reflect.DeepEqual(back, first) {
			t.Errorf("stored record changed to %+v", back)
		}
	})
}

// TestCatalogConcurrentSameUID: the same instance arriving on 8
// connections at once is stored exactly once, and every loser is told
// which copy won.
func TestCatalogConcurrentSameUID(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		const n = 8
		var wg sync.WaitGroup
		results := make([]Instance, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in := testInstance(1, 1, 1)
				in.BlobKey = fmt.Sprintf("%s-%d.dcm", BlobKey(in.SOPInstanceUID), i)
				in.CRC32C = crcOf([]byte{byte(i)})
				<-start
				results[i], errs[i] = c.PutInstance(ctx, in, nil)
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("puts %d and %d both succeeded", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, ErrExists):
				t.Fatalf("put %d: %v", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no put succeeded")
		}
		for i := range errs {
			if results[i].BlobKey != results[winner].BlobKey || *results[i].CRC32C != *results[winner].CRC32C {
				t.Errorf("put %d was told the stored copy is %s, it is %s", i, results[i].BlobKey, results[winner].BlobKey)
			}
		}
		all, err := c.Instances(ctx, Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || all[0].BlobKey != results[winner].BlobKey {
			t.Errorf("stored %d instances (%+v), want exactly the winner", len(all), all)
		}
	})
}

// TestCatalogConcurrentNewStudy: instances of one new study arriving at
// once create one patient, one study and one series.
func TestCatalogConcurrentNewStudy(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = c.PutInstance(ctx, testInstance(1, 1+i%2, i), nil)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("put %d: %v", i, err)
			}
		}
		studies, err := c.Studies(ctx, Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(studies) != 1 || studies[0].NumberOfStudyRelatedSeries != 2 || studies[0].NumberOfStudyRelatedInstances != n {
			t.Errorf("studies = %+v, want one with 2 series and %d instances", studies, n)
		}
	})
}

func TestCatalogFillsBlanksNeverOverwrites(t *testing.T) {
	t.Run("different people under one Patient ID stay apart", func(t *testing.T) {
		forEachCatalog(t, func(t *testing.T, c Catalog) {
			a, b := testInstance(1, 1, 1), testInstance(2, 1, 1)
			a.PatientID, b.PatientID = "", ""
			a.PatientName, b.PatientName = "Doe^Jane", "Roe^Richard"
			putAll(t, c, []Instance{a, b})
			for _, in := range []Instance{a, b} {
				got, err := c.GetInstance(context.Background(), in.SOPInstanceUID)
				if err != nil || got.PatientName != in.PatientName {
					t.Errorf("%s shows patient %q, want %q (%v)", in.SOPInstanceUID, got.PatientName, in.PatientName, err)
				}
			}
		})
	})
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		// The study's patient is the first instance's: patients are
		// identified by ID, name and birth date together, so a later
		// instance's name never renames (or merges) a patient.
		a := testInstance(1, 1, 1)
		a.StudyDescription, a.PatientName, a.Modality = "", "Doe^John", ""
		b := testInstance(1, 1, 2)
		b.StudyDescription, b.PatientName, b.Modality = "CT HEAD", "", "CT"
		d := testInstance(1, 1, 3)
		d.StudyDescription, d.PatientName, d.Modality = "OTHER", "Roe^Richard", "MR"
		putAll(t, c, []Instance{a, b, d})
		got, err := c.GetInstance(ctx, a.SOPInstanceUID)
		if err != nil {
			t.Fatal(err)
		}
		if got.StudyDescription != "CT HEAD" || got.PatientName != "Doe^John" || got.Modality != "CT" {
			t.Errorf("got %q %q %q, want the first non-empty values", got.StudyDescription, got.PatientName, got.Modality)
		}
		if s, _ := c.Studies(ctx, Query{Match: map[string]string{"PatientName": "doe^john"}}); len(s) != 1 {
			t.Errorf("PatientName not matched: %+v", s)
		}
	})
}

type qidoCase struct {
	name  string
	level Level
	match map[string]string
	limit int
	offs  int
	want  []string // UIDs at the level, in order
	err   error
}

var qidoCases = []qidoCase{
	{"all studies newest first, empty date last", LevelStudy, nil, 0, 0, []string{"1.2.3.3", "1.2.3.2", "1.2.3.1", "1.2.3.4"}, nil},
	{"universal *", LevelStudy, map[string]string{"StudyDescription": "*"}, 0, 0, []string{"1.2.3.3", "1.2.3.2", "1.2.3.1", "1.2.3.4"}, nil},
	{"empty value is universal", LevelStudy, map[string]string{"PatientName": "", "StudyDate": ""}, 0, 0, []string{"1.2.3.3", "1.2.3.2", "1.2.3.1", "1.2.3.4"}, nil},
	{"PN wildcard, any case", LevelStudy, map[string]string{"PatientName": "smith*"}, 0, 0, []string{"1.2.3.3", "1.2.3.2", "1.2.3.1"}, nil},
	{"PN exact, any case", LevelStudy, map[string]string{"PatientName": "Smith^John"}, 0, 0, []string{"1.2.3.3", "1.2.3.1"}, nil},
	{"PN trailing empty components", LevelStudy, map[string]string{"PatientName": "SMITH^JOHN^^"}, 0, 0, []string{"1.2.3.3", "1.2.3.1"}, nil},
	{"PN stored with trailing components", LevelStudy, map[string]string{"PatientName": "smithson^jane"}, 0, 0, []string{"1.2.3.2"}, nil},
	{"PN non-ASCII case", LevelStudy, map[string]string{"PatientName": "müller*"}, 0, 0, []string{"1.2.3.4"}, nil},
	{"PN ? wildcard", LevelStudy, map[string]string{"PatientName": "*^J?HN"}, 0, 0, []string{"1.2.3.3", "1.2.3.1"}, nil},
	{"referring physician", LevelStudy, map[string]string{"ReferringPhysicianName": "jones*"}, 0, 0, []string{"1.2.3.1"}, nil},
	{"PatientID exact", LevelStudy, map[string]string{"PatientID": "P1"}, 0, 0, []string{"1.2.3.3", "1.2.3.1"}, nil},
	{"PatientID wildcard", LevelStudy, map[string]string{"PatientID": "P?"}, 0, 0, []string{"1.2.3.3", "1.2.3.2", "1.2.3.1", "1.2.3.4"}, nil},
	{"PatientBirthDate", LevelStudy, map[string]string{"PatientBirthDate": "19700101"}, 0, 0, []string{"1.2.3.3", "1.2.3.1"}, nil},
	{"PatientSex", LevelStudy, map[string]string{"PatientSex": "F"}, 0, 0, []string{"1.2.3.2"}, nil},
	{"date exact", LevelStudy, map[string]string{"StudyDate": "20200115"}, 0, 0, []string{"1.2.3.1"}, nil},
	{"date range", LevelStudy, map[string]string{"StudyDate": "20200101-20201231"}, 0, 0, []string{"1.2.3.2", "1.2.3.1"}, nil},
	{"date up to, empty excluded", LevelStudy, map[string]string{"StudyDate": "-20201231"}, 0, 0, []string{"1.2.3.2", "1.2.3.1"}, nil},
	{"date from", LevelStudy, map[string]string{"StudyDate": "20201231-"}, 0, 0, []string{"1.2.3.3", "1.2.3.2"}, nil},
	{"time range", LevelStudy, map[string]string{"StudyTime": "100000-110000"}, 0, 0, []string{"1.2.3.1"}, nil},
	{"time upper bound covers its precision", LevelStudy, map[string]string{"StudyTime": "-08"}, 0, 0, []string{"1.2.3.3"}, nil},
	{"accession exact with LIKE specials", LevelStudy, map[string]string{"AccessionNumber": "A_C%4"}, 0, 0, []string{"1.2.3.4"}, nil},
	{"wildcard escapes LIKE specials", LevelStudy, map[string]string{"AccessionNumber": "A_C*"}, 0, 0, []string{"1.2.3.4"}, nil},
	{"GLOB specials are literal", LevelStudy, map[string]string{"StudyDescription": "[C]T*"}, 0, 0, nil, nil},
	{"ModalitiesInStudy one", LevelStudy, map[string]string{"ModalitiesInStudy": "CT"}, 0, 0, []string{"1.2.3.1", "1.2.3.4"}, nil},
	{"ModalitiesInStudy list", LevelStudy, map[string]string{"ModalitiesInStudy": "CT,MR"}, 0, 0, []string{"1.2.3.3", "1.2.3.1", "1.2.3.4"}, nil},
	{"ModalitiesInStudy backslash list", LevelStudy, map[string]string{"ModalitiesInStudy": `SR\MR`}, 0, 0, []string{"1.2.3.3", "1.2.3.2"}, nil},
	{"ModalitiesInStudy wildcard", LevelStudy, map[string]string{"ModalitiesInStudy": "M?"}, 0, 0, []string{"1.2.3.3"}, nil},
	{"description case-sensitive", LevelStudy, map[string]string{"StudyDescription": "CT*"}, 0, 0, []string{"1.2.3.1"}, nil},
	{"description suffix", LevelStudy, map[string]string{"StudyDescription": "*head"}, 0, 0, []string{"1.2.3.4"}, nil},
	{"UID list", LevelStudy, map[string]string{"StudyInstanceUID": `1.2.3.1\1.2.3.3`}, 0, 0, []string{"1.2.3.3", "1.2.3.1"}, nil},
	{"UID list with commas", LevelStudy, map[string]string{"StudyInstanceUID": "1.2.3.1,1.2.3.4"}, 0, 0, []string{"1.2.3.1", "1.2.3.4"}, nil},
	{"StudyID", LevelStudy, map[string]string{"StudyID": "3"}, 0, 0, []string{"1.2.3.3"}, nil},
	{"keys combine with AND", LevelStudy, map[string]string{"PatientID": "P1", "StudyDate": "20210101-"}, 0, 0, []string{"1.2.3.3"}, nil},
	{"limit", LevelStudy, nil, 2, 0, []string{"1.2.3.3", "1.2.3.2"}, nil},
	{"limit offset", LevelStudy, nil, 2, 1, []string{"1.2.3.2", "1.2.3.1"}, nil},
	{"offset only", LevelStudy, nil, 0, 3, []string{"1.2.3.4"}, nil},
	{"offset past end", LevelStudy, nil, 10, 10, nil, nil},
	{"no match", LevelStudy, map[string]string{"PatientID": "nobody"}, 0, 0, nil, nil},
	{"series key at study level", LevelStudy, map[string]string{"Modality": "CT"}, 0, 0, nil, ErrBadQuery},
	{"unknown key", LevelStudy, map[string]string{"Foo": "x"}, 0, 0, nil, ErrBadQuery},
	{"bad date", LevelStudy, map[string]string{"StudyDate": "2020-"}, 0, 0, nil, ErrBadQuery},
	{"bad range", LevelStudy, map[string]string{"StudyDate": "-"}, 0, 0, nil, ErrBadQuery},
	{"bad time", LevelStudy, map[string]string{"StudyTime": "25:00"}, 0, 0, nil, ErrBadQuery},
	{"bad UID", LevelStudy, map[string]string{"StudyInstanceUID": "1.2.x"}, 0, 0, nil, ErrBadQuery},
	{"negative limit", LevelStudy, nil, -1, 0, nil, ErrBadQuery},

	{"series of a study by number, unnumbered last", LevelSeries, map[string]string{"StudyInstanceUID": "1.2.3.2"}, 0, 0, []string{"1.2.3.2.1", "1.2.3.2.2"}, nil},
	{"series by modality across studies", LevelSeries, map[string]string{"Modality": "CT"}, 0, 0, []string{"1.2.3.1.1", "1.2.3.1.2", "1.2.3.4.1"}, nil},
	{"series number", LevelSeries, map[string]string{"SeriesNumber": "2"}, 0, 0, []string{"1.2.3.1.2"}, nil},
	{"series number not a number", LevelSeries, map[string]string{"SeriesNumber": "two"}, 0, 0, nil, ErrBadQuery},
	{"series description", LevelSeries, map[string]string{"SeriesDescription": "Ax*"}, 0, 0, []string{"1.2.3.1.1", "1.2.3.4.1"}, nil},
	{"series with study keys", LevelSeries, map[string]string{"PatientName": "smith*", "Modality": "MR"}, 0, 0, []string{"1.2.3.3.1"}, nil},
	{"series UID list", LevelSeries, map[string]string{"SeriesInstanceUID": `1.2.3.4.1\1.2.3.1.2`}, 0, 0, []string{"1.2.3.1.2", "1.2.3.4.1"}, nil},
	{"series paging", LevelSeries, nil, 2, 2, []string{"1.2.3.2.2", "1.2.3.1.1"}, nil},
	{"instance key at series level", LevelSeries, map[string]string{"SOPInstanceUID": "1.2.3.1.1.1"}, 0, 0, nil, ErrBadQuery},

	{"instances of a series by number", LevelInstance, map[string]string{"SeriesInstanceUID": "1.2.3.1.1"}, 0, 0, []string{"1.2.3.1.1.1", "1.2.3.1.1.2", "1.2.3.1.1.3"}, nil},
	{"instance number in a study", LevelInstance, map[string]string{"StudyInstanceUID": "1.2.3.1", "InstanceNumber": "2"}, 0, 0, []string{"1.2.3.1.1.2", "1.2.3.1.2.2"}, nil},
	{"SOP UID list", LevelInstance, map[string]string{"SOPInstanceUID": `1.2.3.4.1.1\1.2.3.2.2.1`}, 0, 0, []string{"1.2.3.2.2.1", "1.2.3.4.1.1"}, nil},
	{"SOP class", LevelInstance, map[string]string{"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "Modality": "MR"}, 0, 0, []string{"1.2.3.3.1.1", "1.2.3.3.1.2"}, nil},
	{"rows", LevelInstance, map[string]string{"Rows": "0"}, 0, 0, []string{"1.2.3.2.2.1"}, nil},
	{"instance paging", LevelInstance, map[string]string{"StudyInstanceUID": "1.2.3.1"}, 2, 3, []string{"1.2.3.1.2.1", "1.2.3.1.2.2"}, nil},
}

func runQuery(ctx context.Context, c Catalog, level Level, q Query) ([]string, error) {
	var uids []string
	switch level {
	case LevelStudy:
		rs, err := c.Studies(ctx, q)
		for _, r := range rs {
			uids = append(uids, r.StudyInstanceUID)
		}
		return uids, err
	case LevelSeries:
		rs, err := c.Series(ctx, q)
		for _, r := range rs {
			uids = append(uids, r.SeriesInstanceUID)
		}
		return uids, err
	default:
		rs, err := c.Instances(ctx, q)
		for _, r := range rs {
			uids = append(uids, r.SOPInstanceUID)
		}
		return uids, err
	}
}

func TestCatalogQIDO(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		putAll(t, c, qidoFixture())
		for _, tc := range qidoCases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := runQuery(ctx, c, tc.level, Query{Match: tc.match, Limit: tc.limit, Offset: tc.offs})
				if tc.err != nil {
					if !errors.Is(err, tc.err) {
						t.Fatalf("err = %v, want %v", err, tc.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			})
		}
	})
}

func TestCatalogQIDORecords(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		fx := qidoFixture()
		putAll(t, c, fx)
		studies, err := c.Studies(ctx, Query{Match: map[string]string{"StudyInstanceUID": `1.2.3.1\1.2.3.2`}})
		if err != nil {
			t.Fatal(err)
		}
		want := []StudyRecord{
			{Patient: fx[5].Patient, Study: fx[5].Study, ModalitiesInStudy: []string{"CR", "SR"},
				NumberOfStudyRelatedSeries: 2, NumberOfStudyRelatedInstances: 2},
			{Patient: fx[0].Patient, Study: fx[0].Study, ModalitiesInStudy: []string{"CT"},
				NumberOfStudyRelatedSeries: 2, NumberOfStudyRelatedInstances: 5},
		}
		if !reflect.DeepEqual(studies, want) {
			t.Errorf("studies\n%+v\nwant\n%+v", studies, want)
		}
		series, err := c.Series(ctx, Query{Match: map[string]string{"StudyInstanceUID": "1.2.3.2"}})
		if err != nil {
			t.Fatal(err)
		}
		wantSeries := []SeriesRecord{
			{Patient: fx[5].Patient, Study: fx[5].Study, Series: fx[5].Series, NumberOfSeriesRelatedInstances: 1},
			{Patient: fx[6].Patient, Study: fx[6].Study, Series: fx[6].Series, NumberOfSeriesRelatedInstances: 1},
		}
		if !reflect.DeepEqual(series, wantSeries) {
			t.Errorf("series\n%+v\nwant\n%+v", series, wantSeries)
		}
		ins, err := c.Instances(ctx, Query{Match: map[string]string{"SOPInstanceUID": fx[6].SOPInstanceUID}})
		if err != nil || len(ins) != 1 {
			t.Fatalf("instances %v, %v", ins, err)
		}
		ins[0].ReceivedAt = time.Time{}
		if !reflect.DeepEqual(ins[0], fx[6]) {
			t.Errorf("instance\n%+v\nwant\n%+v", ins[0], fx[6])
		}
	})
}

// TestCatalogPagingStable: walking a larger result page by page visits
// every record exactly once, in the order of the unpaged query.
func TestCatalogPagingStable(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		var ins []Instance
		for s := range 23 {
			in := testInstance(s, 1, 1)
			in.StudyDate = fmt.Sprintf("202401%02d", 1+s%3) // many ties
			ins = append(ins, in)
		}
		putAll(t, c, ins)
		all, err := runQuery(ctx, c, LevelStudy, Query{})
		if err != nil || len(all) != 23 {
			t.Fatalf("all: %d, %v", len(all), err)
		}
		var paged []string
		for off := 0; ; off += 5 {
			page, err := runQuery(ctx, c, LevelStudy, Query{Limit: 5, Offset: off})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
		}
		if !reflect.DeepEqual(paged, all) {
			t.Errorf("pages %v\n  != all %v", paged, all)
		}
	})
}

func TestCatalogDelete(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		fx := qidoFixture()
		putAll(t, c, fx)
		// The only instance of study 4: study and patient P3 go too.
		gone, err := c.DeleteInstance(ctx, "1.2.3.4.1.1")
		if err != nil {
			t.Fatal(err)
		}
		if gone.BlobKey != fx[len(fx)-1].BlobKey {
			t.Errorf("deleted record has blob key %q", gone.BlobKey)
		}
		if _, err := c.GetInstance(ctx, "1.2.3.4.1.1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after delete: %v", err)
		}
		if got, _ := runQuery(ctx, c, LevelStudy, Query{Match: map[string]string{"PatientID": "P3"}}); got != nil {
			t.Errorf("empty study still listed: %v", got)
		}
		// One of two instances of a series: counts drop, series stays.
		if _, err := c.DeleteInstance(ctx, "1.2.3.1.2.1"); err != nil {
			t.Fatal(err)
		}
		s, err := c.Studies(ctx, Query{Match: map[string]string{"StudyInstanceUID": "1.2.3.1"}})
		if err != nil || len(s) != 1 || s[0].NumberOfStudyRelatedInstances != 4 || s[0].NumberOfStudyRelatedSeries != 2 {
			t.Errorf("after partial delete: %+v, %v", s, err)
		}
		if _, err := c.DeleteInstance(ctx, "1.2.3.4.1.1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: %v, want ErrNotFound", err)
		}
		// The same UID can be stored again after deletion.
		if _, err := c.PutInstance(ctx, fx[len(fx)-1], nil); err != nil {
			t.Errorf("put after delete: %v", err)
		}
	})
}

func TestCatalogListBlobKeys(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		keys := []string{"ab/x", "ab.c", "Ab/y", "ab/x-1", "ab0", "a", "zz/Z", "zz/a", "ab/x.dcm"}
		for i, k := range keys {
			in := testInstance(1, 1, i)
			in.BlobKey = k
			putAll(t, c, []Instance{in})
		}
		var got []string
		if err := c.ListBlobKeys(ctx, func(k string) error { got = append(got, k); return nil }); err != nil {
			t.Fatal(err)
		}
		want := append([]string(nil), keys...)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want byte order %v", got, want)
		}
		stop := errors.New("stop")
		n := 0
		err := c.ListBlobKeys(ctx, func(string) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("stopping early: %v after %d", err, n)
		}
	})
}

func TestOpenCatalog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := OpenCatalog(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := os.Stat(filepath.Join(dir, SQLiteFile)); err != nil {
		t.Errorf("default catalog not in the data dir: %v", err)
	}
	for _, u := range []string{"sqlite:" + filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")} {
		c, err := OpenCatalog(ctx, u, "")
		if err != nil {
			t.Errorf("OpenCatalog(%q): %v", u, err)
			continue
		}
		c.Close()
	}
	for _, u := range []string{"mysql://x", ""} {
		if _, err := OpenCatalog(ctx, u, ""); err == nil {
			t.Errorf("OpenCatalog(%q, \"\") succeeded", u)
		}
	}
}

// crcOf is b's CRC-32C, as the catalog keeps it.
func crcOf(b []byte) *uint32 {
	c := crc32.Checksum(b, castagnoli)
	return &c
}
