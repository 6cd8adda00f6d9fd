package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"lightbox/dicom/dimse"
	"lightbox/storage"
)

// storeFlags are the flags every command that opens the store shares.
type storeFlags struct {
	data  string
	db    string
	blobs string
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.data, "data", "./lightbox-data", "folder for the server's state: SQLite catalog, blobs, certificate")
	fs.StringVar(&s.db, "db", "", "catalog: postgres://user:pass@host:port/db (default: SQLite in --data)")
	fs.StringVar(&s.blobs, "blobs", "", "blob store: s3://ACCESS:SECRET@host:port/bucket (default: --data/blobs)")
}

// open opens the catalog and blob store the flags name, creating --data
// if needed. The caller closes the catalog.
func (s storeFlags) open(ctx context.Context) (*storage.Store, error) {
	store, err := storage.Open(ctx, s.db, s.blobs, s.data)
	if err != nil {
		return nil, err
	}
	// Every entrance accepts the SOP classes the DICOM service negotiates:
	// what Lightbox can show.
	store.SOPClasses = map[string]bool{}
	for _, c := range dimse.DefaultSOPClasses {
		store.SOPClasses[c] = true
	}
	return store, nil
}

// cleanStart deals with what a crash may have left: spool files of
// ingests that never finished (never acknowledged), and blobs whose
// catalog row was never committed or was lost (see storage.Store.Recover).
func cleanStart(ctx context.Context, store *storage.Store, grace time.Duration, log *slog.Logger) error {
	spooled, _ := filepath.Glob(filepath.Join(store.TempDir, "ingest-*"))
	for _, p := range spooled {
		os.Remove(p)
	}
	rec, err := store.Recover(ctx, grace)
	if err != nil {
		return err
	}
	if rec != (storage.Recovered{}) || len(spooled) > 0 {
		log.Warn("dealt with what an interrupted run left", "reindexed_blobs", rec.Reindexed,
			"removed_blobs", rec.Removed, "spool_files", len(spooled))
	}
	return nil
}
