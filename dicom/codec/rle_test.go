package codec

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestRLEMatchesDcmtk compresses every real file with dcmcrle and checks
// that every frame decodes to exactly the pixels dcmdrle produces.
func TestRLEMatchesDcmtk(t *testing.T) {
	dir := t.TempDir()
	srcs := append(sourceFiles(t, 8, 16, 32), colourFile(t, dir))
	dec, impl, err := Lookup(RLELossless)
	if err != nil || impl != "go-rle" {
		t.Fatalf("Lookup(RLE) = %q, %v", impl, err)
	}
	for _, src := range srcs {
		t.Run(filepath.Base(src), func(t *testing.T) {
			enc, want := variant(t, dir, src, "dcmcrle")
			if enc.ts != RLELossless {
				t.Fatalf("dcmcrle wrote transfer syntax %s", enc.ts)
			}
			if len(enc.frames) != len(want.frames) {
				t.Fatalf("%d codestreams, %d frames", len(enc.frames), len(want.frames))
			}
			for i, cs := range enc.frames {
				fr, err := dec(cs, enc.params)
				if err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				if string(fr.Data) != string(want.frames[i]) {
					t.Fatalf("frame %d differs from dcmdrle: %s", i+1, firstDiff(fr.Data, want.frames[i]))
				}
			}
		})
	}
}

// TestRLEThirdParty decodes the real RLE files of testdata/ (written by
// encoders other than dcmtk: 8, 16 and 32 bits, colour, multi-frame) and
// compares every frame with dcmdrle's.
func TestRLEThirdParty(t *testing.T) {
	files := encodedFiles(t, RLELossless)
	if len(files) == 0 {
		t.Skip("no RLE files in testdata/ yet")
	}
	dir := t.TempDir()
	for _, src := range files {
		t.Run(filepath.Base(src), func(t *testing.T) {
			enc := readFile(t, src)
			out := filepath.Join(dir, filepath.Base(src))
			run(t, "dcmdrle", src, out)
			want := readFile(t, out)
			for i, cs := range enc.frames {
				fr, err := DecodeRLE(cs, enc.params)
				if err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				if string(fr.Data) != string(want.frames[i]) {
					t.Fatalf("frame %d differs from dcmdrle: %s", i+1, firstDiff(fr.Data, want.frames[i]))
				}
			}
		})
	}
}

// rleFragment builds an RLE fragment from raw segments (for the hand-made
// corruption cases; real fragments come from dcmcrle).
func rleFragment(segs ...[]byte) []byte {
	out := make([]byte, rleHeaderLen)
	binary.LittleEndian.PutUint32(out, uint32(len(segs)))
	for i, s := range segs {
		binary.LittleEndian.PutUint32(out[4+4*i:], uint32(len(out)))
		out = append(out, s...)
	}
	return out
}

func TestRLEErrors(t *testing.T) {
	p8 := Params{Rows: 2, Columns: 2, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8}
	good := rleFragment([]byte{3, 1, 2, 3, 4})
	if fr, err := DecodeRLE(good, p8); err != nil || string(fr.Data) != "\x01\x02\x03\x04" {
		t.Fatalf("good fragment: %v %v", fr.Data, err)
	}
	// A replicate run and a no-op header.
	if fr, err := DecodeRLE(rleFragment([]byte{0x80, 0xFD, 9}), p8); err != nil || string(fr.Data) != "\x09\x09\x09\x09" {
		t.Fatalf("replicate run: %v %v", fr.Data, err)
	}
	badOffset := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(badOffset[4:], 9999)
	twoSegs := rleFragment([]byte{3, 1, 2, 3, 4}, []byte{3, 1, 2, 3, 4})
	tests := []struct {
		name string
		data []byte
		p    Params
		want string
	}{
		{"empty", nil, p8, "shorter than the 64-byte header"},
		{"offset beyond", badOffset, p8, "segment 1 offset 9999 beyond fragment of 69 bytes"},
		{"short segment", rleFragment([]byte{1, 1, 2}), p8, "segment 1: ends after 2 of 4 bytes"},
		{"literal past end", rleFragment([]byte{7, 1, 2}), p8, "literal run of 8"},
		{"replicate without byte", rleFragment([]byte{0xFF}), p8, "no byte to repeat"},
		{"too few segments", good, Params{Rows: 2, Columns: 2, SamplesPerPixel: 1, BitsAllocated: 16}, "declares 1 segments"},
		{"too many segments", twoSegs, p8, "declares 2 segments"},
		{"bad samples", good, Params{Rows: 2, Columns: 2, SamplesPerPixel: 2, BitsAllocated: 8}, "2 samples per pixel"},
		{"bad bits", good, Params{Rows: 2, Columns: 2, SamplesPerPixel: 1, BitsAllocated: 12}, "12 bits allocated"},
		{"huge frame", good, Params{Rows: 65535, Columns: 65535, SamplesPerPixel: 1, BitsAllocated: 8}, "cannot hold"},
		{"zero rows", good, Params{Rows: 0, Columns: 2, SamplesPerPixel: 1, BitsAllocated: 8}, "bad frame size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRLE(tc.data, tc.p)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrCorrupt containing %q", err, tc.want)
			}
		})
	}
}

// TestRLEColourInterleaved checks the plane order on a real colour file:
// the R, G and B planes of dcmcrle must land interleaved, as dcmdrle writes.
// (Covered by TestRLEMatchesDcmtk too; this one names the failure.)
func TestRLEColourInterleaved(t *testing.T) {
	dir := t.TempDir()
	src := colourFile(t, dir)
	orig := readFile(t, src)
	enc, _ := variant(t, dir, src, "dcmcrle")
	fr, err := DecodeRLE(enc.frames[0], enc.params)
	if err != nil {
		t.Fatal(err)
	}
	if string(fr.Data) != string(orig.frames[0]) {
		t.Fatalf("colour frame differs from the uncompressed original: %s", firstDiff(fr.Data, orig.frames[0]))
	}
}

// FuzzRLE feeds mutated real RLE fragments to the decoder: it must return
// pixels of the declared size or ErrCorrupt, never panic.
func FuzzRLE(f *testing.F) {
	dir := f.TempDir()
	for _, src := range sourceFiles(f) {
		if !strings.HasSuffix(src, "/3.dcm") && !strings.HasSuffix(src, "/1.dcm") {
			continue
		}
		enc, _ := variant(f, dir, src, "dcmcrle")
		f.Add(enc.frames[0], uint16(enc.params.Rows), uint16(enc.params.Columns), uint8(enc.params.SamplesPerPixel), uint8(enc.params.BitsAllocated))
	}
	rgb, _ := variant(f, dir, colourFile(f, dir), "dcmcrle")
	f.Add(rgb.frames[0], uint16(rgb.params.Rows), uint16(rgb.params.Columns), uint8(3), uint8(8))
	// Frames of the real third-party files, the small ones (large seeds
	// slow the fuzzer's minimisation to a crawl).
	for _, src := range encodedFiles(f, RLELossless) {
		enc := readFile(f, src)
		if cs := enc.frames[0]; len(cs) < 64<<10 {
			p := enc.params
			f.Add(cs, uint16(p.Rows), uint16(p.Columns), uint8(p.SamplesPerPixel), uint8(p.BitsAllocated))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, rows, cols uint16, spp, bits uint8) {
		p := Params{Rows: int(rows), Columns: int(cols), SamplesPerPixel: int(spp), BitsAllocated: int(bits)}
		fr, err := DecodeRLE(data, p)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if want := int(rows) * int(cols) * int(spp) * int(bits) / 8; len(fr.Data) != want {
			t.Fatalf("%d bytes, want %d", len(fr.Data), want)
		}
	})
}

// BenchmarkRLE decodes one 512×512 16-bit CT frame (testdata 5.dcm).
func BenchmarkRLE(b *testing.B) {
	cs, p := ctCodestream(b, "dcmcrle")
	b.SetBytes(int64(p.Rows * p.Columns * 2))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeRLE(cs, p); err != nil {
			b.Fatal(err)
		}
	}
}

// ctCodestream compresses the 512×512 CT of suyashkumar's 5.dcm with tool
// and args and returns its first frame.
func ctCodestream(b *testing.B, tool string, args ...string) ([]byte, Params) {
	for _, src := range sourceFiles(b) {
		if strings.HasSuffix(src, "/5.dcm") {
			enc, _ := variant(b, b.TempDir(), src, tool, args...)
			return enc.frames[0], enc.params
		}
	}
	b.Fatal("5.dcm not found")
	return nil, Params{}
}
