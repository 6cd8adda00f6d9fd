//go:build cgo

package codec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// --- helpers shared by the cgo codec tests (prefixed cgo to stay clear of
// the pure-Go decoders' tests in the same package) ---

// cgoDCM is what the codec tests need from a DICOM file.
type cgoDCM struct {
	path   string
	ts     string
	p      Params
	frames [][]byte // encapsulated: one codestream per frame; native: interleaved samples
}

// cgoFile is a test file's path with its header.
type cgoFile struct {
	path string
	ts   string
	p    Params
	size int64
}

// cgoFiles lists the real DICOM files: the project's testdata, or
// suyashkumar/dicom's when that is not there yet.
func cgoFiles(t testing.TB) []cgoFile {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "*.dcm"))
	if len(paths) < 5 {
		m, _ := filepath.Glob(filepath.Join(cgoModDir(t), "testdata", "*.dcm"))
		paths = append(paths, m...)
	}
	if len(paths) == 0 {
		t.Fatal("no DICOM test files found")
	}
	var out []cgoFile
	for _, path := range paths {
		hdr, err := dicom.ParseFile(path, nil, dicom.SkipPixelData())
		if err != nil {
			continue // the parser's tests deal with odd files
		}
		st, _ := os.Stat(path)
		out = append(out, cgoFile{path: path, ts: cgoString(hdr, tag.TransferSyntaxUID), p: cgoParams(hdr), size: st.Size()})
	}
	return out
}

// cgoSources lists the uncompressed little-endian files with 8 or 16 bits
// that the tools can compress; maxSize leaves out big files for the slower
// variants.
func cgoSources(t testing.TB, maxSize int64) []string {
	var out []string
	for _, f := range cgoFiles(t) {
		if !Native(f.ts) || f.ts == ExplicitVRBigEndian || f.size > maxSize ||
			(f.p.BitsAllocated != 8 && f.p.BitsAllocated != 16) || f.p.BitsStored < 2 ||
			(f.p.SamplesPerPixel != 1 && f.p.SamplesPerPixel != 3) || f.p.Photometric == "PALETTE COLOR" || f.p.Photometric == "YBR_FULL_422" {
			continue
		}
		out = append(out, f.path)
	}
	if len(out) == 0 {
		t.Fatal("no uncompressed DICOM test files found")
	}
	return out
}

// cgoCompressed lists the real files in one of the transfer syntaxes.
func cgoCompressed(t testing.TB, uids ...string) []string {
	var out []string
	for _, f := range cgoFiles(t) {
		for _, u := range uids {
			if f.ts == u {
				out = append(out, f.path)
			}
		}
	}
	return out
}

func cgoParams(hdr dicom.Dataset) Params {
	return Params{
		Rows:                cgoInt(hdr, tag.Rows, 0),
		Columns:             cgoInt(hdr, tag.Columns, 0),
		SamplesPerPixel:     cgoInt(hdr, tag.SamplesPerPixel, 1),
		BitsAllocated:       cgoInt(hdr, tag.BitsAllocated, 0),
		BitsStored:          cgoInt(hdr, tag.BitsStored, 0),
		PixelRepresentation: cgoInt(hdr, tag.PixelRepresentation, 0),
		Photometric:         cgoString(hdr, tag.PhotometricInterpretation),
	}
}

func cgoModDir(t testing.TB) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/suyashkumar/dicom").Output()
	if err != nil {
		t.Fatalf("locate github.com/suyashkumar/dicom: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// cgoTool runs a command-line tool, skipping (or failing under CI) when it
// is not installed. It returns an error when the tool itself fails: some
// variants (e.g. baseline JPEG of a 16-bit CT) are refused by the tools.
func cgoTool(t testing.TB, name string, args ...string) error {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: install dcmtk and libgdcm-tools (make test does)", name)
		}
		t.Skipf("%s not found", name)
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func cgoInt(ds dicom.Dataset, tg tag.Tag, def int) int {
	e, err := ds.FindElementByTag(tg)
	if err != nil {
		return def
	}
	switch v := e.Value.GetValue().(type) {
	case []int:
		if len(v) > 0 {
			return v[0]
		}
	case []string:
		if len(v) > 0 {
			if n, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil {
				return n
			}
		}
	}
	return def
}

func cgoString(ds dicom.Dataset, tg tag.Tag) string {
	e, err := ds.FindElementByTag(tg)
	if err != nil {
		return ""
	}
	if v, ok := e.Value.GetValue().([]string); ok && len(v) > 0 {
		return strings.TrimRight(strings.TrimSpace(v[0]), "\x00")
	}
	return ""
}

// cgoRead parses path. Encapsulated fragments become one codestream per
// frame (joined for a single-frame file); native pixels are taken raw and
// de-planarised.
func cgoRead(t testing.TB, path string) cgoDCM {
	t.Helper()
	hdr, err := dicom.ParseFile(path, nil, dicom.SkipPixelData())
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	d := cgoDCM{path: path, ts: cgoString(hdr, tag.TransferSyntaxUID)}
	d.p = cgoParams(hdr)
	nframes := cgoInt(hdr, tag.NumberOfFrames, 1)
	var opts []dicom.ParseOption
	native := Native(d.ts)
	if native {
		opts = append(opts, dicom.SkipProcessingPixelDataValue())
	}
	ds, err := dicom.ParseFile(path, nil, opts...)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	e, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		t.Fatalf("%s: no pixel data: %v", path, err)
	}
	info := dicom.MustGetPixelDataInfo(e.Value)
	if native {
		fsize := d.p.Rows * d.p.Columns * d.p.SamplesPerPixel * d.p.BitsAllocated / 8
		raw := info.UnprocessedValueData
		if fsize == 0 || len(raw) < fsize*nframes {
			t.Fatalf("%s: %d pixel bytes for %d frames of %d", path, len(raw), nframes, fsize)
		}
		planar := cgoInt(hdr, tag.PlanarConfiguration, 0) == 1
		for i := 0; i < nframes; i++ {
			f := raw[i*fsize : (i+1)*fsize]
			if planar && d.p.SamplesPerPixel > 1 {
				f = cgoInterleave(f, d.p.SamplesPerPixel, d.p.BitsAllocated/8)
			}
			d.frames = append(d.frames, f)
		}
		return d
	}
	var frags [][]byte
	for _, f := range info.Frames {
		frags = append(frags, f.EncapsulatedData.Data)
	}
	switch {
	case len(frags) == nframes:
		d.frames = frags
	case nframes == 1:
		d.frames = [][]byte{bytes.Join(frags, nil)}
	default:
		t.Fatalf("%s: %d fragments for %d frames", path, len(frags), nframes)
	}
	return d
}

func cgoInterleave(f []byte, spp, bps int) []byte {
	out := make([]byte, len(f))
	plane := len(f) / spp
	for c := 0; c < spp; c++ {
		for i := 0; i < plane/bps; i++ {
			copy(out[(i*spp+c)*bps:(i*spp+c+1)*bps], f[c*plane+i*bps:c*plane+(i+1)*bps])
		}
	}
	return out
}

// cgoSameSamples compares two native frames on the low bitsStored bits of
// each sample (what a viewer reads); it reports the first difference and
// how many samples differ.
func cgoSameSamples(got, want []byte, bitsAllocated, bitsStored int) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d bytes, want %d", len(got), len(want))
	}
	mask := uint16(1)<<bitsStored - 1
	if bitsStored >= 16 {
		mask = 0xFFFF
	}
	bad, first := 0, -1
	if bitsAllocated == 8 {
		for i := range got {
			if uint16(got[i])&mask != uint16(want[i])&mask {
				if first < 0 {
					first = i
				}
				bad++
			}
		}
	} else {
		for i := 0; i+1 < len(got); i += 2 {
			g := (uint16(got[i]) | uint16(got[i+1])<<8) & mask
			w := (uint16(want[i]) | uint16(want[i+1])<<8) & mask
			if g != w {
				if first < 0 {
					first = i / 2
				}
				bad++
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d samples differ, first at sample %d", bad, first)
	}
	return nil
}

// cgoVariant is one compressed file made by a tool, with the oracle's
// decompression of it.
type cgoVariant struct {
	name   string
	comp   cgoDCM
	oracle cgoDCM
	orig   *cgoDCM // the uncompressed source, for lossless variants
}

// cgoMake compresses src with tool+args into dir and decompresses the
// result with the oracle tool. ok is false when the tool refuses src.
func cgoMake(t testing.TB, dir, name, src string, enc []string, dec []string) (cgoVariant, bool) {
	t.Helper()
	comp := filepath.Join(dir, name+".dcm")
	raw := filepath.Join(dir, name+".raw.dcm")
	if err := cgoTool(t, enc[0], append(enc[1:], src, comp)...); err != nil {
		t.Logf("variant %s not made: %v", name, err)
		return cgoVariant{}, false
	}
	if err := cgoTool(t, dec[0], append(dec[1:], comp, raw)...); err != nil {
		t.Fatalf("oracle: %v", err)
	}
	return cgoVariant{name: name, comp: cgoRead(t, comp), oracle: cgoRead(t, raw)}, true
}

// cgoOracle decompresses an existing compressed file with the oracle tool.
func cgoOracle(t testing.TB, dir, path string, dec ...string) cgoVariant {
	t.Helper()
	raw := filepath.Join(dir, filepath.Base(path)+".raw.dcm")
	if err := cgoTool(t, dec[0], append(dec[1:], path, raw)...); err != nil {
		t.Fatalf("oracle: %v", err)
	}
	return cgoVariant{name: filepath.Base(path), comp: cgoRead(t, path), oracle: cgoRead(t, raw)}
}

// cgoCheck decodes every frame of v with dec and compares it with the
// oracle (and, when lossless, the original).
func cgoCheck(t *testing.T, v cgoVariant, dec Decoder) {
	t.Helper()
	if len(v.comp.frames) != len(v.oracle.frames) {
		t.Fatalf("%s: %d frames, oracle has %d", v.name, len(v.comp.frames), len(v.oracle.frames))
	}
	for i, cs := range v.comp.frames {
		f, err := dec(cs, v.comp.p)
		if err != nil {
			t.Fatalf("%s frame %d: %v", v.name, i+1, err)
		}
		photo := f.Photometric
		if photo == "" {
			photo = v.comp.p.Photometric
		}
		if photo != v.oracle.p.Photometric {
			t.Errorf("%s frame %d: photometric %q, oracle %q", v.name, i+1, photo, v.oracle.p.Photometric)
		}
		if err := cgoSameSamples(f.Data, v.oracle.frames[i], v.comp.p.BitsAllocated, v.comp.p.BitsStored); err != nil {
			t.Errorf("%s frame %d vs oracle: %v", v.name, i+1, err)
		}
		if v.orig != nil {
			if err := cgoSameSamples(f.Data, v.orig.frames[i], v.comp.p.BitsAllocated, v.comp.p.BitsStored); err != nil {
				t.Errorf("%s frame %d vs original: %v", v.name, i+1, err)
			}
		}
	}
}

// cgoColourSources wraps real JPEG photographs from Go's own image
// testdata into DICOM with img2dcm (a JPEG Baseline file as a scanner would
// write it) and decompresses one to make an uncompressed RGB source.
func cgoColourSources(t testing.TB, dir string) (jpegs []string, rgb string) {
	t.Helper()
	td := filepath.Join(runtime.GOROOT(), "src", "image", "testdata")
	for _, n := range []string{"video-001.jpeg", "video-001.q50.422.jpeg", "video-001.q50.444.jpeg",
		"video-001.q50.411.jpeg", "video-001.progressive.jpeg", "video-001.restart2.jpeg",
		"video-001.rgb.jpeg", "video-005.gray.jpeg", "video-005.gray.q50.progressive.jpeg"} {
		out := filepath.Join(dir, "img-"+n+".dcm")
		if err := cgoTool(t, "img2dcm", filepath.Join(td, n), out); err != nil {
			t.Logf("img2dcm %s: %v", n, err)
			continue
		}
		jpegs = append(jpegs, out)
	}
	if len(jpegs) == 0 {
		t.Fatal("img2dcm made no colour test file")
	}
	rgb = filepath.Join(dir, "colour-rgb.dcm")
	if err := cgoTool(t, "dcmdjpeg", jpegs[0], rgb); err != nil {
		t.Fatal(err)
	}
	return jpegs, rgb
}

// --- tests of turbojpeg.go ---

func TestJPEGBaselineAgainstDcmtk(t *testing.T) {
	dir := t.TempDir()
	jpegs, rgb := cgoColourSources(t, dir)
	var vs []cgoVariant
	// Real JPEG files, as scanners and img2dcm write them.
	for _, j := range append(jpegs, cgoCompressed(t, JPEGBaseline, JPEGExtended)...) {
		vs = append(vs, cgoOracle(t, dir, j, "dcmdjpeg"))
	}
	for i, src := range append(cgoSources(t, 2<<20), rgb) {
		for _, mode := range []struct {
			name string
			args []string
		}{
			{"eb", []string{"dcmcjpeg", "+eb"}},
			{"eb-rgb", []string{"dcmcjpeg", "+eb", "+cr"}},
			{"ep", []string{"dcmcjpeg", "+ep"}},
		} {
			if mode.name == "eb-rgb" && src != rgb {
				continue
			}
			name := fmt.Sprintf("%d-%s-%s", i, filepath.Base(src), mode.name)
			if v, ok := cgoMake(t, dir, name, src, mode.args, []string{"dcmdjpeg"}); ok {
				vs = append(vs, v)
			}
		}
	}
	n := 0
	for _, v := range vs {
		if h, err := jpegFrameHeader(v.comp.frames[0]); err != nil || h.precision != 8 || h.marker == 0xC3 {
			continue
		}
		n++
		t.Run(v.name, func(t *testing.T) { cgoCheck(t, v, decodeJPEG) })
	}
	if n < 10 {
		t.Fatalf("only %d 8-bit JPEG variants made", n)
	}
}

func TestJPEGFrameHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"empty", nil, false},
		{"no SOI", []byte{0, 0, 0, 0}, false},
		{"SOI only", []byte{0xFF, 0xD8}, false},
		{"overrun", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF}, false},
		{"short SOF", []byte{0xFF, 0xD8, 0xFF, 0xC0, 0, 4, 8, 0}, false},
		{"scan first", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 2}, false},
		{"SOF0", []byte{0xFF, 0xD8, 0xFF, 0xFF, 0xC0, 0, 11, 8, 0, 2, 0, 3, 1, 1, 0x11, 0}, true},
	} {
		h, err := jpegFrameHeader(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
			continue
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v does not wrap ErrCorrupt", tc.name, err)
		}
		if tc.ok && (h.width != 3 || h.height != 2 || h.precision != 8 || h.components != 1) {
			t.Errorf("%s: %+v", tc.name, h)
		}
	}
}

// TestJPEGCorrupt truncates and damages a real stream: every result is an
// error wrapping ErrCorrupt, never a panic or a silently grey image.
func TestJPEGCorrupt(t *testing.T) {
	dir := t.TempDir()
	jpegs, _ := cgoColourSources(t, dir)
	d := cgoRead(t, jpegs[0])
	cs := d.frames[0]
	for _, tc := range []struct {
		name string
		in   []byte
		p    Params
	}{
		{"truncated half", cs[:len(cs)/2], d.p},
		{"truncated header", cs[:40], d.p},
		{"wrong rows", cs, Params{Rows: d.p.Rows + 1, Columns: d.p.Columns, SamplesPerPixel: 3, BitsAllocated: 8, BitsStored: 8, Photometric: d.p.Photometric}},
		{"wrong samples", cs, Params{Rows: d.p.Rows, Columns: d.p.Columns, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8, Photometric: "MONOCHROME2"}},
		{"bits allocated 12", cs, Params{Rows: d.p.Rows, Columns: d.p.Columns, SamplesPerPixel: 3, BitsAllocated: 12, BitsStored: 12}},
		{"huge", cs, Params{Rows: 65535, Columns: 65535, SamplesPerPixel: 3, BitsAllocated: 16, BitsStored: 16}},
	} {
		if _, err := decodeJPEG(tc.in, tc.p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", tc.name, err)
		}
	}
	// Flip bytes inside the entropy-coded data.
	bad := bytes.Clone(cs)
	for i := len(bad) / 2; i < len(bad)/2+64; i++ {
		bad[i] ^= 0x5A
	}
	if f, err := decodeJPEG(bad, d.p); err == nil && len(f.Data) == 0 {
		t.Error("damaged stream: no error and no data")
	}
}

func TestJPEGRegistered(t *testing.T) {
	for _, uid := range []string{JPEGBaseline, JPEGExtended} {
		if _, impl, err := Lookup(uid); err != nil || !strings.Contains(impl, "libjpeg-turbo") {
			t.Errorf("%s: %q, %v", Name(uid), impl, err)
		}
	}
}

func FuzzJPEG(f *testing.F) {
	dir := f.TempDir()
	jpegs, _ := cgoColourSources(f, dir)
	for _, j := range jpegs[:3] {
		d := cgoRead(f, j)
		f.Add(d.frames[0], uint16(d.p.Rows), uint16(d.p.Columns), uint8(d.p.SamplesPerPixel), d.p.Photometric)
	}
	f.Fuzz(func(t *testing.T, data []byte, rows, cols uint16, spp uint8, photo string) {
		p := Params{Rows: int(rows), Columns: int(cols), SamplesPerPixel: int(spp), BitsAllocated: 8, BitsStored: 8, Photometric: photo}
		fr, err := decodeJPEG(data, p)
		if err == nil && len(fr.Data) != int(rows)*int(cols)*int(spp) {
			t.Fatalf("%d bytes for %dx%dx%d", len(fr.Data), cols, rows, spp)
		}
	})
}

func BenchmarkJPEGBaselineCT(b *testing.B) {
	dir := b.TempDir()
	src := cgoCTSlice(b)
	comp := filepath.Join(dir, "eb.dcm")
	if err := cgoTool(b, "dcmcjpeg", "+eb", src, comp); err != nil {
		b.Fatal(err)
	}
	cgoBench(b, cgoRead(b, comp), decodeJPEG)
}

func cgoBench(b *testing.B, d cgoDCM, dec Decoder) {
	cs := d.frames[0]
	b.SetBytes(int64(d.p.Rows * d.p.Columns * d.p.SamplesPerPixel * d.p.BitsAllocated / 8))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec(cs, d.p); err != nil {
			b.Fatal(err)
		}
	}
}

// cgoCTSlice is the 512×512 CT used by the benchmarks (suyashkumar/dicom's
// 5.dcm, 2 frames of 16 bits).
func cgoCTSlice(b testing.TB) string {
	return filepath.Join(cgoModDir(b), "testdata", "5.dcm")
}
