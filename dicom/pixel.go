package dicom

import (
	"encoding/binary"
	"fmt"

	"lightbox/dicom/codec"
)

// Frame decodes frame i (from 0) to stored values: decompressed when the
// transfer syntax is encapsulated, masked to Bits Stored, sign-extended
// when Pixel Representation says so, colour interleaved and YBR_FULL_422
// expanded to one Y, Cb, Cr per pixel.
func (f *File) Frame(i int) (*Frame, error) {
	data, bitOff, err := f.FrameData(i)
	if err != nil {
		return nil, err
	}
	im := &f.Meta.Image
	fr := &Frame{Index: i, Rows: im.Rows, Columns: im.Columns, Samples: im.SamplesPerPixel, Photometric: im.Photometric}
	if im.PixelRepresentation == 0 && im.BitsStored >= 32 {
		fr.Offset = 1 << 31
	}
	n := im.Rows * im.Columns * im.SamplesPerPixel
	order := f.lay.order
	bitsAllocated := im.BitsAllocated
	planar := im.PlanarConfiguration == 1 && im.SamplesPerPixel == 3
	// Native samples sit below High Bit; decoders return them from bit 0.
	shift := uint(im.HighBit + 1 - im.BitsStored)
	if f.lay.encapsulated {
		dec, _, err := codec.Lookup(f.Meta.TransferSyntaxUID)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", i+1, err)
		}
		out, err := dec(data, codec.Params{
			Rows: im.Rows, Columns: im.Columns, SamplesPerPixel: im.SamplesPerPixel,
			BitsAllocated: im.BitsAllocated, BitsStored: im.BitsStored,
			PixelRepresentation: im.PixelRepresentation, Photometric: im.Photometric,
		})
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", i+1, err)
		}
		if out.Photometric != "" {
			fr.Photometric = out.Photometric
		}
		data, order, bitOff, planar, shift = out.Data, binary.LittleEndian, 0, false, 0
		want := n * bitsAllocated / 8
		if len(data) < want {
			return nil, fmt.Errorf("frame %d: %w: decoder returned %d bytes, want %d", i+1, codec.ErrCorrupt, len(data), want)
		}
		if fr.Photometric == "YBR_FULL_422" { // decoders return full-resolution samples
			fr.Photometric = "YBR_FULL"
		}
	} else if f.swapsWords() {
		order = binary.LittleEndian
	}
	if fr.Photometric == "YBR_FULL_422" && !f.lay.encapsulated {
		vals := make([]int32, im.Rows*im.Columns*2)
		unpack(data, 0, vals, bitsAllocated, shift, im, order)
		fr.Pix = expand422(vals, im.Rows, im.Columns)
		fr.Photometric = "YBR_FULL"
		return fr, nil
	}
	vals := make([]int32, n)
	unpack(data, bitOff, vals, bitsAllocated, shift, im, order)
	if planar {
		vals = interleave(vals, im.Rows*im.Columns)
	}
	fr.Pix = vals
	return fr, nil
}

// unpack converts raw samples of bitsAllocated bits into out, keeping
// Bits Stored bits from bit shift up and sign-extending them for
// Pixel Representation 1 (PS3.5 8.1.1, 8.2).
func unpack(data []byte, bitOff int, out []int32, bitsAllocated int, shift uint, im *Image, order binary.ByteOrder) {
	stored := im.BitsStored
	mask := uint32(1)<<uint(stored) - 1
	if stored >= 32 {
		mask = 0xFFFFFFFF
	}
	signed := im.PixelRepresentation == 1
	sign := uint32(1) << uint(stored-1)
	offset := uint32(0)
	if !signed && stored >= 32 {
		offset = 1 << 31 // see Frame.Offset
	}
	conv := func(raw uint32) int32 {
		v := (raw >> shift) & mask
		if signed && v&sign != 0 {
			return int32(v | ^mask)
		}
		return int32(v - offset)
	}
	switch bitsAllocated {
	case 1:
		for k := range out {
			b := bitOff + k
			out[k] = int32(data[b>>3]>>(uint(b)&7)) & 1
		}
	case 8:
		for k := range out {
			out[k] = conv(uint32(data[k]))
		}
	case 16:
		if order == binary.LittleEndian && shift == 0 {
			// The common case (CT, MR, X-ray) in one tight loop: shift the
			// stored bits to the top of a 16-bit word and back, which masks
			// and sign-extends at once.
			up := uint(16 - stored)
			d := data[:2*len(out)]
			if signed {
				for k := range out {
					out[k] = int32(int16(binary.LittleEndian.Uint16(d[2*k:])<<up) >> up)
				}
			} else {
				for k := range out {
					out[k] = int32(binary.LittleEndian.Uint16(d[2*k:]) << up >> up)
				}
			}
			return
		}
		if order == binary.LittleEndian {
			for k := range out {
				out[k] = conv(uint32(data[2*k]) | uint32(data[2*k+1])<<8)
			}
		} else {
			for k := range out {
				out[k] = conv(uint32(data[2*k])<<8 | uint32(data[2*k+1]))
			}
		}
	case 32:
		for k := range out {
			out[k] = conv(order.Uint32(data[4*k:]))
		}
	}
}

// interleave turns planar colour (RRR…GGG…BBB…) into RGBRGB….
func interleave(p []int32, px int) []int32 {
	out := make([]int32, len(p))
	for k := 0; k < px; k++ {
		out[3*k] = p[k]
		out[3*k+1] = p[px+k]
		out[3*k+2] = p[2*px+k]
	}
	return out
}

// expand422 turns YBR_FULL_422 (Y1 Y2 Cb Cr for each pair of pixels in a
// row, PS3.3 C.7.6.3.1.2) into one Y, Cb, Cr per pixel.
func expand422(v []int32, rows, cols int) []int32 {
	out := make([]int32, rows*cols*3)
	k := 0
	for p := 0; p+1 < rows*cols+1 && k+3 < len(v); p += 2 {
		y1, y2, cb, cr := v[k], v[k+1], v[k+2], v[k+3]
		out[3*p], out[3*p+1], out[3*p+2] = y1, cb, cr
		if p+1 < rows*cols {
			out[3*p+3], out[3*p+4], out[3*p+5] = y2, cb, cr
		}
		k += 4
	}
	return out
}
