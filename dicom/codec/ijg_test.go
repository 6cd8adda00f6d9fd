//go:build cgo

package codec

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestIJG12AgainstDcmtk: 12-bit extended JPEG, real (nm-jpeg-extended-12bit)
// and made by dcmcjpeg +ee from every 9..16-bit source, equals dcmdjpeg.
func TestIJG12AgainstDcmtk(t *testing.T) {
	dir := t.TempDir()
	var vs []cgoVariant
	for _, f := range cgoCompressed(t, JPEGExtended) {
		vs = append(vs, cgoOracle(t, dir, f, "dcmdjpeg"))
	}
	for i, src := range cgoSources(t, 8<<20) {
		name := fmt.Sprintf("%d-%s-ee", i, filepath.Base(src))
		if v, ok := cgoMake(t, dir, name, src, []string{"dcmcjpeg", "+ee"}, []string{"dcmdjpeg"}); ok {
			vs = append(vs, v)
		}
	}
	n := 0
	for _, v := range vs {
		if h, err := jpegFrameHeader(v.comp.frames[0]); err != nil || h.precision != 12 {
			continue
		}
		n++
		t.Run(v.name, func(t *testing.T) {
			cgoCheck(t, v, decodeJPEG) // the registered path dispatches to ijg12
			cgoCheck(t, v, decodeIJG12)
		})
	}
	if n < 4 {
		t.Fatalf("only %d 12-bit variants", n)
	}
}

// TestIJG16Lossless: lossless process 14 (real files and dcmcjpeg +el with
// every predictor, +e1) equals dcmdjpeg and the uncompressed original.
func TestIJG16Lossless(t *testing.T) {
	dir := t.TempDir()
	var vs []cgoVariant
	for _, f := range cgoCompressed(t, JPEGLossless, JPEGLosslessSV1) {
		vs = append(vs, cgoOracle(t, dir, f, "dcmdjpeg"))
	}
	for i, src := range cgoSources(t, 8<<20) {
		orig := cgoRead(t, src)
		modes := [][]string{{"+e1"}}
		if i%3 == 0 { // every predictor on a third of the files keeps the run short
			for sv := 2; sv <= 7; sv++ {
				modes = append(modes, []string{"+el", "+sv", fmt.Sprint(sv)})
			}
		}
		for _, m := range modes {
			name := fmt.Sprintf("%d-%s%s", i, filepath.Base(src), strings.Join(m, ""))
			v, ok := cgoMake(t, dir, name, src, append([]string{"dcmcjpeg"}, m...), []string{"dcmdjpeg"})
			if ok {
				v.orig = &orig
				vs = append(vs, v)
			}
		}
	}
	if len(vs) < 10 {
		t.Fatalf("only %d lossless variants", len(vs))
	}
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) { cgoCheck(t, v, decodeIJG16) })
	}
}

func TestCgoOutSize(t *testing.T) {
	for _, tc := range []struct {
		p    Params
		size int
	}{
		{Params{Rows: 2, Columns: 3, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8}, 6},
		{Params{Rows: 2, Columns: 3, SamplesPerPixel: 3, BitsAllocated: 16, BitsStored: 12}, 36},
		{Params{Rows: 0, Columns: 3, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8}, -1},
		{Params{Rows: 2, Columns: 3, SamplesPerPixel: 2, BitsAllocated: 8, BitsStored: 8}, -1},
		{Params{Rows: 2, Columns: 3, SamplesPerPixel: 1, BitsAllocated: 32, BitsStored: 32}, -1},
		{Params{Rows: 2, Columns: 3, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: 17}, -1},
		{Params{Rows: 65535, Columns: 65535, SamplesPerPixel: 3, BitsAllocated: 16, BitsStored: 16}, -1},
	} {
		_, size, err := cgoOutSize(tc.p)
		if tc.size < 0 {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%+v: err %v, want ErrCorrupt", tc.p, err)
			}
		} else if err != nil || size != tc.size {
			t.Errorf("%+v: %d, %v; want %d", tc.p, size, err, tc.size)
		}
	}
}

// TestIJGCorrupt damages a real 12-bit stream and a lossless one.
func TestIJGCorrupt(t *testing.T) {
	dir := t.TempDir()
	src := cgoCTSlice(t)
	for _, m := range []struct {
		arg string
		dec Decoder
	}{{"+ee", decodeIJG12}, {"+e1", decodeIJG16}} {
		comp := filepath.Join(dir, m.arg+".dcm")
		if err := cgoTool(t, "dcmcjpeg", m.arg, src, comp); err != nil {
			t.Fatal(err)
		}
		d := cgoRead(t, comp)
		cs := d.frames[0]
		for name, in := range map[string][]byte{
			"truncated": cs[:len(cs)/2],
			"header":    cs[:30],
			"no SOI":    cs[2:],
		} {
			if _, err := m.dec(in, d.p); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s %s: err = %v, want ErrCorrupt", m.arg, name, err)
			}
		}
		p := d.p
		p.Columns++
		if _, err := m.dec(cs, p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s wrong columns: err = %v", m.arg, err)
		}
		bad := bytes.Clone(cs)
		for i := len(bad) / 3; i < len(bad)/3+256; i++ {
			bad[i] = 0xFF
		}
		if _, err := m.dec(bad, d.p); err == nil {
			t.Logf("%s: damaged stream decoded without error", m.arg)
		}
	}
}

func FuzzJPEG12(f *testing.F) {
	cgoFuzzJPEG(f, "+ee", decodeIJG12)
}

func FuzzJPEGLossless16(f *testing.F) {
	cgoFuzzJPEG(f, "+e1", decodeIJG16)
}

func cgoFuzzJPEG(f *testing.F, arg string, dec Decoder) {
	dir := f.TempDir()
	for i, src := range []string{cgoCTSlice(f), filepath.Join(cgoModDir(f), "testdata", "3.dcm")} {
		comp := filepath.Join(dir, fmt.Sprint(i, ".dcm"))
		if err := cgoTool(f, "dcmcjpeg", arg, src, comp); err != nil {
			f.Fatal(err)
		}
		d := cgoRead(f, comp)
		f.Add(d.frames[0], uint16(d.p.Rows), uint16(d.p.Columns), uint8(1), uint8(d.p.BitsStored))
	}
	f.Fuzz(func(t *testing.T, data []byte, rows, cols uint16, spp, bits uint8) {
		p := Params{Rows: int(rows), Columns: int(cols), SamplesPerPixel: int(spp), BitsAllocated: 16, BitsStored: int(bits)}
		fr, err := dec(data, p)
		if err == nil && len(fr.Data) != 2*int(rows)*int(cols)*int(spp) {
			t.Fatalf("%d bytes for %dx%dx%d", len(fr.Data), cols, rows, spp)
		}
	})
}

func BenchmarkIJG12CT(b *testing.B) {
	cgoBenchTool(b, []string{"dcmcjpeg", "+ee"}, decodeIJG12)
}

func BenchmarkIJG16LosslessCT(b *testing.B) {
	cgoBenchTool(b, []string{"dcmcjpeg", "+e1"}, decodeIJG16)
}

// cgoBenchTool compresses the 512×512 CT slice with a tool and benchmarks
// dec on its first frame.
func cgoBenchTool(b *testing.B, enc []string, dec Decoder) {
	comp := filepath.Join(b.TempDir(), "c.dcm")
	if err := cgoTool(b, enc[0], append(enc[1:], cgoCTSlice(b), comp)...); err != nil {
		b.Fatal(err)
	}
	cgoBench(b, cgoRead(b, comp), dec)
}
