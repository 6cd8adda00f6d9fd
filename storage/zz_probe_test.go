package storage

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func BenchmarkProbe(b *testing.B) {
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
	m := catalogMakers[1]
	c := mustOpen(b, m.new(b))
	bulkLoad(b, c, benchArchive(10000))
	ctx := context.Background()
	run := func(tag string) {
		for i, q := range queries {
			start := time.Now()
			for range 3 {
				c.Studies(ctx, q)
			}
			fmt.Printf("%s q%d %v\n", tag, i, time.Since(start)/3)
		}
	}
	run("noanalyze")
	c.(*sqlCatalog).db.exec(ctx, "ANALYZE")
	run("analyze")
	w := whereBuilder{d: c.(*sqlCatalog).d}
	w.build(LevelStudy, queries[1])
	r, _ := c.(*sqlCatalog).db.query(ctx, `EXPLAIN ANALYZE SELECT st.id, p.patient_id, p.patient_name, p.birth_date, p.sex,
		st.study_uid, st.study_date, st.study_time, st.accession_number,
		st.study_description, st.referring_physician, st.study_id,
		(SELECT COUNT(*) FROM series x WHERE x.study_pk = st.id),
		(SELECT COUNT(*) FROM instances y JOIN series x ON x.id = y.series_pk WHERE x.study_pk = st.id)
		FROM studies st JOIN patients p ON p.id = st.patient_pk`+w.sql()+studyOrder+limitClause(queries[1]), w.args...)
	for r.Next() {
		var s string
		r.Scan(&s)
		fmt.Println(s)
	}
	r.Close()
}
