package storage

import (
	"context"
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
// Hashing here, on the receiving goroutine, used the least CPU and time
// of the ways measured: hashing the file after its last byte, on this
// goroutine or another, or behind the writing as the file grew, each
// cost more than it saved.
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
	var out io.Writer = tmp
	if _, ok := s.Blobs.(*Disk); ok {
		out = &writeback{f: tmp}
	}
	w := io.MultiWriter(out, h)
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

// placing makes a spool file a blob in the background, so that the
// ingest's other work overlaps it. On disk, the fsync starts at the last
// byte, while the header is parsed and checked; the rename into place and
// the fsync of the folder follow as soon as the ingest names the key,
// while it writes the catalog rows, which it commits only once wait says
// the blob is durable. The other stores copy the spool once the key is
// named.
//
// Only the short last steps may run inside the catalog transaction, which
// holds SQLite's write lock (PostgreSQL's row locks on the study): the
// fsync of a 2 GB instance, or an upload, can take seconds, and every
// other ingest would wait. So the ingest waits for written first.
type placing struct {
	key     chan string // the blob's key, or "" to give up
	sent    bool
	written chan struct{} // closed once the long part is over (or failed): the fsync on disk, else durable
	durable chan struct{} // closed once err is set
	done    chan struct{} // closed once the spool file is no longer used
	err     error
}

func (s *Store) startPlace(ctx context.Context, f *os.File, size int64) *placing {
	p := &placing{key: make(chan string, 1), durable: make(chan struct{}), done: make(chan struct{})}
	d, _ := s.Blobs.(*Disk)
	p.written = p.durable // the other stores' copy is the long part
	if d != nil {
		p.written = make(chan struct{})
	}
	go func() {
		defer close(p.done)
		p.err = p.place(ctx, s.Blobs, d, f, size)
		close(p.durable)
		if d != nil && p.err == nil {
			// After the answer's path: dropping the pages takes a while.
			dropCache(f)
		}
	}()
	return p
}

func (p *placing) place(ctx context.Context, blobs Blobs, d *Disk, f *os.File, size int64) error {
	if d != nil {
		err := f.Sync()
		close(p.written)
		if err != nil {
			return fmt.Errorf("fsync spool: %w", err)
		}
	}
	key := <-p.key
	switch {
	case key == "":
		return nil
	case d != nil:
		return d.PutFile(ctx, key, f)
	default:
		return blobs.Put(ctx, key, io.NewSectionReader(f, 0, size), size)
	}
}

// put stores the spool file under key.
func (p *placing) put(key string) {
	p.key <- key
	p.sent = true
}

// wait returns once the blob is durable, or why it is not.
func (p *placing) wait() error {
	<-p.durable
	return p.err
}

// waitWritten returns once what is left to do is short: the fsync is done
// (disk), or the whole copy (other stores).
func (p *placing) waitWritten() {
	<-p.written
}

// finish gives up unless put was called, and waits until nothing uses the
// spool file any more.
func (p *placing) finish() {
	if !p.sent {
		p.put("")
	}
	<-p.done
}

// writeback writes to a spool file that will be fsynced, and asks the
// kernel to start writing each 128 KiB to the device as soon as it is
// written, while the rest still arrives: the fsync at the last byte then
// waits for the tail only.
type writeback struct {
	f          *os.File
	off, begun int64
}

const writebackChunk = 128 << 10

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.begun >= writebackChunk {
		startWriteback(w.f, w.begun, w.off-w.begun)
		w.begun = w.off
	}
	return n, err
}
