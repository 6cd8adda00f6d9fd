package storage

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"lightbox/dicom"
)

// TestSpool checks the spooled file and its SHA-256 around the copy
// buffer's boundaries, with and without a meta group in front, for a
// store that makes the spool a blob on disk and one that copies it
// elsewhere.
func TestSpool(t *testing.T) {
	meta := &dicom.FileMeta{TransferSyntaxUID: "1.2.840.10008.1.2.1", SOPClassUID: "1.2.840.10008.5.1.4.1.1.7", SOPInstanceUID: "1.2.3.4"}
	var head bytes.Buffer
	if err := dicom.WriteFileMeta(&head, *meta); err != nil {
		t.Fatal(err)
	}
	disk, err := OpenDisk(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, blobs := range []Blobs{disk, nil} {
		s := &Store{Blobs: blobs, TempDir: t.TempDir()}
		for _, n := range []int{0, 1, 4095, 256<<10 - 1, 256 << 10, 256<<10 + 1, 3<<18 + 4097, 1<<20 + 7} {
			for _, m := range []*dicom.FileMeta{nil, meta} {
				data := make([]byte, n)
				for i := range data {
					data[i] = byte(rand.N(256))
				}
				want := data
				if m != nil {
					want = append(bytes.Clone(head.Bytes()), data...)
				}
				_, disk := blobs.(*Disk)
				f, size, crc, err := s.spool(m, bytes.NewReader(data), disk)
				if err != nil {
					t.Fatalf("%d bytes: %v", n, err)
				}
				got, _ := os.ReadFile(f.Name())
				f.Close()
				os.Remove(f.Name())
				if size != int64(len(want)) || !bytes.Equal(got, want) {
					t.Errorf("%d bytes, meta %v: spooled %d bytes (size %d), want %d", n, m != nil, len(got), size, len(want))
				}
				if crc != crc32.Checksum(want, crc32.MakeTable(crc32.Castagnoli)) {
					t.Errorf("%d bytes, meta %v: wrong CRC-32C", n, m != nil)
				}
			}
		}
		if left, _ := os.ReadDir(s.TempDir); len(left) != 0 {
			t.Errorf("%d files left in the spool", len(left))
		}
	}
}

// TestSpoolRefuses: too large, or a sender that breaks off, leaves nothing.
func TestSpoolRefuses(t *testing.T) {
	for _, wb := range []bool{false, true} {
		s := &Store{TempDir: t.TempDir(), MaxInstance: 600 << 10}
		if _, _, _, err := s.spool(nil, bytes.NewReader(make([]byte, 600<<10+1)), wb); !errors.Is(err, ErrTooLarge) {
			t.Errorf("one byte over the limit: %v, want ErrTooLarge", err)
		}
		broken := io.MultiReader(bytes.NewReader(make([]byte, 500<<10)), iotest.ErrReader(errors.New("connection reset")))
		if _, _, _, err := s.spool(nil, broken, wb); err == nil {
			t.Error("a broken reader spooled without error")
		}
		if left, _ := os.ReadDir(s.TempDir); len(left) != 0 {
			t.Errorf("%d files left in the spool", len(left))
		}
	}
}
