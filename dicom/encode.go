package dicom

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"sync"
)

// ErrQuality: a JPEG quality outside 1..100.
var ErrQuality = errors.New("dicom: JPEG quality must be 1 to 100")

// pngBuffers lets the PNG encoder reuse its scratch buffers (filter rows and
// the deflate window) between frames.
type pngBuffers struct{ p sync.Pool }

func (b *pngBuffers) Get() *png.EncoderBuffer {
	if v, ok := b.p.Get().(*png.EncoderBuffer); ok {
		return v
	}
	return nil
}
func (b *pngBuffers) Put(v *png.EncoderBuffer) { b.p.Put(v) }

// BestSpeed: on this kind of machine it costs 3 ms for a 512² CT slice
// against 17 ms for the default level, for a file only a few per cent larger
// (FACTS.md), and it is the lossless frame the viewer sends once the view
// rests.
var pngEncoder = png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &pngBuffers{}}

// EncodePNG writes img as PNG at the fastest compression level: lossless,
// for the picture the patient studies.
func EncodePNG(w io.Writer, img image.Image) error {
	if err := pngEncoder.Encode(w, img); err != nil {
		return fmt.Errorf("encode PNG: %w", err)
	}
	return nil
}

// EncodeJPEG writes img as baseline JPEG of the given quality (1..100): the
// fast lossy frame sent while the view moves. Grey stays one channel;
// colour is 4:2:0. With cgo it uses libturbojpeg (≈0.5 ms for a 512² CT
// slice), else Go's image/jpeg (≈2.3 ms). Colour alpha is ignored: the
// pipeline's pictures are opaque.
func EncodeJPEG(w io.Writer, img image.Image, quality int) error {
	if quality < 1 || quality > 100 {
		return fmt.Errorf("%w: %d", ErrQuality, quality)
	}
	if err := encodeJPEG(w, img, quality); err != nil {
		return fmt.Errorf("encode JPEG: %w", err)
	}
	return nil
}

// JPEGEncoder names the JPEG encoder this build uses.
func JPEGEncoder() string { return jpegEncoderName }

// bufWriters buffer image/jpeg's many small writes.
var bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// encodeJPEGGo is the pure-Go encoder, the fallback without cgo and for
// image types libturbojpeg is not handed.
func encodeJPEGGo(w io.Writer, img image.Image, quality int) error {
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	err := jpeg.Encode(bw, img, &jpeg.Options{Quality: quality})
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	bufWriters.Put(bw)
	return err
}
