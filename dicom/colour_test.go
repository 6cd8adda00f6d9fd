package dicom

import (
	"errors"
	"image"
	"testing"
)

func frameOf(cols, rows, samples int, pi string, pix ...int32) *Frame {
	return &Frame{Rows: rows, Columns: cols, Samples: samples, Photometric: pi, Pix: pix}
}

func nrgbaAt(t *testing.T, img image.Image, x, y int) [3]uint8 {
	t.Helper()
	n, ok := img.(*image.NRGBA)
	if !ok {
		t.Fatalf("got %T, want *image.NRGBA", img)
	}
	c := n.NRGBAAt(x, y)
	if c.A != 255 {
		t.Errorf("alpha %d at %d,%d, want 255", c.A, x, y)
	}
	return [3]uint8{c.R, c.G, c.B}
}

// YBR_FULL → RGB with dcmtk's tables: each product truncated toward zero
// on its own (worked below), which is why mid-grey gives G 127, not 128.
func TestYBRFull8(t *testing.T) {
	tests := []struct {
		y, cb, cr int32
		want      [3]uint8
	}{
		// rcr[128] = trunc(1.402*128 - 0.701*255) = trunc(0.701) = 0
		// gcb[128] = trunc(0.3441*128) = 44; gcr[128] = trunc(91.4048-134.9205) = -43
		// bcb[128] = trunc(1.772*128 - 0.8859*255) = trunc(0.9115) = 0
		{128, 128, 128, [3]uint8{128, 127, 128}},
		// rcr[255] = trunc(357.51-178.755) = 178 → 433 → 255; gcr[255] = trunc(47.175) = 47 → 255-44-47 = 164
		{255, 128, 255, [3]uint8{255, 164, 255}},
		// rcr[0] = -178 → 0; gcr[0] = -134 → 0-0+134 = 134; bcb[0] = -225 → 0
		{0, 0, 0, [3]uint8{0, 134, 0}},
		// bcb[255] = trunc(451.86-225.9045) = 225 → 100+225 → 255; gcb[255] = 87, gcr[0] = -134 → 100-87+134 = 147
		{100, 255, 0, [3]uint8{0, 147, 255}},
		// rcr[160] = trunc(224.32-178.755) = 45; gcb[90] = 30, gcr[160] = trunc(114.256-134.9205) = -20;
		// bcb[90] = trunc(159.48-225.9045) = -66: 145, 100-30+20 = 90, 34 (YBR_FULL_422's float sums give 145, 89, 33)
		{100, 90, 160, [3]uint8{145, 90, 34}},
	}
	for _, pi := range []string{"YBR_FULL"} {
		for _, tc := range tests {
			img, err := Render(&Meta{Image: Image{BitsStored: 8, Photometric: pi}}, frameOf(1, 1, 3, pi, tc.y, tc.cb, tc.cr), View{})
			if err != nil {
				t.Fatal(err)
			}
			if got := nrgbaAt(t, img, 0, 0); got != tc.want {
				t.Errorf("%s Y %d Cb %d Cr %d: got %v, want %v", pi, tc.y, tc.cb, tc.cr, got, tc.want)
			}
		}
	}
}

// A native YBR_FULL_422 file, expanded by the decoder, is converted with
// the floating-point equations, unrounded products summed first, as dcmtk's
// DiYBR422PixelTemplate does.
func TestYBRFull422(t *testing.T) {
	tests := []struct {
		y, cb, cr int32
		want      [3]uint8
	}{
		// R = 128 + 179.456 - 178.755 = 128.70; G = 128 - 44.045 - 91.405 + 134.921 = 127.47; B = 128 + 226.816 - 225.905 = 128.91
		{128, 128, 128, [3]uint8{128, 127, 128}},
		// R = 200 + 84.12 - 178.755 = 105.37; G = 200 - 34.41 - 42.846 + 134.921 = 257.7 → 255; B = 200 + 177.2 - 225.905 = 151.3
		{200, 100, 60, [3]uint8{105, 255, 151}},
		// Here the tables (YBR_FULL) would give 145, 90, 34: the sums
		// 145.57, 89.70, 33.58 truncate to 145, 89, 33.
		{100, 90, 160, [3]uint8{145, 89, 33}},
	}
	for _, tc := range tests {
		img, err := Render(&Meta{Image: Image{BitsStored: 8, Photometric: "YBR_FULL_422"}}, frameOf(1, 1, 3, "YBR_FULL", tc.y, tc.cb, tc.cr), View{})
		if err != nil {
			t.Fatal(err)
		}
		if got := nrgbaAt(t, img, 0, 0); got != tc.want {
			t.Errorf("YBR_FULL_422 Y %d Cb %d Cr %d: got %v, want %v", tc.y, tc.cb, tc.cr, got, tc.want)
		}
	}
}

func TestYBRFull16(t *testing.T) {
	// 12-bit: max 4095; Y 2048, Cb = Cr = 2048:
	// R = 2048 + 2871.296 - 2870.595 = 2048.70 → 2048 → >>4 = 128
	// G = 2048 - 704.717 - 1462.477 + 2166.665 = 2047.47 → 2047 → 127
	// B = 2048 + 3629.056 - 3627.761 = 2049.30 → 2049 → 128
	img, err := Render(&Meta{Image: Image{BitsStored: 12}}, frameOf(1, 1, 3, "YBR_FULL", 2048, 2048, 2048), View{})
	if err != nil {
		t.Fatal(err)
	}
	if got := nrgbaAt(t, img, 0, 0); got != [3]uint8{128, 127, 128} {
		t.Errorf("12-bit YBR mid-grey: got %v", got)
	}
}

func TestRGB(t *testing.T) {
	tests := []struct {
		bits int
		in   [3]int32
		want [3]uint8
	}{
		{8, [3]int32{1, 128, 255}, [3]uint8{1, 128, 255}},
		{12, [3]int32{4095, 2048, 15}, [3]uint8{255, 128, 0}}, // >> 4
		{16, [3]int32{65535, 256, 255}, [3]uint8{255, 1, 0}},  // >> 8
		{8, [3]int32{-3, 300, 7}, [3]uint8{0, 255, 7}},        // out of range clamps
	}
	for _, tc := range tests {
		img, err := Render(&Meta{Image: Image{BitsStored: tc.bits}}, frameOf(1, 1, 3, "RGB", tc.in[0], tc.in[1], tc.in[2]), View{})
		if err != nil {
			t.Fatal(err)
		}
		if got := nrgbaAt(t, img, 0, 0); got != tc.want {
			t.Errorf("%d-bit RGB %v: got %v, want %v", tc.bits, tc.in, got, tc.want)
		}
	}
}

func TestPalette(t *testing.T) {
	lut16 := func(d ...uint16) LUT { return LUT{FirstMapped: 10, Bits: 16, Data: d, Entries: len(d)} }
	p16 := &Palette{Red: lut16(0x0000, 0x8000, 0xffff), Green: lut16(0x1234, 0x5678, 0x9abc), Blue: lut16(0xff00, 0x00ff, 0x0100)}
	lut8 := func(d ...uint16) LUT { return LUT{FirstMapped: 0, Bits: 8, Data: d, Entries: len(d)} }
	p8 := &Palette{Red: lut8(1, 2, 3), Green: lut8(10, 20, 30), Blue: lut8(100, 200, 0x1ff)}
	tests := []struct {
		name   string
		p      *Palette
		stored int32
		want   [3]uint8
	}{
		{"16-bit below first", p16, 5, [3]uint8{0x00, 0x12, 0xff}},
		{"16-bit first", p16, 10, [3]uint8{0x00, 0x12, 0xff}},
		{"16-bit second", p16, 11, [3]uint8{0x80, 0x56, 0x00}},
		{"16-bit last", p16, 12, [3]uint8{0xff, 0x9a, 0x01}},
		{"16-bit past last", p16, 1000, [3]uint8{0xff, 0x9a, 0x01}},
		{"8-bit", p8, 1, [3]uint8{2, 20, 200}},
		{"8-bit masked", p8, 2, [3]uint8{3, 30, 0xff}}, // 0x1ff & 0xff
	}
	for _, tc := range tests {
		img, err := Render(&Meta{Image: Image{Photometric: "PALETTE COLOR", Palette: tc.p}}, frameOf(2, 1, 1, "PALETTE COLOR", tc.stored, 11), View{})
		if err != nil {
			t.Fatal(err)
		}
		if got := nrgbaAt(t, img, 0, 0); got != tc.want {
			t.Errorf("%s: stored %d → %v, want %v", tc.name, tc.stored, got, tc.want)
		}
	}
	if _, err := Render(&Meta{Image: Image{Photometric: "PALETTE COLOR"}}, frameOf(1, 1, 1, "PALETTE COLOR", 0), View{}); !errors.Is(err, ErrLUT) {
		t.Errorf("palette missing: got %v, want ErrLUT", err)
	}
	// A wide index range (beyond one table) takes the per-pixel path and
	// must agree.
	wide := frameOf(3, 1, 1, "PALETTE COLOR", -1<<20, 11, 1<<20)
	img, err := Render(&Meta{Image: Image{Photometric: "PALETTE COLOR", Palette: p16}}, wide, View{})
	if err != nil {
		t.Fatal(err)
	}
	for x, want := range [][3]uint8{{0x00, 0x12, 0xff}, {0x80, 0x56, 0x00}, {0xff, 0x9a, 0x01}} {
		if got := nrgbaAt(t, img, x, 0); got != want {
			t.Errorf("wide palette x %d: got %v, want %v", x, got, want)
		}
	}
}

func TestColourErrors(t *testing.T) {
	tests := []struct {
		name string
		fr   *Frame
		want error
	}{
		{"RGB with one sample", frameOf(1, 1, 1, "RGB", 0), ErrFrameShape},
		{"YBR with one sample", frameOf(1, 1, 1, "YBR_FULL", 0), ErrFrameShape},
		{"palette with three samples", frameOf(1, 1, 3, "PALETTE COLOR", 0, 0, 0), ErrFrameShape},
		{"unknown", frameOf(1, 1, 3, "CMYK", 0, 0, 0), ErrPhotometric},
		{"HSV", frameOf(1, 1, 3, "HSV", 0, 0, 0), ErrPhotometric},
	}
	for _, tc := range tests {
		if _, err := Render(&Meta{}, tc.fr, View{}); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}
