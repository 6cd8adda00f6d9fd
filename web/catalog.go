package web

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"lightbox/dicom"
)

// maxCatalogFiles bounds how many files one walk lists, so that pointing
// --testdata at a huge tree cannot exhaust memory.
const maxCatalogFiles = 10000

// rescanAfter is how old a walk may be before a listing walks again: the
// testdata folder is filled while the server runs, and a header read is
// ~0.2 ms, so a walk per listing every few seconds is cheap.
const rescanAfter = 5 * time.Second

// entry is one walked file. Requests name files only by id; the path never
// leaves the server and is never built from request input.
type entry struct {
	ID      string
	Name    string // slash-separated path relative to the root, shown to users
	Path    string // absolute path on disk
	Size    int64
	ModTime time.Time
	Meta    *dicom.Meta // nil when the header could not be read
	Frames  int         // frames with pixel data; 0 for an instance without pixels
	Err     string      // why the header could not be read
}

// version changes whenever the file's bytes may have changed; it is part
// of every ETag so that a replaced file is never served from a cache.
func (e *entry) version() string {
	return fmt.Sprintf("%x-%x", e.Size, e.ModTime.UnixNano())
}

// catalog maps ids to the DICOM files under one folder.
type catalog struct {
	root string

	mu      sync.Mutex
	scanned time.Time
	byID    map[string]*entry
	list    []*entry
}

func newCatalog(root string) (*catalog, error) {
	if root == "" {
		return &catalog{}, nil // nothing to list
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("testdata folder %q: %w", root, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("testdata folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("testdata folder %q is not a directory", root)
	}
	c := &catalog{root: abs}
	c.scan()
	return c, nil
}

// fileID derives a stable id from the relative name, so that ids survive a
// restart and a rescan and say nothing about the folder layout.
func fileID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:8])
}

// files returns the current listing, walking again when it is stale.
func (c *catalog) files() []*entry {
	c.mu.Lock()
	stale := time.Since(c.scanned) > rescanAfter
	c.mu.Unlock()
	if stale {
		c.scan()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.list
}

// get returns the entry with id, or nil. An id not in the last walk may be
// a file added since, so one rescan is tried before answering "unknown".
func (c *catalog) get(id string) *entry {
	c.mu.Lock()
	e := c.byID[id]
	stale := time.Since(c.scanned) > rescanAfter
	c.mu.Unlock()
	if e != nil || !stale {
		return e
	}
	c.scan()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id]
}

// scan walks the root and reads every candidate file's header. Entries
// whose size and time did not change keep their parsed header.
func (c *catalog) scan() {
	if c.root == "" {
		c.mu.Lock()
		c.scanned = time.Now()
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	old := c.byID
	c.mu.Unlock()

	byID := map[string]*entry{}
	var list []*entry
	_ = filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // an unreadable folder is skipped, the rest listed
		}
		if d.IsDir() {
			if p != c.root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		// Symlinks and other non-regular files are not followed: the
		// server shows what is inside the folder, nothing it points at.
		if !d.Type().IsRegular() || !candidate(p, d.Name()) {
			return nil
		}
		if len(list) >= maxCatalogFiles {
			return filepath.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel, err := filepath.Rel(c.root, p)
		if err != nil {
			return nil
		}
		name := filepath.ToSlash(rel)
		e := &entry{ID: fileID(name), Name: name, Path: p, Size: info.Size(), ModTime: info.ModTime()}
		if prev, ok := old[e.ID]; ok && prev.version() == e.version() {
			e = prev
		} else {
			e.Meta, e.Frames, e.Err = readHeader(p, c.root, name)
		}
		byID[e.ID] = e
		list = append(list, e)
		return nil
	})
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })

	c.mu.Lock()
	c.byID, c.list, c.scanned = byID, list, time.Now()
	c.mu.Unlock()
}

// candidate reports whether a file should be listed: its name says DICOM
// (.dcm, .dicom, .dic), or it carries the Part 10 "DICM" mark at byte 128,
// as PACS exports without extension do. Anything else in the folder
// (licences, checksums, fuzz corpora) is not the viewer's business; a file
// that claims to be DICOM but fails to parse is listed with its error.
func candidate(path, name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".dcm", ".dicom", ".dic":
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], 128); err != nil {
		return false
	}
	return string(b[:]) == "DICM"
}

// readHeader reads one file's header for listing. The error text names the
// file by its relative name, never by its place on the server's disk.
func readHeader(path, root, name string) (*dicom.Meta, int, string) {
	f, err := dicom.Open(path)
	if err != nil {
		return nil, 0, cleanError(err, root, name, path)
	}
	m := f.Meta
	return &m, f.NumFrames(), ""
}

// cleanError turns an error into a message fit for a client: the absolute
// path and the root folder are replaced by the file's relative name.
func cleanError(err error, root, name, path string) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	msg = strings.ReplaceAll(msg, path, name)
	msg = strings.ReplaceAll(msg, root+string(filepath.Separator), "")
	msg = strings.ReplaceAll(msg, root, ".")
	return msg
}

// errUnknown is returned for ids and frames that do not exist.
var errUnknown = errors.New("not found")
