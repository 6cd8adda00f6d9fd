package storage

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"
)

func TestTimeScanner(t *testing.T) {
	want := time.Date(2026, 11, 25, 9, 0, 1, 123456000, time.UTC)
	for _, src := range []any{want.In(time.FixedZone("x", 7200)), want.Format(storedTimeLayout), []byte(want.Format(storedTimeLayout))} {
		var got time.Time
		if err := (timeScanner{&got}).Scan(src); err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("Scan(%v) = %v, %v", src, got, err)
		}
	}
	for _, src := range []any{nil, int64(5), "yesterday"} {
		var got time.Time
		if err := (timeScanner{&got}).Scan(src); err == nil {
			t.Errorf("Scan(%v) succeeded", src)
		}
	}
	// The stored form sorts as the times do.
	a := want.Format(storedTimeLayout)
	b := want.Add(time.Microsecond).Format(storedTimeLayout)
	c := want.Add(time.Hour * 24 * 400).Format(storedTimeLayout)
	if !(a < b && b < c) || len(a) != len(c) {
		t.Errorf("stored times do not sort: %s %s %s", a, b, c)
	}
}

func TestLimitClause(t *testing.T) {
	for _, tc := range []struct {
		q    Query
		want string
	}{
		{Query{}, ""},
		{Query{Limit: 5}, " LIMIT 5"},
		{Query{Limit: 5, Offset: 10}, " LIMIT 5 OFFSET 10"},
		{Query{Offset: 10}, " LIMIT 9223372036854775807 OFFSET 10"},
	} {
		if got := limitClause(tc.q); got != tc.want {
			t.Errorf("limitClause(%+v) = %q, want %q", tc.q, got, tc.want)
		}
	}
}

// benchCatalogs opens each kind of catalog for a benchmark.
func benchCatalogs(b *testing.B, f func(b *testing.B, c Catalog)) {
	for _, m := range catalogMakers {
		b.Run(m.name, func(b *testing.B) { f(b, mustOpen(b, m.new(b))) })
	}
}

// BenchmarkPutInstance: one durable catalog commit per instance, studies of
// 100 instances in 4 series, as a CT arrives.
func BenchmarkPutInstance(b *testing.B) {
	benchCatalogs(b, func(b *testing.B, c Catalog) {
		ctx := context.Background()
		b.ResetTimer()
		for i := range b.N {
			if _, err := c.PutInstance(ctx, testInstance(i/100, i/25%4, i), nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "instances/s")
	})
}

var (
	benchSurnames = []string{"SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES",
		"ROBINSON", "WRIGHT", "THOMPSON", "EVANS", "WALKER", "WHITE", "ROBERTS", "GREEN", "HALL", "WOOD",
		"JACKSON", "CLARKE"}
	benchGiven       = []string{"JOHN", "MARY", "DAVID", "SARAH", "JAMES", "EMMA", "PETER", "ANNA"}
	benchModalities  = []string{"CT", "MR", "CR", "DX", "US"}
	benchDescription = []string{"CT HEAD", "CT CHEST ABDOMEN PELVIS", "MR KNEE LEFT", "MR BRAIN", "CHEST PA",
		"HAND RIGHT", "ABDOMEN US", "LUMBAR SPINE"}
)

// benchArchive makes n studies of one series and one instance, spread over
// 2,000 patients and ten years.
func benchArchive(n int) []Instance {
	out := make([]Instance, n)
	for i := range n {
		in := testInstance(i, 1, 1)
		p := i % 2000
		in.PatientID = fmt.Sprintf("MRN%06d", p)
		in.PatientName = benchSurnames[p%len(benchSurnames)] + "^" + benchGiven[p/len(benchSurnames)%len(benchGiven)]
		in.PatientBirthDate = fmt.Sprintf("19%02d0%d1%d", 30+p%60, 1+p%9, p%10)
		day := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i*3653/n)
		in.StudyDate = day.Format("20060102")
		in.StudyTime = fmt.Sprintf("%02d%02d00", 8+i%10, i%60)
		in.AccessionNumber = fmt.Sprintf("ACC%07d", i)
		in.StudyDescription = benchDescription[i%len(benchDescription)]
		in.Modality = benchModalities[i%len(benchModalities)]
		in.CRC32C = crcOf([]byte(in.SOPInstanceUID))
		out[i] = in
	}
	return out
}

// bulkLoad stores many instances in one transaction, for benchmark set-up.
func bulkLoad(b *testing.B, c Catalog, ins []Instance) {
	sc := c.(*sqlCatalog)
	ctx := context.Background()
	tx, err := sc.db.begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := range ins {
		ins[i].ReceivedAt = time.Now().UTC().Truncate(time.Microsecond)
		if ok, err := sc.putInstanceTx(ctx, tx, &ins[i]); err != nil || !ok {
			b.Fatalf("load %d: %v %v", i, ok, err)
		}
	}
	if err := tx.commit(ctx); err != nil {
		b.Fatal(err)
	}
	// Statistics as PostgreSQL's autovacuum would have gathered them
	// while the archive grew; planning without them is not steady state.
	if err := sc.db.exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkQIDOStudies: the study queries a study list makes, over 10,000
// studies; reports the p50 and p95 latency of the mix.
func BenchmarkQIDOStudies(b *testing.B) {
	queries := []Query{
		{Limit: 50},
		{Match: map[string]string{"PatientName": "smith*"}, Limit: 50},
		{Match: map[string]string{"StudyDate": "20200301-20200331"}, Limit: 50},
		{Match: map[string]string{"ModalitiesInStudy": "MR", "StudyDate": "20180101-20181231"}, Limit: 50},
		{Match: map[string]string{"AccessionNumber": "ACC0004321"}},
		{Match: map[string]string{"PatientID": "MRN001234"}},
		{Match: map[string]string{"StudyDescription": "*KNEE*"}, Limit: 50},
		{Limit: 50, Offset: 5000},
	}
	benchCatalogs(b, func(b *testing.B, c Catalog) {
		bulkLoad(b, c, benchArchive(10000))
		ctx := context.Background()
		if s, err := c.Studies(ctx, Query{Match: map[string]string{"PatientID": "MRN001234"}}); err != nil || len(s) != 5 {
			b.Fatalf("sanity: %d studies, %v", len(s), err)
		}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			start := time.Now()
			if _, err := c.Studies(ctx, queries[i%len(queries)]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*95/100]), "p95-ms")
	})
}
