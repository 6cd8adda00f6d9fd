package codec

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// ljpegVariants are the dcmcjpeg settings the tests cover: SV1 (the DICOM
// default, .70), every other predictor (.57) and point transforms.
var ljpegVariants = []struct {
	name string
	ts   string
	args []string
}{
	{"sv1", JPEGLosslessSV1, []string{"+e1"}},
	{"p1", JPEGLossless, []string{"+el", "+sv", "1"}},
	{"p2", JPEGLossless, []string{"+el", "+sv", "2"}},
	{"p3", JPEGLossless, []string{"+el", "+sv", "3"}},
	{"p4", JPEGLossless, []string{"+el", "+sv", "4"}},
	{"p5", JPEGLossless, []string{"+el", "+sv", "5"}},
	{"p6", JPEGLossless, []string{"+el", "+sv", "6"}},
	{"p7", JPEGLossless, []string{"+el", "+sv", "7"}},
	{"p7pt2", JPEGLossless, []string{"+el", "+sv", "7", "+pt", "2"}},
	{"sv1pt5", JPEGLosslessSV1, []string{"+e1", "+pt", "5"}},
}

// TestLJPEGMatchesDcmtk compresses every real file with dcmcjpeg in each
// variant and checks that every frame decodes to exactly the pixels
// dcmdjpeg produces.
func TestLJPEGMatchesDcmtk(t *testing.T) {
	dir := t.TempDir()
	srcs := append(sourceFiles(t), colourFile(t, dir))
	for _, uid := range []string{JPEGLossless, JPEGLosslessSV1} {
		// A cgo decoder may take over the registration; ours is called
		// directly below, so only presence is checked here.
		if _, _, err := Lookup(uid); err != nil {
			t.Fatalf("Lookup(%s): %v", uid, err)
		}
	}
	for _, src := range srcs {
		for _, v := range ljpegVariants {
			// Every predictor on an 8-bit, a 16-bit and a colour file; the
			// DICOM default and a point transform on all the others.
			if !sweep(src) && v.name != "sv1" && v.name != "p7pt2" {
				continue
			}
			t.Run(filepath.Base(src)+"/"+v.name, func(t *testing.T) {
				enc, want := variant(t, dir, src, "dcmcjpeg", v.args...)
				if enc.ts != v.ts {
					t.Fatalf("dcmcjpeg wrote transfer syntax %s, want %s", enc.ts, v.ts)
				}
				if len(enc.frames) != len(want.frames) {
					t.Fatalf("%d codestreams, %d frames", len(enc.frames), len(want.frames))
				}
				for i, cs := range enc.frames {
					fr, err := DecodeLosslessJPEG(cs, enc.params)
					if err != nil {
						t.Fatalf("frame %d: %v", i+1, err)
					}
					if string(fr.Data) != string(want.frames[i]) {
						t.Fatalf("frame %d differs from dcmdjpeg: %s", i+1, firstDiff(fr.Data, want.frames[i]))
					}
				}
			})
		}
	}
}

// sweep reports whether src gets every dcmcjpeg variant.
func sweep(src string) bool {
	for _, s := range []string{"/3.dcm", "/5.dcm", "/6.dcm", "/rgb.dcm"} {
		if strings.HasSuffix(src, s) {
			return true
		}
	}
	return false
}

// TestLJPEGThirdParty decodes the real lossless JPEG files of testdata/
// (written by encoders other than dcmtk, every predictor, multi-frame,
// colour) and compares every frame with dcmdjpeg's.
func TestLJPEGThirdParty(t *testing.T) {
	files := encodedFiles(t, JPEGLossless, JPEGLosslessSV1)
	if len(files) == 0 {
		t.Skip("no lossless JPEG files in testdata/ yet")
	}
	dir := t.TempDir()
	for _, src := range files {
		t.Run(filepath.Base(src), func(t *testing.T) {
			enc := readFile(t, src)
			out := filepath.Join(dir, filepath.Base(src))
			run(t, "dcmdjpeg", src, out)
			want := readFile(t, out)
			for i, cs := range enc.frames {
				fr, err := DecodeLosslessJPEG(cs, enc.params)
				if err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				if string(fr.Data) != string(want.frames[i]) {
					t.Fatalf("frame %d differs from dcmdjpeg: %s", i+1, firstDiff(fr.Data, want.frames[i]))
				}
			}
		})
	}
}

// TestLJPEGLossless checks the claim that matters to the patient: without a
// point transform the decoded frame is the uncompressed original, bit for
// bit, for the real CT (two frames) and the real colour image.
func TestLJPEGLossless(t *testing.T) {
	dir := t.TempDir()
	var srcs []string
	for _, s := range sourceFiles(t) {
		if strings.HasSuffix(s, "/5.dcm") {
			srcs = append(srcs, s)
		}
	}
	srcs = append(srcs, colourFile(t, dir))
	for _, src := range srcs {
		orig := readFile(t, src)
		enc, _ := variant(t, dir, src, "dcmcjpeg", "+e1")
		for i, cs := range enc.frames {
			fr, err := DecodeLosslessJPEG(cs, enc.params)
			if err != nil {
				t.Fatalf("%s frame %d: %v", src, i+1, err)
			}
			if string(fr.Data) != string(orig.frames[i]) {
				t.Fatalf("%s frame %d differs from the original: %s", src, i+1, firstDiff(fr.Data, orig.frames[i]))
			}
		}
	}
}

// realLJPEG returns the SV1 codestream of suyashkumar's 3.dcm (176×176,
// 12 bits stored) for the corruption tests.
func realLJPEG(tb testing.TB) ([]byte, Params) {
	tb.Helper()
	for _, src := range sourceFiles(tb) {
		if strings.HasSuffix(src, "/3.dcm") {
			enc, _ := variant(tb, tb.TempDir(), src, "dcmcjpeg", "+e1")
			return enc.frames[0], enc.params
		}
	}
	tb.Fatal("3.dcm not found")
	return nil, Params{}
}

// TestLJPEGErrors corrupts a real codestream in the ways that matter and
// checks each is a named ErrCorrupt.
func TestLJPEGErrors(t *testing.T) {
	cs, p := realLJPEG(t)
	if _, err := DecodeLosslessJPEG(cs, p); err != nil {
		t.Fatalf("uncorrupted: %v", err)
	}
	find := func(marker byte) int {
		for i := 0; i+1 < len(cs); i++ {
			if cs[i] == 0xFF && cs[i+1] == marker {
				return i
			}
		}
		t.Fatalf("marker %02X not found", marker)
		return 0
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, cs...)) }
	sof, sos := find(mSOF3), find(mSOS)
	tests := []struct {
		name string
		data []byte
		p    Params
		want string
	}{
		{"empty", nil, p, "no SOI"},
		{"truncated in scan", cs[:len(cs)/2], p, "scan data ends in row"},
		{"cut before the scan", cs[:sos], p, "samples cannot fit in"},
		{"wrong rows", cs, Params{Rows: p.Rows + 1, Columns: p.Columns, SamplesPerPixel: 1, BitsAllocated: 16}, "header says"},
		{"wrong samples", cs, Params{Rows: p.Rows, Columns: p.Columns, SamplesPerPixel: 3, BitsAllocated: 16}, "header says"},
		{"precision above bits allocated", cs, Params{Rows: p.Rows, Columns: p.Columns, SamplesPerPixel: 1, BitsAllocated: 8}, "exceeds 8 bits allocated"},
		{"bad bits allocated", cs, Params{Rows: p.Rows, Columns: p.Columns, SamplesPerPixel: 1, BitsAllocated: 32}, "32 bits allocated"},
		{"baseline SOF", mod(func(b []byte) []byte { b[sof+1] = 0xC0; return b }), p, "SOF0: not a lossless"},
		{"precision 17", mod(func(b []byte) []byte { b[sof+4] = 17; return b }), p, "precision 17"},
		{"predictor 0", mod(func(b []byte) []byte { b[sos+4+2*1+1] = 0; return b }), p, "predictor 0"},
		{"point transform", mod(func(b []byte) []byte { b[sof+4], b[sos+4+2*1+3] = 12, 13; return b }), p, "point transform 13 not below precision 12"},
		{"undefined table", mod(func(b []byte) []byte { b[sos+6] = 0x30; return b }), p, "undefined Huffman table 3"},
		{"unknown component", mod(func(b []byte) []byte { b[sos+5] = 99; return b }), p, "component 99, not in SOF3"},
		{"segment length", mod(func(b []byte) []byte { b[sof+2], b[sof+3] = 0xFF, 0xF0; return b }), p, "beyond codestream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeLosslessJPEG(tc.data, tc.p)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrCorrupt containing %q", err, tc.want)
			}
		})
	}
}

// FuzzLJPEG feeds mutated real lossless JPEG codestreams to the decoder:
// it must return pixels of the declared size or ErrCorrupt, never panic.
func FuzzLJPEG(f *testing.F) {
	dir := f.TempDir()
	for _, src := range sourceFiles(f) {
		if !strings.HasSuffix(src, "/3.dcm") && !strings.HasSuffix(src, "/1.dcm") {
			continue
		}
		for _, args := range [][]string{{"+e1"}, {"+el", "+sv", "7", "+pt", "1"}} {
			enc, _ := variant(f, dir, src, "dcmcjpeg", args...)
			f.Add(enc.frames[0], uint16(enc.params.Rows), uint16(enc.params.Columns), uint8(1), uint8(enc.params.BitsAllocated))
		}
	}
	rgb, _ := variant(f, dir, colourFile(f, dir), "dcmcjpeg", "+el", "+sv", "4")
	f.Add(rgb.frames[0], uint16(rgb.params.Rows), uint16(rgb.params.Columns), uint8(3), uint8(8))
	// Frames of the real third-party files, the small ones (large seeds
	// slow the fuzzer's minimisation to a crawl).
	for _, src := range encodedFiles(f, JPEGLossless, JPEGLosslessSV1) {
		enc := readFile(f, src)
		if cs := enc.frames[0]; len(cs) < 64<<10 {
			p := enc.params
			f.Add(cs, uint16(p.Rows), uint16(p.Columns), uint8(p.SamplesPerPixel), uint8(p.BitsAllocated))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, rows, cols uint16, spp, bits uint8) {
		p := Params{Rows: int(rows), Columns: int(cols), SamplesPerPixel: int(spp), BitsAllocated: int(bits)}
		fr, err := DecodeLosslessJPEG(data, p)
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

// BenchmarkLJPEG decodes one 512×512 16-bit CT frame (testdata 5.dcm) in
// SV1, the syntax DICOM modalities write.
func BenchmarkLJPEG(b *testing.B) {
	cs, p := ctCodestream(b, "dcmcjpeg", "+e1")
	b.SetBytes(int64(p.Rows * p.Columns * 2))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeLosslessJPEG(cs, p); err != nil {
			b.Fatal(err)
		}
	}
}
