package storage

import (
	"bytes"
	"context"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"
)

// TestOpen opens the default store in an empty folder, ingests into it,
// and opens it again to find the instance.
func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	s, err := Open(ctx, "", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile("../testdata/mr-small.dcm")
	res, err := s.Ingest(ctx, bytes.NewReader(raw), "test", Expect{})
	s.Catalog.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{SQLiteFile, BlobsDir, SpoolDir} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	// Every folder BlobKey can name exists before any ingest needs it.
	folders, _ := filepath.Glob(filepath.Join(dir, BlobsDir, "[0-9a-f][0-9a-f]"))
	if len(folders) != 256 {
		t.Errorf("%d fan-out folders, want 256", len(folders))
	}
	if !slices.Contains(folders, filepath.Join(dir, BlobsDir, path.Dir(res.Instance.BlobKey))) {
		t.Errorf("blob key %s is not in a fan-out folder", res.Instance.BlobKey)
	}
	s, err = Open(ctx, "", "", dir) // the folders exist: opening again is fine
	if err != nil {
		t.Fatal(err)
	}
	defer s.Catalog.Close()
	if _, err := s.Catalog.GetInstance(ctx, res.Instance.SOPInstanceUID); err != nil {
		t.Errorf("reopened store lacks the instance: %v", err)
	}
	if _, err := Open(ctx, "mysql://x", "", t.TempDir()); err == nil {
		t.Error("unknown catalog URL accepted")
	}
}
