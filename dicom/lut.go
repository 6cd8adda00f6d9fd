package dicom

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// The VOI LUT functions of PS3.3 C.11.2.1.3 (VOI LUT Function, 0028,1056).
const (
	VOILinear      = "LINEAR"
	VOILinearExact = "LINEAR_EXACT"
	VOISigmoid     = "SIGMOID"
)

// Errors of the display pipeline that callers tell apart; others wrap them
// with the detail.
var (
	// ErrWindowWidth: a window whose width the VOI function cannot use
	// (below 1 for LINEAR and SIGMOID, not above 0 for LINEAR_EXACT).
	ErrWindowWidth = errors.New("dicom: invalid window width")
	// ErrVOIFunction: a VOI LUT function other than LINEAR, LINEAR_EXACT or
	// SIGMOID was asked for.
	ErrVOIFunction = errors.New("dicom: unknown VOI LUT function")
	// ErrNoWindow: the file holds no window of the index asked for.
	ErrNoWindow = errors.New("dicom: no such window in the file")
	// ErrNoVOILUT: the file holds no VOI LUT of the index asked for.
	ErrNoVOILUT = errors.New("dicom: no such VOI LUT in the file")
	// ErrLUT: a lookup table without entries or with entries wider than
	// 16 bits.
	ErrLUT = errors.New("dicom: unusable lookup table")
)

// modality is the modality LUT stage (PS3.3 C.11.1): stored value to
// modality value (Hounsfield units for CT), by Rescale Slope/Intercept or by
// a Modality LUT Sequence, which wins when both are present (as dcmtk does).
type modality struct {
	slope, intercept float64
	table            *LUT
	offset           float64 // the frame's Offset: Pix value to stored value
}

// frameModality is the modality stage of frame fr, whose samples it takes
// as they are in Pix.
func frameModality(im *Image, fr *Frame) modality {
	m := modalityOf(im, fr.Index)
	m.offset = float64(fr.Offset)
	return m
}

func modalityOf(im *Image, frame int) modality {
	if im.ModalityLUT != nil && len(im.ModalityLUT.Data) > 0 {
		return modality{table: im.ModalityLUT}
	}
	r := im.RescaleOf(frame)
	if r.Slope == 0 || math.IsNaN(r.Slope) || math.IsInf(r.Slope, 0) || math.IsNaN(r.Intercept) || math.IsInf(r.Intercept, 0) {
		// dcmtk ignores the whole transformation when the slope is
		// unusable; so do we rather than render a flat image.
		return modality{slope: 1}
	}
	return modality{slope: r.Slope, intercept: r.Intercept}
}

// identity reports whether the stage leaves values unchanged.
func (m modality) identity() bool {
	return m.table == nil && m.slope == 1 && m.intercept == 0
}

func (m modality) value(s int32) float64 {
	if m.table != nil {
		return float64(m.table.lookup(int64(s) + int64(m.offset)))
	}
	return (float64(s)+m.offset)*m.slope + m.intercept
}

// ModalityValue returns the modality value of a stored pixel value of frame
// i (from 0): what a viewer shows under the pointer, e.g. Hounsfield units.
func ModalityValue(im *Image, frame int, stored int32) float64 {
	return modalityOf(im, frame).value(stored)
}

// lookup maps x through the table: inputs below the first mapped value take
// the first entry, inputs past the last take the last (PS3.3 C.11.1.1.1).
func (l *LUT) lookup(x int64) uint16 {
	i := x - int64(l.FirstMapped)
	if i <= 0 {
		return l.Data[0]
	}
	if i >= int64(len(l.Data)) {
		return l.Data[len(l.Data)-1]
	}
	return l.Data[i]
}

// voiKind selects the VOI transform.
type voiKind int

const (
	voiLinear voiKind = iota
	voiLinearExact
	voiSigmoid
	voiTable
)

// voi is the VOI stage composed with the presentation stage: modality value
// to 8-bit grey, inversion included. Inversion is folded into the output
// range (ymin 255, ymax 0) rather than applied to the 8-bit result, as dcmtk
// does, so that the truncation happens once, in the output space.
type voi struct {
	kind voiKind
	c, w float64
	lut  *LUT
	inv  bool

	// precomputed for the per-value function
	low, high, outrange float64 // outrange = high - low
	left, right         float64 // LINEAR borders, LINEAR_EXACT borders
	offset, gradient    float64 // LINEAR: y = offset + x*gradient
	lutScale            float64 // table: 256 / 2^bits
}

// newVOI checks the window against the function and precomputes the
// constants of its formula.
func newVOI(fn string, c, w float64, inv bool) (*voi, error) {
	v := &voi{c: c, w: w, inv: inv, low: 0, high: 255}
	if inv {
		v.low, v.high = 255, 0
	}
	v.outrange = v.high - v.low
	if math.IsNaN(c) || math.IsInf(c, 0) || math.IsNaN(w) || math.IsInf(w, 0) {
		return nil, fmt.Errorf("%w: centre %g, width %g", ErrWindowWidth, c, w)
	}
	switch fn {
	case VOILinear, "":
		// PS3.3 C.11.2.1.2.1: width below 1 is not a window.
		if w < 1 {
			return nil, fmt.Errorf("%w: %g (LINEAR needs at least 1)", ErrWindowWidth, w)
		}
		v.kind = voiLinear
		w1 := w - 1
		v.left = c - 0.5 - w1/2
		v.right = c - 0.5 + w1/2
		if w1 > 0 {
			// y = ((x - (c - 0.5)) / (w - 1) + 0.5) * (ymax - ymin) + ymin,
			// rearranged as dcmtk computes it so the floating point
			// results agree bit for bit.
			v.offset = v.high - ((c-0.5)/w1+0.5)*v.outrange
			v.gradient = v.outrange / w1
		}
	case VOILinearExact:
		// PS3.3 C.11.2.1.3.2: any positive width.
		if !(w > 0) {
			return nil, fmt.Errorf("%w: %g (LINEAR_EXACT needs more than 0)", ErrWindowWidth, w)
		}
		v.kind = voiLinearExact
		v.left = c - w/2
		v.right = c + w/2
	case VOISigmoid:
		// PS3.3 C.11.2.1.3.1 allows any positive width; dcmtk, like
		// LINEAR, refuses widths below 1, and so do we to agree with it.
		if w < 1 {
			return nil, fmt.Errorf("%w: %g (SIGMOID needs at least 1)", ErrWindowWidth, w)
		}
		v.kind = voiSigmoid
	default:
		return nil, fmt.Errorf("%w: %q", ErrVOIFunction, fn)
	}
	return v, nil
}

// newVOITable uses a VOI LUT Sequence item (PS3.3 C.11.2.1.1).
func newVOITable(l *LUT, inv bool) (*voi, error) {
	if l == nil || len(l.Data) == 0 || l.Bits < 1 || l.Bits > 16 {
		return nil, fmt.Errorf("%w: VOI LUT", ErrLUT)
	}
	return &voi{kind: voiTable, lut: l, inv: inv, lutScale: 256 / float64(uint32(1)<<l.Bits)}, nil
}

// grey maps one modality value to the 8-bit output.
func (v *voi) grey(x float64) uint8 {
	var y float64
	switch v.kind {
	case voiLinear:
		switch {
		case x <= v.left:
			return uint8(v.low)
		case x > v.right:
			return uint8(v.high)
		}
		y = v.offset + x*v.gradient
	case voiLinearExact:
		switch {
		case x <= v.left:
			return uint8(v.low)
		case x > v.right:
			return uint8(v.high)
		}
		y = ((x-v.c)/v.w+0.5)*v.outrange + v.low
	case voiSigmoid:
		y = v.outrange/(1+math.Exp(-4*(x-v.c)/v.w)) + v.low
	case voiTable:
		// The table's input is the integer modality value; dcmtk keeps
		// modality values as integers (truncated), so truncate here too.
		t := float64(v.lut.lookup(int64(clampInt64(x)))) * v.lutScale
		if t > 255 {
			t = 255
		}
		g := uint8(t)
		if v.inv {
			return 255 - g
		}
		return g
	}
	// Truncation, as dcmtk casts: it is floor here, since y >= 0 up to
	// rounding error, which the clamp absorbs.
	if y <= 0 {
		return 0
	}
	if y >= 255 {
		return 255
	}
	return uint8(y)
}

func clampInt64(x float64) float64 {
	if x < -1<<62 {
		return -1 << 62
	}
	if x > 1<<62 {
		return 1 << 62
	}
	if math.IsNaN(x) {
		return 0
	}
	return x
}

// inverted decides the presentation stage (PS3.3 C.11.6): INVERSE inverts;
// MONOCHROME1 inverts unless the file says IDENTITY, because a MONOCHROME1
// file that states its Presentation LUT Shape states it for the P-values
// (DX and MG objects pair MONOCHROME1 with INVERSE), so the shape is not
// applied a second time. dcmtk decides the same way.
func inverted(photometric, shape string) bool {
	shape = strings.ToUpper(strings.TrimSpace(shape))
	if shape == "INVERSE" {
		return true
	}
	return strings.TrimSpace(photometric) == "MONOCHROME1" && shape != "IDENTITY"
}

// greyLUT is the composed modality → VOI → presentation table over the
// stored values [min, min+len(tab)).
type greyLUT struct {
	min int32
	tab []uint8
}

// maxTable bounds the stored-value range for which one table is built:
// beyond it (32-bit data with a wide range) per-pixel math is cheaper than
// filling a table most of whose entries no pixel uses.
const maxTable = 1 << 16

// buildGreyLUT composes the stages over [lo, hi]. The caller ensures
// hi-lo+1 <= maxTable (or the number of pixels).
func buildGreyLUT(m modality, v *voi, lo, hi int32, buf []uint8) greyLUT {
	n := int(int64(hi)-int64(lo)) + 1
	if cap(buf) >= n {
		buf = buf[:n]
	} else {
		buf = make([]uint8, n)
	}
	switch {
	case m.table == nil && m.slope == 1:
		// The common CT case, intercept only: no multiply.
		for i := range buf {
			buf[i] = v.grey(float64(int64(lo)+int64(i)) + m.offset + m.intercept)
		}
	default:
		for i := range buf {
			buf[i] = v.grey(m.value(int32(int64(lo) + int64(i))))
		}
	}
	return greyLUT{min: lo, tab: buf}
}

// apply maps every stored value through the table into dst.
func (g greyLUT) apply(dst []uint8, pix []int32) {
	tab := g.tab
	min := g.min
	dst = dst[:len(pix)]
	for i, s := range pix {
		dst[i] = tab[uint32(s-min)]
	}
}

// minMax returns the smallest and largest of pix (pix not empty).
func minMax(pix []int32) (lo, hi int32) {
	lo, hi = pix[0], pix[0]
	for _, s := range pix[1:] {
		lo = min(lo, s) // branch-free: CT values jump about
		hi = max(hi, s)
	}
	return lo, hi
}

// modalityRange returns the smallest and largest modality values of the
// frame, given its stored range [lo, hi].
func modalityRange(m modality, pix []int32, lo, hi int32) (float64, float64) {
	if m.table == nil {
		a, b := m.value(lo), m.value(hi)
		if a > b {
			a, b = b, a
		}
		return a, b
	}
	// A table need not be monotonic: look at the values present.
	mn, mx := math.Inf(1), math.Inf(-1)
	if int64(hi)-int64(lo) < int64(len(pix)) {
		seen := make([]bool, int64(hi)-int64(lo)+1)
		for _, s := range pix {
			seen[s-lo] = true
		}
		for i, ok := range seen {
			if ok {
				y := m.value(lo + int32(i))
				mn, mx = math.Min(mn, y), math.Max(mx, y)
			}
		}
		return mn, mx
	}
	for _, s := range pix {
		y := m.value(s)
		mn, mx = math.Min(mn, y), math.Max(mx, y)
	}
	return mn, mx
}

// minMaxWindow is dcmtk's min-max window (DiMonoPixelTemplate::
// getMinMaxWindow, used by dcmj2pnm +Wm): centre (min+max+1)/2 and width
// max-min+1, so that, as Supplement 33 puts it, a centre of 2^n-1 and a width
// of 2^n select the values 0 to 2^n-1.
func minMaxWindow(lo, hi float64) Window {
	return Window{Center: (lo + hi + 1) / 2, Width: hi - lo + 1, Explanation: "MIN-MAX"}
}
