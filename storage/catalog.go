// Package storage keeps what Lightbox receives: the catalog (patients,
// studies, series and instances, in SQLite or PostgreSQL) and the blob store
// (the instance bytes, on local disk or in an S3-compatible bucket).
//
// The catalog is written only after the bytes are durable in the blob store,
// so a catalog row always names a complete blob; a blob with no row is an
// orphan left by a crash, a power failure or a lost race, and the start-up
// scan (Store.Recover) re-indexes it or removes it.
package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Errors callers must tell apart.
var (
	// ErrExists is returned by PutInstance when the SOP Instance UID is
	// already stored; the stored record is returned with it so that the
	// caller can compare hashes. The stored instance is never replaced.
	ErrExists = errors.New("storage: instance already stored")
	// ErrNotFound means no instance (or blob) has that key.
	ErrNotFound = errors.New("storage: not found")
	// ErrBadQuery means a QIDO matching key or value cannot be used.
	ErrBadQuery = errors.New("storage: bad query")
	// ErrInvalid means a record lacks what the catalog needs (a UID).
	ErrInvalid = errors.New("storage: invalid record")
	// ErrSchemaTooNew means the database was migrated by a newer Lightbox.
	ErrSchemaTooNew = errors.New("storage: database schema is newer than this program")
)

// Patient holds the patient-level attributes of an instance.
type Patient struct {
	PatientID        string
	PatientName      string // PN, components separated by ^
	PatientBirthDate string // DA, YYYYMMDD
	PatientSex       string
}

// Study holds the study-level attributes of an instance.
type Study struct {
	StudyInstanceUID       string
	StudyDate              string // DA, YYYYMMDD
	StudyTime              string // TM, HHMMSS.FFFFFF
	AccessionNumber        string
	StudyDescription       string
	ReferringPhysicianName string // PN
	StudyID                string
}

// Series holds the series-level attributes of an instance.
type Series struct {
	SeriesInstanceUID string
	Modality          string
	SeriesNumber      *int // nil when the header has none (it is type 2)
	SeriesDescription string
}

// Instance is one stored SOP instance with everything the catalog keeps
// about it, flattened: the patient, study and series it belongs to, its own
// keys, and where and how its bytes are stored.
type Instance struct {
	Patient
	Study
	Series

	SOPClassUID       string
	SOPInstanceUID    string
	InstanceNumber    *int // nil when absent
	NumberOfFrames    int
	Rows              int
	Columns           int
	TransferSyntaxUID string

	Size int64 // bytes of the stored Part 10 file
	// CRC32C is the CRC-32C (Castagnoli) of those bytes, for fixity
	// checks; nil for instances stored before Lightbox kept it.
	CRC32C     *uint32
	BlobKey    string // where they are in the blob store
	ReceivedAt time.Time
	Source     string // "dimse:AE@ip", "stow:token-name", "upload:user", "import"
}

// StudyRecord is one study as a QIDO-RS study query returns it.
type StudyRecord struct {
	Patient
	Study
	ModalitiesInStudy             []string // distinct, sorted
	NumberOfStudyRelatedSeries    int
	NumberOfStudyRelatedInstances int
}

// SeriesRecord is one series as a QIDO-RS series query returns it, with the
// attributes of its study and patient.
type SeriesRecord struct {
	Patient
	Study
	Series
	NumberOfSeriesRelatedInstances int
}

// Query selects records by QIDO-RS matching (PS3.18 8.3.4, PS3.4 C.2.2.2).
//
// Match maps a DICOM keyword (e.g. "PatientName", "StudyDate") to a QIDO
// value: exact; * and ? wildcards on text keys; a range "D1-D2", "-D2" or
// "D1-" on dates and times; a list of UIDs separated by \ or , on UID keys.
// An empty value matches everything. PN keys match case-insensitively and
// ignore trailing empty components. Keys a level does not know give
// ErrBadQuery; SupportedKeys lists them.
type Query struct {
	Match  map[string]string
	Limit  int // 0: no limit
	Offset int
}

// Catalog is the index of stored instances. Both implementations (SQLite,
// PostgreSQL) pass the same conformance suite.
type Catalog interface {
	// PutInstance stores in in one transaction, creating its patient,
	// study and series as needed, and returns the stored record (with
	// ReceivedAt set). If the SOP Instance UID is already stored it returns
	// the existing record and an error matching ErrExists, and changes
	// nothing. ready, when not nil, is called once the rows are written
	// and before they are committed (not when the instance exists); an
	// error from it rolls them back.
	// Ingest passes the wait for the instance's blob, so that the catalog
	// work overlaps the blob's fsync and a row never commits before its
	// blob is durable.
	PutInstance(ctx context.Context, in Instance, ready func() error) (Instance, error)
	// GetInstance returns the record of one instance, or ErrNotFound.
	GetInstance(ctx context.Context, sopInstanceUID string) (Instance, error)
	// HasInstance reports whether the instance is stored.
	HasInstance(ctx context.Context, sopInstanceUID string) (bool, error)
	// DeleteInstance removes one instance and any series, study and patient
	// left empty, and returns what it removed so that the caller can then
	// delete the blob (in that order: a blob without a row is swept later;
	// a row without its blob would be a lost instance).
	DeleteInstance(ctx context.Context, sopInstanceUID string) (Instance, error)
	// Studies, Series and Instances answer QIDO-RS queries at each level,
	// in a stable order (studies newest first; series and instances by
	// number).
	Studies(ctx context.Context, q Query) ([]StudyRecord, error)
	Series(ctx context.Context, q Query) ([]SeriesRecord, error)
	Instances(ctx context.Context, q Query) ([]Instance, error)
	// ListBlobKeys calls fn with every blob key the catalog refers to, in
	// ascending byte order (the order Blobs.List uses), for the orphan scan.
	ListBlobKeys(ctx context.Context, fn func(key string) error) error
	// Close releases the database.
	Close() error
	// Admin: the PACS allow-list and API tokens live in the same database
	// (admin.go).
	Admin
}

// SQLiteFile is the name of the SQLite catalog inside the data directory.
const SQLiteFile = "lightbox.db"

// OpenCatalog opens the catalog named by dbURL, running migrations: a
// postgres:// or postgresql:// URL opens PostgreSQL; "sqlite:PATH" or a plain
// path opens SQLite; "" opens SQLite in dataDir/lightbox.db.
func OpenCatalog(ctx context.Context, dbURL, dataDir string) (Catalog, error) {
	switch {
	case strings.HasPrefix(dbURL, "postgres://"), strings.HasPrefix(dbURL, "postgresql://"):
		return OpenPostgres(ctx, dbURL)
	case dbURL == "":
		if dataDir == "" {
			return nil, fmt.Errorf("open catalog: neither a database URL nor a data directory")
		}
		return OpenSQLite(ctx, filepath.Join(dataDir, SQLiteFile))
	case strings.HasPrefix(dbURL, "sqlite:"):
		return OpenSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(dbURL, "sqlite:"), "//"))
	case strings.Contains(dbURL, "://"):
		return nil, fmt.Errorf("open catalog: unknown database URL scheme in %q", redactURL(dbURL))
	default:
		return OpenSQLite(ctx, dbURL)
	}
}

// validate checks what the catalog cannot do without.
func (in *Instance) validate() error {
	switch {
	case in.SOPInstanceUID == "":
		return fmt.Errorf("%w: no SOP Instance UID", ErrInvalid)
	case in.SeriesInstanceUID == "":
		return fmt.Errorf("%w: no Series Instance UID", ErrInvalid)
	case in.StudyInstanceUID == "":
		return fmt.Errorf("%w: no Study Instance UID", ErrInvalid)
	case in.SOPClassUID == "":
		return fmt.Errorf("%w: no SOP Class UID", ErrInvalid)
	case in.BlobKey == "":
		return fmt.Errorf("%w: no blob key", ErrInvalid)
	case in.Size < 0:
		return fmt.Errorf("%w: negative size", ErrInvalid)
	}
	return nil
}
