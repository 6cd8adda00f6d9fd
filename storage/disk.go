package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// tempPrefix starts the names of files Put is still writing. Keys never
// have a part starting with ".", so a temporary file is never a blob.
const tempPrefix = ".tmp-"

// Disk is the blob store in a local folder: one file per blob at
// root/<key>.
type Disk struct {
	root string
}

// OpenDisk opens (creating if needed) the blob folder root.
func OpenDisk(root string) (*Disk, error) {
	if root == "" {
		return nil, fmt.Errorf("open disk blobs: empty path")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open disk blobs: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("open disk blobs: %w", err)
	}
	return &Disk{root: abs}, nil
}

// FanOut creates the 256 folders BlobKey spreads blobs over, with one
// fsync of the root for all: made on the ingest path instead, each would
// cost an instance a mkdir and an fsync, for the first thousand or so.
func (d *Disk) FanOut() error {
	made := false
	for i := range 256 {
		err := os.Mkdir(filepath.Join(d.root, fmt.Sprintf("%02x", i)), 0o750)
		if err == nil {
			made = true
		} else if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	if made {
		return syncDir(d.root)
	}
	return nil
}

func (d *Disk) path(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key))
}

// Put writes a temporary file in the blob's own folder, fsyncs it, renames
// it over the key and fsyncs the folder: after a crash at any point the key
// either names the complete blob or does not exist, and once Put returns
// the rename itself is on disk.
func (d *Disk) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	final, dir, err := d.target(key)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	src := io.Reader(ctxReader{ctx, r})
	if size >= 0 {
		src = io.LimitReader(src, size+1)
	}
	n, err := io.Copy(f, src)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("put %s: %w: got %d bytes or more, want %d", key, ErrSizeMismatch, n, size)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put %s: fsync: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("put %s: fsync folder: %w", key, err)
	}
	return nil
}

// PutFile moves the spool file f into the store under key: rename, then
// fsync the folder. The caller has fsynced f (the ingest does so while it
// checks the header, off the path to its answer; a second fsync would cost
// a device cache flush for nothing). The ingest spools every instance to
// a file first (to check it before storing); on the same file system,
// moving that file saves Put's copy of every byte. If f is on another
// file system, PutFile copies it with Put.
func (d *Disk) PutFile(ctx context.Context, key string, f *os.File) error {
	final, dir, err := d.target(key)
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), final); err != nil {
		if errors.Is(err, syscall.EXDEV) {
			return d.Put(ctx, key, io.NewSectionReader(f, 0, 1<<62), -1)
		}
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("put %s: fsync folder: %w", key, err)
	}
	return nil
}

// target checks key and returns the path a blob is stored at and its
// folder, made durably first if it does not exist.
func (d *Disk) target(key string) (final, dir string, err error) {
	if err := checkKey(key); err != nil {
		return "", "", err
	}
	final = d.path(key)
	dir = filepath.Dir(final)
	if err := d.mkdirDurable(dir); err != nil {
		return "", "", fmt.Errorf("put %s: %w", key, err)
	}
	return final, dir, nil
}

func (d *Disk) mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	var missing []string
	for p := dir; p != d.root && len(p) > len(d.root); p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		}
		missing = append(missing, p)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		// Another Put may create it at the same moment; either way the
		// parent is synced before the file goes in.
		if err := os.Mkdir(missing[i], 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// ctxReader stops a long copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (d *Disk) open(key string) (*os.File, os.FileInfo, error) {
	if err := checkKey(key); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("blob %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("blob %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	return f, fi, nil
}

// Get opens the blob's file.
func (d *Disk) Get(_ context.Context, key string) (io.ReadCloser, error) {
	f, _, err := d.open(key)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// GetRange opens length bytes of the blob at offset.
func (d *Disk) GetRange(_ context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	f, fi, err := d.open(key)
	if err != nil {
		return nil, err
	}
	if err := checkRange(fi.Size(), offset, length); err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", key, err)
	}
	return sectionCloser{io.NewSectionReader(f, offset, length), f}, nil
}

type sectionCloser struct {
	*io.SectionReader
	io.Closer
}

// Stat returns the blob's size and modification time.
func (d *Disk) Stat(_ context.Context, key string) (BlobInfo, error) {
	if err := checkKey(key); err != nil {
		return BlobInfo{}, err
	}
	fi, err := os.Stat(d.path(key))
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.Mode().IsRegular() {
		return BlobInfo{}, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return BlobInfo{}, fmt.Errorf("blob %s: %w", key, err)
	}
	return BlobInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes the blob's file. Empty fan-out folders stay: there are at
// most 65,536 of them and they will be used again.
func (d *Disk) Delete(_ context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := os.Remove(d.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// List walks the folders in key order, skipping temporary files.
func (d *Disk) List(ctx context.Context, prefix string, fn func(BlobInfo) error) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	// Start in the deepest folder the prefix names in full.
	start := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	err := d.walk(ctx, start, func(rel string, isDir bool) bool {
		if isDir {
			return strings.HasPrefix(rel+"/", prefix) || strings.HasPrefix(prefix, rel+"/")
		}
		return strings.HasPrefix(rel, prefix)
	}, func(rel string, fi os.FileInfo) error {
		if strings.HasPrefix(fi.Name(), ".") {
			return nil
		}
		return fn(BlobInfo{Key: rel, Size: fi.Size(), ModTime: fi.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("list blobs %q: %w", prefix, err)
	}
	return nil
}

// walk visits the regular files under the folder rel (a "/"-separated path
// below the root) in the byte order of their keys: a folder "a" sorts as
// "a/", so its files come after a file "a.b" and before "a0".
func (d *Disk) walk(ctx context.Context, rel string, want func(rel string, isDir bool) bool,
	visit func(rel string, fi os.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(d.root, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	sort.Slice(entries, func(i, j int) bool { return sortName(entries[i]) < sortName(entries[j]) })
	for _, e := range entries {
		child := path.Join(rel, e.Name())
		switch {
		case e.IsDir():
			if want(child, true) {
				if err := d.walk(ctx, child, want, visit); err != nil {
					return err
				}
			}
		case e.Type().IsRegular():
			if !want(child, false) {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted while we walked
			}
			if err != nil {
				return err
			}
			if err := visit(child, fi); err != nil {
				return err
			}
		}
	}
	return nil
}

// Sweep removes temporary files older than olderThan, left by Puts that
// were interrupted (a crash, a kill -9). Run it at start-up; with other
// writers running, pass an age no Put takes (an hour).
func (d *Disk) Sweep(ctx context.Context, olderThan time.Duration) error {
	cutoff := time.Now().Add(-olderThan)
	err := d.walk(ctx, "", func(string, bool) bool { return true }, func(rel string, fi os.FileInfo) error {
		if !strings.HasPrefix(fi.Name(), tempPrefix) || !fi.ModTime().Before(cutoff) && olderThan > 0 {
			return nil
		}
		if err := os.Remove(filepath.Join(d.root, filepath.FromSlash(rel))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sweep blobs: %w", err)
	}
	return nil
}
