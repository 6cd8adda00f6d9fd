package storage

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"lightbox/dicom"
)

// spool copies an incoming instance to a file in TempDir, with the meta
// group in front when meta is given, so that the header can be checked
// before anything is stored and memory stays bounded whatever the size.
// It returns the file, its size and its SHA-256, computed as it was
// written (see follower).
func (s *Store) spool(meta *dicom.FileMeta, r io.Reader) (*os.File, int64, [32]byte, error) {
	var sum [32]byte
	tmp, err := os.CreateTemp(s.TempDir, "ingest-*")
	if err != nil {
		return nil, 0, sum, fmt.Errorf("spool: %w", err)
	}
	_, disk := s.Blobs.(*Disk)
	fl := follow(tmp, disk)
	var metaErr error
	if meta != nil {
		metaErr = dicom.WriteFileMeta(fl, *meta)
	}
	max := s.MaxInstance
	if max <= 0 {
		max = 4 << 30
	}
	var n int64
	if metaErr == nil {
		// 256 KiB at a time: a DIMSE sender's PDUs are up to 128 KiB, and
		// every read and write is a system call.
		buf := copyBufs.Get().(*[]byte)
		n, err = io.CopyBuffer(fl, io.LimitReader(r, max+1), *buf)
		copyBufs.Put(buf)
	}
	sum, sumErr := fl.finish() // before anything closes the file
	fail := func(err error) (*os.File, int64, [32]byte, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, 0, sum, err
	}
	switch {
	case metaErr != nil:
		return fail(fmt.Errorf("%w: %v", ErrBadInstance, metaErr))
	case err != nil:
		return fail(fmt.Errorf("spool: %w", err))
	case n > max:
		return fail(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max))
	case sumErr != nil:
		return fail(fmt.Errorf("spool: hash: %w", sumErr))
	}
	return tmp, fl.off, sum, nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// follower writes a spool file and, in a goroutine, follows the writing:
// it hashes each stretch as soon as it is written (from the page cache)
// and, when the file will become a blob on disk, asks Linux to start
// writing it out. At the last byte little of either is left, and neither
// holds up the receiving: both used to come after it, on the path to the
// sender's answer.
type follower struct {
	f         *os.File
	off       int64 // bytes written
	notified  int64
	writeback bool
	written   chan int64
	done      chan struct{}

	// the goroutine's
	h              hash.Hash
	hashed, synced int64
	err            error
}

// followChunk: small enough that little is left at the end, large enough
// that the extra system calls cost nothing noticeable.
const followChunk = 128 << 10

func follow(f *os.File, writeback bool) *follower {
	fl := &follower{f: f, writeback: writeback, written: make(chan int64, 16), done: make(chan struct{}), h: sha256.New()}
	go fl.run()
	return fl
}

func (fl *follower) Write(p []byte) (int, error) {
	n, err := fl.f.Write(p)
	fl.off += int64(n)
	if fl.off-fl.notified >= followChunk {
		fl.written <- fl.off
		fl.notified = fl.off
	}
	return n, err
}

// finish waits for the goroutine to catch up and returns the SHA-256 of
// everything written.
func (fl *follower) finish() ([32]byte, error) {
	var sum [32]byte
	fl.written <- fl.off
	close(fl.written)
	<-fl.done
	fl.h.Sum(sum[:0])
	return sum, fl.err
}

func (fl *follower) run() {
	defer close(fl.done)
	buf := make([]byte, 64<<10)
	for upto := range fl.written {
		for fl.err == nil && fl.hashed < upto {
			n, err := fl.f.ReadAt(buf[:min(int64(len(buf)), upto-fl.hashed)], fl.hashed)
			fl.h.Write(buf[:n])
			fl.hashed += int64(n)
			if err != nil && fl.hashed < upto {
				fl.err = err
			}
		}
		// Whole pages only: a write into a page under writeback waits.
		if end := upto &^ (4096 - 1); fl.writeback && end > fl.synced {
			startWriteback(fl.f, fl.synced, end-fl.synced)
			fl.synced = end
		}
	}
}

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
