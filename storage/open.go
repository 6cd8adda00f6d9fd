package storage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"lightbox/dicom"
)

// Open parses the header of a stored instance, for rendering and
// retrieval. A disk blob is read in place (the open file is the
// ReaderAt); other stores through ranged reads, so memory stays bounded
// whatever the instance's size. Frames are read from the blob later: call
// done once the File is no longer used.
func (s *Store) Open(ctx context.Context, in Instance) (*dicom.File, func(), error) {
	blobs := s.Blobs
	rc, err := blobs.Get(ctx, in.BlobKey)
	if err != nil {
		return nil, nil, fmt.Errorf("instance %s: %w", in.SOPInstanceUID, err)
	}
	var src io.ReaderAt
	if ra, ok := rc.(io.ReaderAt); ok {
		src = ra
	} else {
		rc.Close()
		rc = io.NopCloser(nil)
		src = &rangeReaderAt{ctx: ctx, blobs: blobs, key: in.BlobKey, size: in.Size}
	}
	f, err := dicom.Parse(src, in.Size)
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("instance %s: %w", in.SOPInstanceUID, err)
	}
	return f, func() { rc.Close() }, nil
}

// rangeReaderAt is an io.ReaderAt over Blobs.GetRange. The header parser
// reads a few bytes at a time, so one aligned chunk is kept; larger reads
// (a frame) go straight to the store.
type rangeReaderAt struct {
	ctx   context.Context
	blobs Blobs
	key   string
	size  int64
	off   int64
	buf   []byte
}

const rangeChunk = 64 << 10

func (b *rangeReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= b.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), b.size-off)
	if want > rangeChunk {
		if err := b.read(p[:want], off); err != nil {
			return 0, err
		}
	} else {
		for n := int64(0); n < want; {
			o := off + n
			if b.buf == nil || o < b.off || o >= b.off+int64(len(b.buf)) {
				start := o &^ (rangeChunk - 1)
				chunk := make([]byte, min(rangeChunk, b.size-start))
				if err := b.read(chunk, start); err != nil {
					return int(n), err
				}
				b.buf, b.off = chunk, start
			}
			n += int64(copy(p[n:want], b.buf[o-b.off:]))
		}
	}
	if want < int64(len(p)) {
		return int(want), io.EOF
	}
	return int(want), nil
}

func (b *rangeReaderAt) read(p []byte, off int64) error {
	rc, err := b.blobs.GetRange(b.ctx, b.key, off, int64(len(p)))
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.ReadFull(rc, p)
	return err
}
