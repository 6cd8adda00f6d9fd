package storage

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
)

// TestRangeReaderAt reads random ranges of a blob through ranged reads, as
// Store.Open does for S3, and compares them with the bytes.
func TestRangeReaderAt(t *testing.T) {
	blobs, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, 3*rangeChunk+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	if err := blobs.Put(ctx, "aa/bb/x", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	ra := &rangeReaderAt{ctx: ctx, blobs: blobs, key: "aa/bb/x", size: int64(len(data))}
	ref := bytes.NewReader(data)
	for i := 0; i < 300; i++ {
		off := rng.Int64N(int64(len(data)) + 10)
		n := rng.IntN(2 * rangeChunk)
		if i%3 == 0 {
			n = rng.IntN(64)
		}
		p, q := make([]byte, n), make([]byte, n)
		gn, gerr := ra.ReadAt(p, off)
		wn, werr := ref.ReadAt(q, off)
		if gn != wn || (gerr == nil) != (werr == nil) || !bytes.Equal(p[:gn], q[:wn]) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d, %v", n, off, gn, gerr, wn, werr)
		}
	}
	if _, err := ra.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("negative offset accepted")
	}
}
