package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// SpoolDir is the folder inside the data directory where Ingest spools
// incoming instances.
const SpoolDir = "tmp"

// Open opens the Store the URLs name: the catalog at dbURL and the blobs
// at blobsURL, each defaulting to SQLite and a folder under dataDir (see
// OpenCatalog, OpenBlobs), with the ingest spool in dataDir/tmp. The
// caller closes Store.Catalog.
func Open(ctx context.Context, dbURL, blobsURL, dataDir string) (*Store, error) {
	tmp := filepath.Join(dataDir, SpoolDir)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	cat, err := OpenCatalog(ctx, dbURL, dataDir)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	blobs, err := OpenBlobs(ctx, blobsURL, dataDir)
	if err != nil {
		cat.Close()
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	if d, ok := blobs.(*Disk); ok {
		if err := d.FanOut(); err != nil {
			cat.Close()
			return nil, fmt.Errorf("open blob store: %w", err)
		}
	}
	return &Store{Catalog: cat, Blobs: blobs, TempDir: tmp}, nil
}
