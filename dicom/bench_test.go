package dicom

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The benchmarks make bench prints: header-only parse of a CT slice, and a
// full decode of the same 512×512 CT frame in each transfer syntax, the
// compressed variants made by dcmtk and GDCM as the files a PACS sends.

const benchCT = "../testdata/ct-signed-implicit-512.dcm"

func BenchmarkHeader(b *testing.B) {
	data, err := os.ReadFile(benchCT)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []struct {
		name  string
		parse func(io.ReaderAt, int64) (*File, error)
	}{{"all", Parse}, {"meta", ParseMeta}} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.parse(bytesReader(data), int64(len(data))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeaderHuge parses the header of a sparse 524 MB multi-frame
// file; B/op is the memory the reader needs, whatever the file's size.
func BenchmarkHeaderHuge(b *testing.B) {
	const rows, cols, frames = 512, 512, 1000
	path := filepath.Join(b.TempDir(), "huge.dcm")
	h := append(synthetic(rows, cols, frames), pixelHeader(rows*cols*2*frames)...)
	if err := os.WriteFile(path, h, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(path, int64(len(h))+rows*cols*2*frames); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(path); err != nil {
			b.Fatal(err)
		}
	}
}

var benchVariants = []struct {
	name string
	tool string
	args []string
}{
	{"explicit-le", "dcmconv", []string{"+te"}},
	{"explicit-be", "dcmconv", []string{"+tb"}},
	{"deflated", "dcmconv", []string{"+td"}},
	{"rle", "dcmcrle", nil},
	{"jpeg-lossless-sv1", "dcmcjpeg", []string{"+e1"}},
	{"jpegls-lossless", "dcmcjpls", []string{"+el"}},
	{"j2k-lossless", "gdcmconv", []string{"--j2k"}},
	{"j2k-lossy", "gdcmconv", []string{"--j2k", "--lossy", "-q", "30"}},
}

func BenchmarkDecode(b *testing.B) {
	dir := b.TempDir()
	// gdcmconv writes implicit VR input back as UN elements; give every
	// tool the explicit VR file, which the first variant makes.
	src := filepath.Join(dir, benchVariants[0].name+".dcm")
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) {
			tool := needTool(b, v.tool)
			out := filepath.Join(dir, v.name+".dcm")
			if msg, err := exec.Command(tool, append(append([]string{}, v.args...), srcFor(v.name, src), out)...).CombinedOutput(); err != nil {
				b.Fatalf("%s: %v: %s", v.tool, err, msg)
			}
			f, err := Open(out)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.Frame(0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func srcFor(variant, explicit string) string {
	if variant == benchVariants[0].name {
		return benchCT
	}
	return explicit
}
