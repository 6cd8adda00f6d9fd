package storage

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRemoveOrphans leaves a blob without a catalog row, as a crash
// between the two writes of an ingest would, and checks the scan removes
// it and nothing else.
func TestRemoveOrphans(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		raw, _ := os.ReadFile("../testdata/mr-small.dcm")
		res, err := s.Ingest(ctx, bytes.NewReader(raw), "test", Expect{})
		if err != nil {
			t.Fatal(err)
		}
		orphan := NewBlobKey("1.2.3.4.5")
		if err := s.Blobs.Put(ctx, orphan, strings.NewReader("half an ingest"), 14); err != nil {
			t.Fatal(err)
		}
		if n, err := RemoveOrphans(ctx, s.Catalog, s.Blobs, time.Hour); err != nil || n != 0 {
			t.Fatalf("within the grace period: removed %d, %v; want 0", n, err)
		}
		n, err := RemoveOrphans(ctx, s.Catalog, s.Blobs, -time.Second)
		if err != nil || n != 1 {
			t.Fatalf("removed %d, %v; want 1", n, err)
		}
		if _, err := s.Blobs.Stat(ctx, orphan); err == nil {
			t.Error("orphan still there")
		}
		if _, err := s.Blobs.Stat(ctx, res.Instance.BlobKey); err != nil {
			t.Errorf("the stored instance's blob is gone: %v", err)
		}
	})
}
