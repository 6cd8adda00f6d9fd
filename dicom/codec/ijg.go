//go:build cgo

package codec

/*
#cgo LDFLAGS: -lgdcmjpeg12 -lgdcmjpeg16
#include "ijg.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// GDCM ships the only IJG builds on Debian that read 12-bit DCT JPEG and
// lossless process 14 (IJG 6b with the Cornell lossless patch, the same
// lineage dcmtk bundles), so dcmtk's own decoder is what they reproduce.
// libjpeg-turbo 2.1.5 reads neither. 12-bit extended (.51) is dispatched
// here from turbojpeg.go by the SOF precision.
//
// Lossless (.57, .70) is decoded by the pure-Go decoder (ljpeg.go); the
// 16-bit IJG build is kept as decodeIJG16 so tests can cross-check it, and
// for process-14 streams mislabelled as .50/.51.

// cgoMaxFrameBytes caps one decoded frame. The header's Rows × Columns
// alone allow 25 GB; the largest real frames (mammography, 4096×5120×16
// bit) are ~40 MB, so 1 GiB only stops hostile headers.
const cgoMaxFrameBytes = 1 << 30

// cgoOutSize checks p and returns the bytes per sample and frame size of
// the native layout a decoder must produce.
func cgoOutSize(p Params) (bps, size int, err error) {
	if p.Rows <= 0 || p.Columns <= 0 || p.Rows > 65535 || p.Columns > 65535 {
		return 0, 0, fmt.Errorf("%w: frame size %dx%d", ErrCorrupt, p.Columns, p.Rows)
	}
	if p.SamplesPerPixel != 1 && p.SamplesPerPixel != 3 {
		return 0, 0, fmt.Errorf("%w: %d samples per pixel", ErrCorrupt, p.SamplesPerPixel)
	}
	switch p.BitsAllocated {
	case 8:
		bps = 1
	case 16:
		bps = 2
	default:
		return 0, 0, fmt.Errorf("%w: %d bits allocated for a compressed frame", ErrCorrupt, p.BitsAllocated)
	}
	if p.BitsStored < 1 || p.BitsStored > p.BitsAllocated {
		return 0, 0, fmt.Errorf("%w: %d bits stored in %d allocated", ErrCorrupt, p.BitsStored, p.BitsAllocated)
	}
	size = p.Rows * p.Columns * p.SamplesPerPixel * bps
	if size > cgoMaxFrameBytes {
		return 0, 0, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrCorrupt, size, cgoMaxFrameBytes)
	}
	return bps, size, nil
}

// decodeIJG12 decodes a 12-bit DCT (process 4) JPEG stream.
func decodeIJG12(data []byte, p Params) (Frame, error) {
	return decodeLibjpeg(12, data, p)
}

// decodeIJG16 decodes a lossless (process 14) JPEG stream of any precision
// from 2 to 16 bits.
func decodeIJG16(data []byte, p Params) (Frame, error) {
	return decodeLibjpeg(16, data, p)
}

// decodeLibjpeg runs one of the three libjpeg builds (8: libjpeg-turbo, 12
// and 16: GDCM's IJG) over a whole JPEG stream.
func decodeLibjpeg(lib int, data []byte, p Params) (Frame, error) {
	name := "libjpeg-turbo"
	if lib != 8 {
		name = fmt.Sprintf("ijg%d", lib)
	}
	bps, size, err := cgoOutSize(p)
	if err != nil {
		return Frame{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) < 4 {
		return Frame{}, fmt.Errorf("%w: %s: %d-byte stream", ErrCorrupt, name, len(data))
	}
	// Check the stream's frame header before allocating for it.
	h, err := jpegFrameHeader(data)
	if err != nil {
		return Frame{}, fmt.Errorf("%s: %w", name, err)
	}
	if h.width != p.Columns || h.height != p.Rows || h.components != p.SamplesPerPixel {
		return Frame{}, fmt.Errorf("%w: %s: stream is %dx%d×%d, header says %dx%d×%d", ErrCorrupt, name,
			h.width, h.height, h.components, p.Columns, p.Rows, p.SamplesPerPixel)
	}
	out := make([]byte, size)
	ybr := C.int(0)
	if strings.HasPrefix(p.Photometric, "YBR") {
		ybr = 1
	}
	var r C.lb_jpeg_result
	in := (*C.uchar)(unsafe.Pointer(&data[0]))
	o := (*C.uchar)(unsafe.Pointer(&out[0]))
	rows, cols, spp := C.int(p.Rows), C.int(p.Columns), C.int(p.SamplesPerPixel)
	var rc C.int
	switch lib {
	case 8:
		rc = C.lb_jpeg8_decode(in, C.size_t(len(data)), rows, cols, spp, C.int(bps), ybr, o, C.size_t(size), &r)
	case 12:
		rc = C.lb_jpeg12_decode(in, C.size_t(len(data)), rows, cols, spp, C.int(bps), ybr, o, C.size_t(size), &r)
	default:
		rc = C.lb_jpeg16_decode(in, C.size_t(len(data)), rows, cols, spp, C.int(bps), ybr, o, C.size_t(size), &r)
	}
	if rc != 0 {
		return Frame{}, fmt.Errorf("%w: %s: %s", ErrCorrupt, name, C.GoString(&r.msg[0]))
	}
	f := Frame{Data: out}
	if r.color_converted != 0 {
		f.Photometric = "RGB"
	}
	return f, nil
}
