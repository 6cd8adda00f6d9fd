package dicom

import (
	"errors"
	"image"
	"math"
	"testing"
)

func ctMeta() *Meta {
	return &Meta{Image: Image{
		Photometric: "MONOCHROME2", BitsStored: 12, PixelRepresentation: 0,
		Rescale: Rescale{Slope: 1, Intercept: -1024},
		Windows: []Window{{Center: 40, Width: 80, Explanation: "BRAIN"}, {Center: -600, Width: 1500}},
	}}
}

func greyAt(t *testing.T, img image.Image, x, y int) uint8 {
	t.Helper()
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("got %T, want *image.Gray", img)
	}
	return g.GrayAt(x, y).Y
}

func TestRenderGrey(t *testing.T) {
	// Stored 1024+x is x HU. Expected values from TestVOIFunctions' hand
	// arithmetic: brain window (c 40 w 80) at HU 0, 1, 40, 79.
	fr := frameOf(4, 1, 1, "MONOCHROME2", 1024, 1025, 1064, 1103)
	tests := []struct {
		name  string
		meta  func(*Meta)
		photo string
		v     View
		want  [4]uint8
	}{
		{"file window 1", nil, "", View{Window: WindowFile, Index: 1}, [4]uint8{0, 3, 129, 255}},
		{"default is file window 1", nil, "", View{}, [4]uint8{0, 3, 129, 255}},
		{"explicit", nil, "", View{Window: WindowExplicit, Center: 40, Width: 80}, [4]uint8{0, 3, 129, 255}},
		{"preset brain", nil, "", View{Window: WindowPreset, Preset: "Brain"}, [4]uint8{0, 3, 129, 255}},
		// min-max over HU 0..79: c (0+79+1)/2 = 40, w 80: the brain window again.
		{"min-max", nil, "", View{Window: WindowMinMax}, [4]uint8{0, 3, 129, 255}},
		{"default without windows is min-max", func(m *Meta) { m.Image.Windows = nil }, "", View{}, [4]uint8{0, 3, 129, 255}},
		{"MONOCHROME1 inverts", nil, "MONOCHROME1", View{}, [4]uint8{255, 251, 125, 0}},
		{"INVERSE inverts", func(m *Meta) { m.Image.PresentationLU = "INVERSE" }, "", View{}, [4]uint8{255, 251, 125, 0}},
		{"MONOCHROME1 with IDENTITY does not", func(m *Meta) { m.Image.PresentationLU = "IDENTITY" }, "MONOCHROME1", View{}, [4]uint8{0, 3, 129, 255}},
		// LINEAR_EXACT c 40 w 80 at 0, 1, 40, 79: ≤ 0 → 0; (1-40)/80+.5 = .0125 → 3.19; .5 → 127.5; (39/80+.5)*255 = 251.8
		{"file function LINEAR_EXACT", func(m *Meta) { m.Image.VOIFunction = "LINEAR_EXACT" }, "", View{}, [4]uint8{0, 3, 127, 251}},
		{"view function overrides", func(m *Meta) { m.Image.VOIFunction = "LINEAR_EXACT" }, "", View{Function: "linear"}, [4]uint8{0, 3, 129, 255}},
		{"unknown file function reads as LINEAR", func(m *Meta) { m.Image.VOIFunction = "LOG" }, "", View{}, [4]uint8{0, 3, 129, 255}},
		// VOI LUT first mapped 0 (HU), 8 bits: entries 0..79 = HU*3, clamped.
		{"VOI LUT", func(m *Meta) { m.Image.VOILUTs = []LUT{rampLUT(0, 80, 3, 8)} }, "", View{Window: WindowVOILUT, Index: 1}, [4]uint8{0, 3, 120, 237}},
		{"default prefers window to VOI LUT", func(m *Meta) { m.Image.VOILUTs = []LUT{rampLUT(0, 80, 3, 8)} }, "", View{}, [4]uint8{0, 3, 129, 255}},
		{"default takes VOI LUT without window", func(m *Meta) { m.Image.Windows = nil; m.Image.VOILUTs = []LUT{rampLUT(0, 80, 3, 8)} }, "", View{}, [4]uint8{0, 3, 120, 237}},
		{"per-frame window", func(m *Meta) { m.Image.Frames = []FrameMeta{{Windows: []Window{{Center: 40, Width: 1}}}} }, "", View{}, [4]uint8{0, 0, 255, 255}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ctMeta()
			if tc.meta != nil {
				tc.meta(m)
			}
			f := *fr
			if tc.photo != "" {
				f.Photometric = tc.photo
			}
			img, err := Render(m, &f, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			for x, want := range tc.want {
				if got := greyAt(t, img, x, 0); got != want {
					t.Errorf("x %d: got %d, want %d", x, got, want)
				}
			}
		})
	}
}

// rampLUT maps n inputs from first to min(i*step, 2^bits-1).
func rampLUT(first, n, step, bits int) LUT {
	d := make([]uint16, n)
	for i := range d {
		d[i] = uint16(min(i*step, 1<<bits-1))
	}
	return LUT{FirstMapped: first, Bits: bits, Data: d, Entries: n}
}

func TestRenderErrors(t *testing.T) {
	fr := frameOf(2, 1, 1, "MONOCHROME2", 0, 100)
	tests := []struct {
		name string
		fr   *Frame
		v    View
		want error
	}{
		{"unknown preset", fr, View{Window: WindowPreset, Preset: "pelvis"}, ErrUnknownPreset},
		{"zero width", fr, View{Window: WindowExplicit, Center: 10, Width: 0}, ErrWindowWidth},
		{"negative width", fr, View{Window: WindowExplicit, Center: 10, Width: -5}, ErrWindowWidth},
		{"NaN centre", fr, View{Window: WindowExplicit, Center: math.NaN(), Width: 5}, ErrWindowWidth},
		{"file window 0", fr, View{Window: WindowFile, Index: 0}, ErrNoWindow},
		{"file window 3 of 2", fr, View{Window: WindowFile, Index: 3}, ErrNoWindow},
		{"no VOI LUT", fr, View{Window: WindowVOILUT, Index: 1}, ErrNoVOILUT},
		{"bad function", fr, View{Function: "CUBIC"}, ErrVOIFunction},
		{"negative size", fr, View{MaxW: -1}, ErrSize},
		{"huge size", fr, View{MaxW: MaxOutputSide + 1, MaxH: 10}, ErrSize},
		{"nil frame", nil, View{}, ErrFrameShape},
		{"short frame", frameOf(2, 2, 1, "MONOCHROME2", 0, 1, 2), View{}, ErrFrameShape},
		{"two samples", frameOf(1, 1, 2, "MONOCHROME2", 0, 1), View{}, ErrFrameShape},
		{"zero rows", frameOf(1, 0, 1, "MONOCHROME2"), View{}, ErrFrameShape},
	}
	for _, tc := range tests {
		if _, err := Render(ctMeta(), tc.fr, tc.v); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := Render(ctMeta(), fr, View{Window: WindowMode(99)}); err == nil {
		t.Error("unknown window mode: no error")
	}
	if _, err := Render(nil, fr, View{}); !errors.Is(err, ErrFrameShape) {
		t.Errorf("nil meta: got %v", err)
	}
}

func TestResolveVOI(t *testing.T) {
	fr := frameOf(3, 1, 1, "MONOCHROME2", 0, 1000, 4095)
	m := ctMeta()
	m.Image.Windows = nil
	got, err := ResolveVOI(m, fr, View{})
	if err != nil {
		t.Fatal(err)
	}
	// HU -1024..3071: c 1024, w 4096 (see TestMinMaxWindow).
	if got.Window.Center != 1024 || got.Window.Width != 4096 || got.Function != VOILinear || got.LUT != nil {
		t.Errorf("min-max: got %+v", got)
	}
	// A file window too narrow for its function is passed over by the
	// default, but refused when asked for.
	m.Image.Windows = []Window{{Center: 5, Width: 0.5}}
	if got, err := ResolveVOI(m, fr, View{}); err != nil || got.Window.Width != 4096 {
		t.Errorf("default with unusable window: %+v, %v", got, err)
	}
	if _, err := ResolveVOI(m, fr, View{Window: WindowFile, Index: 1}); !errors.Is(err, ErrWindowWidth) {
		t.Errorf("unusable file window: got %v", err)
	}
}

// Frames whose stored range is too wide for one table are computed pixel
// by pixel; both paths must agree.
func TestGreyWideRange(t *testing.T) {
	pix := []int32{-2000000000, -70000, -1, 0, 1, 70000, 2000000000, 123456}
	fr := frameOf(len(pix), 1, 1, "MONOCHROME2", pix...)
	m := &Meta{Image: Image{Photometric: "MONOCHROME2", BitsStored: 32, Rescale: Rescale{Slope: 0.001, Intercept: 10}}}
	img, err := Render(m, fr, View{Window: WindowExplicit, Center: 50, Width: 200})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := newVOI(VOILinear, 50, 200, false)
	mod := modalityOf(&m.Image, 0)
	for i, s := range pix {
		if got, want := greyAt(t, img, i, 0), v.grey(mod.value(s)); got != want {
			t.Errorf("stored %d: got %d, want %d", s, got, want)
		}
	}
}

func TestFitSize(t *testing.T) {
	tests := []struct {
		cols, rows int
		v          View
		w, h       int
	}{
		{512, 512, View{}, 512, 512},
		{512, 512, View{MaxW: 256, MaxH: 256}, 256, 256},
		{2140, 1760, View{MaxW: 1024, MaxH: 1024}, 1024, 842}, // 1760*1024/2140 = 842.2
		{1760, 2140, View{MaxW: 1024, MaxH: 1024}, 842, 1024},
		{512, 512, View{MaxW: 1000, MaxH: 800}, 512, 512},                // never enlarged by default
		{512, 512, View{MaxW: 1000, MaxH: 800, Upscale: true}, 800, 800}, // unless asked
		{512, 256, View{MaxW: 100}, 100, 50},
		{512, 256, View{MaxH: 64}, 128, 64},
		{10000, 1, View{MaxW: 10, MaxH: 10}, 10, 1},
	}
	for _, tc := range tests {
		w, h, err := fitSize(tc.cols, tc.rows, tc.v)
		if err != nil || w != tc.w || h != tc.h {
			t.Errorf("%d×%d in %+v: got %d×%d (%v), want %d×%d", tc.cols, tc.rows, tc.v, w, h, err, tc.w, tc.h)
		}
	}
}

// Resizing keeps grey grey and colour colour, and the linear filter never
// overshoots a sharp edge (Lanczos would ring below 50 and above 200 here).
func TestRenderResize(t *testing.T) {
	const n = 64
	pix := make([]int32, n*n)
	for i := range pix {
		if i%n >= n/2 {
			pix[i] = 200
		} else {
			pix[i] = 50
		}
	}
	m := &Meta{Image: Image{Photometric: "MONOCHROME2", BitsStored: 8, Rescale: Rescale{Slope: 1}}}
	for _, v := range []View{{MaxW: 20, MaxH: 20}, {MaxW: 150, MaxH: 150, Upscale: true}} {
		v.Window, v.Center, v.Width = WindowExplicit, 128, 256 // ≈ identity on 0..255
		img, err := Render(m, frameOf(n, n, 1, "MONOCHROME2", pix...), v)
		if err != nil {
			t.Fatal(err)
		}
		g, ok := img.(*image.Gray)
		if !ok {
			t.Fatalf("resized grey is %T", img)
		}
		if g.Bounds().Dx() != v.MaxW || g.Bounds().Dy() != v.MaxH {
			t.Errorf("size %v, want %d×%d", g.Bounds(), v.MaxW, v.MaxH)
		}
		lo, hi := uint8(255), uint8(0)
		for _, p := range g.Pix {
			lo, hi = min(lo, p), max(hi, p)
		}
		if lo < 49 || hi > 200 {
			t.Errorf("%d×%d: values %d..%d overshoot the edge 49..200", v.MaxW, v.MaxH, lo, hi)
		}
	}
	rgb := frameOf(4, 2, 3, "RGB", make([]int32, 24)...)
	img, err := Render(&Meta{Image: Image{BitsStored: 8}}, rgb, View{MaxW: 2, MaxH: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := img.(*image.NRGBA); !ok || img.Bounds().Dx() != 2 || img.Bounds().Dy() != 1 {
		t.Errorf("resized colour: %T %v", img, img.Bounds())
	}
}

// BenchmarkLUT is the grey pipeline alone on a 512×512 CT-like frame (12
// bits of range, rescale, window), and on a frame of 32-bit values whose
// range forces the per-pixel path.
func BenchmarkLUT(b *testing.B) {
	const n = 512
	ct := make([]int32, n*n)
	wide := make([]int32, n*n)
	for i := range ct {
		ct[i] = int32((i*7919)%4096) - 1024
		wide[i] = int32(i*7919) * 3
	}
	m := ctMeta()
	for _, tc := range []struct {
		name string
		pix  []int32
	}{{"CT512", ct}, {"Wide32bit512", wide}} {
		fr := frameOf(n, n, 1, "MONOCHROME2", tc.pix...)
		sel, err := ResolveVOI(m, fr, View{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := Grey(m, fr, sel); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzRender feeds the pipeline headers and pixels as a hostile file could
// declare them: it must return an image or an error, never panic.
func FuzzRender(f *testing.F) {
	f.Add(uint8(4), uint8(4), uint8(0), 1.0, -1024.0, 40.0, 80.0, uint8(0), int16(0), uint8(16), []byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, uint8(0), uint16(0))
	f.Add(uint8(2), uint8(3), uint8(3), 0.5, 3.0, 0.0, 0.5, uint8(2), int16(-5), uint8(8), []byte{}, []byte{200, 100, 50, 25}, uint8(5), uint16(30))
	f.Add(uint8(1), uint8(1), uint8(6), 1.0, 0.0, 0.0, 1.0, uint8(1), int16(3), uint8(12), []byte{9, 9}, []byte{255, 255, 255, 255}, uint8(1), uint16(100))
	photos := []string{"MONOCHROME2", "MONOCHROME1", "RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR", "HSV", ""}
	fns := []string{"", "LINEAR", "LINEAR_EXACT", "SIGMOID", "BOGUS"}
	f.Fuzz(func(t *testing.T, rows, cols, kind uint8, slope, intercept, c, w float64, fn uint8, first int16, bits uint8, lut, pixb []byte, mode uint8, size uint16) {
		samples := 1
		photo := photos[int(kind)%len(photos)]
		if photo == "RGB" || photo == "YBR_FULL" || photo == "YBR_FULL_422" || kind&0x80 != 0 {
			samples = 3
		}
		pix := make([]int32, len(pixb)/4)
		for i := range pix {
			pix[i] = int32(uint32(pixb[4*i]) | uint32(pixb[4*i+1])<<8 | uint32(pixb[4*i+2])<<16 | uint32(pixb[4*i+3])<<24)
			if kind&0x40 == 0 {
				pix[i] >>= 16 // mostly 16-bit values, sometimes full 32-bit
			}
		}
		data := make([]uint16, len(lut)/2)
		for i := range data {
			data[i] = uint16(lut[2*i]) | uint16(lut[2*i+1])<<8
		}
		l := LUT{FirstMapped: int(first), Bits: int(bits % 20), Data: data, Entries: len(data)}
		meta := &Meta{Image: Image{
			Photometric: photo, BitsStored: int(bits % 40), Rescale: Rescale{Slope: slope, Intercept: intercept},
			Windows: []Window{{Center: c, Width: w}}, VOIFunction: fns[int(fn)%len(fns)],
			Palette: &Palette{Red: l, Green: l, Blue: l}, VOILUTs: []LUT{l},
		}}
		if kind&0x20 != 0 {
			meta.Image.ModalityLUT = &l
		}
		fr := &Frame{Rows: int(rows % 16), Columns: int(cols % 16), Samples: samples, Photometric: photo, Pix: pix}
		v := View{Window: WindowMode(mode % 7), Center: c, Width: w, Index: int(mode / 7 % 3), Preset: "lung",
			MaxW: int(size % 64), MaxH: int(size / 64 % 64), Upscale: size&1 != 0}
		img, err := Render(meta, fr, v)
		if err == nil && (img.Bounds().Dx() < 1 || img.Bounds().Dy() < 1) {
			t.Fatalf("empty image without error")
		}
	})
}
