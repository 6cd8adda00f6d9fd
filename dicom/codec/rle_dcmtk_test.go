package codec

// Test helpers shared by the RLE and lossless JPEG tests: real DICOM files,
// compressed and decompressed by dcmtk, read back with suyashkumar/dicom.

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
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

// sourceFiles lists the real uncompressed DICOM files the tests compress:
// suyashkumar/dicom's testdata and the project's testdata/ (as it fills).
func sourceFiles(tb testing.TB) []string {
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
	return files
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
		if len(info.Frames) != nframes {
			tb.Fatalf("%s: %d fragments for %d frames", path, len(info.Frames), nframes)
		}
		for _, fr := range info.Frames {
			f.frames = append(f.frames, fr.EncapsulatedData.Data)
		}
		return f
	}
	p := f.params
	size := p.Rows * p.Columns * p.SamplesPerPixel * p.BitsAllocated / 8
	raw := info.UnprocessedValueData
	if len(raw) < size*nframes {
		tb.Fatalf("%s: %d pixel bytes for %d frames of %d", path, len(raw), nframes, size)
	}
	for i := 0; i < nframes; i++ {
		f.frames = append(f.frames, raw[i*size:(i+1)*size])
	}
	return f
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
