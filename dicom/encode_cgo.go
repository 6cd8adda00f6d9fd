//go:build cgo

package dicom

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>
*/
import "C"

import (
	"errors"
	"image"
	"io"
	"runtime"
	"unsafe"
)

const jpegEncoderName = "libturbojpeg"

// tjEncoder is one TurboJPEG compressor with its output buffer, kept for
// reuse: making a handle and a buffer per frame would cost more than the
// encoding of a small frame.
type tjEncoder struct {
	h   C.tjhandle
	buf *C.uchar
	cap C.ulong
}

// tjEncoders holds idle encoders, at most one per CPU; extra ones made under
// a burst are destroyed when returned.
var tjEncoders = make(chan *tjEncoder, runtime.GOMAXPROCS(0))

func getTJ() (*tjEncoder, error) {
	select {
	case e := <-tjEncoders:
		return e, nil
	default:
	}
	h := C.tjInitCompress()
	if h == nil {
		return nil, errors.New("libturbojpeg: cannot create a compressor")
	}
	return &tjEncoder{h: h}, nil
}

func putTJ(e *tjEncoder) {
	select {
	case tjEncoders <- e:
	default:
		C.tjDestroy(e.h)
		if e.buf != nil {
			C.tjFree(e.buf)
		}
	}
}

func encodeJPEG(w io.Writer, img image.Image, quality int) error {
	var (
		pix            []uint8
		stride, format C.int
		samp           C.int
	)
	switch m := img.(type) {
	case *image.Gray:
		pix, stride, format, samp = m.Pix, C.int(m.Stride), C.TJPF_GRAY, C.TJSAMP_GRAY
	case *image.NRGBA:
		pix, stride, format, samp = m.Pix, C.int(m.Stride), C.TJPF_RGBX, C.TJSAMP_420
	case *image.RGBA:
		pix, stride, format, samp = m.Pix, C.int(m.Stride), C.TJPF_RGBX, C.TJSAMP_420
	default:
		return encodeJPEGGo(w, img, quality)
	}
	b := img.Bounds()
	width, height := b.Dx(), b.Dy()
	if width <= 0 || height <= 0 {
		return errors.New("empty image")
	}
	if len(pix) == 0 {
		return errors.New("image without pixels")
	}
	// Start at the bounds' origin: a sub-image shares its parent's Pix.
	var off int
	switch m := img.(type) {
	case *image.Gray:
		off = m.PixOffset(b.Min.X, b.Min.Y)
	case *image.NRGBA:
		off = m.PixOffset(b.Min.X, b.Min.Y)
	case *image.RGBA:
		off = m.PixOffset(b.Min.X, b.Min.Y)
	}
	e, err := getTJ()
	if err != nil {
		return err
	}
	need := C.tjBufSize(C.int(width), C.int(height), samp)
	if need == C.ulong(^C.ulong(0)) {
		putTJ(e)
		return errors.New("libturbojpeg: image too large")
	}
	if e.cap < need {
		if e.buf != nil {
			C.tjFree(e.buf)
		}
		e.buf = C.tjAlloc(C.int(need))
		if e.buf == nil {
			e.cap = 0
			putTJ(e)
			return errors.New("libturbojpeg: out of memory")
		}
		e.cap = need
	}
	size := e.cap
	// The Go pixels hold no Go pointers, so C may read them during the
	// call; NOREALLOC keeps the output in our buffer, which tjBufSize made
	// large enough for any quality.
	rc := C.tjCompress2(e.h, (*C.uchar)(unsafe.Pointer(&pix[off])), C.int(width), stride, C.int(height), format,
		&e.buf, &size, samp, C.int(quality), C.TJFLAG_NOREALLOC)
	if rc != 0 {
		msg := C.GoString(C.tjGetErrorStr2(e.h))
		putTJ(e)
		return errors.New("libturbojpeg: " + msg)
	}
	// Write must not keep the slice (io.Writer's contract), so the C
	// buffer can go back to the pool afterwards.
	_, err = w.Write(unsafe.Slice((*byte)(unsafe.Pointer(e.buf)), int(size)))
	putTJ(e)
	return err
}
