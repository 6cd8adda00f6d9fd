//go:build cgo

package codec

/*
#cgo pkg-config: libjpeg
*/
import "C"

import (
	"encoding/binary"
	"fmt"
)

// 8-bit DCT JPEG (.50, and .51 at 8-bit precision) is decoded by
// libjpeg-turbo: SIMD, bit-exact with IJG 6b's islow IDCT and fancy
// upsampling that dcmtk uses. We call its libjpeg API rather than the
// TurboJPEG one: TurboJPEG always lets libjpeg guess the colour space from
// JFIF/Adobe markers, while dcmtk lets the DICOM Photometric Interpretation
// decide (YBR_* is converted to RGB even when the stream says RGB; RGB is
// never converted). Only the libjpeg API can set jpeg_color_space. Same
// library, same speed. 12-bit streams go to GDCM's IJG (ijg.go).
func init() {
	Register(JPEGBaseline, "libjpeg-turbo", decodeJPEG)
	Register(JPEGExtended, "libjpeg-turbo+ijg12", decodeJPEG)
}

// decodeJPEG picks the libjpeg build by the stream's frame header: the
// transfer syntax alone does not say (.51 allows 8 and 12 bits).
func decodeJPEG(data []byte, p Params) (Frame, error) {
	h, err := jpegFrameHeader(data)
	if err != nil {
		return Frame{}, fmt.Errorf("jpeg: %w", err)
	}
	switch {
	case h.marker == 0xC3:
		// Process 14 mislabelled as a DCT syntax: seen in the wild.
		return decodeIJG16(data, p)
	case h.marker == 0xC9 || h.marker == 0xCA || h.marker == 0xCB:
		// libjpeg-turbo reads arithmetic coding only at 8 bits.
		if h.precision != 8 {
			return Frame{}, fmt.Errorf("%w: jpeg: %d-bit arithmetic coding", ErrCorrupt, h.precision)
		}
		return decodeLibjpeg(8, data, p)
	case h.precision == 8:
		return decodeLibjpeg(8, data, p)
	case h.precision == 12:
		return decodeIJG12(data, p)
	}
	return Frame{}, fmt.Errorf("%w: jpeg: SOF%d with %d-bit precision", ErrCorrupt, h.marker-0xC0, h.precision)
}

// jpegSOF is the part of a JPEG frame header (T.81 B.2.2) used to choose
// and check a decoder.
type jpegSOF struct {
	marker, precision, height, width, components int
}

// jpegFrameHeader finds the first SOFn of a JPEG stream.
func jpegFrameHeader(d []byte) (jpegSOF, error) {
	if len(d) < 4 || d[0] != 0xFF || d[1] != 0xD8 {
		return jpegSOF{}, fmt.Errorf("%w: no JPEG SOI marker", ErrCorrupt)
	}
	i := 2
	for i+4 <= len(d) {
		if d[i] != 0xFF {
			return jpegSOF{}, fmt.Errorf("%w: byte %#02x at offset %d where a marker belongs", ErrCorrupt, d[i], i)
		}
		m := int(d[i+1])
		if m == 0xFF { // fill byte
			i++
			continue
		}
		n := int(binary.BigEndian.Uint16(d[i+2:]))
		if n < 2 || i+2+n > len(d) {
			return jpegSOF{}, fmt.Errorf("%w: marker %#02x at offset %d: segment length %d overruns %d bytes", ErrCorrupt, m, i, n, len(d))
		}
		switch m {
		case 0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF:
			if n < 8 {
				return jpegSOF{}, fmt.Errorf("%w: SOF segment of %d bytes", ErrCorrupt, n)
			}
			s := d[i+4:]
			return jpegSOF{
				marker:     m,
				precision:  int(s[0]),
				height:     int(binary.BigEndian.Uint16(s[1:])),
				width:      int(binary.BigEndian.Uint16(s[3:])),
				components: int(s[5]),
			}, nil
		case 0xDA:
			return jpegSOF{}, fmt.Errorf("%w: scan before frame header", ErrCorrupt)
		}
		i += 2 + n
	}
	return jpegSOF{}, fmt.Errorf("%w: no JPEG frame header", ErrCorrupt)
}
