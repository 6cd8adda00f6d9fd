//go:build cgo

package codec

/*
#cgo pkg-config: charls
#include <stdlib.h>
#include <charls/charls.h>
*/
import "C"

import (
	"bytes"
	"fmt"
	"unsafe"
)

// JPEG-LS (.80, .81) is decoded by CharLS (BSD-3), the decoder GDCM and
// dcmtk (its fork) are built on; there is no Go one. The C API of CharLS
// 2.x (charls_jpegls_decoder_*) is used: it is stable across 2.x and
// needs no C++.
func init() {
	Register(JPEGLSLossless, "charls", decodeCharLS)
	Register(JPEGLSNearLossless, "charls", decodeCharLS)
}

// decodeCharLS decodes a JPEG-LS stream. CharLS returns raw bit patterns
// (signed data is not sign-extended), which is the native layout; colour
// comes out interleaved whatever the stream's interleave mode.
//
// Some encoders leave zero bytes between the entropy-coded data and the
// EOI marker, as in the DICOM WG04 sample MR1_JLSL; CharLS 2.3 and later
// refuse them ("leading start byte (0xFF) for a JPEG marker was not
// found") where dcmtk's fork reads on. A stream that fails is tried again
// without them. Not stripped up front: a last data byte may be zero.
func decodeCharLS(data []byte, p Params) (Frame, error) {
	f, err := charlsDecode(data, p)
	if err == nil {
		return f, nil
	}
	if trimmed, ok := trimBeforeEOI(data); ok {
		if f, err2 := charlsDecode(trimmed, p); err2 == nil {
			return f, nil
		}
	}
	return Frame{}, err
}

// trimBeforeEOI returns data without the zero bytes right before its last
// EOI marker (FF D9), and whether there were any.
func trimBeforeEOI(data []byte) ([]byte, bool) {
	eoi := bytes.LastIndex(data, []byte{0xFF, 0xD9})
	end := eoi
	for end > 0 && data[end-1] == 0 {
		end--
	}
	if eoi < 0 || end == eoi {
		return nil, false
	}
	return append(data[:end:end], data[eoi:]...), true
}

func charlsDecode(data []byte, p Params) (Frame, error) {
	bps, size, err := cgoOutSize(p)
	if err != nil {
		return Frame{}, fmt.Errorf("charls: %w", err)
	}
	if len(data) == 0 {
		return Frame{}, fmt.Errorf("%w: charls: empty stream", ErrCorrupt)
	}
	dec := C.charls_jpegls_decoder_create()
	if dec == nil {
		return Frame{}, fmt.Errorf("charls: cannot create decoder")
	}
	defer C.charls_jpegls_decoder_destroy(dec)
	// The decoder keeps the source between cgo calls, which cgo allows only
	// for C memory: copy it (a memcpy of the compressed bytes, ~1 % of the
	// decode).
	src := C.CBytes(data)
	defer C.free(src)
	if e := C.charls_jpegls_decoder_set_source_buffer(dec, src, C.size_t(len(data))); e != 0 {
		return Frame{}, charlsErr("set source", e)
	}
	if e := C.charls_jpegls_decoder_read_header(dec); e != 0 {
		return Frame{}, charlsErr("read header", e)
	}
	var fi C.charls_frame_info
	if e := C.charls_jpegls_decoder_get_frame_info(dec, &fi); e != 0 {
		return Frame{}, charlsErr("frame info", e)
	}
	var mode C.charls_interleave_mode
	if e := C.charls_jpegls_decoder_get_interleave_mode(dec, &mode); e != 0 {
		return Frame{}, charlsErr("interleave mode", e)
	}
	w, h, nc, bits := int(fi.width), int(fi.height), int(fi.component_count), int(fi.bits_per_sample)
	switch {
	case w != p.Columns || h != p.Rows:
		return Frame{}, fmt.Errorf("%w: charls: stream is %dx%d, header says %dx%d", ErrCorrupt, w, h, p.Columns, p.Rows)
	case nc != p.SamplesPerPixel:
		return Frame{}, fmt.Errorf("%w: charls: stream has %d components, header says %d samples per pixel", ErrCorrupt, nc, p.SamplesPerPixel)
	case bits < 2 || bits > 16 || bits > p.BitsAllocated:
		return Frame{}, fmt.Errorf("%w: charls: %d-bit stream in %d-bit samples", ErrCorrupt, bits, p.BitsAllocated)
	}
	sbytes := 1 // CharLS's own sample size
	if bits > 8 {
		sbytes = 2
	}
	var need C.size_t
	if e := C.charls_jpegls_decoder_get_destination_size(dec, 0, &need); e != 0 {
		return Frame{}, charlsErr("destination size", e)
	}
	n := w * h * nc * sbytes
	if int(need) != n {
		return Frame{}, fmt.Errorf("%w: charls: wants %d bytes for a %d-byte frame", ErrCorrupt, need, n)
	}
	planar := nc > 1 && mode == C.CHARLS_INTERLEAVE_MODE_NONE
	out := make([]byte, size)
	buf := out
	if planar || sbytes != bps {
		buf = make([]byte, n)
	}
	if e := C.charls_jpegls_decoder_decode_to_buffer(dec, unsafe.Pointer(&buf[0]), C.size_t(n), 0); e != 0 {
		return Frame{}, charlsErr("decode", e)
	}
	if &buf[0] != &out[0] {
		charlsRelayout(out, buf, w*h, nc, sbytes, bps, planar)
	}
	return Frame{Data: out}, nil
}

// charlsRelayout copies CharLS's output (planar or not, 1- or 2-byte
// host-order samples) into the interleaved native layout.
func charlsRelayout(out, buf []byte, npix, nc, sbytes, bps int, planar bool) {
	for c := 0; c < nc; c++ {
		for i := 0; i < npix; i++ {
			src := i*nc + c
			if planar {
				src = c*npix + i
			}
			var v uint16
			if sbytes == 1 {
				v = uint16(buf[src])
			} else {
				v = *(*uint16)(unsafe.Pointer(&buf[2*src])) // host order, as CharLS wrote it
			}
			dst := i*nc + c
			if bps == 1 {
				out[dst] = byte(v)
			} else {
				out[2*dst] = byte(v)
				out[2*dst+1] = byte(v >> 8)
			}
		}
	}
}

func charlsErr(step string, e C.charls_jpegls_errc) error {
	return fmt.Errorf("%w: charls: %s: %s", ErrCorrupt, step, C.GoString(C.charls_get_error_message(e)))
}
