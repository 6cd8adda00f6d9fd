package storage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The two catalogs share every SQL statement; what differs between SQLite
// and PostgreSQL (driver, wildcard operator, time type, migration lock) is
// in a dialect and a small database adapter.

// errNoRows is what the adapters' row.Scan returns for an empty result.
var errNoRows = errors.New("no rows")

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type row interface {
	Scan(dest ...any) error
}

type querier interface {
	exec(ctx context.Context, sql string, args ...any) error
	query(ctx context.Context, sql string, args ...any) (rows, error)
	queryRow(ctx context.Context, sql string, args ...any) row
}

type sqlTx interface {
	querier
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// sqlDB reads outside transactions and writes inside them.
type sqlDB interface {
	querier
	begin(ctx context.Context) (sqlTx, error)
	// beginRebuildable begins a transaction whose commit need not survive
	// a power failure, because what it records can be rebuilt from
	// durable data; a database may then skip its fsync.
	beginRebuildable(ctx context.Context) (sqlTx, error)
	close() error
}

type dialect struct {
	name string
	// wildcard returns the condition "col matches the pattern bound at ph".
	wildcard func(col, ph string) string
	// pattern turns a DICOM pattern (* and ?) into the operator's syntax.
	pattern func(dicom string) string
	// timeArg is how a time is bound.
	timeArg func(time.Time) any
	// migrateLock is run first in the migration transaction so that two
	// processes starting at once migrate one after the other.
	migrateLock string
}

// sqlCatalog is the Catalog over either database.
type sqlCatalog struct {
	db sqlDB
	d  *dialect
}

const instanceCols = `p.patient_id, p.patient_name, p.birth_date, p.sex,
	st.study_uid, st.study_date, st.study_time, st.accession_number,
	st.study_description, st.referring_physician, st.study_id,
	se.series_uid, se.modality, se.series_number, se.series_description,
	i.sop_class_uid, i.sop_uid, i.instance_number, i.number_of_frames,
	i.pixel_rows, i.pixel_columns, i.transfer_syntax_uid,
	i.size, i.crc32c, i.blob_key, i.received_at, i.source`

const instanceFrom = ` FROM instances i
	JOIN series se ON se.id = i.series_pk
	JOIN studies st ON st.id = se.study_pk
	JOIN patients p ON p.id = st.patient_pk`

// The orders are total (ending in a primary key) so that paging with
// limit/offset neither repeats nor skips records.
const (
	studyOrder    = ` ORDER BY st.study_date DESC, st.study_time DESC, st.id DESC`
	seriesOrder   = studyOrder + `, (se.series_number IS NULL), se.series_number, se.id`
	instanceOrder = seriesOrder + `, (i.instance_number IS NULL), i.instance_number, i.id`
)

func scanInstance(r row) (Instance, error) {
	var in Instance
	var crc *int64
	err := r.Scan(&in.PatientID, &in.PatientName, &in.PatientBirthDate, &in.PatientSex,
		&in.StudyInstanceUID, &in.StudyDate, &in.StudyTime, &in.AccessionNumber,
		&in.StudyDescription, &in.ReferringPhysicianName, &in.StudyID,
		&in.SeriesInstanceUID, &in.Modality, &in.SeriesNumber, &in.SeriesDescription,
		&in.SOPClassUID, &in.SOPInstanceUID, &in.InstanceNumber, &in.NumberOfFrames,
		&in.Rows, &in.Columns, &in.TransferSyntaxUID,
		&in.Size, &crc, &in.BlobKey, timeScanner{&in.ReceivedAt}, &in.Source)
	if err != nil {
		return Instance{}, err
	}
	if crc != nil {
		c := uint32(*crc)
		in.CRC32C = &c
	}
	return in, nil
}

// timeScanner reads a time whichever way the driver returns it:
// PostgreSQL's timestamptz as time.Time, SQLite's TEXT as a string.
type timeScanner struct{ t *time.Time }

// storedTimeLayout is how SQLite stores times: fixed width, so that they
// sort as strings.
const storedTimeLayout = "2006-01-02T15:04:05.000000Z"

func (s timeScanner) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*s.t = v.UTC()
	case string:
		return s.parse(v)
	case []byte:
		return s.parse(string(v))
	default:
		return fmt.Errorf("time column holds %T", src)
	}
	return nil
}

func (s timeScanner) parse(v string) error {
	t, err := time.Parse(storedTimeLayout, v)
	if err != nil {
		return fmt.Errorf("time column: %w", err)
	}
	*s.t = t
	return nil
}

func (c *sqlCatalog) GetInstance(ctx context.Context, sopInstanceUID string) (Instance, error) {
	return c.getInstance(ctx, c.db, sopInstanceUID)
}

func (c *sqlCatalog) getInstance(ctx context.Context, q querier, uid string) (Instance, error) {
	in, err := scanInstance(q.queryRow(ctx, "SELECT "+instanceCols+instanceFrom+" WHERE i.sop_uid = $1", uid))
	if errors.Is(err, errNoRows) {
		return Instance{}, fmt.Errorf("instance %s: %w", uid, ErrNotFound)
	}
	if err != nil {
		return Instance{}, fmt.Errorf("get instance %s: %w", uid, err)
	}
	return in, nil
}

func (c *sqlCatalog) HasInstance(ctx context.Context, sopInstanceUID string) (bool, error) {
	var one int
	err := c.db.queryRow(ctx, "SELECT 1 FROM instances WHERE sop_uid = $1", sopInstanceUID).Scan(&one)
	if errors.Is(err, errNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("has instance %s: %w", sopInstanceUID, err)
	}
	return true, nil
}

func (c *sqlCatalog) PutInstance(ctx context.Context, in Instance, ready func() error) (Instance, error) {
	if err := in.validate(); err != nil {
		return Instance{}, err
	}
	// No look-up first: Ingest has already answered resends from its own
	// look-up, and the insert below detects the race that remains.
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = time.Now()
	}
	// Microseconds: what both databases keep, so the record returned here
	// equals the one read back.
	in.ReceivedAt = in.ReceivedAt.UTC().Truncate(time.Microsecond)
	if in.NumberOfFrames == 0 {
		in.NumberOfFrames = 1
	}

	// The blob this row names is durable before the commit (ready), and
	// Store.Recover re-indexes a blob whose row was lost.
	tx, err := c.db.beginRebuildable(ctx)
	if err != nil {
		return Instance{}, fmt.Errorf("put instance %s: begin: %w", in.SOPInstanceUID, err)
	}
	defer tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after commit this is a no-op

	inserted, err := c.putInstanceTx(ctx, tx, &in)
	if err != nil {
		return Instance{}, fmt.Errorf("put instance %s: %w", in.SOPInstanceUID, err)
	}
	if !inserted {
		// Another writer stored it between our check and our insert.
		if err := tx.rollback(ctx); err != nil {
			return Instance{}, fmt.Errorf("put instance %s: rollback: %w", in.SOPInstanceUID, err)
		}
		old, err := c.getInstance(ctx, c.db, in.SOPInstanceUID)
		if err != nil {
			return Instance{}, err
		}
		return old, ErrExists
	}
	if ready != nil {
		if err := ready(); err != nil {
			return Instance{}, fmt.Errorf("put instance %s: %w", in.SOPInstanceUID, err)
		}
	}
	if err := tx.commit(ctx); err != nil {
		return Instance{}, fmt.Errorf("put instance %s: commit: %w", in.SOPInstanceUID, err)
	}
	return in, nil
}

// putInstanceTx writes the rows; it reports false if the instance already
// exists. Parents are looked up before they are inserted so that the usual
// case (the study exists) neither writes nor locks the parent rows.
func (c *sqlCatalog) putInstanceTx(ctx context.Context, tx sqlTx, in *Instance) (bool, error) {
	patientPK, err := c.upsert(ctx, tx, parentRow{
		table: "patients", key: "patient_key", keyValue: patientKey(in.Patient),
		fixed:     []string{"patient_id", "patient_name", "patient_name_norm", "birth_date"},
		fixedVals: []any{in.PatientID, in.PatientName, normalizePN(in.PatientName), in.PatientBirthDate},
		cols:      []string{"sex"},
		vals:      []string{in.PatientSex},
	})
	if err != nil {
		return false, err
	}
	studyPK, err := c.upsert(ctx, tx, parentRow{
		table: "studies", key: "study_uid", keyValue: in.StudyInstanceUID,
		fixed: []string{"patient_pk"}, fixedVals: []any{patientPK},
		cols: []string{"study_date", "study_time", "accession_number", "study_description",
			"referring_physician", "referring_physician_norm", "study_id"},
		vals: []string{in.StudyDate, in.StudyTime, in.AccessionNumber, in.StudyDescription,
			in.ReferringPhysicianName, normalizePN(in.ReferringPhysicianName), in.StudyID},
	})
	if err != nil {
		return false, err
	}
	seriesPK, err := c.upsert(ctx, tx, parentRow{
		table: "series", key: "series_uid", keyValue: in.SeriesInstanceUID,
		fixed: []string{"study_pk", "series_number"}, fixedVals: []any{studyPK, in.SeriesNumber},
		cols: []string{"modality", "series_description"},
		vals: []string{in.Modality, in.SeriesDescription},
	})
	if err != nil {
		return false, err
	}
	r, err := tx.query(ctx, `INSERT INTO instances (series_pk, sop_uid, sop_class_uid,
		instance_number, number_of_frames, pixel_rows, pixel_columns, transfer_syntax_uid,
		size, crc32c, blob_key, received_at, source)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (sop_uid) DO NOTHING RETURNING id`,
		seriesPK, in.SOPInstanceUID, in.SOPClassUID, in.InstanceNumber, in.NumberOfFrames,
		in.Rows, in.Columns, in.TransferSyntaxUID, in.Size, crcArg(in.CRC32C), in.BlobKey,
		c.d.timeArg(in.ReceivedAt), in.Source)
	if err != nil {
		return false, fmt.Errorf("insert instance: %w", err)
	}
	inserted := r.Next()
	r.Close()
	if err := r.Err(); err != nil {
		return false, fmt.Errorf("insert instance: %w", err)
	}
	return inserted, nil
}

// patientKey identifies a patient row: ID, name and birth date together,
// so that different people are never merged under one ID (or none).
func patientKey(p Patient) string {
	return p.PatientID + "\x1f" + p.PatientName + "\x1f" + p.PatientBirthDate
}

// parentRow describes a patient, study or series row to find or create.
// fixed columns are set only on insert; cols are set on insert and later
// filled in where still empty, so the first non-empty value of each
// attribute wins and nothing stored is ever overwritten.
type parentRow struct {
	table, key string
	keyValue   string
	fixed      []string
	fixedVals  []any
	cols       []string
	vals       []string
}

func (c *sqlCatalog) upsert(ctx context.Context, tx sqlTx, p parentRow) (int64, error) {
	pk, stored, err := c.findParent(ctx, tx, p)
	if errors.Is(err, errNoRows) {
		all := append(append([]string{p.key}, p.fixed...), p.cols...)
		args := append([]any{p.keyValue}, p.fixedVals...)
		for _, v := range p.vals {
			args = append(args, v)
		}
		phs := make([]string, len(all))
		for i := range phs {
			phs[i] = "$" + strconv.Itoa(i+1)
		}
		err = tx.queryRow(ctx, "INSERT INTO "+p.table+" ("+strings.Join(all, ", ")+
			") VALUES ("+strings.Join(phs, ", ")+") ON CONFLICT ("+p.key+") DO NOTHING RETURNING id",
			args...).Scan(&pk)
		if !errors.Is(err, errNoRows) {
			if err != nil {
				return 0, fmt.Errorf("insert %s %q: %w", p.table, p.keyValue, err)
			}
			return pk, nil
		}
		// A concurrent transaction inserted it and has committed.
		pk, stored, err = c.findParent(ctx, tx, p)
	}
	if err != nil {
		return 0, fmt.Errorf("find %s %q: %w", p.table, p.keyValue, err)
	}
	var sets, guards []string
	args := []any{pk}
	for i, col := range p.cols {
		if stored[i] == "" && p.vals[i] != "" {
			args = append(args, p.vals[i])
			// The CASE keeps a value another writer filled in meanwhile.
			sets = append(sets, col+" = CASE WHEN "+col+" = '' THEN $"+strconv.Itoa(len(args))+" ELSE "+col+" END")
			guards = append(guards, col+" = ''")
		}
	}
	if len(sets) == 0 {
		return pk, nil
	}
	if err := tx.exec(ctx, "UPDATE "+p.table+" SET "+strings.Join(sets, ", ")+
		" WHERE id = $1 AND ("+strings.Join(guards, " OR ")+")", args...); err != nil {
		return 0, fmt.Errorf("fill in %s %q: %w", p.table, p.keyValue, err)
	}
	return pk, nil
}

func (c *sqlCatalog) findParent(ctx context.Context, q querier, p parentRow) (int64, []string, error) {
	var pk int64
	stored := make([]string, len(p.cols))
	dest := []any{&pk}
	for i := range stored {
		dest = append(dest, &stored[i])
	}
	err := q.queryRow(ctx, "SELECT id, "+strings.Join(p.cols, ", ")+" FROM "+p.table+
		" WHERE "+p.key+" = $1", p.keyValue).Scan(dest...)
	return pk, stored, err
}

func (c *sqlCatalog) DeleteInstance(ctx context.Context, sopInstanceUID string) (Instance, error) {
	tx, err := c.db.begin(ctx)
	if err != nil {
		return Instance{}, fmt.Errorf("delete instance %s: begin: %w", sopInstanceUID, err)
	}
	defer tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after commit this is a no-op
	in, err := c.getInstance(ctx, tx, sopInstanceUID)
	if err != nil {
		return Instance{}, err
	}
	var instancePK, seriesPK, studyPK, patientPK int64
	err = tx.queryRow(ctx, `SELECT i.id, se.id, st.id, st.patient_pk`+instanceFrom+` WHERE i.sop_uid = $1`,
		sopInstanceUID).Scan(&instancePK, &seriesPK, &studyPK, &patientPK)
	if err != nil {
		return Instance{}, fmt.Errorf("delete instance %s: %w", sopInstanceUID, err)
	}
	for _, stmt := range []struct {
		sql string
		pk  int64
	}{
		{"DELETE FROM instances WHERE id = $1", instancePK},
		{"DELETE FROM series WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM instances WHERE series_pk = $1)", seriesPK},
		{"DELETE FROM studies WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM series WHERE study_pk = $1)", studyPK},
		{"DELETE FROM patients WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM studies WHERE patient_pk = $1)", patientPK},
	} {
		if err := tx.exec(ctx, stmt.sql, stmt.pk); err != nil {
			return Instance{}, fmt.Errorf("delete instance %s: %w", sopInstanceUID, err)
		}
	}
	if err := tx.commit(ctx); err != nil {
		return Instance{}, fmt.Errorf("delete instance %s: commit: %w", sopInstanceUID, err)
	}
	return in, nil
}

func limitClause(q Query) string {
	switch {
	case q.Limit > 0 && q.Offset > 0:
		return fmt.Sprintf(" LIMIT %d OFFSET %d", q.Limit, q.Offset)
	case q.Limit > 0:
		return fmt.Sprintf(" LIMIT %d", q.Limit)
	case q.Offset > 0:
		// Both databases need a LIMIT before an OFFSET.
		return fmt.Sprintf(" LIMIT 9223372036854775807 OFFSET %d", q.Offset)
	}
	return ""
}

func (c *sqlCatalog) Studies(ctx context.Context, q Query) ([]StudyRecord, error) {
	w := whereBuilder{d: c.d}
	if err := w.build(LevelStudy, q); err != nil {
		return nil, err
	}
	// The page is chosen first, so that the counts are computed for the
	// records returned, not for every record an offset skips.
	r, err := c.db.query(ctx, `SELECT st.id, p.patient_id, p.patient_name, p.birth_date, p.sex,
		st.study_uid, st.study_date, st.study_time, st.accession_number,
		st.study_description, st.referring_physician, st.study_id,
		(SELECT COUNT(*) FROM series x WHERE x.study_pk = st.id),
		(SELECT COUNT(*) FROM instances y JOIN series x ON x.id = y.series_pk WHERE x.study_pk = st.id)
		FROM (SELECT st.id AS pk FROM studies st JOIN patients p ON p.id = st.patient_pk`+
		w.sql()+studyOrder+limitClause(q)+`) page
		JOIN studies st ON st.id = page.pk JOIN patients p ON p.id = st.patient_pk`+studyOrder, w.args...)
	if err != nil {
		return nil, fmt.Errorf("query studies: %w", err)
	}
	defer r.Close()
	var out []StudyRecord
	var pks []int64
	for r.Next() {
		var s StudyRecord
		var pk int64
		if err := r.Scan(&pk, &s.PatientID, &s.PatientName, &s.PatientBirthDate, &s.PatientSex,
			&s.StudyInstanceUID, &s.StudyDate, &s.StudyTime, &s.AccessionNumber,
			&s.StudyDescription, &s.ReferringPhysicianName, &s.StudyID,
			&s.NumberOfStudyRelatedSeries, &s.NumberOfStudyRelatedInstances); err != nil {
			return nil, fmt.Errorf("query studies: %w", err)
		}
		out = append(out, s)
		pks = append(pks, pk)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("query studies: %w", err)
	}
	r.Close()
	if err := c.fillModalities(ctx, out, pks); err != nil {
		return nil, err
	}
	return out, nil
}

// fillModalities sets ModalitiesInStudy for a page of studies with one
// query, rather than aggregating in SQL where the two dialects differ.
func (c *sqlCatalog) fillModalities(ctx context.Context, studies []StudyRecord, pks []int64) error {
	if len(pks) == 0 {
		return nil
	}
	index := make(map[int64]int, len(pks))
	ids := make([]string, len(pks))
	for i, pk := range pks {
		index[pk] = i
		ids[i] = strconv.FormatInt(pk, 10)
	}
	r, err := c.db.query(ctx, "SELECT DISTINCT study_pk, modality FROM series WHERE study_pk IN ("+
		strings.Join(ids, ",")+") AND modality <> ''")
	if err != nil {
		return fmt.Errorf("query modalities: %w", err)
	}
	defer r.Close()
	for r.Next() {
		var pk int64
		var m string
		if err := r.Scan(&pk, &m); err != nil {
			return fmt.Errorf("query modalities: %w", err)
		}
		s := &studies[index[pk]]
		s.ModalitiesInStudy = append(s.ModalitiesInStudy, m)
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("query modalities: %w", err)
	}
	for i := range studies {
		sort.Strings(studies[i].ModalitiesInStudy)
	}
	return nil
}

func (c *sqlCatalog) Series(ctx context.Context, q Query) ([]SeriesRecord, error) {
	w := whereBuilder{d: c.d}
	if err := w.build(LevelSeries, q); err != nil {
		return nil, err
	}
	r, err := c.db.query(ctx, `SELECT p.patient_id, p.patient_name, p.birth_date, p.sex,
		st.study_uid, st.study_date, st.study_time, st.accession_number,
		st.study_description, st.referring_physician, st.study_id,
		se.series_uid, se.modality, se.series_number, se.series_description,
		(SELECT COUNT(*) FROM instances y WHERE y.series_pk = se.id)
		FROM (SELECT se.id AS pk FROM series se JOIN studies st ON st.id = se.study_pk
		JOIN patients p ON p.id = st.patient_pk`+w.sql()+seriesOrder+limitClause(q)+`) page
		JOIN series se ON se.id = page.pk JOIN studies st ON st.id = se.study_pk
		JOIN patients p ON p.id = st.patient_pk`+seriesOrder, w.args...)
	if err != nil {
		return nil, fmt.Errorf("query series: %w", err)
	}
	defer r.Close()
	var out []SeriesRecord
	for r.Next() {
		var s SeriesRecord
		if err := r.Scan(&s.PatientID, &s.PatientName, &s.PatientBirthDate, &s.PatientSex,
			&s.StudyInstanceUID, &s.StudyDate, &s.StudyTime, &s.AccessionNumber,
			&s.StudyDescription, &s.ReferringPhysicianName, &s.StudyID,
			&s.SeriesInstanceUID, &s.Modality, &s.SeriesNumber, &s.SeriesDescription,
			&s.NumberOfSeriesRelatedInstances); err != nil {
			return nil, fmt.Errorf("query series: %w", err)
		}
		out = append(out, s)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("query series: %w", err)
	}
	return out, nil
}

func (c *sqlCatalog) Instances(ctx context.Context, q Query) ([]Instance, error) {
	w := whereBuilder{d: c.d}
	if err := w.build(LevelInstance, q); err != nil {
		return nil, err
	}
	r, err := c.db.query(ctx, "SELECT "+instanceCols+instanceFrom+w.sql()+instanceOrder+limitClause(q), w.args...)
	if err != nil {
		return nil, fmt.Errorf("query instances: %w", err)
	}
	defer r.Close()
	var out []Instance
	for r.Next() {
		in, err := scanInstance(r)
		if err != nil {
			return nil, fmt.Errorf("query instances: %w", err)
		}
		out = append(out, in)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("query instances: %w", err)
	}
	return out, nil
}

func (c *sqlCatalog) ListBlobKeys(ctx context.Context, fn func(key string) error) error {
	r, err := c.db.query(ctx, "SELECT blob_key FROM instances ORDER BY blob_key")
	if err != nil {
		return fmt.Errorf("list blob keys: %w", err)
	}
	defer r.Close()
	for r.Next() {
		var k string
		if err := r.Scan(&k); err != nil {
			return fmt.Errorf("list blob keys: %w", err)
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("list blob keys: %w", err)
	}
	return nil
}

func (c *sqlCatalog) Close() error { return c.db.close() }

// crcArg binds a checksum as the 64-bit integer both databases store it
// as (PostgreSQL has no unsigned 32-bit type).
func crcArg(c *uint32) any {
	if c == nil {
		return nil
	}
	return int64(*c)
}
