package storage

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sync"

	"lightbox/dicom"
)

// spool copies an incoming instance to a file in TempDir, with the meta
// group in front when meta is given, so that the header can be checked
// before anything is stored and memory stays bounded whatever the size.
// It returns the file, its size and its SHA-256, computed on the way.
//
// Hashing here, on the receiving goroutine, used the least CPU of the
// ways measured: a goroutine that hashed the file behind the writing and
// started its writeback (sync_file_range) as it grew cost more in
// context switches than it saved the fsync, at the same throughput.
func (s *Store) spool(meta *dicom.FileMeta, r io.Reader) (*os.File, int64, [32]byte, error) {
	var sum [32]byte
	tmp, err := os.CreateTemp(s.TempDir, "ingest-*")
	if err != nil {
		return nil, 0, sum, fmt.Errorf("spool: %w", err)
	}
	fail := func(err error) (*os.File, int64, [32]byte, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, 0, sum, err
	}
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	if meta != nil {
		if err := dicom.WriteFileMeta(w, *meta); err != nil {
			return fail(fmt.Errorf("%w: %v", ErrBadInstance, err))
		}
	}
	max := s.MaxInstance
	if max <= 0 {
		max = 4 << 30
	}
	// 256 KiB at a time: a DIMSE sender's PDUs are up to 128 KiB, and
	// every read and write is a system call.
	buf := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(w, io.LimitReader(r, max+1), *buf)
	copyBufs.Put(buf)
	if err != nil {
		return fail(fmt.Errorf("spool: %w", err))
	}
	if n > max {
		return fail(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max))
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return fail(err)
	}
	h.Sum(sum[:0])
	return tmp, size, sum, nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// syncing is the fsync of a spool file that will become a blob on disk,
// run while the header is parsed and checked: the ingest then pays for
// the longer of the two rather than their sum.
type syncing struct {
	done chan struct{}
	err  error
}

func (s *Store) startSync(f *os.File) *syncing {
	st := &syncing{done: make(chan struct{})}
	if _, ok := s.Blobs.(*Disk); !ok {
		// The other stores copy the bytes; the spool needs no fsync.
		close(st.done)
		return st
	}
	go func() {
		defer close(st.done)
		st.err = f.Sync()
	}()
	return st
}

// wait returns the fsync's result, once nothing uses the file any more.
func (st *syncing) wait() error {
	<-st.done
	return st.err
}
