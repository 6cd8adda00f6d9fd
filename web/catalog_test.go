package web

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileIDShape(t *testing.T) {
	seen := map[string]string{}
	for _, n := range []string{"a.dcm", "b.dcm", "sub/a.dcm", "cr-chest-monochrome1.dcm", ""} {
		id := fileID(n)
		if !validID(id) {
			t.Errorf("fileID(%q) = %q fails validID", n, id)
		}
		if id != fileID(n) {
			t.Errorf("fileID(%q) is not stable", n)
		}
		if prev, ok := seen[id]; ok {
			t.Errorf("%q and %q share id %s", n, prev, id)
		}
		seen[id] = n
	}
	for _, bad := range []string{"", "0123456789abcde", "0123456789abcdef0", "0123456789ABCDEF", "../../etc/passw", "0123456789abcdeg"} {
		if validID(bad) {
			t.Errorf("validID(%q) = true", bad)
		}
	}
}

// TestCatalogNone: without a folder nothing is listed, and in particular
// not the working directory, which an empty path would otherwise name.
func TestCatalogNone(t *testing.T) {
	c, err := newCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	if list := c.files(); len(list) != 0 {
		t.Errorf("no folder lists %d files", len(list))
	}
	if e := c.get(fileID("a.dcm")); e != nil {
		t.Errorf("no folder finds %s", e.Name)
	}
}

// TestCatalogRescan: a rescan keeps unchanged entries (their headers are
// not read again), sees added, changed and removed files, and never
// follows a symlink out of the folder.
func TestCatalogRescan(t *testing.T) {
	dir := t.TempDir()
	real, err := os.ReadFile(filepath.Join(testDataDir, "mr-small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.dcm", real)
	c, err := newCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.list) != 1 || c.list[0].Meta == nil {
		t.Fatalf("first scan: %+v", c.list)
	}
	a := c.list[0]

	write("b.dcm", real)
	outside := filepath.Join(t.TempDir(), "outside.dcm")
	if err := os.WriteFile(outside, real, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.dcm")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	c.scan()
	if len(c.list) != 2 || c.get(a.ID) != a {
		t.Fatalf("after adding: %d entries, a kept: %v", len(c.list), c.get(a.ID) == a)
	}
	for _, e := range c.list {
		if strings.Contains(e.Name, "link") {
			t.Errorf("followed symlink %s", e.Name)
		}
	}

	write("a.dcm", real[:300]) // changed: read again, now broken
	if err := os.Remove(filepath.Join(dir, "b.dcm")); err != nil {
		t.Fatal(err)
	}
	c.scan()
	if len(c.list) != 1 {
		t.Fatalf("after removing: %d entries", len(c.list))
	}
	if e := c.get(a.ID); e == nil || e == a || e.Err == "" || e.Meta != nil {
		t.Errorf("changed file not read again: %+v", e)
	}
}

func TestCandidate(t *testing.T) {
	dir := t.TempDir()
	real, err := os.ReadFile(filepath.Join(testDataDir, "mr-small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"x.dcm": []byte("short"), "X.DCM": nil, "y.dicom": nil, "IM0001": real,
		"SHA256SUMS": []byte(strings.Repeat("x", 200)), "notes.md": real, ".hidden.dcm": real, "empty": nil,
	}
	want := map[string]bool{"x.dcm": true, "X.DCM": true, "y.dicom": true, "IM0001": true, "notes.md": true}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if got := candidate(p, name); got != want[name] {
			t.Errorf("candidate(%s) = %v", name, got)
		}
	}
}

func TestCleanError(t *testing.T) {
	root := "/srv/lightbox/testdata"
	path := root + "/sub/a.dcm"
	err := errors.New(path + ": malformed DICOM: header: element (0010,0010) in " + root + "/sub")
	got := cleanError(err, root, "sub/a.dcm", path)
	if strings.Contains(got, "/srv") || !strings.HasPrefix(got, "sub/a.dcm: malformed DICOM") {
		t.Errorf("cleanError = %q", got)
	}
	if cleanError(nil, root, "a", path) != "" {
		t.Error("cleanError(nil) not empty")
	}
}
