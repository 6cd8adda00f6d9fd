package dicom

// Frame is one decoded frame: the stored pixel values, sign-extended per
// Pixel Representation and masked to Bits Stored, before any LUT. Colour
// samples are interleaved (R,G,B / Y,Cb,Cr per pixel) whatever the file's
// planar configuration.
type Frame struct {
	Index       int    // from 0
	Rows        int    // height
	Columns     int    // width
	Samples     int    // 1 for grey and palette, 3 for colour
	Photometric string // of Pix, which may differ from the file's after a codec converted colour
	Pix         []int32
	// Offset is added to each of Pix to give the stored value: 2³¹ for
	// unsigned 32-bit samples, which int32 cannot hold, 0 otherwise. It
	// keeps the order, so minimum, maximum and tables work on Pix as is.
	Offset int64
}

// Stored is sample i's stored value.
func (fr *Frame) Stored(i int) int64 { return int64(fr.Pix[i]) + fr.Offset }
