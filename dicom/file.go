// Package dicom reads DICOM Part 10 files: the header as a metadata model,
// every frame's pixels decoded for every common transfer syntax, and the
// display pipeline of PS3.3 C.11 that turns them into the picture a
// radiology workstation shows. It knows nothing of HTTP or SQL.
package dicom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	dcm "github.com/suyashkumar/dicom"
)

// ErrNoPixels is returned when asked for a frame of an instance that has no
// pixel data (a structured report, say).
var ErrNoPixels = errors.New("no pixel data")

// ErrNoFrame is returned for a frame number outside the instance.
var ErrNoFrame = errors.New("no such frame")

// File is one parsed DICOM instance: its metadata and where its pixels lie.
// Frames are read and decoded on demand, so opening is cheap whatever the
// file's size.
type File struct {
	Meta    Meta
	Dataset dcm.Dataset // the header, without pixel data

	path     string      // set by Open: frames reopen the file
	src      io.ReaderAt // set by Parse: frames read from here
	inflated []byte      // the data set of a deflated file
	lay      *layout
	frames   [][2]int // encapsulated: fragment index range [from, to) per frame
}

// Open parses the header of the file at path. The file is closed again
// before Open returns; Frame reopens it.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	f, err := Parse(fh, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.src, f.path = nil, path
	return f, nil
}

// Parse reads the header of the Part 10 file held by src (size bytes) and
// locates its pixel data without reading it. Frame reads from src later, so
// src must stay readable while the File is used.
func Parse(src io.ReaderAt, size int64) (*File, error) {
	return parse(src, size, false)
}

// ParseMeta is Parse for callers that need Meta and the pixels but not
// every element: the scanner still checks the private elements, but they
// are left out of Dataset. A CT header is mostly its maker's private
// groups, and the header parser costs some microseconds for each element
// it meets, so storing or rendering an instance parses it three times
// faster this way.
func ParseMeta(src io.ReaderAt, size int64) (*File, error) {
	return parse(src, size, true)
}

func parse(src io.ReaderAt, size int64, skipPrivate bool) (f *File, err error) {
	// suyashkumar/dicom may panic on input our scanner let through; a bad
	// file must never take the server down.
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%w: header parser failed: %v", ErrMalformed, r)
		}
	}()
	lay, inflated, err := scanFile(src, size)
	if err != nil {
		return nil, err
	}
	ds, err := parseHeader(src, inflated, lay, skipPrivate)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	f = &File{Dataset: ds, src: src, inflated: inflated, lay: lay}
	if err := f.readMeta(); err != nil {
		return nil, err
	}
	if lay.hasPixels {
		if err := f.checkPixels(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// parseHeader hands suyashkumar/dicom the file meta group and the data set
// up to the pixel data, in the encodings the scanner settled. Left to find
// them itself, the library trusts (0002,0000) over the elements it counts
// and, when the transfer syntax is not inside that length, guesses one from
// the next 100 bytes, so it could read a file otherwise than the scanner
// did, or differently once the private elements are left out.
func parseHeader(src io.ReaderAt, inflated []byte, lay *layout, skipPrivate bool) (dcm.Dataset, error) {
	var parts []io.Reader
	var n int64
	if !lay.raw {
		parts = append(parts, io.NewSectionReader(src, 132, lay.metaEnd-132))
		n = lay.metaEnd - 132
	}
	data, start := src, lay.metaEnd
	if lay.deflated {
		data, start = bytes.NewReader(inflated), 0
	}
	head, hn := lay.header(data, start, skipPrivate)
	parts = append(parts, head, bytes.NewReader(inferPad[:]))
	var ds dcm.Dataset
	p, err := dcm.NewParser(io.MultiReader(parts...), n+hn, nil,
		dcm.SkipMetadataReadOnNewParserInit(), dcm.SkipPixelData())
	if p == nil {
		return ds, err
	}
	// A failed guess still comes with a usable parser: the encoding is ours.
	p.SetTransferSyntax(binary.LittleEndian, false) // PS3.10 7.1: the meta group's
	for i := 0; ; i++ {
		if i == lay.metaElems {
			p.SetTransferSyntax(lay.order, lay.implicit)
		}
		e, err := p.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, dcm.ErrorEndOfDICOM) {
			return ds, nil
		}
		if err != nil {
			return ds, err
		}
		ds.Elements = append(ds.Elements, e)
	}
}

// inferPad follows the bytes given to the header parser: even told to skip
// the meta group, NewParser peeks at 100 bytes to guess a transfer syntax,
// and fails on a shorter header. It reads no further than its length, so
// the padding is never taken for data.
var inferPad [100]byte

// Bare reports whether the file is a bare data set, without the Part 10
// preamble and file meta group: storing it needs a meta group in front.
func (f *File) Bare() bool { return f.lay.raw }

// DatasetOffset is where the data set starts: after the file meta group
// of a Part 10 file, 0 for a bare data set.
func (f *File) DatasetOffset() int64 { return f.lay.metaEnd }

// NumFrames is the number of frames Frame accepts; 0 without pixel data.
func (f *File) NumFrames() int {
	if !f.lay.hasPixels {
		return 0
	}
	return f.Meta.Image.NumberOfFrames
}

// checkPixels checks the pixel data against the header and, for
// encapsulated data, works out which fragments make up each frame.
func (f *File) checkPixels() error {
	im := &f.Meta.Image
	if err := checkGeometry(im); err != nil {
		return err
	}
	if f.lay.encapsulated {
		frames, err := groupFragments(f.lay, im.NumberOfFrames, f.dataAt())
		if err != nil {
			return err
		}
		f.frames = frames
		return nil
	}
	need := (nativeFrameBits(im)*int64(im.NumberOfFrames) + 7) / 8
	if f.lay.pixels.n < need {
		return fmt.Errorf("%w: pixel data length %d does not match the header: %d frames of %d×%d×%d at %d bits need %d bytes",
			ErrMalformed, f.lay.pixels.n, im.NumberOfFrames, im.Columns, im.Rows, im.SamplesPerPixel, im.BitsAllocated, need)
	}
	return nil
}

// maxSamples bounds one frame's decoded size (8192×8192 grey or a
// 4096×5460 colour image): nothing in radiology is larger, and it keeps a
// hostile header from asking for gigabytes.
const maxSamples = 1 << 26

func checkGeometry(im *Image) error {
	switch {
	case im.Rows <= 0 || im.Columns <= 0:
		return fmt.Errorf("%w: image is %d×%d", ErrMalformed, im.Columns, im.Rows)
	case im.SamplesPerPixel != 1 && im.SamplesPerPixel != 3:
		return fmt.Errorf("%w: Samples per Pixel is %d, want 1 or 3", ErrMalformed, im.SamplesPerPixel)
	case im.BitsAllocated != 1 && im.BitsAllocated != 8 && im.BitsAllocated != 16 && im.BitsAllocated != 32:
		return fmt.Errorf("%w: Bits Allocated is %d, want 1, 8, 16 or 32", ErrMalformed, im.BitsAllocated)
	case im.BitsStored < 1 || im.BitsStored > im.BitsAllocated:
		return fmt.Errorf("%w: Bits Stored %d with Bits Allocated %d", ErrMalformed, im.BitsStored, im.BitsAllocated)
	case im.HighBit < im.BitsStored-1 || im.HighBit >= im.BitsAllocated:
		return fmt.Errorf("%w: High Bit %d with Bits Stored %d and Bits Allocated %d", ErrMalformed, im.HighBit, im.BitsStored, im.BitsAllocated)
	case int64(im.Rows)*int64(im.Columns)*int64(im.SamplesPerPixel) > maxSamples:
		return fmt.Errorf("%w: %d×%d×%d samples per frame is beyond the %d this reader accepts", ErrMalformed, im.Columns, im.Rows, im.SamplesPerPixel, maxSamples)
	case im.NumberOfFrames < 1:
		return fmt.Errorf("%w: Number of Frames is %d", ErrMalformed, im.NumberOfFrames)
	}
	return nil
}

// nativeFrameBits is the size of one uncompressed frame in bits.
func nativeFrameBits(im *Image) int64 {
	px := int64(im.Rows) * int64(im.Columns)
	if im.Photometric == "YBR_FULL_422" && im.SamplesPerPixel == 3 {
		return px * 2 * int64(im.BitsAllocated) // two luma and two chroma samples per two pixels
	}
	return px * int64(im.SamplesPerPixel) * int64(im.BitsAllocated)
}

func (f *File) dataAt() io.ReaderAt {
	if f.inflated != nil {
		return bytes.NewReader(f.inflated)
	}
	return f.src
}

// groupFragments works out which fragments make up each frame (PS3.5
// A.4): from the Extended Offset Table, else the Basic Offset Table, else
// one fragment a frame when the counts agree, else by the codestream's
// start marker at the head of each fragment.
func groupFragments(l *layout, n int, src io.ReaderAt) ([][2]int, error) {
	frags := l.fragments
	if len(frags) == 0 {
		return nil, fmt.Errorf("%w: encapsulated pixel data has no fragments", ErrMalformed)
	}
	var offsets []int64
	switch {
	case len(l.eot) > 0:
		if len(l.eot) != 8*n {
			return nil, fmt.Errorf("%w: extended offset table has %d bytes for %d frames", ErrMalformed, len(l.eot), n)
		}
		for i := 0; i < n; i++ {
			offsets = append(offsets, int64(binary.LittleEndian.Uint64(l.eot[8*i:])))
		}
	case len(l.bot) > 0:
		if len(l.bot) != 4*n {
			return nil, fmt.Errorf("%w: basic offset table has %d entries for %d frames", ErrMalformed, len(l.bot)/4, n)
		}
		for i := 0; i < n; i++ {
			offsets = append(offsets, int64(binary.LittleEndian.Uint32(l.bot[4*i:])))
		}
	}
	frames := make([][2]int, 0, n)
	switch {
	case offsets != nil:
		for i, o := range offsets {
			item := l.firstItem + o // the frame's first item tag
			k := sort.Search(len(frags), func(j int) bool { return frags[j].off-8 >= item })
			if k == len(frags) || frags[k].off-8 != item {
				return nil, fmt.Errorf("%w: offset table entry %d (%d) does not point at a fragment", ErrMalformed, i, o)
			}
			if i > 0 && k <= frames[i-1][0] {
				return nil, fmt.Errorf("%w: offset table entry %d (%d) is not increasing", ErrMalformed, i, o)
			}
			if i > 0 {
				frames[i-1][1] = k
			}
			frames = append(frames, [2]int{k, len(frags)})
		}
		return frames, nil
	case n == 1:
		return [][2]int{{0, len(frags)}}, nil
	case len(frags) == n:
		for i := range frags {
			frames = append(frames, [2]int{i, i + 1})
		}
		return frames, nil
	}
	head := make([]byte, 12)
	for i, fr := range frags {
		m := head[:min(int64(len(head)), fr.n)]
		if _, err := src.ReadAt(m, fr.off); err != nil {
			return nil, fmt.Errorf("read fragment %d: %w", i, err)
		}
		if startsCodestream(m) || i == 0 {
			if len(frames) > 0 {
				frames[len(frames)-1][1] = i
			}
			frames = append(frames, [2]int{i, len(frags)})
		}
	}
	if len(frames) != n {
		return nil, fmt.Errorf("%w: found %d frames in %d fragments without an offset table; the header says %d", ErrMalformed, len(frames), len(frags), n)
	}
	return frames, nil
}

// startsCodestream reports whether b opens a JPEG, JPEG-LS or JPEG 2000
// codestream (SOI, SOC, or the JP2 signature box).
func startsCodestream(b []byte) bool {
	switch {
	case len(b) >= 2 && b[0] == 0xFF && b[1] == 0xD8:
		return true
	case len(b) >= 4 && b[0] == 0xFF && b[1] == 0x4F && b[2] == 0xFF && b[3] == 0x51:
		return true
	case len(b) >= 12 && bytes.Equal(b[:12], []byte{0, 0, 0, 12, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A}):
		return true
	}
	return false
}

// reader returns where frames are read from, and a func to release it.
func (f *File) reader() (io.ReaderAt, func(), error) {
	if f.inflated != nil {
		return bytes.NewReader(f.inflated), func() {}, nil
	}
	if f.src != nil {
		return f.src, func() {}, nil
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, nil, err
	}
	return fh, func() { fh.Close() }, nil
}

// FrameData returns frame i's bytes as stored: the native bytes of that
// frame, or its fragments joined into one codestream. For 1-bit native
// data, frames need not start on a byte boundary: FrameData returns the
// bytes that hold the frame and the bit offset at which it starts.
func (f *File) FrameData(i int) ([]byte, int, error) {
	if !f.lay.hasPixels {
		return nil, 0, ErrNoPixels
	}
	if i < 0 || i >= f.NumFrames() {
		return nil, 0, fmt.Errorf("%w: frame %d of %d", ErrNoFrame, i+1, f.NumFrames())
	}
	src, done, err := f.reader()
	if err != nil {
		return nil, 0, err
	}
	defer done()
	if f.lay.encapsulated {
		fr := f.frames[i]
		var n int64
		for _, s := range f.lay.fragments[fr[0]:fr[1]] {
			n += s.n
		}
		buf := make([]byte, 0, n)
		for _, s := range f.lay.fragments[fr[0]:fr[1]] {
			part := buf[len(buf) : len(buf)+int(s.n)]
			if _, err := src.ReadAt(part, s.off); err != nil {
				return nil, 0, fmt.Errorf("read frame %d: %w", i+1, err)
			}
			buf = buf[:len(buf)+int(s.n)]
		}
		return buf, 0, nil
	}
	bits := nativeFrameBits(&f.Meta.Image)
	start := bits * int64(i)
	from, to := start/8, (start+bits+7)/8
	swap := f.swapsWords()
	if swap { // read whole 16-bit words, to swap them
		from, to = from&^1, min((to+1)&^1, f.lay.pixels.n)
	}
	buf := make([]byte, to-from)
	if _, err := src.ReadAt(buf, f.lay.pixels.off+from); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("read frame %d: %w", i+1, err)
	}
	if swap {
		for k := 0; k+1 < len(buf); k += 2 {
			buf[k], buf[k+1] = buf[k+1], buf[k]
		}
		buf = buf[start/8-from:]
	}
	return buf, int(start % 8), nil
}

// swapsWords reports whether native pixel data is an OW value in big
// endian holding samples other than 16 bits: OW is a run of 16-bit words,
// each byte-swapped in big endian (PS3.5 7.3), so 8-bit samples come in
// swapped pairs and 32-bit samples as two swapped words, low word first.
// FrameData undoes the swap, after which the data reads as little endian.
func (f *File) swapsWords() bool {
	return !f.lay.encapsulated && f.lay.order == binary.BigEndian && f.lay.pixelVR == "OW" && f.Meta.Image.BitsAllocated != 16
}
