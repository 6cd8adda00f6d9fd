package codec

import (
	"encoding/binary"
	"fmt"
)

// RLE Lossless (PS3.5 Annex G) is simple enough that a pure-Go decoder is
// as fast as any library, so it is always registered.
func init() {
	Register(RLELossless, "go-rle", DecodeRLE)
}

// rleHeaderLen is the fixed RLE header: a segment count and 15 offsets,
// each a little-endian uint32 (PS3.5 G.5).
const rleHeaderLen = 64

// DecodeRLE decodes one RLE Lossless frame (one fragment: the 64-byte
// header followed by up to 15 PackBits segments). Each segment holds one
// byte plane of one sample, most significant byte first (PS3.5 G.2), so
// the planes are woven back into the native interleaved little-endian
// layout here.
func DecodeRLE(data []byte, p Params) (Frame, error) {
	bps, err := rleCheckParams(p)
	if err != nil {
		return Frame{}, err
	}
	if len(data) < rleHeaderLen {
		return Frame{}, fmt.Errorf("%w: rle: fragment of %d bytes is shorter than the %d-byte header", ErrCorrupt, len(data), rleHeaderLen)
	}
	nseg := int(binary.LittleEndian.Uint32(data))
	want := p.SamplesPerPixel * bps
	if nseg != want {
		return Frame{}, fmt.Errorf("%w: rle: header declares %d segments, %d samples of %d bits need %d", ErrCorrupt, nseg, p.SamplesPerPixel, p.BitsAllocated, want)
	}
	pixels := p.Rows * p.Columns
	var offs [16]int
	for i := 0; i < nseg; i++ {
		o := binary.LittleEndian.Uint32(data[4+4*i:])
		if uint64(o) > uint64(len(data)) {
			return Frame{}, fmt.Errorf("%w: rle: segment %d offset %d beyond fragment of %d bytes", ErrCorrupt, i+1, o, len(data))
		}
		offs[i] = int(o)
		if offs[i] < rleHeaderLen {
			return Frame{}, fmt.Errorf("%w: rle: segment %d offset %d inside the %d-byte header", ErrCorrupt, i+1, o, rleHeaderLen)
		}
		if i > 0 && offs[i] < offs[i-1] {
			return Frame{}, fmt.Errorf("%w: rle: segment %d offset %d before segment %d offset %d", ErrCorrupt, i+1, o, i, offs[i-1])
		}
	}
	offs[nseg] = len(data)
	// PackBits expands at most 128 bytes from 2, so a segment shorter than
	// pixels/64 cannot fill its plane: refuse before allocating the frame.
	for i := 0; i < nseg; i++ {
		if n := offs[i+1] - offs[i]; int64(n)*64 < int64(pixels) {
			return Frame{}, fmt.Errorf("%w: rle: segment %d of %d bytes cannot hold %d pixels", ErrCorrupt, i+1, n, pixels)
		}
	}
	stride := p.SamplesPerPixel * bps
	out := make([]byte, pixels*stride)
	for i := 0; i < nseg; i++ {
		sample, plane := i/bps, i%bps
		// Plane 0 is the most significant byte; native little endian puts
		// it last within the sample.
		start := sample*bps + (bps - 1 - plane)
		if err := unpackBits(data[offs[i]:offs[i+1]], out[start:], stride, pixels); err != nil {
			return Frame{}, fmt.Errorf("%w: rle: segment %d: %v", ErrCorrupt, i+1, err)
		}
	}
	return Frame{Data: out}, nil
}

// rleCheckParams checks that p describes a frame RLE can hold and returns
// the bytes per sample.
func rleCheckParams(p Params) (int, error) {
	if p.Rows < 1 || p.Rows > 65535 || p.Columns < 1 || p.Columns > 65535 {
		return 0, fmt.Errorf("%w: rle: bad frame size %d×%d", ErrCorrupt, p.Columns, p.Rows)
	}
	if p.SamplesPerPixel != 1 && p.SamplesPerPixel != 3 {
		return 0, fmt.Errorf("%w: rle: %d samples per pixel, want 1 or 3", ErrCorrupt, p.SamplesPerPixel)
	}
	switch p.BitsAllocated {
	case 8, 16, 32:
		return p.BitsAllocated / 8, nil
	}
	return 0, fmt.Errorf("%w: rle: %d bits allocated, want 8, 16 or 32", ErrCorrupt, p.BitsAllocated)
}

// unpackBits decodes one PackBits segment into every stride-th byte of out
// until n bytes are written. Bytes left over after n are ignored, as
// encoders pad segments to an even length and some round runs up.
func unpackBits(seg []byte, out []byte, stride, n int) error {
	pos, written := 0, 0
	j := 0 // index into out
	for written < n {
		if pos >= len(seg) {
			return fmt.Errorf("ends after %d of %d bytes", written, n)
		}
		h := int(int8(seg[pos]))
		pos++
		switch {
		case h >= 0: // literal run of h+1 bytes
			cnt := h + 1
			if pos+cnt > len(seg) {
				return fmt.Errorf("literal run of %d at byte %d passes the segment end (%d bytes)", cnt, pos-1, len(seg))
			}
			if cnt > n-written {
				cnt = n - written
			}
			if stride == 1 {
				copy(out[j:j+cnt], seg[pos:pos+cnt])
				j += cnt
			} else {
				for _, b := range seg[pos : pos+cnt] {
					out[j] = b
					j += stride
				}
			}
			pos += h + 1
			written += cnt
		case h != -128: // replicate the next byte 1-h times
			if pos >= len(seg) {
				return fmt.Errorf("replicate run at byte %d has no byte to repeat", pos-1)
			}
			b := seg[pos]
			pos++
			cnt := 1 - h
			if cnt > n-written {
				cnt = n - written
			}
			if stride == 1 {
				r := out[j : j+cnt]
				for k := range r {
					r[k] = b
				}
				j += cnt
			} else {
				for k := 0; k < cnt; k++ {
					out[j] = b
					j += stride
				}
			}
			written += cnt
		}
		// h == -128 is a no-op by definition.
	}
	return nil
}
