package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident counts f's pages in the page cache (mincore).
func resident(t *testing.T, f *os.File, size int) int {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (size+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(size), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestDropCache: once durable, a blob's pages leave the page cache and its
// bytes read back unchanged; writeback hints change nothing either.
func TestDropCache(t *testing.T) {
	data := bytes.Repeat([]byte("lightbox"), 1<<16) // 512 KiB
	f, err := os.Create(filepath.Join(t.TempDir(), "blob"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off := 0; off < len(data); off += 100_000 {
		n, err := f.Write(data[off:min(off+100_000, len(data))])
		if err != nil {
			t.Fatal(err)
		}
		startWriteback(f, int64(off), int64(n))
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := resident(t, f, len(data)); n == 0 {
		t.Skip("the file system keeps no pages of a file just written")
	}
	dropCache(f)
	if n := resident(t, f, len(data)); n != 0 {
		t.Errorf("%d pages still cached after dropCache", n)
	}
	back, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(back, data) {
		t.Errorf("read back %d bytes (%v), want the %d written", len(back), err, len(data))
	}
}
