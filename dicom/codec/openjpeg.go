//go:build cgo

package codec

/*
#cgo pkg-config: libopenjp2
#include <stdlib.h>
#include "openjpeg_glue.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// JPEG 2000 (.90, .91) is decoded by OpenJPEG, the reference decoder
// (BSD-2), as GDCM does: no Go module decodes JPEG 2000, and OpenJPEG is
// what the oracle (gdcmconv) itself runs, so lossy frames match bit for bit.
func init() {
	Register(JPEG2000Lossless, "openjpeg", decodeOpenJPEG)
	Register(JPEG2000, "openjpeg", decodeOpenJPEG)
}

// decodeOpenJPEG decodes a J2K codestream (or a JP2 file, which some
// writers wrap it in) into the native layout. The header's Pixel
// Representation overrides the codestream's signedness: writers disagree
// and the DICOM header is what every viewer trusts. With three components
// and a multiple component transform (RCT/ICT) the output is RGB.
func decodeOpenJPEG(data []byte, p Params) (Frame, error) {
	bps, size, err := cgoOutSize(p)
	if err != nil {
		return Frame{}, fmt.Errorf("openjpeg: %w", err)
	}
	if len(data) < 2 {
		return Frame{}, fmt.Errorf("%w: openjpeg: %d-byte codestream", ErrCorrupt, len(data))
	}
	// The handle outlives one cgo call, so the codestream must live in C
	// memory (cgo forbids C keeping Go pointers between calls).
	in := C.CBytes(data)
	defer C.free(in)
	var info C.lb_opj_info
	h := C.lb_opj_open((*C.uchar)(in), C.size_t(len(data)), &info)
	if h == nil {
		return Frame{}, fmt.Errorf("%w: openjpeg: %s", ErrCorrupt, C.GoString(&info.msg[0]))
	}
	defer C.lb_opj_close(h)
	w, ht, nc, prec := int(info.width), int(info.height), int(info.components), int(info.precision)
	switch {
	case w != p.Columns || ht != p.Rows:
		return Frame{}, fmt.Errorf("%w: openjpeg: codestream is %dx%d, header says %dx%d", ErrCorrupt, w, ht, p.Columns, p.Rows)
	case nc != p.SamplesPerPixel:
		return Frame{}, fmt.Errorf("%w: openjpeg: codestream has %d components, header says %d samples per pixel", ErrCorrupt, nc, p.SamplesPerPixel)
	case info.subsampled != 0:
		return Frame{}, fmt.Errorf("%w: openjpeg: subsampled components", ErrCorrupt)
	case prec < 1 || prec > 16:
		return Frame{}, fmt.Errorf("%w: openjpeg: component precision %d (mixed or out of 1..16)", ErrCorrupt, prec)
	case prec > p.BitsAllocated:
		return Frame{}, fmt.Errorf("%w: openjpeg: %d-bit codestream in %d-bit samples", ErrCorrupt, prec, p.BitsAllocated)
	}
	out := make([]byte, size)
	if C.lb_opj_decode(h, C.int(bps), C.int(p.PixelRepresentation), (*C.uchar)(unsafe.Pointer(&out[0])), C.size_t(size), &info) != 0 {
		return Frame{}, fmt.Errorf("%w: openjpeg: %s", ErrCorrupt, C.GoString(&info.msg[0]))
	}
	f := Frame{Data: out}
	if info.mct != 0 && nc == 3 {
		f.Photometric = "RGB"
	}
	return f, nil
}
