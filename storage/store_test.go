package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	s, err = Open(ctx, "", "", dir)
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
