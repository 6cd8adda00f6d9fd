package dicom

import (
	"errors"
	"fmt"
	"image"
	"math"
	"strings"
	"sync"

	"github.com/disintegration/imaging"
)

// Errors of Render that callers tell apart.
var (
	// ErrFrameShape: the frame's pixels do not match its stated geometry.
	ErrFrameShape = errors.New("dicom: frame does not match its geometry")
	// ErrSize: an output size that is negative or too large.
	ErrSize = errors.New("dicom: invalid output size")
)

// WindowMode says where the VOI window of a View comes from.
type WindowMode int

const (
	// WindowDefault: the file's first window for the frame if it has a
	// usable one, else its first VOI LUT, else min-max — what a
	// workstation shows when an image is opened.
	WindowDefault WindowMode = iota
	// WindowExplicit: View.Center and View.Width.
	WindowExplicit
	// WindowPreset: the CT preset View.Preset (see Presets).
	WindowPreset
	// WindowFile: the file's window number View.Index (from 1, like
	// dcmj2pnm +Wi), per frame for enhanced objects.
	WindowFile
	// WindowVOILUT: the file's VOI LUT number View.Index (from 1, like
	// dcmj2pnm +Wl).
	WindowVOILUT
	// WindowMinMax: the frame's smallest and largest modality values
	// (dcmj2pnm +Wm).
	WindowMinMax
)

// MaxOutputSide bounds each side of a rendered image, so that a request
// cannot make the server allocate without bound.
const MaxOutputSide = 8192

// View says how to render a frame: which VOI, and how large.
type View struct {
	Window WindowMode
	// Center and Width for WindowExplicit, in modality units.
	Center, Width float64
	// Preset names the CT preset for WindowPreset.
	Preset string
	// Index is the file window or VOI LUT number, from 1.
	Index int
	// Function overrides the file's VOI LUT Function (LINEAR,
	// LINEAR_EXACT, SIGMOID) for windows; empty keeps the file's.
	Function string

	// MaxW and MaxH are the box the output must fit in, aspect kept; zero
	// in both means the frame's own size, zero in one leaves that side
	// free. The image is only made smaller unless Upscale is set.
	MaxW, MaxH int
	Upscale    bool
}

// VOI is what a View resolves to for one frame: a window with its function,
// or a VOI LUT. The viewer shows it to the user (e.g. the min-max window's
// numbers).
type VOI struct {
	Window   Window `json:"window"`
	Function string `json:"function,omitempty"`
	// LUT is the VOI LUT in force, nil for a window.
	LUT *LUT `json:"-"`
}

// photometricOf prefers the frame's photometric interpretation, which says
// what the pixels are after a codec converted them.
func photometricOf(meta *Meta, fr *Frame) string {
	if p := strings.TrimSpace(fr.Photometric); p != "" {
		return p
	}
	return strings.TrimSpace(meta.Image.Photometric)
}

func checkFrame(fr *Frame) error {
	if fr == nil {
		return fmt.Errorf("%w: no frame", ErrFrameShape)
	}
	if fr.Rows <= 0 || fr.Columns <= 0 || (fr.Samples != 1 && fr.Samples != 3) {
		return fmt.Errorf("%w: frame %d is %d×%d with %d samples", ErrFrameShape, fr.Index, fr.Columns, fr.Rows, fr.Samples)
	}
	if n := int64(fr.Rows) * int64(fr.Columns) * int64(fr.Samples); n != int64(len(fr.Pix)) {
		return fmt.Errorf("%w: frame %d has %d samples, %d×%d×%d wants %d", ErrFrameShape, fr.Index, len(fr.Pix), fr.Columns, fr.Rows, fr.Samples, n)
	}
	return nil
}

// functionOf is the VOI LUT function in force: the View's, else the file's.
// An unknown value in the file is read as LINEAR, as dcmtk does, so that a
// misspelt header does not stop the image from showing; an unknown value in
// the request is an error.
func functionOf(meta *Meta, v View) (string, error) {
	if f := strings.ToUpper(strings.TrimSpace(v.Function)); f != "" {
		switch f {
		case VOILinear, VOILinearExact, VOISigmoid:
			return f, nil
		}
		return "", fmt.Errorf("%w: %q", ErrVOIFunction, v.Function)
	}
	switch f := strings.ToUpper(strings.TrimSpace(meta.Image.VOIFunction)); f {
	case VOILinearExact, VOISigmoid:
		return f, nil
	}
	return VOILinear, nil
}

// widthOK reports whether fn can use width w.
func widthOK(fn string, w float64) bool {
	if fn == VOILinearExact {
		return w > 0
	}
	return w >= 1
}

// ResolveVOI says which window or VOI LUT v selects for frame fr. For
// min-max it reads the frame's pixels.
func ResolveVOI(meta *Meta, fr *Frame, v View) (VOI, error) {
	if err := checkFrame(fr); err != nil {
		return VOI{}, err
	}
	fn, err := functionOf(meta, v)
	if err != nil {
		return VOI{}, err
	}
	im := &meta.Image
	win := func(w Window) (VOI, error) {
		if !widthOK(fn, w.Width) || math.IsNaN(w.Center) || math.IsInf(w.Center, 0) || math.IsInf(w.Width, 0) {
			return VOI{}, fmt.Errorf("%w: centre %g width %g for %s", ErrWindowWidth, w.Center, w.Width, fn)
		}
		return VOI{Window: w, Function: fn}, nil
	}
	switch v.Window {
	case WindowExplicit:
		return win(Window{Center: v.Center, Width: v.Width})
	case WindowPreset:
		p, err := PresetByName(v.Preset)
		if err != nil {
			return VOI{}, err
		}
		return win(Window{Center: p.Center, Width: p.Width, Explanation: strings.ToUpper(p.Name)})
	case WindowFile:
		ws := im.WindowsOf(fr.Index)
		if v.Index < 1 || v.Index > len(ws) {
			return VOI{}, fmt.Errorf("%w: window %d of %d", ErrNoWindow, v.Index, len(ws))
		}
		return win(ws[v.Index-1])
	case WindowVOILUT:
		if v.Index < 1 || v.Index > len(im.VOILUTs) {
			return VOI{}, fmt.Errorf("%w: VOI LUT %d of %d", ErrNoVOILUT, v.Index, len(im.VOILUTs))
		}
		return VOI{LUT: &im.VOILUTs[v.Index-1]}, nil
	case WindowMinMax:
		return minMaxVOI(meta, fr, fn), nil
	case WindowDefault:
		if ws := im.WindowsOf(fr.Index); len(ws) > 0 && widthOK(fn, ws[0].Width) {
			return VOI{Window: ws[0], Function: fn}, nil
		}
		if len(im.VOILUTs) > 0 && len(im.VOILUTs[0].Data) > 0 {
			return VOI{LUT: &im.VOILUTs[0]}, nil
		}
		return minMaxVOI(meta, fr, fn), nil
	}
	return VOI{}, fmt.Errorf("dicom: unknown window mode %d", v.Window)
}

func minMaxVOI(meta *Meta, fr *Frame, fn string) VOI {
	lo, hi := minMax(fr.Pix)
	a, b := modalityRange(frameModality(&meta.Image, fr), fr.Pix, lo, hi)
	w := minMaxWindow(a, b)
	if fn == VOILinearExact && !(w.Width > 0) {
		w.Width = 1
	}
	return VOI{Window: w, Function: fn}
}

// lutPool keeps the composed tables' backing arrays between renders: a
// 16-bit range is 64 KiB, worth not allocating per frame.
var lutPool = sync.Pool{New: func() any { b := make([]uint8, 0, maxTable); return &b }}

// Grey renders a greyscale frame to 8 bits at its own size: modality LUT,
// then the VOI, then the presentation stage (PS3.3 C.11). Stored values of
// up to 16 bits' range go through one composed table; wider ranges are
// computed pixel by pixel.
func Grey(meta *Meta, fr *Frame, sel VOI) (*image.Gray, error) {
	if err := checkFrame(fr); err != nil {
		return nil, err
	}
	if fr.Samples != 1 {
		return nil, fmt.Errorf("%w: greyscale with %d samples", ErrFrameShape, fr.Samples)
	}
	inv := inverted(photometricOf(meta, fr), meta.Image.PresentationLU)
	var vf *voi
	var err error
	if sel.LUT != nil {
		vf, err = newVOITable(sel.LUT, inv)
	} else {
		vf, err = newVOI(sel.Function, sel.Window.Center, sel.Window.Width, inv)
	}
	if err != nil {
		return nil, err
	}
	m := frameModality(&meta.Image, fr)
	img := image.NewGray(image.Rect(0, 0, fr.Columns, fr.Rows))
	lo, hi := minMax(fr.Pix)
	n := int64(hi) - int64(lo) + 1
	if n <= maxTable || n <= int64(len(fr.Pix))/2 {
		bp := lutPool.Get().(*[]uint8)
		g := buildGreyLUT(m, vf, lo, hi, *bp)
		g.apply(img.Pix, fr.Pix)
		*bp = g.tab[:0]
		lutPool.Put(bp)
		return img, nil
	}
	for i, s := range fr.Pix {
		img.Pix[i] = vf.grey(m.value(s))
	}
	return img, nil
}

// Render turns a decoded frame into a picture: 8-bit grey (*image.Gray)
// through the PS3.3 C.11 pipeline for MONOCHROME1/2, or colour
// (*image.NRGBA) for RGB, YBR_FULL, YBR_FULL_422 and PALETTE COLOR, fitted to
// the View's box.
func Render(meta *Meta, fr *Frame, v View) (image.Image, error) {
	if meta == nil {
		return nil, fmt.Errorf("%w: no metadata", ErrFrameShape)
	}
	if err := checkFrame(fr); err != nil {
		return nil, err
	}
	w, h, err := fitSize(fr.Columns, fr.Rows, v)
	if err != nil {
		return nil, err
	}
	pi := photometricOf(meta, fr)
	var img image.Image
	switch pi {
	case "MONOCHROME1", "MONOCHROME2":
		sel, err := ResolveVOI(meta, fr, v)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", fr.Index+1, err)
		}
		g, err := Grey(meta, fr, sel)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", fr.Index+1, err)
		}
		drawOverlays(g, &meta.Image, fr.Index)
		img = g
	default:
		c, err := colourImage(&meta.Image, fr, pi)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", fr.Index+1, err)
		}
		img = c
	}
	if w == fr.Columns && h == fr.Rows {
		return img, nil
	}
	return resize(img, w, h), nil
}

// fitSize is the output size: the frame scaled to fit within the View's box,
// aspect kept, at least one pixel a side.
func fitSize(cols, rows int, v View) (int, int, error) {
	if v.MaxW < 0 || v.MaxH < 0 || v.MaxW > MaxOutputSide || v.MaxH > MaxOutputSide {
		return 0, 0, fmt.Errorf("%w: %d×%d (each side 0 to %d)", ErrSize, v.MaxW, v.MaxH, MaxOutputSide)
	}
	if v.MaxW == 0 && v.MaxH == 0 {
		return cols, rows, nil
	}
	scale := math.Inf(1)
	if v.MaxW > 0 {
		scale = float64(v.MaxW) / float64(cols)
	}
	if v.MaxH > 0 {
		scale = math.Min(scale, float64(v.MaxH)/float64(rows))
	}
	if scale >= 1 && !v.Upscale {
		return cols, rows, nil
	}
	w := int(math.Round(float64(cols) * scale))
	h := int(math.Round(float64(rows) * scale))
	w = max(1, min(w, MaxOutputSide))
	h = max(1, min(h, MaxOutputSide))
	return w, h, nil
}

// resize uses a linear (tent) filter. Its weights are never negative, so an
// output pixel always lies between the input pixels around it: no ringing or
// halo at sharp edges (bone against air, a wire, a catheter) that a reader
// could take for anatomy, as Lanczos or Catmull-Rom would draw. Downscaling,
// imaging widens the tent to the scale, so it averages the area each output
// pixel covers (no aliasing of fine patterns such as grids or noise);
// upscaling, it interpolates smoothly without the blocks of nearest
// neighbour. It is also the cheapest filter of that quality.
func resize(img image.Image, w, h int) image.Image {
	out := imaging.Resize(img, w, h, imaging.Linear)
	if _, ok := img.(*image.Gray); !ok {
		return out
	}
	// imaging works in NRGBA; grey in, grey out.
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = out.Pix[4*i]
	}
	return g
}
