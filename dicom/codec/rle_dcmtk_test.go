package codec

// Test helpers shared by the RLE and lossless JPEG tests: real DICOM files,
// compressed and decompressed by dcmtk, read back with suyashkumar/dicom.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/frame"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// needTool returns the path of a dcmtk tool, skipping the test when it is
// missing (failing under CI, where make installs it).
func needTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s not found: install dcmtk (apt-get install dcmtk)", name)
		}
		tb.Skipf("%s not found: install dcmtk to run this test", name)
	}
	return p
}

// run runs a tool and fails the test with its output if it fails.
func run(tb testing.TB, name string, args ...string) {
	tb.Helper()
	cmd := exec.Command(needTool(tb, name), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// source is a real DICOM file the tests use, with what its header says.
type source struct {
	path        string
	ts          string
	bits, spp   int
	photometric string
}

// sources lists the real DICOM files of suyashkumar/dicom's testdata and
// the project's testdata/ (as it fills), reading each header.
func sources(tb testing.TB) []source {
	tb.Helper()
	var files []string
	if gomod, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		dir := filepath.Join(strings.TrimSpace(string(gomod)), "github.com/suyashkumar/dicom@v1.1.0/testdata")
		m, _ := filepath.Glob(filepath.Join(dir, "*.dcm"))
		files = append(files, m...)
	}
	_ = filepath.WalkDir("../../testdata", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.EqualFold(filepath.Ext(path), ".dcm") {
			files = append(files, path)
		}
		return nil
	})
	sort.Strings(files)
	if len(files) == 0 {
		tb.Fatal("no DICOM test files found (suyashkumar/dicom v1.1.0 module or testdata/)")
	}
	var out []source
	for _, f := range files {
		ds, err := dicom.ParseFile(f, nil, dicom.SkipPixelData())
		if err != nil {
			tb.Fatalf("parse %s: %v", f, err)
		}
		src := source{path: f}
		if e, err := ds.FindElementByTag(tag.TransferSyntaxUID); err == nil {
			if v, ok := e.Value.GetValue().([]string); ok && len(v) > 0 {
				src.ts = strings.Trim(v[0], " \x00")
			}
		}
		if e, err := ds.FindElementByTag(tag.PhotometricInterpretation); err == nil {
			if v, ok := e.Value.GetValue().([]string); ok && len(v) > 0 {
				src.photometric = strings.TrimSpace(v[0])
			}
		}
		for t, dst := range map[tag.Tag]*int{tag.BitsAllocated: &src.bits, tag.SamplesPerPixel: &src.spp} {
			if e, err := ds.FindElementByTag(t); err == nil {
				if v, ok := e.Value.GetValue().([]int); ok && len(v) > 0 {
					*dst = v[0]
				}
			}
		}
		out = append(out, src)
	}
	return out
}

// sourceFiles lists the paths of the uncompressed files dcmtk can compress
// with the given bits allocated (8/16 for JPEG, also 32 for RLE): grey or
// RGB-like colour, not the subsampled YBR_FULL_422.
func sourceFiles(tb testing.TB, bits ...int) []string {
	tb.Helper()
	if len(bits) == 0 {
		bits = []int{8, 16}
	}
	var out []string
	for _, s := range sources(tb) {
		ok := false
		for _, b := range bits {
			ok = ok || s.bits == b
		}
		if ok && Native(s.ts) && (s.spp == 1 || s.spp == 3) && s.photometric != "YBR_FULL_422" {
			out = append(out, s.path)
		}
	}
	return out
}

// encodedFiles lists the real files already in one of the transfer
// syntaxes uids, made by encoders other than dcmtk.
func encodedFiles(tb testing.TB, uids ...string) []string {
	tb.Helper()
	var out []string
	for _, s := range sources(tb) {
		for _, u := range uids {
			if s.ts == u {
				out = append(out, s.path)
			}
		}
	}
	return out
}

// colourFile makes a real RGB DICOM file from a real photograph (a BMP in
// golang.org/x/image's testdata) with dcmtk's img2dcm.
func colourFile(tb testing.TB, dir string) string {
	tb.Helper()
	gomod, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		tb.Fatalf("go env GOMODCACHE: %v", err)
	}
	bmp := filepath.Join(strings.TrimSpace(string(gomod)), "golang.org/x/image@v0.0.0-20191009234506-e7c1f5e7dbb8/testdata/video-001.bmp")
	if _, err := os.Stat(bmp); err != nil {
		tb.Skipf("colour source image missing: %v", err)
	}
	out := filepath.Join(dir, "rgb.dcm")
	run(tb, "img2dcm", "-i", "BMP", bmp, out)
	return out
}

// dicomFile is the pixel data of one DICOM file and its description.
type dicomFile struct {
	ts     string
	params Params
	frames [][]byte // one codestream or one native frame each
}

// readFile parses path with suyashkumar/dicom: native pixel data comes as
// raw little-endian bytes cut into frames; encapsulated pixel data as one
// codestream per frame (the files dcmtk writes here have one fragment per
// frame).
func readFile(tb testing.TB, path string) dicomFile {
	tb.Helper()
	ds, err := dicom.ParseFile(path, nil, dicom.SkipProcessingPixelDataValue())
	if err != nil {
		tb.Fatalf("parse %s: %v", path, err)
	}
	ints := func(t tag.Tag) int {
		e, err := ds.FindElementByTag(t)
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		v, ok := e.Value.GetValue().([]int)
		if !ok || len(v) == 0 {
			tb.Fatalf("%s: %v is not an integer", path, t)
		}
		return v[0]
	}
	str := func(t tag.Tag) string {
		e, err := ds.FindElementByTag(t)
		if err != nil {
			return ""
		}
		v, ok := e.Value.GetValue().([]string)
		if !ok || len(v) == 0 {
			return ""
		}
		return strings.TrimSpace(v[0])
	}
	f := dicomFile{
		ts: str(tag.TransferSyntaxUID),
		params: Params{
			Rows:                ints(tag.Rows),
			Columns:             ints(tag.Columns),
			SamplesPerPixel:     ints(tag.SamplesPerPixel),
			BitsAllocated:       ints(tag.BitsAllocated),
			BitsStored:          ints(tag.BitsStored),
			PixelRepresentation: ints(tag.PixelRepresentation),
			Photometric:         str(tag.PhotometricInterpretation),
		},
	}
	nframes := 1
	if s := str(tag.NumberOfFrames); s != "" {
		if nframes, err = strconv.Atoi(s); err != nil {
			tb.Fatalf("%s: number of frames %q", path, s)
		}
	}
	e, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	info := dicom.MustGetPixelDataInfo(e.Value)
	if info.IsEncapsulated {
		f.frames = joinFragments(tb, path, info.Frames, info.Offsets, nframes)
		return f
	}
	p := f.params
	size := p.Rows * p.Columns * p.SamplesPerPixel * p.BitsAllocated / 8
	raw := info.UnprocessedValueData
	if len(raw) < size*nframes {
		tb.Fatalf("%s: %d pixel bytes for %d frames of %d", path, len(raw), nframes, size)
	}
	planar := 0
	if pe, err := ds.FindElementByTag(tag.PlanarConfiguration); err == nil {
		if v, ok := pe.Value.GetValue().([]int); ok && len(v) > 0 {
			planar = v[0]
		}
	}
	for i := 0; i < nframes; i++ {
		fr := raw[i*size : (i+1)*size]
		if planar == 1 && p.SamplesPerPixel == 3 {
			fr = interleave(fr, p.Rows*p.Columns, p.BitsAllocated/8)
		}
		f.frames = append(f.frames, fr)
	}
	return f
}

// interleave turns a planar (R…G…B…) frame into the native interleaved
// layout the decoders return.
func interleave(planar []byte, pixels, bps int) []byte {
	out := make([]byte, len(planar))
	for c := 0; c < 3; c++ {
		for i := 0; i < pixels; i++ {
			copy(out[(i*3+c)*bps:(i*3+c+1)*bps], planar[(c*pixels+i)*bps:(c*pixels+i+1)*bps])
		}
	}
	return out
}

// joinFragments groups fragments into frames (PS3.5 A.4): one per frame,
// all of them for one frame, by the Basic Offset Table, or else by the
// JPEG end-of-image marker ending a frame's last fragment.
func joinFragments(tb testing.TB, path string, frags []*frame.Frame, offsets []uint32, nframes int) [][]byte {
	tb.Helper()
	var data [][]byte
	for _, fr := range frags {
		data = append(data, fr.EncapsulatedData.Data)
	}
	join := func(parts [][]byte) []byte { return bytes.Join(parts, nil) }
	switch {
	case len(data) == nframes:
		return data
	case nframes == 1:
		return [][]byte{join(data)}
	case len(offsets) == nframes:
		var out [][]byte
		pos, start := uint32(0), 0
		for i, d := range data {
			if k := len(out); k+1 < nframes && pos == offsets[k+1] && i > start {
				out = append(out, join(data[start:i]))
				start = i
			}
			pos += 8 + uint32(len(d))
		}
		out = append(out, join(data[start:]))
		if len(out) != nframes {
			tb.Fatalf("%s: offset table gives %d frames, want %d", path, len(out), nframes)
		}
		return out
	}
	var out [][]byte
	start := 0
	for i, d := range data {
		t := bytes.TrimRight(d, "\x00")
		if bytes.HasSuffix(t, []byte{0xFF, 0xD9}) {
			out = append(out, join(data[start:i+1]))
			start = i + 1
		}
	}
	if len(out) != nframes {
		tb.Fatalf("%s: %d fragments make %d frames by EOI, want %d", path, len(data), len(out), nframes)
	}
	return out
}

// variant compresses src with tool and args into dir, decompresses the
// result with dcmtk's own decoder (the oracle), and returns both.
func variant(tb testing.TB, dir, src, tool string, args ...string) (enc, dec dicomFile) {
	tb.Helper()
	name := filepath.Base(src) + "." + tool + strings.ReplaceAll(strings.Join(args, ""), " ", "")
	encPath := filepath.Join(dir, name+".dcm")
	decPath := filepath.Join(dir, name+".raw.dcm")
	run(tb, tool, append(append([]string{}, args...), src, encPath)...)
	oracle := map[string]string{"dcmcrle": "dcmdrle", "dcmcjpeg": "dcmdjpeg"}[tool]
	run(tb, oracle, "+te", encPath, decPath)
	return readFile(tb, encPath), readFile(tb, decPath)
}

// firstDiff describes where two pixel buffers first differ.
func firstDiff(got, want []byte) string {
	if len(got) != len(want) {
		return "length " + strconv.Itoa(len(got)) + ", want " + strconv.Itoa(len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return "byte " + strconv.Itoa(i) + ": " + strconv.Itoa(int(got[i])) + ", want " + strconv.Itoa(int(want[i]))
		}
	}
	return "equal"
}
