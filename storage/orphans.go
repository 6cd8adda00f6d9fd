package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"lightbox/dicom"
)

// Recovered counts what Recover did with the blobs no catalog row named.
type Recovered struct {
	// Reindexed blobs got their catalog row back: instances whose ingest
	// had made the blob durable and whose row a power failure took (the
	// SQLite catalog's ingest commits are not fsynced; see PutInstance).
	Reindexed int
	// Removed blobs were not wanted: the losing copy of an instance
	// stored twice at once, or bytes that are not an instance we keep.
	Removed int
}

// Recover deals with every blob that no catalog row names and that is
// older than grace, then sweeps what interrupted Puts left. Ingest writes
// the blob, complete and durable, before the catalog row, so a crash
// between the two leaves such a blob; grace spares the blobs of ingests
// still in flight (on this node or another).
//
// A blob that is a storable instance not yet in the catalog is
// re-indexed under its key: it may have been acknowledged to its sender.
// One whose SOP Instance UID the catalog holds under another blob, or that
// is not a storable instance, is removed.
//
// The catalog's keys are held in memory while the blobs are listed: about
// 100 bytes per instance, 100 MB for a million.
func (s *Store) Recover(ctx context.Context, grace time.Duration) (Recovered, error) {
	var rec Recovered
	known := map[string]struct{}{}
	if err := s.Catalog.ListBlobKeys(ctx, func(key string) error {
		known[key] = struct{}{}
		return nil
	}); err != nil {
		return rec, fmt.Errorf("orphan scan: list catalog: %w", err)
	}
	cutoff := time.Now().Add(-grace)
	var orphans []BlobInfo
	if err := s.Blobs.List(ctx, "", func(bi BlobInfo) error {
		if _, ok := known[bi.Key]; !ok && bi.ModTime.Before(cutoff) {
			orphans = append(orphans, bi)
		}
		return nil
	}); err != nil {
		return rec, fmt.Errorf("orphan scan: list blobs: %w", err)
	}
	for _, bi := range orphans {
		kept, err := s.reindex(ctx, bi)
		if err != nil {
			return rec, fmt.Errorf("orphan scan: %s: %w", bi.Key, err)
		}
		if kept {
			rec.Reindexed++
			continue
		}
		if err := s.Blobs.Delete(ctx, bi.Key); err != nil {
			return rec, fmt.Errorf("orphan scan: delete %s: %w", bi.Key, err)
		}
		rec.Removed++
	}
	if err := s.Blobs.Sweep(ctx, grace); err != nil {
		return rec, fmt.Errorf("orphan scan: %w", err)
	}
	return rec, nil
}

// reindex puts the catalog row of an orphan blob back, reporting whether
// the blob is now named by a row. An error means the blob could not be
// read or the catalog written: the blob is left alone.
func (s *Store) reindex(ctx context.Context, bi BlobInfo) (bool, error) {
	rc, err := s.Blobs.Get(ctx, bi.Key)
	if err != nil {
		return false, err
	}
	// A local copy gives the parser random access whatever the store.
	tmp, size, crc, err := s.spool(nil, rc, false)
	rc.Close()
	if errors.Is(err, ErrTooLarge) {
		return false, nil // ingest would have refused it
	}
	if err != nil {
		return false, err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	f, err := dicom.ParseMeta(tmp, size)
	if err != nil || f.Bare() {
		return false, nil // ingest stores only Part 10 files it has parsed
	}
	in, err := s.record(f, Expect{})
	if err != nil {
		return false, nil
	}
	in.CRC32C = &crc
	in.Size, in.BlobKey, in.ReceivedAt, in.Source = size, bi.Key, bi.ModTime, "recovered"
	stored, err := s.Catalog.PutInstance(ctx, in, nil)
	if errors.Is(err, ErrExists) {
		return stored.BlobKey == bi.Key, nil
	}
	return err == nil, err
}
