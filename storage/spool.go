package storage

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"lightbox/dicom"
)

// spool copies an incoming instance to a file in TempDir, with the meta
// group in front when meta is given, so that the header can be checked
// before anything is stored and memory stays bounded whatever the size.
// It returns the file, its size and its CRC-32C, computed on the way
// (with the CPU's CRC32 instruction: 27 µs for a 530 KB CT slice,
// where SHA-256 took 330 µs).
//
// When writeback is set (the file will be fsynced), another goroutine
// asks the kernel every writebackChunk bytes to start writing them to the
// device, so that the fsync at the last byte waits for the tail only.
// Asked on the receiving goroutine, each request stalled the sender.
func (s *Store) spool(meta *dicom.FileMeta, r io.Reader, writeback bool) (*os.File, int64, uint32, error) {
	tmp, err := os.CreateTemp(s.TempDir, "ingest-*")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("spool: %w", err)
	}
	var wb *writebacks
	if writeback {
		wb = startWritebacks(tmp)
	}
	fail := func(err error) (*os.File, int64, uint32, error) {
		wb.wait()
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, 0, 0, err
	}
	var size int64
	var crc uint32
	write := func(p []byte) error {
		if _, err := tmp.Write(p); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		crc = crc32.Update(crc, castagnoli, p)
		size += int64(len(p))
		wb.written(size)
		return nil
	}
	if meta != nil {
		var head bytes.Buffer
		if err := dicom.WriteFileMeta(&head, *meta); err != nil {
			return fail(fmt.Errorf("%w: %v", ErrBadInstance, err))
		}
		if err := write(head.Bytes()); err != nil {
			return fail(err)
		}
	}
	max := s.MaxInstance
	if max <= 0 {
		max = 4 << 30
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	for {
		n, err := r.Read(*buf)
		if size+int64(n) > max {
			return fail(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max))
		}
		if n > 0 {
			if err := write((*buf)[:n]); err != nil {
				return fail(err)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("spool: %w", err))
		}
	}
	wb.wait()
	return tmp, size, crc, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// copyBufs holds spool's buffers: 256 KiB, so that a read can take the
// whole of a DIMSE sender's PDU (dcmtk's are 128 KiB at most) and a
// STOW-RS part arrives in few system calls.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// writebacks issues sync_file_range requests for a file being written,
// from a goroutine of its own. A nil *writebacks does nothing.
type writebacks struct {
	ranges chan [2]int64
	done   chan struct{}
	begun  int64
}

// writebackChunk: 256 KiB measured better than 64 and 128 KiB (more
// requests, smaller device writes) and than none (the fsync writes
// everything at the end).
const writebackChunk = 256 << 10

func startWritebacks(f *os.File) *writebacks {
	wb := &writebacks{ranges: make(chan [2]int64, 64), done: make(chan struct{})}
	go func() {
		for r := range wb.ranges {
			startWriteback(f, r[0], r[1])
		}
		close(wb.done)
	}()
	return wb
}

// written says the file now holds size bytes.
func (wb *writebacks) written(size int64) {
	if wb == nil || size-wb.begun < writebackChunk {
		return
	}
	select {
	case wb.ranges <- [2]int64{wb.begun, size - wb.begun}:
		wb.begun = size
	default: // far behind: the next request covers this range too
	}
}

// wait returns once every request is made, so that the file can be
// fsynced or closed.
func (wb *writebacks) wait() {
	if wb == nil {
		return
	}
	close(wb.ranges)
	<-wb.done
}

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
