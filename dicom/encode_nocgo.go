//go:build !cgo

package dicom

import (
	"image"
	"io"
)

const jpegEncoderName = "image/jpeg"

func encodeJPEG(w io.Writer, img image.Image, quality int) error {
	return encodeJPEGGo(w, img, quality)
}
