package storage

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRecover leaves blobs without catalog rows, as crashes between the
// two writes of an ingest would: one that is not an instance, the losing
// copy of an instance stored twice, and an instance whose row a power
// failure took. The scan removes the first two and re-indexes the third.
func TestRecover(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		raw, _ := os.ReadFile("../testdata/mr-small.dcm")
		res, err := s.Ingest(ctx, bytes.NewReader(raw), "test", Expect{})
		if err != nil {
			t.Fatal(err)
		}
		big := NewBlobKey("1.2.3.4.6") // more than the store takes
		if err := s.Blobs.Put(ctx, big, bytes.NewReader(make([]byte, 2<<20)), 2<<20); err != nil {
			t.Fatal(err)
		}
		s.MaxInstance = 1 << 20
		junk := NewBlobKey("1.2.3.4.5")
		if err := s.Blobs.Put(ctx, junk, strings.NewReader("half an ingest"), 14); err != nil {
			t.Fatal(err)
		}
		loser := NewBlobKey(res.Instance.SOPInstanceUID)
		if err := s.Blobs.Put(ctx, loser, bytes.NewReader(raw), int64(len(raw))); err != nil {
			t.Fatal(err)
		}
		ct, _ := os.ReadFile("../testdata/ct-signed-implicit-512.dcm")
		lost, err := s.Ingest(ctx, bytes.NewReader(ct), "dimse:CT1@127.0.0.1", Expect{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Catalog.DeleteInstance(ctx, lost.Instance.SOPInstanceUID); err != nil {
			t.Fatal(err)
		}

		if rec, err := s.Recover(ctx, time.Hour); err != nil || rec != (Recovered{}) {
			t.Fatalf("within the grace period: %+v, %v; want nothing done", rec, err)
		}
		rec, err := s.Recover(ctx, -time.Second)
		if err != nil || rec != (Recovered{Reindexed: 1, Removed: 3}) {
			t.Fatalf("recovered %+v, %v; want 1 re-indexed, 3 removed", rec, err)
		}
		for _, key := range []string{junk, loser, big} {
			if _, err := s.Blobs.Stat(ctx, key); err == nil {
				t.Errorf("unwanted blob %s still there", key)
			}
		}
		if _, err := s.Blobs.Stat(ctx, res.Instance.BlobKey); err != nil {
			t.Errorf("the stored instance's blob is gone: %v", err)
		}
		got, err := s.Catalog.GetInstance(ctx, lost.Instance.SOPInstanceUID)
		if err != nil {
			t.Fatalf("the lost row is not back: %v", err)
		}
		if got.BlobKey != lost.Instance.BlobKey || *got.CRC32C != *lost.Instance.CRC32C || got.Size != lost.Instance.Size ||
			got.StudyInstanceUID != lost.Instance.StudyInstanceUID || got.Source != "recovered" {
			t.Errorf("re-indexed %+v, want the row it lost %+v", got, lost.Instance)
		}
		if rec, err := s.Recover(ctx, -time.Second); err != nil || rec != (Recovered{}) {
			t.Errorf("second scan: %+v, %v; want nothing to do", rec, err)
		}
	})
}
