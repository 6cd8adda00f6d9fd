package dicom

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
)

// variant is a lossless re-encoding of a test file made by a real tool.
type variant struct {
	name string
	tool string
	args []string
	ok   func(im *Image) bool // which files the tool can encode
}

func greyOrColour(maxBits int) func(im *Image) bool {
	return func(im *Image) bool {
		return im.BitsAllocated >= 8 && im.BitsStored <= maxBits && im.BitsAllocated <= 16 &&
			(im.PhotometricIs("MONOCHROME1") || im.PhotometricIs("MONOCHROME2") || im.PhotometricIs("RGB"))
	}
}

var losslessVariants = []variant{
	{"rle", "dcmcrle", nil, greyOrColour(16)},
	{"jpeg-sv1", "dcmcjpeg", []string{"+e1"}, greyOrColour(16)},
	{"jpeg-p14-sv3", "dcmcjpeg", []string{"+el", "+sv", "3"}, greyOrColour(16)},
	{"jpeg-p14-sv7", "dcmcjpeg", []string{"+el", "+sv", "7"}, greyOrColour(16)},
	{"jpegls", "dcmcjpls", []string{"+el"}, greyOrColour(16)},
	{"explicit-big", "dcmconv", []string{"+tb"}, func(im *Image) bool { return true }},
	{"implicit", "dcmconv", []string{"+ti"}, func(im *Image) bool { return true }},
	{"deflated", "dcmconv", []string{"+td"}, func(im *Image) bool { return true }},
}

// TestLosslessVariants checks that every lossless transfer syntax decodes
// to exactly the stored values of the uncompressed original, frame by
// frame.
func TestLosslessVariants(t *testing.T) {
	dir := t.TempDir()
	for _, path := range testFiles(t) {
		orig, err := Open(path)
		if err != nil || orig.NumFrames() == 0 {
			continue // parse errors are TestOpenAll's business
		}
		frames := sampleFrames(orig.NumFrames())
		want := map[int]*Frame{}
		for _, i := range frames {
			if want[i], err = orig.Frame(i); err != nil {
				t.Errorf("%s frame %d: %v", path, i+1, err)
			}
		}
		for _, v := range losslessVariants {
			if !v.ok(&orig.Meta.Image) {
				continue
			}
			t.Run(filepath.Base(path)+"/"+v.name, func(t *testing.T) {
				tool := needTool(t, v.tool)
				out := filepath.Join(dir, filepath.Base(path)+"."+v.name+".dcm")
				args := append(append([]string{}, v.args...), path, out)
				if b, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
					t.Skipf("%s cannot encode this file: %v: %s", v.tool, err, b)
				}
				got, err := Open(out)
				if err != nil {
					t.Fatal(err)
				}
				for _, i := range frames {
					fr, err := got.Frame(i)
					if err != nil {
						t.Fatalf("frame %d: %v", i+1, err)
					}
					if err := sameStored(want[i], fr); err != nil {
						t.Errorf("frame %d: %v", i+1, err)
					}
				}
			})
		}
	}
}

// sampleFrames picks the first, middle and last frame: enough to catch
// offset-table errors without decoding every frame of a long series.
func sampleFrames(n int) []int {
	if n <= 3 {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	return []int{0, n / 2, n - 1}
}

func sameStored(want, got *Frame) error {
	if want.Rows != got.Rows || want.Columns != got.Columns || len(want.Pix) != len(got.Pix) {
		return fmt.Errorf("shape %dx%dx%d, want %dx%dx%d", got.Columns, got.Rows, got.Samples, want.Columns, want.Rows, want.Samples)
	}
	diff, first := 0, -1
	for k := range want.Pix {
		if want.Pix[k] != got.Pix[k] {
			if first < 0 {
				first = k
			}
			diff++
		}
	}
	if diff > 0 {
		return fmt.Errorf("%d of %d samples differ; first at %d: got %d, want %d", diff, len(want.Pix), first, got.Pix[first], want.Pix[first])
	}
	return nil
}
