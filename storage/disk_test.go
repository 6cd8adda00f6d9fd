package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tempFiles lists the temporary files under root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// blockingReader gives n bytes, then blocks until the process dies.
type blockingReader struct{ n int }

func (r *blockingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		select {}
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

// TestDiskPutKilledHelper is the process TestDiskPutKilled kills: it
// starts a Put that never finishes.
func TestDiskPutKilledHelper(t *testing.T) {
	dir := os.Getenv("LIGHTBOX_DISK_KILL_DIR")
	if dir == "" {
		t.Skip("helper process for TestDiskPutKilled")
	}
	d, err := OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.Put(context.Background(), "ab/cd/1.2.3-x.dcm", &blockingReader{n: 1 << 20}, 2<<20)
}

// TestDiskPutKilled: kill -9 in the middle of a Put leaves a temporary
// file that Get, Stat and List do not see, that Sweep removes, and no blob.
func TestDiskPutKilled(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiskPutKilledHelper$")
	cmd.Env = append(os.Environ(), "LIGHTBOX_DISK_KILL_DIR="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait for the Put to have written its first megabyte.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if tmp := tempFiles(t, dir); len(tmp) == 1 {
			if fi, err := os.Stat(tmp[0]); err == nil && fi.Size() == 1<<20 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the helper never wrote its temporary file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	d, err := OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Get(ctx, "ab/cd/1.2.3-x.dcm"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after kill: %v", err)
	}
	if _, err := d.Stat(ctx, "ab/cd/1.2.3-x.dcm"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat after kill: %v", err)
	}
	if err := d.List(ctx, "", func(bi BlobInfo) error {
		t.Errorf("List shows %q", bi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tmp := tempFiles(t, dir)
	if len(tmp) != 1 {
		t.Fatalf("temporary files after kill: %v", tmp)
	}
	if _, err := d.Get(ctx, strings.TrimPrefix(filepath.ToSlash(tmp[0]), filepath.ToSlash(dir)+"/")); !errors.Is(err, ErrBadKey) {
		t.Errorf("the temporary file is reachable by its name: %v", err)
	}
	// A fresh one survives a cautious sweep; start-up's sweep removes it.
	if err := d.Sweep(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if len(tempFiles(t, dir)) != 1 {
		t.Error("Sweep(1h) removed a fresh temporary file")
	}
	if err := d.Sweep(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("after Sweep(0): %v", tmp)
	}
}

// TestDiskSweep: only temporary files older than the threshold go; blobs
// stay whatever their age.
func TestDiskSweep(t *testing.T) {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Put(ctx, "ab/cd/blob", strings.NewReader("data"), 4); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, name := range []string{"ab/cd/" + tempPrefix + "old", "ab/" + tempPrefix + "new", tempPrefix + "old2"} {
		p := filepath.Join(d.root, filepath.FromSlash(name))
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "old") || strings.HasSuffix(name, "old2") {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	blob := filepath.Join(d.root, "ab", "cd", "blob")
	os.Chtimes(blob, old, old)
	if err := d.Sweep(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	got := tempFiles(t, d.root)
	if len(got) != 1 || !strings.HasSuffix(got[0], tempPrefix+"new") {
		t.Errorf("after Sweep(1h): %v, want only the new one", got)
	}
	if _, err := os.Stat(blob); err != nil {
		t.Errorf("Sweep removed a blob: %v", err)
	}
}

// TestDiskPutLeavesNoTemp: successful and failed Puts both leave no
// temporary file behind.
func TestDiskPutLeavesNoTemp(t *testing.T) {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d.Put(ctx, "a/b", strings.NewReader("ok"), 2)
	d.Put(ctx, "a/c", strings.NewReader("short"), 10)
	d.Put(ctx, "a/d", io.MultiReader(strings.NewReader("x"), errReader{}), -1)
	if tmp := tempFiles(t, d.root); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read failed") }

// TestDiskNotAFile: a folder where a key points is not a blob.
func TestDiskNotAFile(t *testing.T) {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Put(ctx, "a/b/c", bytes.NewReader(nil), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, "a/b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(folder) = %v", err)
	}
	if _, err := d.Stat(ctx, "a/b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(folder) = %v", err)
	}
}

func TestOpenDisk(t *testing.T) {
	if _, err := OpenDisk(""); err == nil {
		t.Error("OpenDisk(\"\") succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := OpenDisk(filepath.Join(f, "sub")); err == nil {
		t.Error("OpenDisk under a file succeeded")
	}
}

// TestDiskPutFile moves a spooled file into the store.
func TestDiskPutFile(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDisk(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "spool")
	os.WriteFile(src, []byte("instance bytes"), 0o600)
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	key := NewBlobKey("1.2.3")
	if err := d.PutFile(context.Background(), key, f); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Error("the spooled file is still there")
	}
	rc, err := d.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "instance bytes" {
		t.Errorf("stored %q", b)
	}
	if err := d.PutFile(context.Background(), "../x", f); !errors.Is(err, ErrBadKey) {
		t.Errorf("bad key: %v", err)
	}
}
