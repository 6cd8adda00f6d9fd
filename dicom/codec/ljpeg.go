package codec

import (
	"encoding/binary"
	"fmt"
)

// Lossless JPEG (ITU T.81 process 14, Annex H) has no pure-Go decoder on
// the module proxy, and the cgo route needs GDCM's patched IJG builds; the
// process is small (Huffman-coded differences from one of seven
// predictors), so it is decoded here and is present in every build.
func init() {
	Register(JPEGLossless, "go-ljpeg", DecodeLosslessJPEG)
	Register(JPEGLosslessSV1, "go-ljpeg", DecodeLosslessJPEG)
}

// JPEG markers used by the lossless process (T.81 Table B.1).
const (
	mSOF3 = 0xC3
	mDHT  = 0xC4
	mSOI  = 0xD8
	mEOI  = 0xD9
	mSOS  = 0xDA
	mDRI  = 0xDD
	mRST0 = 0xD0
	mRST7 = 0xD7
	mTEM  = 0x01
)

// lutBits is the width of the Huffman fast lookup: codes up to this length
// (nearly all of them in CT images) decode with one table read.
const lutBits = 10

// ljHuff is one decoding table (T.81 F.2.2.3) with a lookup for short
// codes.
type ljHuff struct {
	lut     [1 << lutBits]uint16 // length<<8 | symbol; 0 means longer code
	maxcode [17]int32            // largest code of each length, -1 if none
	valptr  [17]int32            // index in vals of the first code of each length
	mincode [17]int32
	vals    [256]byte
	defined bool
}

// build fills h from a DHT's 16 code counts and its symbols.
func (h *ljHuff) build(counts []byte, symbols []byte) error {
	*h = ljHuff{}
	code, k := int32(0), 0
	for l := 1; l <= 16; l++ {
		n := int(counts[l-1])
		h.valptr[l] = int32(k)
		h.mincode[l] = code
		code += int32(n)
		if code > 1<<l {
			return fmt.Errorf("DHT: %d codes of length %d overflow the code space", n, l)
		}
		h.maxcode[l] = code - 1
		if n == 0 {
			h.maxcode[l] = -1
		}
		for i := 0; i < n; i++ {
			sym := symbols[k+i]
			h.vals[k+i] = sym
			if l <= lutBits {
				c := int(h.mincode[l]) + i
				shift := lutBits - l
				e := uint16(l)<<8 | uint16(sym)
				for j := c << shift; j < (c+1)<<shift; j++ {
					h.lut[j] = e
				}
			}
		}
		k += n
		code <<= 1
	}
	h.defined = true
	return nil
}

// bitReader reads the entropy-coded segment of a scan: it drops the 0x00
// after each stuffed 0xFF and stops at a marker, feeding zero bits past it
// and counting them so that reading beyond the data is detected.
type bitReader struct {
	data   []byte
	pos    int    // next byte of data to load
	acc    uint64 // the low n bits are unread
	n      uint
	pad    uint // zero bits appended after a marker or the data end
	marker bool // pos is at a marker (or the end)
}

// fill tops the accumulator up to at least 57 bits.
func (br *bitReader) fill() {
	for br.n <= 56 {
		if !br.marker && br.pos+1 < len(br.data) {
			b := br.data[br.pos]
			if b != 0xFF {
				br.acc = br.acc<<8 | uint64(b)
				br.n += 8
				br.pos++
				continue
			}
			if br.data[br.pos+1] == 0 {
				br.acc = br.acc<<8 | 0xFF
				br.n += 8
				br.pos += 2
				continue
			}
			br.marker = true
		} else if !br.marker && br.pos < len(br.data) && br.data[br.pos] != 0xFF {
			// Last byte of the buffer, not a marker prefix.
			br.acc = br.acc<<8 | uint64(br.data[br.pos])
			br.n += 8
			br.pos++
			continue
		}
		br.marker = true
		br.acc <<= 8
		br.n += 8
		br.pad += 8
	}
}

// overrun reports whether more bits were consumed than the data held.
func (br *bitReader) overrun() bool { return br.n < br.pad }

// reset starts reading at pos with an empty accumulator (after a marker).
func (br *bitReader) reset(pos int) {
	br.pos, br.acc, br.n, br.pad, br.marker = pos, 0, 0, 0, false
}

// nextMarker returns the position of the next marker at or after the
// reader's byte position, skipping bytes the decoder did not need (IJG
// tolerates such trailing bytes too), or -1 if there is none.
func (br *bitReader) nextMarker() int {
	d := br.data
	for i := br.pos; i+1 < len(d); i++ {
		if d[i] == 0xFF && d[i+1] != 0 && d[i+1] != 0xFF {
			return i
		}
	}
	return -1
}

// diff decodes one Huffman-coded difference (T.81 H.1.2.2 and F.2.2.1).
// The caller has made sure at least 32 bits are in the accumulator.
func (br *bitReader) diff(h *ljHuff) (int32, error) {
	e := h.lut[(br.acc>>(br.n-lutBits))&(1<<lutBits-1)]
	var s uint
	if e != 0 {
		br.n -= uint(e >> 8)
		s = uint(e & 0xFF)
	} else {
		c16 := int32((br.acc >> (br.n - 16)) & 0xFFFF)
		l := lutBits + 1
		for ; l <= 16; l++ {
			c := c16 >> (16 - l)
			if c <= h.maxcode[l] {
				s = uint(h.vals[h.valptr[l]+c-h.mincode[l]])
				break
			}
		}
		if l > 16 {
			return 0, fmt.Errorf("bad Huffman code %016b", c16)
		}
		br.n -= uint(l)
	}
	switch {
	case s == 0:
		return 0, nil
	case s == 16:
		return 32768, nil
	case s > 16:
		return 0, fmt.Errorf("difference category %d > 16", s)
	}
	v := int32((br.acc >> (br.n - s)) & (1<<s - 1))
	br.n -= s
	if v < 1<<(s-1) {
		v -= 1<<s - 1
	}
	return v, nil
}

// ljFrame is what SOF3 declares.
type ljFrame struct {
	precision  int
	rows, cols int
	ids        []byte // component identifiers, in frame order
}

// ljDecoder holds the state of one codestream.
type ljDecoder struct {
	p       Params
	data    []byte
	frame   *ljFrame
	tables  [4]ljHuff
	restart int // MCUs per restart interval, 0 for none
	out     []byte
	done    []bool // which components a scan has decoded
}

// DecodeLosslessJPEG decodes a lossless JPEG codestream (process 14, any
// predictor and point transform, precision 2..16, one or more components
// in interleaved or separate scans) into the native layout of Frame.
func DecodeLosslessJPEG(data []byte, p Params) (Frame, error) {
	if p.Rows < 1 || p.Rows > 65535 || p.Columns < 1 || p.Columns > 65535 {
		return Frame{}, fmt.Errorf("%w: ljpeg: bad frame size %d×%d", ErrCorrupt, p.Columns, p.Rows)
	}
	if p.SamplesPerPixel < 1 || p.SamplesPerPixel > 4 {
		return Frame{}, fmt.Errorf("%w: ljpeg: %d samples per pixel", ErrCorrupt, p.SamplesPerPixel)
	}
	if p.BitsAllocated != 8 && p.BitsAllocated != 16 {
		return Frame{}, fmt.Errorf("%w: ljpeg: %d bits allocated, want 8 or 16", ErrCorrupt, p.BitsAllocated)
	}
	d := &ljDecoder{p: p, data: data}
	if err := d.run(); err != nil {
		return Frame{}, fmt.Errorf("%w: ljpeg: %v", ErrCorrupt, err)
	}
	return Frame{Data: d.out}, nil
}

// segment returns the payload of the marker segment whose length field is
// at pos, and the position after it.
func (d *ljDecoder) segment(pos int, name string) ([]byte, int, error) {
	if pos+2 > len(d.data) {
		return nil, 0, fmt.Errorf("%s at byte %d: length cut off", name, pos-2)
	}
	n := int(binary.BigEndian.Uint16(d.data[pos:]))
	if n < 2 || pos+n > len(d.data) {
		return nil, 0, fmt.Errorf("%s at byte %d: length %d beyond codestream of %d bytes", name, pos-2, n, len(d.data))
	}
	return d.data[pos+2 : pos+n], pos + n, nil
}

func (d *ljDecoder) run() error {
	if len(d.data) < 2 || d.data[0] != 0xFF || d.data[1] != mSOI {
		return fmt.Errorf("no SOI marker at the start")
	}
	pos := 2
	for {
		if pos >= len(d.data) {
			return d.finish(fmt.Errorf("codestream ends at byte %d without EOI", pos))
		}
		if d.data[pos] != 0xFF {
			return fmt.Errorf("expected a marker at byte %d, found 0x%02X", pos, d.data[pos])
		}
		for pos < len(d.data) && d.data[pos] == 0xFF { // fill bytes
			pos++
		}
		if pos >= len(d.data) {
			return d.finish(fmt.Errorf("codestream ends at byte %d without EOI", pos))
		}
		m := d.data[pos]
		pos++
		switch {
		case m == mEOI:
			return d.finish(nil)
		case m == mSOF3:
			seg, next, err := d.segment(pos, "SOF3")
			if err != nil {
				return err
			}
			if err := d.sof(seg); err != nil {
				return err
			}
			pos = next
		case m >= 0xC0 && m <= 0xCF && m != mDHT && m != 0xC8 && m != 0xCC:
			return fmt.Errorf("SOF%d: not a lossless process 14 codestream", m-0xC0)
		case m == mDHT:
			seg, next, err := d.segment(pos, "DHT")
			if err != nil {
				return err
			}
			if err := d.dht(seg); err != nil {
				return err
			}
			pos = next
		case m == mDRI:
			seg, next, err := d.segment(pos, "DRI")
			if err != nil {
				return err
			}
			if len(seg) != 2 {
				return fmt.Errorf("DRI of %d bytes, want 2", len(seg))
			}
			d.restart = int(binary.BigEndian.Uint16(seg))
			pos = next
		case m == mSOS:
			seg, next, err := d.segment(pos, "SOS")
			if err != nil {
				return err
			}
			end, err := d.sos(seg, next)
			if err != nil {
				return err
			}
			pos = end
		case m >= mRST0 && m <= mRST7:
			return fmt.Errorf("RST%d at byte %d outside a scan", m-mRST0, pos-2)
		case m == mSOI:
			return fmt.Errorf("second SOI at byte %d", pos-2)
		case m == mTEM:
		default: // APPn, COM, DQT, DNL and the like: skip
			_, next, err := d.segment(pos, fmt.Sprintf("marker 0xFF%02X", m))
			if err != nil {
				return err
			}
			pos = next
		}
	}
}

// finish accepts a codestream without EOI (some encoders drop it) as long
// as every component was decoded; cause is why it ended.
func (d *ljDecoder) finish(cause error) error {
	if d.frame == nil {
		return fmt.Errorf("no SOF3 frame header")
	}
	if d.out == nil {
		return fmt.Errorf("no scan")
	}
	for i, ok := range d.done {
		if !ok {
			if cause != nil {
				return cause
			}
			return fmt.Errorf("component %d has no scan", d.frame.ids[i])
		}
	}
	return nil
}

func (d *ljDecoder) sof(seg []byte) error {
	if d.frame != nil {
		return fmt.Errorf("second SOF3")
	}
	if len(seg) < 6 {
		return fmt.Errorf("SOF3 of %d bytes", len(seg))
	}
	f := &ljFrame{
		precision: int(seg[0]),
		rows:      int(binary.BigEndian.Uint16(seg[1:])),
		cols:      int(binary.BigEndian.Uint16(seg[3:])),
	}
	nc := int(seg[5])
	if len(seg) != 6+3*nc {
		return fmt.Errorf("SOF3 of %d bytes for %d components", len(seg), nc)
	}
	if f.precision < 2 || f.precision > 16 {
		return fmt.Errorf("SOF3 precision %d outside 2..16", f.precision)
	}
	p := d.p
	if f.precision > p.BitsAllocated {
		return fmt.Errorf("SOF3 precision %d exceeds %d bits allocated", f.precision, p.BitsAllocated)
	}
	if f.rows != p.Rows || f.cols != p.Columns || nc != p.SamplesPerPixel {
		return fmt.Errorf("SOF3 declares %d×%d×%d, header says %d×%d×%d", f.cols, f.rows, nc, p.Columns, p.Rows, p.SamplesPerPixel)
	}
	for i := 0; i < nc; i++ {
		c := seg[6+3*i:]
		if c[1] != 0x11 {
			return fmt.Errorf("component %d sampling %dx%d, only 1x1 is supported", c[0], c[1]>>4, c[1]&15)
		}
		for _, id := range f.ids {
			if id == c[0] {
				return fmt.Errorf("component %d declared twice", id)
			}
		}
		f.ids = append(f.ids, c[0])
	}
	// Every sample costs at least one bit of Huffman code, which bounds a
	// hostile header's claims by the codestream's size.
	if samples := int64(f.rows) * int64(f.cols) * int64(nc); samples > 8*int64(len(d.data)) {
		return fmt.Errorf("%d samples cannot fit in %d bytes", samples, len(d.data))
	}
	d.frame = f
	d.done = make([]bool, nc)
	return nil
}

func (d *ljDecoder) dht(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return fmt.Errorf("DHT cut off")
		}
		tc, th := seg[0]>>4, seg[0]&15
		n := 0
		for _, c := range seg[1:17] {
			n += int(c)
		}
		if n > 256 || len(seg) < 17+n {
			return fmt.Errorf("DHT table %d/%d declares %d symbols in %d bytes", tc, th, n, len(seg)-17)
		}
		if th > 3 || tc > 1 {
			return fmt.Errorf("DHT class %d destination %d", tc, th)
		}
		if tc == 0 { // lossless uses the DC class; AC tables are not ours
			if err := d.tables[th].build(seg[1:17], seg[17:17+n]); err != nil {
				return fmt.Errorf("table %d: %v", th, err)
			}
		}
		seg = seg[17+n:]
	}
	return nil
}

// sos decodes one scan whose header is seg and whose entropy-coded data
// starts at pos; it returns the position of the marker after the scan.
func (d *ljDecoder) sos(seg []byte, pos int) (int, error) {
	f := d.frame
	if f == nil {
		return 0, fmt.Errorf("SOS before SOF3")
	}
	if len(seg) < 1 {
		return 0, fmt.Errorf("empty SOS")
	}
	ns := int(seg[0])
	if ns < 1 || ns > len(f.ids) || len(seg) != 4+2*ns {
		return 0, fmt.Errorf("SOS of %d bytes for %d components", len(seg), ns)
	}
	comps := make([]int, ns)    // frame index of each scan component
	tabs := make([]*ljHuff, ns) // its table
	for k := 0; k < ns; k++ {
		id, td := seg[1+2*k], seg[2+2*k]>>4
		ci := -1
		for i, fid := range f.ids {
			if fid == id {
				ci = i
			}
		}
		if ci < 0 {
			return 0, fmt.Errorf("SOS names component %d, not in SOF3", id)
		}
		for _, prev := range comps[:k] {
			if prev == ci {
				return 0, fmt.Errorf("SOS names component %d twice", id)
			}
		}
		if td > 3 || !d.tables[td].defined {
			return 0, fmt.Errorf("SOS component %d uses undefined Huffman table %d", id, td)
		}
		comps[k], tabs[k] = ci, &d.tables[td]
	}
	pred := int(seg[1+2*ns])
	pt := int(seg[3+2*ns] & 15)
	if pred < 1 || pred > 7 {
		return 0, fmt.Errorf("SOS predictor %d outside 1..7", pred)
	}
	if pt >= f.precision {
		return 0, fmt.Errorf("point transform %d not below precision %d", pt, f.precision)
	}
	if d.out == nil {
		d.out = make([]byte, f.rows*f.cols*len(f.ids)*(d.p.BitsAllocated/8))
	}
	br := &bitReader{data: d.data}
	br.reset(pos)
	if err := d.scan(br, comps, tabs, pred, pt); err != nil {
		return 0, err
	}
	for _, ci := range comps {
		d.done[ci] = true
	}
	end := br.nextMarker()
	if end < 0 {
		end = len(d.data)
	}
	return end, nil
}

// scan decodes the entropy-coded data of one scan into d.out.
func (d *ljDecoder) scan(br *bitReader, comps []int, tabs []*ljHuff, pred, pt int) error {
	f := d.frame
	ns, nc, cols := len(comps), len(f.ids), f.cols
	initial := int32(1) << (f.precision - pt - 1)
	mask := uint32(1)<<f.precision - 1
	prev := make([]int32, cols*ns)
	cur := make([]int32, cols*ns)
	wide := d.p.BitsAllocated == 16

	firstLine, startX := true, 0 // first line of the scan or restart interval
	mcu, interval := 0, 0
	for y := 0; y < f.rows; y++ {
		if ns == 1 && !firstLine && (d.restart == 0 || d.restart-mcu > cols) {
			// The common case, a row with neither restart nor first-line
			// rules, gets its own tight loop.
			if err := br.steadyRow(tabs[0], prev, cur, pred); err != nil {
				return fmt.Errorf("row %d: %v", y, err)
			}
			mcu += cols
			goto written
		}
		for x := 0; x < cols; x++ {
			if d.restart > 0 && mcu == d.restart {
				if err := d.nextInterval(br, interval); err != nil {
					return fmt.Errorf("row %d column %d: %v", y, x, err)
				}
				interval++
				mcu = 0
				firstLine, startX = true, x
			}
			mcu++
			if br.n < 32 {
				br.fill()
			}
			base := x * ns
			for k := 0; k < ns; k++ {
				if k > 0 && br.n < 32 {
					br.fill()
				}
				diff, err := br.diff(tabs[k])
				if err != nil {
					return fmt.Errorf("row %d column %d: %v", y, x, err)
				}
				var px int32
				switch {
				case firstLine && x == startX:
					px = initial
				case firstLine:
					px = cur[base-ns+k]
				case x == 0:
					px = prev[k]
				default:
					ra, rb, rc := cur[base-ns+k], prev[base+k], prev[base-ns+k]
					switch pred {
					case 1:
						px = ra
					case 2:
						px = rb
					case 3:
						px = rc
					case 4:
						px = ra + rb - rc
					case 5:
						px = ra + (rb-rc)>>1
					case 6:
						px = rb + (ra-rc)>>1
					case 7:
						px = (ra + rb) >> 1
					}
				}
				cur[base+k] = (px + diff) & 0xFFFF
			}
		}
	written:
		if br.overrun() {
			return fmt.Errorf("scan data ends in row %d of %d", y+1, f.rows)
		}
		// Write the row out: shift back by the point transform and keep
		// the declared precision.
		rowOut := y * cols * nc
		for k, ci := range comps {
			if wide {
				o := d.out[2*(rowOut+ci):]
				for x := 0; x < cols; x++ {
					v := uint32(cur[x*ns+k]) << pt & mask
					o[2*x*nc] = byte(v)
					o[2*x*nc+1] = byte(v >> 8)
				}
			} else {
				o := d.out[rowOut+ci:]
				for x := 0; x < cols; x++ {
					o[x*nc] = byte(uint32(cur[x*ns+k]) << pt & mask)
				}
			}
		}
		prev, cur = cur, prev
		firstLine = false
	}
	return nil
}

// steadyRow decodes a row of a one-component scan that is not the first
// line of the scan or of a restart interval, so column 0 predicts from
// above and the others with predictor pred.
func (br *bitReader) steadyRow(h *ljHuff, prev, cur []int32, pred int) error {
	cols := len(cur)
	prev = prev[:cols]
	for x := 0; x < cols; x++ {
		if br.n < 32 {
			br.fill()
		}
		var diff int32
		e := h.lut[(br.acc>>(br.n-lutBits))&(1<<lutBits-1)]
		if s := uint(e & 0xFF); e != 0 && s < 16 {
			// Inline fast path: a short code and at most 15 extra bits
			// (s == 0 yields 0 through the same arithmetic).
			n := br.n - uint(e>>8)
			v := int32((br.acc >> (n - s)) & (1<<s - 1))
			br.n = n - s
			if v < 1<<s>>1 {
				v -= 1<<s - 1
			}
			diff = v
		} else {
			v, err := br.diff(h)
			if err != nil {
				return fmt.Errorf("column %d: %v", x, err)
			}
			diff = v
		}
		var px int32
		if x == 0 {
			px = prev[0]
		} else {
			ra, rb, rc := cur[x-1], prev[x], prev[x-1]
			switch pred {
			case 1:
				px = ra
			case 2:
				px = rb
			case 3:
				px = rc
			case 4:
				px = ra + rb - rc
			case 5:
				px = ra + (rb-rc)>>1
			case 6:
				px = rb + (ra-rc)>>1
			default:
				px = (ra + rb) >> 1
			}
		}
		cur[x] = (px + diff) & 0xFFFF
	}
	return nil
}

// nextInterval moves the reader past the RST marker that ends restart
// interval i (T.81 E.2.4, F.2.1.3.1).
func (d *ljDecoder) nextInterval(br *bitReader, i int) error {
	if br.overrun() {
		return fmt.Errorf("restart interval %d ends early", i)
	}
	at := br.nextMarker()
	if at < 0 {
		return fmt.Errorf("missing RST%d after restart interval %d", i%8, i)
	}
	if m := br.data[at+1]; m != mRST0+byte(i%8) {
		return fmt.Errorf("found marker 0xFF%02X at byte %d, want RST%d", m, at, i%8)
	}
	br.reset(at + 2)
	return nil
}
