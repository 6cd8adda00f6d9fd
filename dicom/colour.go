package dicom

import (
	"errors"
	"fmt"
	"image"
	"strings"
)

// ErrPhotometric: a photometric interpretation the pipeline cannot show.
var ErrPhotometric = errors.New("dicom: unsupported photometric interpretation")

// colourBits is the bit depth of colour samples: Bits Stored, or 8 when the
// header does not say.
func colourBits(im *Image) int {
	b := im.BitsStored
	if b < 1 || b > 32 {
		if im.BitsAllocated >= 1 && im.BitsAllocated <= 32 {
			return im.BitsAllocated
		}
		return 8
	}
	return b
}

// to8 scales a sample of bits width to 8 bits as dcmtk's colour output does:
// a right shift when wider, an integer multiple (or a ratio) when narrower.
func to8(v int64, bits int) uint8 {
	max := int64(1)<<bits - 1
	if v < 0 {
		v = 0
	} else if v > max {
		v = max
	}
	switch {
	case bits == 8:
		return uint8(v)
	case bits > 8:
		return uint8(v >> (bits - 8))
	default:
		return uint8(float64(v) * 255 / float64(max))
	}
}

// rgbImage renders interleaved RGB samples.
func rgbImage(fr *Frame, bits int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, fr.Columns, fr.Rows))
	pix := fr.Pix
	out := img.Pix
	if bits == 8 {
		for i, o := 0, 0; i+2 < len(pix); i, o = i+3, o+4 {
			out[o] = clamp8(pix[i])
			out[o+1] = clamp8(pix[i+1])
			out[o+2] = clamp8(pix[i+2])
			out[o+3] = 0xff
		}
		return img
	}
	for i, o := 0, 0; i+2 < len(pix); i, o = i+3, o+4 {
		out[o] = to8(int64(pix[i])+fr.Offset, bits)
		out[o+1] = to8(int64(pix[i+1])+fr.Offset, bits)
		out[o+2] = to8(int64(pix[i+2])+fr.Offset, bits)
		out[o+3] = 0xff
	}
	return img
}

func clamp8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ybrTables are dcmtk's integer tables for 8-bit YCbCr (full range) to RGB,
// the PS3.3 C.7.6.3.1.2 equations
//
//	R = Y + 1.402 (Cr - 128)
//	G = Y - 0.3441 (Cb - 128) - 0.7141 (Cr - 128)
//	B = Y + 1.772 (Cb - 128)
//
// with each product truncated toward zero separately (DiYBRPixelTemplate),
// so that a frame dcmtk converts and one we convert agree exactly.
type ybrTables struct {
	rcr, gcb, gcr, bcb [256]int32
}

var ybr8 = func() *ybrTables {
	t := new(ybrTables)
	const max = 255.0
	for l := 0; l < 256; l++ {
		x := float64(l)
		t.rcr[l] = int32(1.4020*x - 0.7010*max)
		t.gcb[l] = int32(0.3441 * x)
		t.gcr[l] = int32(0.7141*x - 0.5291*max)
		t.bcb[l] = int32(1.7720*x - 0.8859*max)
	}
	return t
}()

// ybrImage converts interleaved Y, Cb, Cr samples (YBR_FULL, and
// YBR_FULL_422 once the decoder has given each pixel its own chroma) to RGB.
// exact selects the floating-point equations even for 8 bits: dcmtk uses
// them for YBR_FULL_422 (DiYBR422PixelTemplate) and the tables for
// YBR_FULL; the two differ by up to 2 levels.
func ybrImage(fr *Frame, bits int, exact bool) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, fr.Columns, fr.Rows))
	pix := fr.Pix
	out := img.Pix
	if bits == 8 && !exact {
		t := ybr8
		for i, o := 0, 0; i+2 < len(pix); i, o = i+3, o+4 {
			y, cb, cr := pix[i], uint8(clamp8(pix[i+1])), uint8(clamp8(pix[i+2]))
			out[o] = clamp8(y + t.rcr[cr])
			out[o+1] = clamp8(y - t.gcb[cb] - t.gcr[cr])
			out[o+2] = clamp8(y + t.bcb[cb])
			out[o+3] = 0xff
		}
		return img
	}
	// The same equations in floating point at the sample depth (dcmtk's
	// convertValue), then scaled to 8 bits.
	max := float64(int64(1)<<bits - 1)
	conv := func(v float64) int64 {
		if v < 0 {
			return 0
		}
		if v > max {
			return int64(max)
		}
		return int64(v)
	}
	off := float64(fr.Offset)
	for i, o := 0, 0; i+2 < len(pix); i, o = i+3, o+4 {
		y, cb, cr := float64(pix[i])+off, float64(pix[i+1])+off, float64(pix[i+2])+off
		r := y + 1.4020*cr - 0.7010*max
		g := y - 0.3441*cb - 0.7141*cr + 0.5291*max
		b := y + 1.7720*cb - 0.8859*max
		out[o] = to8(conv(r), bits)
		out[o+1] = to8(conv(g), bits)
		out[o+2] = to8(conv(b), bits)
		out[o+3] = 0xff
	}
	return img
}

// paletteBits is the depth of the palette's entries: the widest of the three
// descriptors, as dcmtk takes it.
func paletteBits(p *Palette) int {
	b := 0
	for _, l := range []*LUT{&p.Red, &p.Green, &p.Blue} {
		if l.Bits > b {
			b = l.Bits
		}
	}
	return b
}

// paletteImage maps each stored index through the red, green and blue LUTs
// (PS3.3 C.7.6.3.1.5): indices below the first mapped value take the first
// entry, past the last the last. Entries of 16 bits are reduced to 8 by
// dropping the low byte, as dcmtk does. One 3-byte table over the frame's
// index range, then one pass.
func paletteImage(fr *Frame, p *Palette) (*image.NRGBA, error) {
	for _, l := range []*LUT{&p.Red, &p.Green, &p.Blue} {
		if len(l.Data) == 0 || l.Bits < 1 || l.Bits > 16 {
			return nil, fmt.Errorf("%w: palette of %d entries, %d bits", ErrLUT, len(l.Data), l.Bits)
		}
	}
	bits := paletteBits(p)
	img := image.NewNRGBA(image.Rect(0, 0, fr.Columns, fr.Rows))
	if len(fr.Pix) == 0 {
		return img, nil
	}
	lo, hi := minMax(fr.Pix)
	n := int64(hi) - int64(lo) + 1
	// Each table is masked to its own depth (dcmtk DiLookupTable), then
	// all are scaled from the widest.
	entry := func(l *LUT, s int32) uint8 {
		mask := uint32(1)<<l.Bits - 1
		return to8(int64(uint32(l.lookup(int64(s)))&mask), bits)
	}
	out := img.Pix
	if n > maxTable && n > int64(len(fr.Pix)) {
		for i, s := range fr.Pix {
			o := 4 * i
			out[o], out[o+1], out[o+2], out[o+3] = entry(&p.Red, s), entry(&p.Green, s), entry(&p.Blue, s), 0xff
		}
		return img, nil
	}
	tab := make([]uint8, 4*n)
	for i := int64(0); i < n; i++ {
		s := int32(int64(lo) + i)
		tab[4*i], tab[4*i+1], tab[4*i+2], tab[4*i+3] = entry(&p.Red, s), entry(&p.Green, s), entry(&p.Blue, s), 0xff
	}
	for i, s := range fr.Pix {
		j := 4 * uint32(s-lo)
		copy(out[4*i:4*i+4], tab[j:j+4])
	}
	return img, nil
}

// colourImage renders a three-sample or palette frame; no VOI applies to
// colour (PS3.3 C.11.2 is for greyscale).
func colourImage(im *Image, fr *Frame, photometric string) (*image.NRGBA, error) {
	switch strings.TrimSpace(photometric) {
	case "RGB":
		if fr.Samples != 3 {
			return nil, fmt.Errorf("%w: RGB with %d samples per pixel", ErrFrameShape, fr.Samples)
		}
		return rgbImage(fr, colourBits(im)), nil
	case "YBR_FULL", "YBR_FULL_422":
		if fr.Samples != 3 {
			return nil, fmt.Errorf("%w: %s with %d samples per pixel", ErrFrameShape, photometric, fr.Samples)
		}
		// The file's photometric says what the samples were before the
		// decoder expanded 4:2:2 to one chroma pair per pixel.
		return ybrImage(fr, colourBits(im), strings.TrimSpace(im.Photometric) == "YBR_FULL_422"), nil
	case "PALETTE COLOR":
		if fr.Samples != 1 {
			return nil, fmt.Errorf("%w: PALETTE COLOR with %d samples per pixel", ErrFrameShape, fr.Samples)
		}
		if im.Palette == nil {
			return nil, fmt.Errorf("%w: PALETTE COLOR without a palette", ErrLUT)
		}
		return paletteImage(fr, im.Palette)
	}
	return nil, fmt.Errorf("%w: %q", ErrPhotometric, photometric)
}
