package storage

import (
	"context"
	"fmt"
	"time"
)

// RemoveOrphans deletes every blob that no catalog row names and that is
// older than grace, then sweeps what interrupted Puts left. Ingest writes
// the blob before the catalog row, so a crash between the two leaves such
// an orphan; grace spares the blobs of ingests still in flight (on this
// node or another). It returns how many blobs it removed.
//
// The catalog's keys are held in memory while the blobs are listed: about
// 100 bytes per instance, 100 MB for a million.
func RemoveOrphans(ctx context.Context, c Catalog, b Blobs, grace time.Duration) (int, error) {
	known := map[string]struct{}{}
	if err := c.ListBlobKeys(ctx, func(key string) error {
		known[key] = struct{}{}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("orphan scan: list catalog: %w", err)
	}
	cutoff := time.Now().Add(-grace)
	var orphans []string
	if err := b.List(ctx, "", func(bi BlobInfo) error {
		if _, ok := known[bi.Key]; !ok && bi.ModTime.Before(cutoff) {
			orphans = append(orphans, bi.Key)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("orphan scan: list blobs: %w", err)
	}
	for i, key := range orphans {
		if err := b.Delete(ctx, key); err != nil {
			return i, fmt.Errorf("orphan scan: delete %s: %w", key, err)
		}
	}
	if err := b.Sweep(ctx, grace); err != nil {
		return len(orphans), fmt.Errorf("orphan scan: %w", err)
	}
	return len(orphans), nil
}
