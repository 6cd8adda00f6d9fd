package main

import (
	"archive/zip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestImport imports a folder and a zip, then the same again: the second
// run stores nothing new, and the catalog holds each instance once.
func TestImport(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "in")
	os.MkdirAll(src, 0o755)
	files := []string{"mr-small.dcm", "ct-signed-implicit-512.dcm", "cr-monochrome1-rescale-16x16.dcm"}
	for _, name := range files[:2] {
		b, err := os.ReadFile(filepath.Join("../../testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(src, name), b, 0o644)
	}
	os.WriteFile(filepath.Join(src, "notes.txt"), []byte("not an image"), 0o644)
	zf, _ := os.Create(filepath.Join(dir, "study.zip"))
	zw := zip.NewWriter(zf)
	w, _ := zw.Create("sub/" + files[2])
	in, _ := os.Open(filepath.Join("../../testdata", files[2]))
	io.Copy(w, in)
	in.Close()
	zw.Close()
	zf.Close()

	sf := storeFlags{data: filepath.Join(dir, "data")}
	ctx := context.Background()
	store, err := sf.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Catalog.Close()
	for run, want := range []struct{ stored, skipped, dup, refused int64 }{{3, 0, 0, 1}, {0, 2, 1, 1}} {
		jobs, closers, err := collect([]string{src, filepath.Join(dir, "study.zip")})
		if err != nil {
			t.Fatal(err)
		}
		tally := importAll(ctx, store, jobs, 2, false, io.Discard)
		for _, c := range closers {
			c.Close()
		}
		got := struct{ stored, skipped, dup, refused int64 }{tally.stored.Load(), tally.skipped.Load(), tally.dup.Load(), tally.refused.Load()}
		if got != want {
			t.Errorf("run %d: %+v, want %+v (refusals %v)", run+1, got, want, tally.refusals)
		}
	}
}
