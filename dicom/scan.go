package dicom

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// The scanner walks a Part 10 file's element structure before anything
// else reads it: it checks every length against the bytes that are really
// there (so no later reader allocates for a length the file cannot back),
// and it finds the pixel data and, for encapsulated data, every fragment,
// without reading the pixels themselves. suyashkumar/dicom v1.1.0 then
// parses only the header bytes it located.

// ErrNotDICOM is returned for input that is not a DICOM Part 10 file.
var ErrNotDICOM = errors.New("not a DICOM Part 10 file")

// ErrMalformed is wrapped by every structural error: a length beyond the
// end of the file, an unterminated sequence, a missing required element.
var ErrMalformed = errors.New("malformed DICOM")

const (
	maxDepth      = 64      // nested sequences; real files use < 10
	maxFragments  = 1 << 20 // encapsulated fragments in one file
	maxInflated   = 1 << 30 // deflated data sets are small; this bounds a zip bomb
	undefinedLen  = 0xFFFFFFFF
	itemTag       = 0xFFFEE000
	itemDelimTag  = 0xFFFEE00D
	seqDelimTag   = 0xFFFEE0DD
	pixelDataTag  = 0x7FE00010
	extOffsetTag  = 0x7FE00001
	extLengthsTag = 0x7FE00002
)

// span is a run of bytes in the (possibly inflated) data.
type span struct{ off, n int64 }

// layout is what the scanner learns of a file.
type layout struct {
	transferSyntax string
	raw            bool // a bare data set: no preamble, no file meta group
	order          binary.ByteOrder
	implicit       bool
	deflated       bool
	metaEnd        int64 // first byte after the file meta group
	metaElems      int   // elements in the file meta group
	headerEnd      int64 // first byte of the pixel data element (or end of data)
	hasPixels      bool
	pixelVR        string
	pixels         span      // native pixel data value
	encapsulated   bool      // pixels are fragments
	bot            []byte    // basic offset table value
	fragments      []span    // each fragment's value, in order
	firstItem      int64     // offset of the first fragment's item tag (BOT origin)
	eot, eotLens   []byte    // extended offset table and lengths, raw
	omit           []omitted // runs of top-level elements the header parse may leave out, in order
}

// omitted is a run of top-level elements left out of the header parse:
// private ones when asked (ParseMeta), and always those holding an
// undefined-length UN, whose implicit VR content (PS3.5 6.2.2, CP-246)
// suyashkumar/dicom reads as explicit and fails on. The scanner has
// checked them either way, and the stored bytes keep them.
type omitted struct {
	span
	always bool
}

// scanner reads elements from src, which holds the bytes [0, size).
type scanner struct {
	src      io.ReaderAt
	size     int64
	order    binary.ByteOrder
	implicit bool
	unSeqs   int // undefined-length UN elements met in explicit VR
	buf      [12]byte
}

func (s *scanner) read(off int64, n int) ([]byte, error) {
	if off < 0 || off+int64(n) > s.size {
		return nil, fmt.Errorf("%w: need %d bytes at offset %d, file has %d", ErrMalformed, n, off, s.size)
	}
	b := s.buf[:n]
	if _, err := s.src.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && off+int64(n) <= s.size) {
		return nil, fmt.Errorf("read at %d: %w", off, err)
	}
	return b, nil
}

// header is one element's tag, VR and value length.
type header struct {
	tag    uint32
	vr     string
	length uint32
	value  int64 // offset of the value
}

func (h header) String() string {
	return fmt.Sprintf("(%04X,%04X)", h.tag>>16, h.tag&0xFFFF)
}

// longVR lists the explicit VRs with a 2-byte reserved field and a 4-byte
// length (PS3.5 7.1.2).
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV":
		return true
	}
	return false
}

func (s *scanner) element(off int64) (header, error) {
	b, err := s.read(off, 8)
	if err != nil {
		return header{}, err
	}
	h := header{tag: uint32(s.order.Uint16(b[0:]))<<16 | uint32(s.order.Uint16(b[2:]))}
	if h.tag>>16 == 0xFFFE { // items and delimiters have no VR in any syntax
		h.length = s.order.Uint32(b[4:])
		h.value = off + 8
		return h, nil
	}
	if s.implicit {
		h.length = s.order.Uint32(b[4:])
		h.value = off + 8
		// Private groups (odd) are not in the dictionary, and a miss costs
		// tag.Find an fmt.Errorf: a tenth of a millisecond per CT header.
		if h.tag>>16&1 == 0 {
			if info, err := tag.Find(tag.Tag{Group: uint16(h.tag >> 16), Element: uint16(h.tag)}); err == nil && len(info.VRs) > 0 {
				h.vr = info.VRs[0]
			}
		}
		return h, nil
	}
	h.vr = string(b[4:6])
	if !KnownVR(h.vr) {
		// Some writers put two spaces where they could not choose between
		// US and SS (Pixel Padding Value). dcmtk reads such a VR with a
		// 2-byte length, and the header parser does too.
		h.vr = ""
	}
	if longVR(h.vr) {
		b, err := s.read(off+8, 4)
		if err != nil {
			return h, err
		}
		h.length = s.order.Uint32(b)
		h.value = off + 12
		return h, nil
	}
	h.length = uint32(s.order.Uint16(b[6:]))
	h.value = off + 8
	return h, nil
}

// skipValue returns the offset after h's value, descending into sequences
// so that every nested length is checked too.
func (s *scanner) skipValue(h header, end int64, depth int) (int64, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("%w: sequences nested deeper than %d at %s", ErrMalformed, maxDepth, h)
	}
	if h.tag == pixelDataTag && h.length == undefinedLen {
		return s.skipFragments(h, end)
	}
	isSeq := h.vr == "SQ" || (h.length == undefinedLen && (h.vr == "UN" || h.vr == ""))
	if h.length == undefinedLen && !isSeq {
		return 0, fmt.Errorf("%w: element %s with VR %s has undefined length", ErrMalformed, h, h.vr)
	}
	if h.length != undefinedLen && h.value+int64(h.length) > end {
		return 0, fmt.Errorf("%w: element %s length %d runs past the end (%d bytes left)", ErrMalformed, h, h.length, end-h.value)
	}
	if !isSeq {
		return h.value + int64(h.length), nil
	}
	// An undefined-length UN holds an implicit VR little endian sequence
	// (PS3.5 6.2.2).
	if h.vr == "UN" && !s.implicit {
		s.unSeqs++
		saved := *s
		s.implicit, s.order = true, binary.LittleEndian
		defer func() { s.implicit, s.order = saved.implicit, saved.order }()
	}
	seqEnd := end
	if h.length != undefinedLen {
		seqEnd = h.value + int64(h.length)
	}
	off := h.value
	for off < seqEnd {
		item, err := s.element(off)
		if err != nil {
			return 0, fmt.Errorf("sequence %s: %w", h, err)
		}
		switch item.tag {
		case seqDelimTag:
			if h.length != undefinedLen {
				return 0, fmt.Errorf("%w: sequence delimiter inside defined-length sequence %s", ErrMalformed, h)
			}
			return item.value, nil
		case itemTag:
		default:
			return 0, fmt.Errorf("%w: sequence %s holds tag %08X where an item belongs", ErrMalformed, h, item.tag)
		}
		if off, err = s.items(item, seqEnd, depth+1); err != nil {
			return 0, fmt.Errorf("sequence %s: %w", h, err)
		}
	}
	if h.length == undefinedLen {
		return 0, fmt.Errorf("%w: sequence %s has no delimiter before the end", ErrMalformed, h)
	}
	return seqEnd, nil
}

// items walks one sequence item's elements and returns the offset after it.
func (s *scanner) items(item header, end int64, depth int) (int64, error) {
	itemEnd := end
	if item.length != undefinedLen {
		if item.value+int64(item.length) > end {
			return 0, fmt.Errorf("%w: item length %d runs past the end (%d bytes left)", ErrMalformed, item.length, end-item.value)
		}
		itemEnd = item.value + int64(item.length)
	}
	off := item.value
	for off < itemEnd {
		h, err := s.element(off)
		if err != nil {
			return 0, err
		}
		if h.tag == itemDelimTag {
			if item.length != undefinedLen {
				return 0, fmt.Errorf("%w: item delimiter inside defined-length item", ErrMalformed)
			}
			return h.value, nil
		}
		if off, err = s.skipValue(h, itemEnd, depth); err != nil {
			return 0, err
		}
	}
	if item.length == undefinedLen {
		return 0, fmt.Errorf("%w: item has no delimiter before the end", ErrMalformed)
	}
	return itemEnd, nil
}

// scanFile checks the preamble and file meta group of a Part 10 file and
// then walks its data set. A bare data set, without preamble and meta
// group, is read too (scanRaw).
// metaGroup walks the file meta group that follows the preamble and
// "DICM": the elements of group 0002 one after another, whatever its
// group length says. It returns the offset of the first byte after them,
// how many there are, and the Transfer Syntax UID's value if present.
func (s *scanner) metaGroup() (end int64, elems int, ts []byte, err error) {
	off := int64(132)
	for off+8 <= s.size {
		// The meta group is always explicit VR little endian; the data set
		// after it may not be, so look at the group before the VR.
		g, err := s.read(off, 2)
		if err != nil || binary.LittleEndian.Uint16(g) != 0x0002 {
			break
		}
		h, err := s.element(off)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("file meta: %w", err)
		}
		next, err := s.skipValue(h, s.size, 0)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("file meta: %w", err)
		}
		if h.tag == 0x00020010 {
			if h.length > 64 {
				return 0, 0, nil, fmt.Errorf("%w: transfer syntax UID of %d bytes", ErrMalformed, h.length)
			}
			ts = make([]byte, h.length)
			if _, err := s.src.ReadAt(ts, h.value); err != nil {
				return 0, 0, nil, fmt.Errorf("read transfer syntax: %w", err)
			}
		}
		off = next
		elems++
	}
	return off, elems, ts, nil
}

// MetaGroupEnd returns where the data set starts in a Part 10 file whose
// first bytes are b: the offset of the first byte after its file meta
// group. b may end anywhere after the meta group; an element of the
// group that runs past the end of b is an error. Storage uses it to find
// the data set of a stored copy without reading the whole of it.
func MetaGroupEnd(b []byte) (int64, error) {
	if len(b) < 132 || string(b[128:132]) != "DICM" {
		return 0, fmt.Errorf("%w: no DICM prefix", ErrNotDICOM)
	}
	s := &scanner{src: bytes.NewReader(b), size: int64(len(b)), order: binary.LittleEndian}
	end, _, _, err := s.metaGroup()
	return end, err
}

func scanFile(src io.ReaderAt, size int64) (*layout, []byte, error) {
	src = &blockReader{src: src, size: size}
	s := &scanner{src: src, size: size, order: binary.LittleEndian}
	magic := make([]byte, 4)
	if size >= 132 {
		if _, err := src.ReadAt(magic, 128); err != nil {
			return nil, nil, fmt.Errorf("read preamble: %w", err)
		}
	}
	if size < 132 || string(magic) != "DICM" {
		return scanRaw(src, size)
	}
	l := &layout{}
	off, elems, tsValue, err := s.metaGroup()
	if err != nil {
		return nil, nil, err
	}
	l.metaElems = elems
	inferred := tsValue == nil
	if inferred {
		// PS3.10 requires it, but some writers leave it out; dcmtk then
		// reads the data set's own encoding, as a bare data set's.
		ts, err := s.nativeSyntax(off)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: file meta has no Transfer Syntax UID (0002,0010), and %v", ErrMalformed, err)
		}
		tsValue = []byte(ts)
	}
	l.transferSyntax = string(bytes.TrimRight(tsValue, "\x00 "))
	l.metaEnd = off
	switch l.transferSyntax {
	case "1.2.840.10008.1.2":
		l.implicit, l.order = true, binary.LittleEndian
	case "1.2.840.10008.1.2.2":
		l.order = binary.BigEndian
	case "1.2.840.10008.1.2.1.99":
		l.deflated, l.order = true, binary.LittleEndian
	default: // explicit little endian, and every encapsulated syntax
		l.order = binary.LittleEndian
	}
	var inflated []byte
	data, dataStart, dataSize := src, off, size
	if l.deflated {
		var err error
		inflated, err = inflate(io.NewSectionReader(src, off, size-off))
		if err != nil {
			return nil, nil, err
		}
		data, dataStart, dataSize = bytes.NewReader(inflated), 0, int64(len(inflated))
	}
	if err := l.walk(&scanner{src: data, size: dataSize, order: l.order, implicit: l.implicit}, dataStart); err != nil {
		return nil, nil, err
	}
	if inferred && l.encapsulated {
		return nil, nil, fmt.Errorf("%w: compressed pixel data, and the file meta names no Transfer Syntax UID (0002,0010)", ErrMalformed)
	}
	return l, inflated, nil
}

func inflate(r io.Reader) ([]byte, error) {
	zr := flate.NewReader(r)
	defer zr.Close()
	b, err := io.ReadAll(io.LimitReader(zr, maxInflated+1))
	if err != nil {
		return nil, fmt.Errorf("%w: inflate deflated data set: %v", ErrMalformed, err)
	}
	if len(b) > maxInflated {
		return nil, fmt.Errorf("%w: deflated data set inflates beyond %d bytes", ErrMalformed, maxInflated)
	}
	return b, nil
}

// walk scans the top-level data set from off, stopping at the pixel data.
func (l *layout) walk(s *scanner, off int64) error {
	l.headerEnd = s.size
	if s.size-off < 8 {
		// A file cut off right after its meta group looks whole otherwise.
		return fmt.Errorf("%w: no data set after the file meta group", ErrMalformed)
	}
	for off < s.size {
		if s.size-off < 8 {
			// Zero padding shorter than an element is tolerated; anything
			// else is an element header cut short by a truncated file.
			tail, err := s.read(off, int(s.size-off))
			if err != nil {
				return err
			}
			if bytes.Count(tail, []byte{0}) != len(tail) {
				return fmt.Errorf("%w: the file ends %d bytes into an element header at offset %d", ErrMalformed, len(tail), off)
			}
			l.headerEnd = off
			break
		}
		h, err := s.element(off)
		if err != nil {
			return err
		}
		switch h.tag {
		case extOffsetTag, extLengthsTag:
			if h.length == undefinedLen || h.value+int64(h.length) > s.size {
				return fmt.Errorf("%w: extended offset table %s length %d runs past the end", ErrMalformed, h, h.length)
			}
			v := make([]byte, h.length)
			if _, err := s.src.ReadAt(v, h.value); err != nil {
				return fmt.Errorf("read %s: %w", h, err)
			}
			if h.tag == extOffsetTag {
				l.eot = v
			} else {
				l.eotLens = v
			}
		case pixelDataTag:
			l.headerEnd = off
			l.hasPixels = true
			l.pixelVR = h.vr
			if h.length != undefinedLen {
				if h.value+int64(h.length) > s.size {
					return fmt.Errorf("%w: pixel data length %d runs past the end of the file (%d bytes left)", ErrMalformed, h.length, s.size-h.value)
				}
				l.pixels = span{h.value, int64(h.length)}
				return nil
			}
			l.encapsulated = true
			return l.fragmentsFrom(s, h.value)
		}
		unSeqs := s.unSeqs
		next, err := s.skipValue(h, s.size, 0)
		if err != nil {
			return err
		}
		always := s.unSeqs > unSeqs
		if always || h.tag>>16&1 == 1 { // or a private group
			if n := len(l.omit); n > 0 && l.omit[n-1].off+l.omit[n-1].n == off && l.omit[n-1].always == always {
				l.omit[n-1].n += next - off
			} else {
				l.omit = append(l.omit, omitted{span{off, next - off}, always})
			}
		}
		off = next
	}
	return nil
}

// header returns the data set's header bytes [start, headerEnd) of src
// for the header parser, and their number: without the elements it must
// leave out, and without the top-level private elements when skipPrivate
// is set.
func (l *layout) header(src io.ReaderAt, start int64, skipPrivate bool) (io.Reader, int64) {
	var parts []io.Reader
	var n int64
	off := start
	for _, o := range l.omit {
		if !o.always && !skipPrivate {
			continue
		}
		parts = append(parts, io.NewSectionReader(src, off, o.off-off))
		n += o.off - off
		off = o.off + o.n
	}
	if len(parts) == 0 {
		return io.NewSectionReader(src, start, l.headerEnd-start), l.headerEnd - start
	}
	parts = append(parts, io.NewSectionReader(src, off, l.headerEnd-off))
	return io.MultiReader(parts...), n + l.headerEnd - off
}

// fragmentsFrom reads the items of encapsulated pixel data (PS3.5 A.4):
// the basic offset table, then one item per fragment, then the delimiter.
func (l *layout) fragmentsFrom(s *scanner, off int64) error {
	first := true
	for {
		h, err := s.element(off)
		if err != nil {
			return fmt.Errorf("encapsulated pixel data: %w", err)
		}
		if h.tag == seqDelimTag {
			return nil
		}
		if h.tag != itemTag {
			return fmt.Errorf("%w: encapsulated pixel data holds tag %08X at offset %d where an item belongs", ErrMalformed, h.tag, off)
		}
		if h.length == undefinedLen || h.value+int64(h.length) > s.size {
			return fmt.Errorf("%w: pixel data fragment at offset %d has length %d, %d bytes left", ErrMalformed, off, h.length, s.size-h.value)
		}
		if first {
			if h.length%4 != 0 {
				return fmt.Errorf("%w: basic offset table length %d is not a multiple of 4", ErrMalformed, h.length)
			}
			l.bot = make([]byte, h.length)
			if _, err := s.src.ReadAt(l.bot, h.value); err != nil && h.length > 0 {
				return fmt.Errorf("read basic offset table: %w", err)
			}
			first = false
			l.firstItem = h.value + int64(h.length)
		} else {
			if len(l.fragments) >= maxFragments {
				return fmt.Errorf("%w: more than %d pixel data fragments", ErrMalformed, maxFragments)
			}
			l.fragments = append(l.fragments, span{h.value, int64(h.length)})
		}
		off = h.value + int64(h.length)
	}
}

// skipFragments steps over encapsulated pixel data nested in a sequence
// (an icon image, say): items of raw bytes up to the sequence delimiter.
func (s *scanner) skipFragments(h header, end int64) (int64, error) {
	off := h.value
	for n := 0; off < end; n++ {
		item, err := s.element(off)
		if err != nil {
			return 0, fmt.Errorf("pixel data %s: %w", h, err)
		}
		if item.tag == seqDelimTag {
			return item.value, nil
		}
		if item.tag != itemTag || item.length == undefinedLen || item.value+int64(item.length) > end || n >= maxFragments {
			return 0, fmt.Errorf("%w: bad fragment %d in nested pixel data %s", ErrMalformed, n, h)
		}
		off = item.value + int64(item.length)
	}
	return 0, fmt.Errorf("%w: nested pixel data %s has no delimiter before the end", ErrMalformed, h)
}

// blockReader serves the scanner's many small reads from 64 KiB blocks,
// so that walking a header costs a few reads of the file, not one per
// element.
type blockReader struct {
	src  io.ReaderAt
	size int64
	off  int64 // of buf in src
	buf  []byte
}

const scanBlock = 64 << 10

func (b *blockReader) ReadAt(p []byte, off int64) (int, error) {
	if off < b.off || off+int64(len(p)) > b.off+int64(len(b.buf)) {
		if len(p) > scanBlock/4 { // large values: read directly
			return b.src.ReadAt(p, off)
		}
		n := min(int64(scanBlock), b.size-off)
		if n < int64(len(p)) {
			return b.src.ReadAt(p, off)
		}
		if cap(b.buf) < scanBlock {
			b.buf = make([]byte, scanBlock)
		}
		b.buf = b.buf[:n]
		if m, err := b.src.ReadAt(b.buf, off); m < int(n) {
			b.buf = b.buf[:0]
			return 0, err
		}
		b.off = off
	}
	return copy(p, b.buf[off-b.off:]), nil
}

// scanRaw reads a bare data set, as old archives and some tools write
// them (dcmtk reads them too): no preamble, no file meta group, little
// endian, implicit or explicit VR told apart by whether the first
// element's VR bytes are a VR. It must start at a plausible first element
// (an even group below the pixel data), or it is not DICOM.
func scanRaw(src io.ReaderAt, size int64) (*layout, []byte, error) {
	notDICOM := fmt.Errorf("%w: no DICM marker at byte 128, and no data set at byte 0", ErrNotDICOM)
	if size < 16 {
		return nil, nil, notDICOM
	}
	head := make([]byte, 8)
	if _, err := src.ReadAt(head, 0); err != nil {
		return nil, nil, fmt.Errorf("read data set: %w", err)
	}
	group := binary.LittleEndian.Uint16(head)
	if group == 0 || group%2 == 1 || group >= 0x7FE0 || group == 0x0002 {
		return nil, nil, notDICOM
	}
	s := &scanner{src: src, size: size, order: binary.LittleEndian}
	ts, _ := s.nativeSyntax(0) // 16 bytes are there
	l := &layout{raw: true, order: binary.LittleEndian, transferSyntax: ts, implicit: ts == "1.2.840.10008.1.2"}
	s.implicit = l.implicit
	if err := l.walk(s, 0); err != nil {
		return nil, nil, fmt.Errorf("%w: no DICM marker at byte 128, and not a bare data set: %v", ErrNotDICOM, err)
	}
	return l, nil, nil
}

// nativeSyntax tells the little endian encoding of the data set at off by
// its first element: explicit VR when its VR bytes are a VR, else
// implicit.
func (s *scanner) nativeSyntax(off int64) (string, error) {
	head, err := s.read(off, 8)
	if err != nil {
		return "", errors.New("no data set to tell its encoding from")
	}
	if KnownVR(string(head[4:6])) {
		return "1.2.840.10008.1.2.1", nil
	}
	return "1.2.840.10008.1.2", nil
}

// KnownVR reports whether vr is one of the value representations of PS3.5
// 6.2. An element read with another (some writers put two spaces) was read
// with a 2-byte length, as dcmtk reads it.
func KnownVR(vr string) bool {
	_, ok := knownVRs[vr]
	return ok
}

// knownVRs are the value representations of PS3.5 6.2.
var knownVRs = map[string]struct{}{
	"AE": {}, "AS": {}, "AT": {}, "CS": {}, "DA": {}, "DS": {}, "DT": {}, "FL": {}, "FD": {}, "IS": {},
	"LO": {}, "LT": {}, "OB": {}, "OD": {}, "OF": {}, "OL": {}, "OV": {}, "OW": {}, "PN": {}, "SH": {},
	"SL": {}, "SQ": {}, "SS": {}, "ST": {}, "SV": {}, "TM": {}, "UC": {}, "UI": {}, "UL": {}, "UN": {},
	"UR": {}, "US": {}, "UT": {}, "UV": {},
}
