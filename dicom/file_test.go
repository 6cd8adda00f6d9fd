package dicom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestOpenAll opens every test file and decodes its first, middle and last
// frame: whatever the syntax, a frame has the header's shape.
func TestOpenAll(t *testing.T) {
	for _, path := range testFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			m := f.Meta
			if m.SOPInstanceUID == "" || m.TransferSyntaxUID == "" {
				t.Errorf("missing UIDs: %+v", m)
			}
			for _, i := range sampleFrames(f.NumFrames()) {
				fr, err := f.Frame(i)
				if err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				if fr.Rows != m.Image.Rows || fr.Columns != m.Image.Columns || len(fr.Pix) != fr.Rows*fr.Columns*fr.Samples {
					t.Errorf("frame %d: %dx%dx%d with %d samples", i+1, fr.Columns, fr.Rows, fr.Samples, len(fr.Pix))
				}
			}
			if _, err := f.Frame(f.NumFrames()); !errors.Is(err, ErrNoFrame) && !errors.Is(err, ErrNoPixels) {
				t.Errorf("frame past the end: %v, want ErrNoFrame", err)
			}
		})
	}
}

// TestMeta pins what the metadata model must say about files whose
// content is known, including the pitfalls: enhanced CT keeps rescale and
// window only in its functional groups.
func TestMeta(t *testing.T) {
	tests := []struct {
		file  string
		check func(m *Meta) string
	}{
		{"ct-enhanced-multiframe.dcm", func(m *Meta) string {
			if m.Image.NumberOfFrames != 2 || m.Series.Modality != "CT" {
				return "want 2 CT frames"
			}
			if m.Image.RescaleOf(0).Intercept != -1024 || m.Image.RescaleOf(1).Slope != 1 {
				return "rescale from the functional groups missing"
			}
			if len(m.Image.WindowsOf(0)) == 0 {
				return "window from the functional groups missing"
			}
			return ""
		}},
		{"cr-chest-monochrome1.dcm", func(m *Meta) string {
			if !m.Image.PhotometricIs("MONOCHROME1") || m.Image.Rows < 1000 {
				return "want a large MONOCHROME1 image"
			}
			return ""
		}},
		{"ct-signed-rescale-small.dcm", func(m *Meta) string {
			if m.Image.PixelRepresentation != 1 || m.Image.Rescale.Intercept == 0 {
				return "want signed pixels with a rescale intercept"
			}
			return ""
		}},
		{"ct-j2k-lossy.dcm", func(m *Meta) string {
			if !m.Image.LossyCompression {
				return "lossy JPEG 2000 must be flagged lossy"
			}
			return ""
		}},
		{"us-palette-rle-10frame.dcm", func(m *Meta) string {
			if m.Image.Palette == nil || m.Image.Palette.Red.Entries == 0 {
				return "palette missing"
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := Open(filepath.Join("../testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(&f.Meta); msg != "" {
				t.Errorf("%s: %+v", msg, f.Meta.Image)
			}
		})
	}
}

// elem encodes one explicit VR little endian element.
func elem(group, element uint16, vr string, value []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, group)
	binary.Write(&b, binary.LittleEndian, element)
	b.WriteString(vr)
	if longVR(vr) {
		b.Write([]byte{0, 0})
		binary.Write(&b, binary.LittleEndian, uint32(len(value)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint16(len(value)))
	}
	b.Write(value)
	return b.Bytes()
}

func us(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }

func str(s string) []byte {
	if len(s)%2 == 1 {
		s += " "
	}
	return []byte(s)
}

// synthetic builds a Part 10 file in explicit VR little endian with the
// given image header and pixel data length; pixels are left to the caller.
func synthetic(rows, cols, frames int) []byte {
	var meta bytes.Buffer
	meta.Write(elem(0x0002, 0x0001, "OB", []byte{0, 1}))
	meta.Write(elem(0x0002, 0x0010, "UI", str("1.2.840.10008.1.2.1\x00")))
	var b bytes.Buffer
	b.Write(make([]byte, 128))
	b.WriteString("DICM")
	b.Write(elem(0x0002, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(meta.Len()))))
	b.Write(meta.Bytes())
	b.Write(elem(0x0008, 0x0018, "UI", str("1.2.3.4")))
	b.Write(elem(0x0008, 0x0060, "CS", str("CT")))
	b.Write(elem(0x0028, 0x0002, "US", us(1)))
	b.Write(elem(0x0028, 0x0004, "CS", str("MONOCHROME2")))
	b.Write(elem(0x0028, 0x0008, "IS", str(itoa(frames))))
	b.Write(elem(0x0028, 0x0010, "US", us(uint16(rows))))
	b.Write(elem(0x0028, 0x0011, "US", us(uint16(cols))))
	b.Write(elem(0x0028, 0x0100, "US", us(16)))
	b.Write(elem(0x0028, 0x0101, "US", us(12)))
	b.Write(elem(0x0028, 0x0102, "US", us(11)))
	b.Write(elem(0x0028, 0x0103, "US", us(0)))
	return b.Bytes()
}

func itoa(n int) string { return strconv.Itoa(n) }

// pixelHeader is the (7FE0,0010) OW element header for n bytes.
func pixelHeader(n uint32) []byte {
	b := elem(0x7FE0, 0x0010, "OW", nil)
	binary.LittleEndian.PutUint32(b[8:], n)
	return b
}

// TestMalformed feeds broken files and checks each gets an error that
// says what was wrong, and no panic.
func TestMalformed(t *testing.T) {
	good := append(synthetic(4, 4, 1), pixelHeader(32)...)
	good = append(good, make([]byte, 32)...)
	if _, err := Parse(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatalf("the well-formed base file fails: %v", err)
	}
	real, err := os.ReadFile("../testdata/mr-small.dcm")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(bytes.NewReader(real), int64(len(real)))
	if err != nil {
		t.Fatal(err)
	}
	metaEnd, pixelAt := f.DatasetOffset(), bytes.Index(real, []byte{0xE0, 0x7F, 0x10, 0x00})
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no DICM"},
		{"not DICOM", bytes.Repeat([]byte("hello "), 40), "no DICM"},
		{"truncated header", real[:200], ""},
		{"truncated pixels", real[:len(real)-200], "pixel data length"},
		{"cut after the meta group", real[:metaEnd], "no data set"},
		{"cut inside an element header", real[:pixelAt+5], "ends 5 bytes into an element header"},
		{"huge element length", func() []byte {
			b := append(synthetic(4, 4, 1), elem(0x0010, 0x0010, "UT", nil)...)
			binary.LittleEndian.PutUint32(b[len(b)-4:], 0xFFFFFFF0)
			return b
		}(), "runs past the end"},
		{"pixel length short of header", append(append(synthetic(64, 64, 2), pixelHeader(32)...), make([]byte, 32)...), "does not match the header"},
		{"rows zero", append(append(synthetic(0, 4, 1), pixelHeader(32)...), make([]byte, 32)...), "image is"},
		{"absurd geometry", append(append(synthetic(65535, 65535, 1), pixelHeader(32)...), make([]byte, 32)...), "samples per frame"},
		{"unterminated encapsulated", append(synthetic(4, 4, 1), []byte{0xE0, 0x7F, 0x10, 0x00, 'O', 'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0}...), "need 8 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotDICOM) {
				t.Errorf("error %q is neither ErrMalformed nor ErrNotDICOM", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestTrailingZeroPadding: fewer than 8 zero bytes after the last element
// are padding and are not handed to the header parser, which failed on
// them; other bytes there are an element header cut short.
func TestTrailingZeroPadding(t *testing.T) {
	data, err := os.ReadFile("../testdata/mr-small.dcm")
	if err != nil {
		t.Fatal(err)
	}
	head := data[:bytes.Index(data, []byte{0xE0, 0x7F, 0x10, 0x00})]
	want, err := Parse(bytes.NewReader(head), int64(len(head)))
	if err != nil {
		t.Fatal(err)
	}
	padded := append(bytes.Clone(head), 0, 0, 0)
	got, err := Parse(bytes.NewReader(padded), int64(len(padded)))
	if err != nil || got.Meta.SOPInstanceUID != want.Meta.SOPInstanceUID || len(got.Dataset.Elements) != len(want.Dataset.Elements) {
		t.Fatalf("zero padding: %v", err)
	}
	cut := append(bytes.Clone(head), 0x10, 0, 0)
	if _, err := Parse(bytes.NewReader(cut), int64(len(cut))); err == nil || !strings.Contains(err.Error(), "into an element header") {
		t.Errorf("a cut element header: %v", err)
	}
}

// TestEveryCut cuts small files, native and encapsulated, at every byte:
// each cut before the end of the pixel data is refused, or reads as a
// header without pixel data, which ingest refuses (Lightbox stores
// images).
func TestEveryCut(t *testing.T) {
	for _, name := range []string{"cr-monochrome1-rescale-16x16.dcm", "ot-rgb-rle-16bit-2frame.dcm", "mr-small-jpegls-lossless.dcm", "ot-rgb-planar0-3x3-odd-length.dcm"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("../testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			// What follows encapsulated pixel data (trailing padding here)
			// can go unnoticed: nothing essential is lost.
			end := len(data)
			if i := bytes.LastIndex(data, []byte{0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0}); i > 0 {
				end = i + 8
			}
			for n := 0; n < end; n++ {
				f, err := Parse(bytes.NewReader(data[:n]), int64(n))
				if err == nil && f.NumFrames() > 0 {
					t.Fatalf("cut at %d of %d bytes reads as a whole file", n, len(data))
				}
			}
		})
	}
}

// TestHeaderOfHugeFile reads the header of a 500 MB multi-frame file and
// checks the reader allocates a small, fixed amount: the pixels are never
// read. The file is sparse, so it costs no disk.
func TestHeaderOfHugeFile(t *testing.T) {
	const rows, cols, frames = 512, 512, 1000 // 2 bytes a pixel: 524 MB
	path := filepath.Join(t.TempDir(), "huge.dcm")
	h := append(synthetic(rows, cols, frames), pixelHeader(rows*cols*2*frames)...)
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	fh.Write(h)
	if err := fh.Truncate(int64(len(h)) + rows*cols*2*frames); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f, err := Open(path)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if f.NumFrames() != frames {
		t.Fatalf("%d frames, want %d", f.NumFrames(), frames)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 20<<20 {
		t.Errorf("reading the header allocated %d bytes, want under 20 MB", got)
	}
	fr, err := f.Frame(frames - 1)
	if err != nil || len(fr.Pix) != rows*cols {
		t.Errorf("last frame: %v", err)
	}
}

// FuzzParse feeds the header readers and frame decoder mutated real files.
func FuzzParse(f *testing.F) {
	for _, p := range testFiles(f) {
		if st, err := os.Stat(p); err == nil && st.Size() < 200<<10 {
			b, _ := os.ReadFile(p)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		lean, err := ParseMeta(bytes.NewReader(b), int64(len(b)))
		if err != nil || lean.Meta.SOPInstanceUID != file.Meta.SOPInstanceUID || lean.NumFrames() != file.NumFrames() {
			t.Fatalf("Parse read the file, ParseMeta: %v", err)
		}
		for i := 0; i < file.NumFrames() && i < 2; i++ {
			file.Frame(i)
		}
	})
}

// TestBareDataset reads data sets written without preamble and file meta
// group (dcmconv -F), implicit and explicit VR, and checks they decode to
// the same frames as the Part 10 originals.
func TestBareDataset(t *testing.T) {
	dcmconv := needTool(t, "dcmconv")
	for _, name := range []string{"ct-signed-implicit-512.dcm", "mr-small.dcm", "ct-enhanced-multiframe.dcm"} {
		for _, ts := range []string{"+ti", "+te"} {
			t.Run(name+ts, func(t *testing.T) {
				in := filepath.Join("../testdata", name)
				out := filepath.Join(t.TempDir(), "bare.dcm")
				if msg, err := exec.Command(dcmconv, "-F", ts, in, out).CombinedOutput(); err != nil {
					t.Fatalf("dcmconv: %v: %s", err, msg)
				}
				orig, err := Open(in)
				if err != nil {
					t.Fatal(err)
				}
				bare, err := Open(out)
				if err != nil {
					t.Fatal(err)
				}
				if !bare.Bare() || orig.Bare() || bare.DatasetOffset() != 0 {
					t.Error("Bare() does not tell the two apart")
				}
				if bare.Meta.SOPInstanceUID != orig.Meta.SOPInstanceUID || bare.NumFrames() != orig.NumFrames() {
					t.Fatalf("bare data set reads as %+v", bare.Meta)
				}
				for _, i := range sampleFrames(orig.NumFrames()) {
					a, _ := orig.Frame(i)
					b, err := bare.Frame(i)
					if err != nil {
						t.Fatal(err)
					}
					if err := sameStored(a, b); err != nil {
						t.Errorf("frame %d: %v", i+1, err)
					}
				}
			})
		}
	}
}

// TestParseMeta: leaving the private elements out changes nothing but the
// data set, which keeps every other element; on the vendors' CT files
// something is left out, so the test sees the fast path.
func TestParseMeta(t *testing.T) {
	skipped := 0
	for _, path := range testFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			skipped += parseMetaMatches(t, data)
			// The same data set bare, as old archives write it.
			if f, err := Parse(bytes.NewReader(data), int64(len(data))); err == nil && f.Meta.TransferSyntaxUID == "1.2.840.10008.1.2" {
				skipped += parseMetaMatches(t, data[f.DatasetOffset():])
			}
		})
	}
	if skipped == 0 {
		t.Error("no test file had a private element left out")
	}
}

// TestHeaderEncodingFromScan: the header parser reads elements in the
// encoding the scanner settled, never one it guesses. A (0002,0000) that
// does not cover the transfer syntax, or overshoots into the data set, and
// a header under 100 bytes once the private elements are left out (found
// by FuzzParse) must read like any other file.
func TestHeaderEncodingFromScan(t *testing.T) {
	ts := elem(0x0002, 0x0010, "UI", str("1.2.840.10008.1.2.1\x00"))
	data := append(elem(0x0008, 0x0016, "UI", str("1.2.840.10008.5.1.4.1.1.7\x00")),
		elem(0x0008, 0x0018, "UI", str("1.2.3.4\x00"))...)
	private := append(elem(0x0009, 0x0010, "LO", str("ACME")), elem(0x0009, 0x1001, "OB", make([]byte, 120))...)
	part10 := func(groupLen uint32, dataset ...[]byte) []byte {
		b := append(make([]byte, 128), "DICM"...)
		b = append(b, elem(0x0002, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, groupLen))...)
		b = append(b, ts...)
		for _, d := range dataset {
			b = append(b, d...)
		}
		return b
	}
	for _, c := range []struct {
		name string
		file []byte
	}{
		{"group length right", part10(uint32(len(ts)), data, private)},
		{"group length 0", part10(0, data, private)},
		{"group length past the meta group", part10(uint32(len(ts)+len(data)), data, private)},
		{"group length 0, no private", part10(0, data)},
		{"bare, under 100 bytes", data},
		{"bare, under 100 bytes once private left out", append(append([]byte{}, data...), private...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(bytes.NewReader(c.file), int64(len(c.file)))
			if err != nil {
				t.Fatal(err)
			}
			if f.Meta.SOPInstanceUID != "1.2.3.4" || f.Meta.TransferSyntaxUID != "1.2.840.10008.1.2.1" {
				t.Errorf("SOP Instance UID %q, transfer syntax %q", f.Meta.SOPInstanceUID, f.Meta.TransferSyntaxUID)
			}
			parseMetaMatches(t, c.file)
		})
	}
}

// TestUndefinedLengthUN: an undefined-length UN holds an implicit VR
// sequence (PS3.5 6.2.2), which suyashkumar/dicom reads as explicit and
// fails on (pydicom's UN_sequence.dcm). Such elements, private or public,
// are left out of the parsed header; the rest of the file reads.
func TestUndefinedLengthUN(t *testing.T) {
	implicit := func(group, element uint16, value []byte) []byte {
		b := binary.LittleEndian.AppendUint16(nil, group)
		b = binary.LittleEndian.AppendUint16(b, element)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(value)))
		return append(b, value...)
	}
	unSeq := func(group, element uint16) []byte {
		b := elem(group, element, "UN", nil)
		binary.LittleEndian.PutUint32(b[8:], 0xFFFFFFFF)
		b = append(b, implicit(0xFFFE, 0xE000, nil)...)
		binary.LittleEndian.PutUint32(b[len(b)-4:], 0xFFFFFFFF)
		b = append(b, implicit(0x0008, 0x1150, str("1.2.840.10008.5.1.4.1.1.7\x00"))...)
		b = append(b, implicit(0x0008, 0x1155, str("1.2.3.4.5\x00"))...)
		b = append(b, implicit(0xFFFE, 0xE00D, nil)...)
		return append(b, implicit(0xFFFE, 0xE0DD, nil)...)
	}
	plain := append(synthetic(4, 4, 1), elem(0x0020, 0x000D, "UI", str("1.2.3.5\x00"))...)
	with := append(bytes.Clone(plain), unSeq(0x0029, 0x1010)...)
	with = append(with, elem(0x0029, 0x1020, "LO", str("after"))...)
	with = append(with, unSeq(0x0040, 0x0275)...)
	with = append(with, elem(0x0040, 0x0280, "ST", str("kept"))...)
	pixels := append(pixelHeader(32), make([]byte, 32)...)
	plain = append(plain, elem(0x0040, 0x0280, "ST", str("kept"))...)
	plain, with = append(plain, pixels...), append(with, pixels...)
	for _, tc := range []struct {
		parse func(io.ReaderAt, int64) (*File, error)
		tags  string
	}{{Parse, "[(0029,1020) (0040,0280)]"}, {ParseMeta, "[(0040,0280)]"}} {
		parse := tc.parse
		want, err := parse(bytes.NewReader(plain), int64(len(plain)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parse(bytes.NewReader(with), int64(len(with)))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Meta, want.Meta) || got.NumFrames() != 1 {
			t.Errorf("Meta %+v, want %+v", got.Meta, want.Meta)
		}
		var tags []string
		for _, e := range got.Dataset.Elements {
			if e.Tag.Group == 0x0029 || e.Tag.Group == 0x0040 {
				tags = append(tags, e.Tag.String())
			}
		}
		if fmt.Sprint(tags) != tc.tags {
			t.Errorf("elements of groups 0029 and 0040: %v, want %s", tags, tc.tags)
		}
	}
}

// TestMetaWithoutTransferSyntax: a file whose meta group lacks (0002,0010)
// reads as dcmtk reads it, in the data set's own little endian encoding,
// unless its pixels are compressed: then nothing tells how.
func TestMetaWithoutTransferSyntax(t *testing.T) {
	for _, path := range testFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Parse(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			ts := want.Meta.TransferSyntaxUID
			i := bytes.Index(data[:want.DatasetOffset()], []byte("\x02\x00\x10\x00UI"))
			if i < 0 || ts == "1.2.840.10008.1.2.2" || ts == "1.2.840.10008.1.2.1.99" {
				return
			}
			n := 8 + int(binary.LittleEndian.Uint16(data[i+6:]))
			cut := append(bytes.Clone(data[:i]), data[i+n:]...)
			got, err := Parse(bytes.NewReader(cut), int64(len(cut)))
			if !nativeSyntaxes[ts] {
				if err == nil || !strings.Contains(err.Error(), "compressed pixel data") {
					t.Fatalf("%s without its transfer syntax: %v", ts, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Meta, want.Meta) || got.NumFrames() != want.NumFrames() {
				t.Errorf("Meta %+v, want %+v", got.Meta, want.Meta)
			}
			if want.NumFrames() > 0 {
				a, errA := got.Frame(0)
				b, errB := want.Frame(0)
				if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
					t.Errorf("first frame differs: %v, %v", errA, errB)
				}
			}
		})
	}
}

// TestNonStandardVR: an element whose explicit VR is none (two spaces,
// as CTN's send_image writes Pixel Padding Value) is read with a 2-byte
// length, as dcmtk reads it, and the rest of the file reads.
func TestNonStandardVR(t *testing.T) {
	b := append(synthetic(4, 4, 1), 0x28, 0x00, 0x20, 0x01, ' ', ' ', 2, 0, 0x00, 0x80)
	b = append(b, elem(0x0028, 0x1050, "DS", str("40"))...)
	b = append(b, elem(0x0028, 0x1051, "DS", str("400"))...)
	b = append(b, pixelHeader(32)...)
	b = append(b, make([]byte, 32)...)
	f, err := Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumFrames() != 1 || len(f.Meta.Image.Windows) != 1 {
		t.Errorf("%d frames, windows %v", f.NumFrames(), f.Meta.Image.Windows)
	}
	if _, err := f.Frame(0); err != nil {
		t.Error(err)
	}
	parseMetaMatches(t, b)
}

// parseMetaMatches compares ParseMeta with Parse on one file and returns
// how many elements ParseMeta left out.
func parseMetaMatches(t *testing.T, data []byte) int {
	t.Helper()
	full, err := Parse(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	lean, err := ParseMeta(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if full.Bare() != lean.Bare() {
		t.Errorf("Bare: Parse %v, ParseMeta %v", full.Bare(), lean.Bare())
	}
	if !reflect.DeepEqual(full.Meta, lean.Meta) {
		t.Errorf("Meta differs:\nParse     %+v\nParseMeta %+v", full.Meta, lean.Meta)
	}
	if !reflect.DeepEqual(full.frames, lean.frames) || full.NumFrames() != lean.NumFrames() {
		t.Errorf("frames differ")
	}
	var want []string
	for _, e := range full.Dataset.Elements {
		if e.Tag.Group%2 == 0 {
			want = append(want, e.Tag.String())
		}
	}
	var got []string
	for _, e := range lean.Dataset.Elements {
		got = append(got, e.Tag.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseMeta elements %v, want %v", got, want)
	}
	return len(full.Dataset.Elements) - len(lean.Dataset.Elements)
}
