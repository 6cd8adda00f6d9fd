package dicom

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The DCMTK oracle: every testdata file, and every compressed variant dcmtk
// can make of it, rendered by Render and by dcmj2pnm (dcml2pnm for JPEG-LS;
// for JPEG 2000, which this dcmtk cannot read, after gdcmconv --raw), for
// the first, middle and last frame, with the file's window, min-max and two
// explicit windows. Each pixel (each channel of colour) must agree within 1
// grey level, but for one documented difference: dcmtk keeps modality
// values as integers (truncated toward zero), PS3.3 and Render keep them
// real, so with a fractional Rescale Slope or Intercept one modality unit
// may separate the two, which a window of width w turns into up to
// 255/(w-1) levels more.
//
// dcmtk writes raw PGM/PPM (+op) rather than PNG: the same pixels, twenty
// times faster (0.04 s instead of 0.7 s for the 2140×1760 X-ray, whose
// zlib time is all PNG adds).

// suyashkumarTestdata holds the testdata of the DICOM parser module.
const suyashkumarTestdata = "/root/go/pkg/mod/github.com/suyashkumar/dicom@v1.1.0/testdata"

var nativeSyntaxes = map[string]bool{
	"1.2.840.10008.1.2": true, "1.2.840.10008.1.2.1": true, "1.2.840.10008.1.2.2": true, "1.2.840.10008.1.2.1.99": true,
}

func isJPEGLS(ts string) bool {
	return ts == "1.2.840.10008.1.2.4.80" || ts == "1.2.840.10008.1.2.4.81"
}
func isJPEG2000(ts string) bool { return strings.HasPrefix(ts, "1.2.840.10008.1.2.4.9") }

// oracleProcs bounds the external processes running at once: two cores.
var oracleProcs = make(chan struct{}, 2)

func runTool(name string, args ...string) ([]byte, error) {
	oracleProcs <- struct{}{}
	defer func() { <-oracleProcs }()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func oracleFirstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// LIGHTBOX_ORACLE_EXTRA names a folder of more files to compare, e.g. a
// PACS's own: every readable file under it with pixels, whatever its name.
func oracleSources(t *testing.T) []string {
	srcs := testFiles(t)
	more, err := filepath.Glob(filepath.Join(suyashkumarTestdata, "*.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	srcs = append(srcs, more...)
	if dir := os.Getenv("LIGHTBOX_ORACLE_EXTRA"); dir != "" {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if f, err := Open(p); err == nil && f.NumFrames() > 0 {
				srcs = append(srcs, p)
			}
			return nil
		})
	}
	return srcs
}

// oracleFile is one file to compare: an original or a compressed copy.
type oracleFile struct {
	name, path string
}

// compressions are the dcmtk encoders tried on each uncompressed file, and
// which files each applies to.
var oracleCompressions = []struct {
	name string
	tool string
	args []string
	fits func(im *Image) bool
}{
	{"jpeg-baseline", "dcmcjpeg", []string{"+eb"}, func(im *Image) bool { return im.BitsAllocated == 8 }},
	{"jpeg-extended", "dcmcjpeg", []string{"+ee"}, func(im *Image) bool { return im.BitsStored > 8 && im.BitsStored <= 12 }},
	{"jpeg-lossless-sv1", "dcmcjpeg", []string{"+e1"}, func(im *Image) bool { return im.BitsStored <= 16 }},
	{"jpeg-lossless-p14", "dcmcjpeg", []string{"+el"}, func(im *Image) bool { return im.BitsStored <= 16 }},
	{"jpegls-lossless", "dcmcjpls", []string{"+el"}, func(im *Image) bool { return im.BitsStored <= 16 }},
	{"jpegls-near", "dcmcjpls", []string{"+en"}, func(im *Image) bool { return im.BitsStored <= 16 }},
	{"rle", "dcmcrle", nil, func(im *Image) bool { return true }},
}

func TestOracleDCMTK(t *testing.T) {
	if testing.Short() {
		t.Skip("oracle runs dcmtk hundreds of times")
	}
	for _, tool := range []string{"dcmj2pnm", "dcml2pnm", "dcmcjpeg", "dcmcjpls", "dcmcrle", "gdcmconv"} {
		needTool(t, tool)
	}
	var mu sync.Mutex
	var summary []string
	seen := map[[32]byte]string{}
	for _, src := range oracleSources(t) {
		src := src
		if b, err := os.ReadFile(src); err == nil {
			h := sha256.Sum256(b)
			if first, ok := seen[h]; ok {
				t.Logf("%s: same bytes as %s, skipped", src, first)
				continue
			}
			seen[h] = src
		}
		name := filepath.Base(src)
		if strings.HasPrefix(src, suyashkumarTestdata) {
			name = "suyashkumar-" + name
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, err := Open(src)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if f.Meta.Image.Rows == 0 {
				t.Skip("no pixel data")
			}
			variants := []oracleFile{{"original", src}}
			if nativeSyntaxes[f.Meta.TransferSyntaxUID] {
				dir := t.TempDir()
				for _, c := range oracleCompressions {
					if !c.fits(&f.Meta.Image) {
						continue
					}
					dst := filepath.Join(dir, c.name+".dcm")
					if out, err := runTool(c.tool, append(append([]string{}, c.args...), src, dst)...); err != nil {
						// dcmtk refuses what its codec cannot hold (signed
						// JPEG, 32-bit JPEG-LS, ...): nothing to compare.
						t.Logf("%s %v: not made: %s", c.tool, c.args, oracleFirstLine(out))
						continue
					}
					variants = append(variants, oracleFile{c.name, dst})
				}
			}
			for _, v := range variants {
				for _, line := range oracleVariant(t, v) {
					mu.Lock()
					summary = append(summary, name+" "+line)
					mu.Unlock()
				}
			}
		})
	}
	t.Cleanup(func() {
		sort.Strings(summary)
		for _, s := range summary {
			t.Log(s)
		}
	})
}

// oracleCase is one rendering to compare.
type oracleCase struct {
	name string
	args []string
	view View
	tol  int // largest difference allowed
}

// oracleVariant compares one file's chosen frames; it returns one summary
// line per case that differed at all.
func oracleVariant(t *testing.T, v oracleFile) []string {
	f, err := Open(v.path)
	if err != nil {
		t.Errorf("%s: open: %v", v.name, err)
		return nil
	}
	ts := f.Meta.TransferSyntaxUID
	tool, ref := "dcmj2pnm", v.path
	switch {
	case isJPEGLS(ts):
		tool = "dcml2pnm"
	case isJPEG2000(ts):
		// This dcmtk has no JPEG 2000: GDCM (OpenJPEG) decompresses.
		dir, err := os.MkdirTemp("", "oracle-j2k")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		ref = filepath.Join(dir, "raw.dcm")
		if out, err := runTool("gdcmconv", "--raw", v.path, ref); err != nil {
			t.Errorf("%s: gdcmconv --raw: %v: %s", v.name, err, oracleFirstLine(out))
			return nil
		}
	}
	n := f.NumFrames()
	frames := []int{0}
	if n > 2 {
		frames = append(frames, n/2)
	}
	if n > 1 {
		frames = append(frames, n-1)
	}
	var lines []string
	for _, i := range frames {
		fr, err := f.Frame(i)
		if err != nil {
			// A codestream dcmtk cannot read back either (dcmcjpls
			// near-lossless of odd-length colour data) is no test of ours.
			if _, derr := dcmtkRender(tool, ref, i, nil); derr != nil {
				t.Logf("%s frame %d: neither reads it: ours %v; %v", v.name, i+1, err, derr)
				continue
			}
			t.Errorf("%s frame %d: %v", v.name, i+1, err)
			continue
		}
		for _, c := range oracleCases(&f.Meta, fr) {
			want, err := dcmtkRender(tool, ref, i, c.args)
			if err != nil && c.name == "file window" {
				// dcmtk 3.6.7 reads no window from functional groups
				// (enhanced CT): hand it the window we found there.
				w := fileWindow(&f.Meta, fr)
				c.args = []string{"+Ww", fmtFloat(w.Center), fmtFloat(w.Width)}
				c.name = "file window (per frame)"
				want, err = dcmtkRender(tool, ref, i, c.args)
			}
			if err != nil {
				t.Errorf("%s frame %d %s: %v", v.name, i+1, c.name, err)
				continue
			}
			got, err := Render(&f.Meta, fr, c.view)
			if err != nil {
				t.Errorf("%s frame %d %s: Render: %v", v.name, i+1, c.name, err)
				continue
			}
			d := compareImages(got, want)
			label := fmt.Sprintf("%s frame %d %s %s", v.name, i+1, c.name, strings.Join(c.args, " "))
			if d.err != "" {
				t.Errorf("%s: %s", label, d.err)
				continue
			}
			if d.max > c.tol {
				t.Errorf("%s: %d of %d samples differ by more than %d (max %d at %v: ours %d, dcmtk %d)",
					label, over(got, want, c.tol), d.n, c.tol, d.max, d.at, d.ours, d.theirs)
			}
			if d.max > 0 {
				lines = append(lines, fmt.Sprintf("%s: max %d, %d of %d samples differ", label, d.max, d.diff, d.n))
			}
		}
	}
	return lines
}

func fileWindow(meta *Meta, fr *Frame) Window { return meta.Image.WindowsOf(fr.Index)[0] }

func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// oracleCases are the renderings of one frame: colour once; grey with the
// file's first window, its first VOI LUT, min-max, and two explicit windows
// placed inside the frame's modality range (one a narrow window off-centre
// with fractions, so rounding shows).
func oracleCases(meta *Meta, fr *Frame) []oracleCase {
	pi := photometricOf(meta, fr)
	if pi != "MONOCHROME1" && pi != "MONOCHROME2" {
		return []oracleCase{{name: "colour", tol: 1}}
	}
	// tol is 1, widened by a modality unit through the window's slope
	// when dcmtk's integer modality values can differ from the real ones.
	m := modalityOf(&meta.Image, fr.Index)
	fractional := m.table == nil && (m.slope != math.Trunc(m.slope) || m.intercept != math.Trunc(m.intercept))
	tol := func(w float64) int {
		if !fractional || w <= 1 {
			return 1
		}
		return max(1, int(math.Ceil(255/(w-1))))
	}
	var cs []oracleCase
	if ws := meta.Image.WindowsOf(fr.Index); len(ws) > 0 {
		cs = append(cs, oracleCase{"file window", []string{"+Wi", "1"}, View{Window: WindowFile, Index: 1}, tol(ws[0].Width)})
	}
	if len(meta.Image.VOILUTs) > 0 {
		cs = append(cs, oracleCase{"VOI LUT", []string{"+Wl", "1"}, View{Window: WindowVOILUT, Index: 1}, 1})
	}
	mm, err := ResolveVOI(meta, fr, View{Window: WindowMinMax})
	if err != nil {
		return cs
	}
	cs = append(cs, oracleCase{"min-max", []string{"+Wm"}, View{Window: WindowMinMax}, tol(mm.Window.Width)})
	c0, w0 := mm.Window.Center, mm.Window.Width
	for _, w := range []Window{
		{Center: c0 - w0/6, Width: max(1, w0/3)},
		{Center: c0 + w0/5 + 0.3, Width: max(1, w0/9) + 0.25},
	} {
		// Round trip through text so both programs get the same double.
		cs2, ws := fmtFloat(w.Center), fmtFloat(w.Width)
		c, _ := strconv.ParseFloat(cs2, 64)
		wd, _ := strconv.ParseFloat(ws, 64)
		cs = append(cs, oracleCase{"explicit", []string{"+Ww", cs2, ws}, View{Window: WindowExplicit, Center: c, Width: wd}, tol(wd)})
	}
	return cs
}

// dcmtkRender runs dcmj2pnm (or dcml2pnm) for frame i (from 0).
func dcmtkRender(tool, path string, i int, args []string) (image.Image, error) {
	dir, err := os.MkdirTemp("", "oracle")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "out.pnm")
	a := append([]string{"--write-raw-pnm", "+F", strconv.Itoa(i + 1)}, args...)
	a = append(a, path, out)
	msg, err := runTool(tool, a...)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", tool, strings.Join(a, " "), err, oracleFirstLine(msg))
	}
	fh, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return readPNM(bufio.NewReader(fh))
}

// readPNM reads dcmtk's binary PGM (P5) or PPM (P6) of 8 bits.
func readPNM(r *bufio.Reader) (image.Image, error) {
	var magic string
	var w, h, maxval int
	if _, err := fmt.Fscan(r, &magic, &w, &h, &maxval); err != nil {
		return nil, fmt.Errorf("PNM header: %w", err)
	}
	if _, err := r.ReadByte(); err != nil { // the one whitespace before the samples
		return nil, err
	}
	if maxval != 255 || w <= 0 || h <= 0 || w*h > 1<<28 {
		return nil, fmt.Errorf("PNM %s %dx%d maxval %d: not 8-bit", magic, w, h, maxval)
	}
	switch magic {
	case "P5":
		g := image.NewGray(image.Rect(0, 0, w, h))
		_, err := io.ReadFull(r, g.Pix)
		return g, err
	case "P6":
		c := image.NewNRGBA(image.Rect(0, 0, w, h))
		buf := make([]byte, 3*w*h)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		for i := 0; i < w*h; i++ {
			copy(c.Pix[4*i:], buf[3*i:3*i+3])
			c.Pix[4*i+3] = 255
		}
		return c, nil
	}
	return nil, fmt.Errorf("PNM magic %q", magic)
}

// over counts the samples differing by more than tol.
func over(got, want image.Image, tol int) int {
	n := 0
	gb, wb := got.Bounds(), want.Bounds()
	for y := 0; y < gb.Dy(); y++ {
		for x := 0; x < gb.Dx(); x++ {
			r1, g1, b1, _ := got.At(gb.Min.X+x, gb.Min.Y+y).RGBA()
			r2, g2, b2, _ := want.At(wb.Min.X+x, wb.Min.Y+y).RGBA()
			for _, c := range [][2]uint32{{r1, r2}, {g1, g2}, {b1, b2}} {
				if d := int(c[0]>>8) - int(c[1]>>8); d > tol || -d > tol {
					n++
				}
			}
		}
	}
	return n
}

type imageDiff struct {
	n, diff      int
	max          int
	at           image.Point
	ours, theirs int
	err          string
}

// compareImages compares grey with grey and colour channel by channel.
func compareImages(got, want image.Image) imageDiff {
	var d imageDiff
	if got.Bounds().Size() != want.Bounds().Size() {
		d.err = fmt.Sprintf("size %v, dcmtk %v", got.Bounds().Size(), want.Bounds().Size())
		return d
	}
	_, gGrey := got.(*image.Gray)
	_, wGrey := want.(*image.Gray)
	if gGrey != wGrey {
		d.err = fmt.Sprintf("ours is %T, dcmtk's %T", got, want)
		return d
	}
	gb, wb := got.Bounds(), want.Bounds()
	for y := 0; y < gb.Dy(); y++ {
		for x := 0; x < gb.Dx(); x++ {
			r1, g1, b1, _ := got.At(gb.Min.X+x, gb.Min.Y+y).RGBA()
			r2, g2, b2, _ := want.At(wb.Min.X+x, wb.Min.Y+y).RGBA()
			ch := [][2]uint32{{r1, r2}, {g1, g2}, {b1, b2}}
			if gGrey {
				ch = ch[:1]
			}
			for _, c := range ch {
				a, b := int(c[0]>>8), int(c[1]>>8)
				d.n++
				dd := max(a-b, b-a)
				if dd > 0 {
					d.diff++
				}
				if dd > d.max {
					d.max, d.at, d.ours, d.theirs = dd, image.Pt(x, y), a, b
				}
			}
		}
	}
	return d
}
