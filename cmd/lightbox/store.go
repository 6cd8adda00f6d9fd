package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

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
func (s *storeFlags) open(ctx context.Context) (*storage.Store, error) {
	if err := os.MkdirAll(s.data, 0o700); err != nil {
		return nil, err
	}
	tmp := filepath.Join(s.data, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	cat, err := storage.OpenCatalog(ctx, s.db, s.data)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	blobs, err := storage.OpenBlobs(ctx, s.blobs, s.data)
	if err != nil {
		cat.Close()
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	return &storage.Store{Catalog: cat, Blobs: blobs, TempDir: tmp}, nil
}
