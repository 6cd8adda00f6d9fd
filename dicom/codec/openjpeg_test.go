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

// TestOpenJPEGAgainstGDCM: JPEG 2000 (dcmtk cannot read it), real files and
// gdcmconv variants (lossless, lossy), equals gdcmconv --raw; the lossless
// ones also equal the original.
func TestOpenJPEGAgainstGDCM(t *testing.T) {
	dir := t.TempDir()
	var vs []cgoVariant
	for _, f := range cgoCompressed(t, JPEG2000Lossless, JPEG2000) {
		vs = append(vs, cgoOracle(t, dir, f, "gdcmconv", "--raw"))
	}
	for i, src := range cgoSources(t, 8<<20) {
		orig := cgoRead(t, src)
		// gdcmconv keeps the implicit VR of nested items when it writes an
		// implicit-VR source as explicit, which suyashkumar/dicom cannot read.
		explicit := filepath.Join(dir, fmt.Sprint(i, "-explicit.dcm"))
		if err := cgoTool(t, "dcmconv", "+te", src, explicit); err != nil {
			t.Fatal(err)
		}
		modes := [][]string{{"--j2k"}}
		if len(orig.frames[0]) < 1<<20 { // lossy encoding of the big X-ray takes seconds
			modes = append(modes, []string{"--j2k", "--lossy", "-q", "30"})
		}
		for _, m := range modes {
			name := fmt.Sprintf("%d-%s%s", i, filepath.Base(src), strings.Join(m, ""))
			v, ok := cgoMake(t, dir, name, explicit, append([]string{"gdcmconv"}, m...), []string{"gdcmconv", "--raw"})
			if !ok {
				continue
			}
			if len(m) == 1 {
				v.orig = &orig
			}
			vs = append(vs, v)
		}
	}
	if len(vs) < 10 {
		t.Fatalf("only %d JPEG 2000 variants", len(vs))
	}
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) { cgoCheck(t, v, decodeOpenJPEG) })
	}
}

func TestOpenJPEGCorrupt(t *testing.T) {
	comp := filepath.Join(t.TempDir(), "j2k.dcm")
	if err := cgoTool(t, "gdcmconv", "--j2k", cgoCTSlice(t), comp); err != nil {
		t.Fatal(err)
	}
	d := cgoRead(t, comp)
	cs := d.frames[0]
	// OpenJPEG shrugs off damaged code-blocks (JPEG 2000 is built to), so
	// damage the main header: Xsiz, then the tile-part lengths.
	badSiz := bytes.Clone(cs)
	copy(badSiz[8:12], []byte{0x7F, 0xFF, 0xFF, 0xFF})
	noSIZ := bytes.Clone(cs)
	noSIZ[3] = 0x00
	wrong := d.p
	wrong.Columns++
	narrow := d.p
	narrow.BitsAllocated, narrow.BitsStored = 8, 8
	for _, tc := range []struct {
		name string
		in   []byte
		p    Params
	}{
		{"truncated", cs[:len(cs)/3], d.p},
		{"header only", cs[:60], d.p},
		{"empty", nil, d.p},
		{"huge Xsiz", badSiz, d.p},
		{"no SIZ", noSIZ, d.p},
		{"wrong columns", cs, wrong},
		{"16-bit stream in 8-bit samples", cs, narrow},
	} {
		if _, err := decodeOpenJPEG(tc.in, tc.p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", tc.name, err)
		}
	}
}

func FuzzOpenJPEG(f *testing.F) {
	dir := f.TempDir()
	for i, src := range []string{filepath.Join(cgoModDir(f), "testdata", "3.dcm"), cgoCTSlice(f)} {
		comp := filepath.Join(dir, fmt.Sprint(i, ".dcm"))
		if err := cgoTool(f, "gdcmconv", "--j2k", src, comp); err != nil {
			f.Fatal(err)
		}
		d := cgoRead(f, comp)
		f.Add(d.frames[0], uint16(d.p.Rows), uint16(d.p.Columns), uint8(1), uint8(16), uint8(d.p.PixelRepresentation))
	}
	f.Fuzz(func(t *testing.T, data []byte, rows, cols uint16, spp, ba, pr uint8) {
		p := Params{Rows: int(rows), Columns: int(cols), SamplesPerPixel: int(spp), BitsAllocated: int(ba), BitsStored: int(ba), PixelRepresentation: int(pr & 1)}
		fr, err := decodeOpenJPEG(data, p)
		if err == nil && len(fr.Data) != int(rows)*int(cols)*int(spp)*int(ba)/8 {
			t.Fatalf("%d bytes for %dx%dx%d", len(fr.Data), cols, rows, spp)
		}
	})
}

func BenchmarkOpenJPEGCT(b *testing.B) {
	cgoBenchTool(b, []string{"gdcmconv", "--j2k"}, decodeOpenJPEG)
}

func BenchmarkOpenJPEGLossyCT(b *testing.B) {
	cgoBenchTool(b, []string{"gdcmconv", "--j2k", "--lossy", "-q", "30"}, decodeOpenJPEG)
}
