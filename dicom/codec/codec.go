// Package codec holds the decoders for DICOM's encapsulated (compressed)
// transfer syntaxes behind one registry, so that the pure-Go decoders are
// always present and the cgo ones (OpenJPEG, CharLS, libjpeg) join only when
// the binary is built with cgo. A build without cgo still runs and names the
// transfer syntax it cannot decode.
package codec

import (
	"errors"
	"fmt"
	"sync"
)

// Params describes the frame to decode, as the DICOM header declares it
// (PS3.3 C.7.6.3). Decoders check the codestream against it and fail rather
// than return pixels of another shape.
type Params struct {
	Rows                int
	Columns             int
	SamplesPerPixel     int
	BitsAllocated       int
	BitsStored          int
	PixelRepresentation int // 0 unsigned, 1 two's complement
	Photometric         string
}

// Frame is one decoded frame in the native layout that an uncompressed
// little-endian file would hold: samples of BitsAllocated bits (8, 16 or
// 32; little-endian words), colour samples interleaved (planar
// configuration 0). Signed samples keep their raw bit pattern in the low
// BitsStored bits; the caller sign-extends, as for native data.
type Frame struct {
	Data []byte
	// Photometric is the photometric interpretation of Data. Decoders that
	// convert colour (JPEG YCbCr to RGB, JPEG 2000 ICT/RCT) say so here;
	// empty means "as the header says".
	Photometric string
}

// Decoder decodes one frame's codestream (all its fragments joined).
type Decoder func(data []byte, p Params) (Frame, error)

// ErrUnsupported is returned for a transfer syntax that this build cannot
// decode: callers show it to the user by name.
var ErrUnsupported = errors.New("unsupported transfer syntax")

// ErrCorrupt is wrapped by decoders when the codestream is malformed or does
// not match Params.
var ErrCorrupt = errors.New("corrupt codestream")

var (
	mu       sync.RWMutex
	decoders = map[string]registered{}
)

type registered struct {
	impl string
	dec  Decoder
}

// Register makes dec the decoder of the transfer syntax uid. impl names the
// implementation (e.g. "openjpeg") for diagnostics and benchmarks. A later
// registration replaces an earlier one, so a faster cgo decoder may take
// over from a pure-Go one.
func Register(uid, impl string, dec Decoder) {
	mu.Lock()
	defer mu.Unlock()
	decoders[uid] = registered{impl: impl, dec: dec}
}

// Lookup returns the decoder of the transfer syntax uid and the name of its
// implementation, or an error wrapping ErrUnsupported that names the syntax.
func Lookup(uid string) (Decoder, string, error) {
	mu.RLock()
	r, ok := decoders[uid]
	mu.RUnlock()
	if !ok {
		return nil, "", fmt.Errorf("%w: %s", ErrUnsupported, Name(uid))
	}
	return r.dec, r.impl, nil
}

// Transfer syntax UIDs (PS3.6 Annex A).
const (
	ImplicitVRLittleEndian   = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian   = "1.2.840.10008.1.2.1"
	DeflatedExplicitVRLittle = "1.2.840.10008.1.2.1.99"
	ExplicitVRBigEndian      = "1.2.840.10008.1.2.2"
	JPEGBaseline             = "1.2.840.10008.1.2.4.50"
	JPEGExtended             = "1.2.840.10008.1.2.4.51"
	JPEGLossless             = "1.2.840.10008.1.2.4.57"
	JPEGLosslessSV1          = "1.2.840.10008.1.2.4.70"
	JPEGLSLossless           = "1.2.840.10008.1.2.4.80"
	JPEGLSNearLossless       = "1.2.840.10008.1.2.4.81"
	JPEG2000Lossless         = "1.2.840.10008.1.2.4.90"
	JPEG2000                 = "1.2.840.10008.1.2.4.91"
	RLELossless              = "1.2.840.10008.1.2.5"
)

var names = map[string]string{
	ImplicitVRLittleEndian:   "Implicit VR Little Endian",
	ExplicitVRLittleEndian:   "Explicit VR Little Endian",
	DeflatedExplicitVRLittle: "Deflated Explicit VR Little Endian",
	ExplicitVRBigEndian:      "Explicit VR Big Endian",
	JPEGBaseline:             "JPEG Baseline (Process 1)",
	JPEGExtended:             "JPEG Extended (Process 2 & 4)",
	JPEGLossless:             "JPEG Lossless, Non-Hierarchical (Process 14)",
	JPEGLosslessSV1:          "JPEG Lossless, First-Order Prediction (Process 14, SV1)",
	JPEGLSLossless:           "JPEG-LS Lossless",
	JPEGLSNearLossless:       "JPEG-LS Lossy (Near-Lossless)",
	JPEG2000Lossless:         "JPEG 2000 Lossless Only",
	JPEG2000:                 "JPEG 2000",
	RLELossless:              "RLE Lossless",
}

// Name returns the transfer syntax's name with its UID, e.g.
// "JPEG 2000 (1.2.840.10008.1.2.4.91)", or the bare UID if unknown.
func Name(uid string) string {
	if n, ok := names[uid]; ok {
		return n + " (" + uid + ")"
	}
	return uid
}

// Native reports whether uid is an uncompressed transfer syntax, whose pixel
// data needs no decoder.
func Native(uid string) bool {
	switch uid {
	case ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittle, ExplicitVRBigEndian:
		return true
	}
	return false
}

// Lossy reports whether uid may discard information (PS3.5 8.2): a viewer
// says so to the user.
func Lossy(uid string) bool {
	switch uid {
	case JPEGBaseline, JPEGExtended, JPEGLSNearLossless, JPEG2000:
		return true
	}
	return false
}
