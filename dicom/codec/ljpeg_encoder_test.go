package codec

// dcmcjpeg never writes restart markers or separate scans per component,
// so these tests make such codestreams from real pixels with a small
// test-only encoder, wrap them in the DICOM file dcmcjpeg wrote, and let
// dcmdjpeg (the oracle) and our decoder read them.

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ljBitWriter writes entropy-coded bits with 0xFF00 stuffing.
type ljBitWriter struct {
	out []byte
	acc uint32
	n   uint
}

func (w *ljBitWriter) bits(v uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | (v>>uint(i))&1
		w.n++
		if w.n == 8 {
			w.out = append(w.out, byte(w.acc))
			if byte(w.acc) == 0xFF {
				w.out = append(w.out, 0)
			}
			w.acc, w.n = 0, 0
		}
	}
}

// flush pads the last byte with 1 bits (T.81 F.1.2.3).
func (w *ljBitWriter) flush() {
	for w.n != 0 {
		w.bits(1, 1)
	}
}

// testEncodeLJPEG encodes interleaved samples as lossless JPEG with one
// Huffman table giving every category a 5-bit code, a restart interval
// (0 for none) and either one interleaved scan or one scan per component.
func testEncodeLJPEG(samples []uint16, rows, cols, nc, precision, pred, pt, restart int, interleaved bool) []byte {
	w := &ljBitWriter{}
	seg := func(m byte, payload ...byte) {
		w.out = append(w.out, 0xFF, m, byte((len(payload)+2)>>8), byte(len(payload)+2))
		w.out = append(w.out, payload...)
	}
	w.out = append(w.out, 0xFF, mSOI)
	sof := []byte{byte(precision), byte(rows >> 8), byte(rows), byte(cols >> 8), byte(cols), byte(nc)}
	for c := 0; c < nc; c++ {
		sof = append(sof, byte(c+1), 0x11, 0)
	}
	seg(mSOF3, sof...)
	dht := make([]byte, 17, 34)
	dht[5] = 17 // 17 codes of length 5
	for s := 0; s <= 16; s++ {
		dht = append(dht, byte(s))
	}
	seg(mDHT, dht...)
	if restart > 0 {
		seg(mDRI, byte(restart>>8), byte(restart))
	}
	scans := [][]int{}
	if interleaved {
		all := []int{}
		for c := 0; c < nc; c++ {
			all = append(all, c)
		}
		scans = append(scans, all)
	} else {
		for c := 0; c < nc; c++ {
			scans = append(scans, []int{c})
		}
	}
	at := func(x, y, c int) int32 { return int32(samples[(y*cols+x)*nc+c] >> pt) }
	for _, comps := range scans {
		sos := []byte{byte(len(comps))}
		for _, c := range comps {
			sos = append(sos, byte(c+1), 0)
		}
		sos = append(sos, byte(pred), 0, byte(pt))
		seg(mSOS, sos...)
		firstLine, startX, mcu, interval := true, 0, 0, 0
		for y := 0; y < rows; y++ {
			for x := 0; x < cols; x++ {
				if restart > 0 && mcu == restart {
					w.flush()
					w.out = append(w.out, 0xFF, mRST0+byte(interval%8))
					interval++
					mcu = 0
					firstLine, startX = true, x
				}
				mcu++
				for _, c := range comps {
					var px int32
					switch {
					case firstLine && x == startX:
						px = 1 << (precision - pt - 1)
					case firstLine:
						px = at(x-1, y, c)
					case x == 0:
						px = at(x, y-1, c)
					default:
						ra, rb, rc := at(x-1, y, c), at(x, y-1, c), at(x-1, y-1, c)
						px = [...]int32{0, ra, rb, rc, ra + rb - rc, ra + (rb-rc)>>1, rb + (ra-rc)>>1, (ra + rb) >> 1}[pred]
					}
					d := (at(x, y, c) - px) & 0xFFFF
					if d >= 32768 {
						d -= 65536
					}
					if d == -32768 {
						w.bits(16, 5)
						continue
					}
					mag, s := d, uint(0)
					if mag < 0 {
						mag = -mag
					}
					for mag>>s != 0 {
						s++
					}
					w.bits(uint32(s), 5)
					if d < 0 {
						d += 1<<s - 1
					}
					w.bits(uint32(d)&(1<<s-1), s)
				}
			}
			firstLine = false
		}
		w.flush()
	}
	w.out = append(w.out, 0xFF, mEOI)
	return w.out
}

// samplesOf reads native frame bytes as samples.
func samplesOf(frame []byte, bitsAllocated int) []uint16 {
	if bitsAllocated == 8 {
		s := make([]uint16, len(frame))
		for i, b := range frame {
			s[i] = uint16(b)
		}
		return s
	}
	s := make([]uint16, len(frame)/2)
	for i := range s {
		s[i] = binary.LittleEndian.Uint16(frame[2*i:])
	}
	return s
}

// replaceFragment writes a copy of the single-frame DICOM file path with
// its one fragment old replaced by cs (the item length is patched; the
// Basic Offset Table of one frame stays 0).
func replaceFragment(tb testing.TB, path, out string, old, cs []byte) {
	tb.Helper()
	file, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	i := bytes.Index(file, old)
	if i < 8 || !bytes.Equal(file[i-8:i-4], []byte{0xFE, 0xFF, 0x00, 0xE0}) {
		tb.Fatalf("%s: fragment item not found", path)
	}
	if len(cs)%2 == 1 {
		cs = append(cs, 0)
	}
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(cs)))
	patched := append(append(append(append([]byte{}, file[:i-4]...), n[:]...), cs...), file[i+len(old):]...)
	if err := os.WriteFile(out, patched, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// TestLJPEGRestartsAndScans checks restart intervals and non-interleaved
// scans against dcmdjpeg and the original pixels.
func TestLJPEGRestartsAndScans(t *testing.T) {
	dir := t.TempDir()
	var ct string
	for _, s := range sourceFiles(t) {
		if strings.HasSuffix(s, "/3.dcm") {
			ct = s
		}
	}
	rgb := colourFile(t, dir)
	tests := []struct {
		src                   string
		pred, pt, restartRows int
		interleaved           bool
	}{
		{ct, 1, 0, 1, true},
		{ct, 4, 0, 3, true},
		{ct, 5, 0, 7, true},
		{ct, 6, 2, 4, true},
		{ct, 7, 0, 0, true},
		{rgb, 1, 0, 2, true},
		{rgb, 7, 0, 0, false},
		{rgb, 4, 1, 5, false},
		{rgb, 6, 0, 9, false},
		{rgb, 2, 0, 1, false}, // every row a first line: predictor 1 only
	}
	for i, tc := range tests {
		name := filepath.Base(tc.src) + "/pred" + strconv.Itoa(tc.pred) + "pt" + strconv.Itoa(tc.pt) + "rst" + strconv.Itoa(tc.restartRows)
		if !tc.interleaved {
			name += "/separate-scans"
		}
		t.Run(name, func(t *testing.T) {
			orig := readFile(t, tc.src)
			p := orig.params
			encPath := filepath.Join(dir, strconv.Itoa(i)+".base.dcm")
			run(t, "dcmcjpeg", "+el", "+sv", "1", tc.src, encPath)
			base := readFile(t, encPath)
			precision := int(base.frames[0][bytes.Index(base.frames[0], []byte{0xFF, mSOF3})+4])
			cs := testEncodeLJPEG(samplesOf(orig.frames[0], p.BitsAllocated), p.Rows, p.Columns, p.SamplesPerPixel,
				precision, tc.pred, tc.pt, tc.restartRows*p.Columns, tc.interleaved)
			patched := filepath.Join(dir, strconv.Itoa(i)+".dcm")
			replaceFragment(t, encPath, patched, base.frames[0], cs)
			decPath := filepath.Join(dir, strconv.Itoa(i)+".raw.dcm")
			run(t, "dcmdjpeg", patched, decPath)
			want := readFile(t, decPath).frames[0]

			fr, err := DecodeLosslessJPEG(cs, p)
			if err != nil {
				t.Fatal(err)
			}
			if string(fr.Data) != string(want) {
				t.Fatalf("differs from dcmdjpeg: %s", firstDiff(fr.Data, want))
			}
			if tc.pt == 0 && string(fr.Data) != string(orig.frames[0]) {
				t.Fatalf("differs from the original: %s", firstDiff(fr.Data, orig.frames[0]))
			}
		})
	}
}

// TestLJPEGRestartErrors breaks the restart markers of a real image's
// codestream.
func TestLJPEGRestartErrors(t *testing.T) {
	var ct string
	for _, s := range sourceFiles(t) {
		if strings.HasSuffix(s, "/3.dcm") {
			ct = s
		}
	}
	orig := readFile(t, ct)
	p := orig.params
	cs := testEncodeLJPEG(samplesOf(orig.frames[0], 16), p.Rows, p.Columns, 1, 16, 1, 0, p.Columns, true)
	if _, err := DecodeLosslessJPEG(cs, p); err != nil {
		t.Fatalf("unbroken: %v", err)
	}
	rst := bytes.Index(cs, []byte{0xFF, mRST0 + 1})
	wrong := append([]byte{}, cs...)
	wrong[rst+1] = mRST0 + 5
	if _, err := DecodeLosslessJPEG(wrong, p); err == nil || !strings.Contains(err.Error(), "want RST1") {
		t.Fatalf("wrong RST number: err = %v", err)
	}
	missing := append(append([]byte{}, cs[:rst]...), cs[rst+2:]...)
	if _, err := DecodeLosslessJPEG(missing, p); err == nil || !strings.Contains(err.Error(), "want RST1") {
		t.Fatalf("missing RST: err = %v", err)
	}
}
