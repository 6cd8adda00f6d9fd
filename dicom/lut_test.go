package dicom

import (
	"errors"
	"math"
	"testing"
)

// Expected values below are worked by hand from the PS3.3 C.11.2 formulas
// with truncation (dcmtk's cast), the arithmetic shown beside each.
func TestVOIFunctions(t *testing.T) {
	tests := []struct {
		name string
		fn   string
		c, w float64
		inv  bool
		x    float64
		want uint8
	}{
		// LINEAR, brain window c 40 w 80: borders 39.5 ∓ 39.5 = 0 and 79.
		{"linear below", VOILinear, 40, 80, false, -5, 0},
		{"linear at left border", VOILinear, 40, 80, false, 0, 0},
		{"linear just inside", VOILinear, 40, 80, false, 1, 3},        // ((1-39.5)/79+0.5)*255 = 3.23
		{"linear centre", VOILinear, 40, 80, false, 40, 129},          // (0.5/79+0.5)*255 = 129.11
		{"linear at right border", VOILinear, 40, 80, false, 79, 255}, // (39.5/79+0.5)*255 = 255
		{"linear above", VOILinear, 40, 80, false, 1000, 255},
		{"linear fraction", VOILinear, 40, 80, false, 20.5, 66}, // (-19/79+0.5)*255 = 66.17
		// Supplement 33: c 2048 w 4096 spans 0..4095.
		{"sup33 zero", VOILinear, 2048, 4096, false, 0, 0},
		{"sup33 max", VOILinear, 2048, 4096, false, 4095, 255},
		{"sup33 mid", VOILinear, 2048, 4096, false, 2048, 127}, // (0.5/4095+0.5)*255 = 127.53
		// Width 1: a threshold at c-0.5.
		{"width 1 low", VOILinear, 10, 1, false, 9, 0},
		{"width 1 high", VOILinear, 10, 1, false, 10, 255},
		// Inverted: ymin 255, ymax 0, truncated in the output space.
		{"linear inverted centre", VOILinear, 40, 80, true, 40, 125}, // 255-129.11 = 125.89
		{"linear inverted below", VOILinear, 40, 80, true, -5, 255},
		{"linear inverted above", VOILinear, 40, 80, true, 100, 0},
		// LINEAR_EXACT c 0 w 100: borders -50, 50.
		{"exact centre", VOILinearExact, 0, 100, false, 0, 127},   // 0.5*255 = 127.5
		{"exact quarter", VOILinearExact, 0, 100, false, 25, 191}, // 0.75*255 = 191.25
		{"exact left border", VOILinearExact, 0, 100, false, -50, 0},
		{"exact right border", VOILinearExact, 0, 100, false, 50, 255},
		{"exact narrow", VOILinearExact, 0, 0.5, false, 0.125, 191}, // (0.25+0.5)*255
		{"exact inverted", VOILinearExact, 0, 100, true, 25, 63},    // 255-191.25 = 63.75
		// SIGMOID c 0 w 100: 255 / (1 + exp(-4x/100)).
		{"sigmoid centre", VOISigmoid, 0, 100, false, 0, 127},  // 127.5
		{"sigmoid +25", VOISigmoid, 0, 100, false, 25, 186},    // 255/(1+e^-1) = 186.42
		{"sigmoid -25", VOISigmoid, 0, 100, false, -25, 68},    // 255/(1+e) = 68.58
		{"sigmoid far", VOISigmoid, 0, 100, false, 10000, 255}, // saturates
		{"sigmoid inverted", VOISigmoid, 0, 100, true, 25, 68}, // 255-186.42 = 68.58
		{"empty is linear", "", 0, 100, false, 25, 193},        // ((25+0.5)/99+0.5)*255 = 193.18
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newVOI(tc.fn, tc.c, tc.w, tc.inv)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.grey(tc.x); got != tc.want {
				t.Errorf("%s c %g w %g inv %v at %g: got %d, want %d", tc.fn, tc.c, tc.w, tc.inv, tc.x, got, tc.want)
			}
		})
	}
}

func TestVOIWidthChecks(t *testing.T) {
	tests := []struct {
		fn   string
		w    float64
		want error
	}{
		{VOILinear, 0, ErrWindowWidth},
		{VOILinear, 0.5, ErrWindowWidth},
		{VOILinear, -10, ErrWindowWidth},
		{VOILinear, 1, nil},
		{VOISigmoid, 0.9, ErrWindowWidth},
		{VOILinearExact, 0, ErrWindowWidth},
		{VOILinearExact, 0.01, nil},
		{VOILinear, math.NaN(), ErrWindowWidth},
		{VOILinear, math.Inf(1), ErrWindowWidth},
		{"GAMMA", 100, ErrVOIFunction},
	}
	for _, tc := range tests {
		_, err := newVOI(tc.fn, 0, tc.w, false)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s width %g: got %v, want %v", tc.fn, tc.w, err, tc.want)
		}
	}
}

func TestVOITable(t *testing.T) {
	// 12-bit VOI LUT mapping -10, -9, -8 (and clamped beyond).
	l := &LUT{FirstMapped: -10, Bits: 12, Data: []uint16{0, 1000, 4095}, Entries: 3}
	tests := []struct {
		x    float64
		inv  bool
		want uint8
	}{
		{-20, false, 0},    // below first: entry 0
		{-9, false, 62},    // 1000*256/4096 = 62.5
		{-8, false, 255},   // 4095*256/4096 = 255.94
		{100, false, 255},  // past last: last entry
		{-9, true, 193},    // 255-62
		{-8.7, false, 255}, // modality values truncate toward zero: -8, the last entry
	}
	for _, tc := range tests {
		v, err := newVOITable(l, tc.inv)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.grey(tc.x); got != tc.want {
			t.Errorf("VOI LUT at %g inv %v: got %d, want %d", tc.x, tc.inv, got, tc.want)
		}
	}
	if _, err := newVOITable(&LUT{Bits: 8}, false); !errors.Is(err, ErrLUT) {
		t.Errorf("empty VOI LUT: got %v, want ErrLUT", err)
	}
	if _, err := newVOITable(&LUT{Bits: 17, Data: []uint16{1}}, false); !errors.Is(err, ErrLUT) {
		t.Errorf("17-bit VOI LUT: got %v, want ErrLUT", err)
	}
}

func TestModality(t *testing.T) {
	tests := []struct {
		name   string
		im     Image
		frame  int
		stored int32
		want   float64
	}{
		{"identity", Image{Rescale: Rescale{Slope: 1}}, 0, 123, 123},
		{"CT intercept", Image{Rescale: Rescale{Slope: 1, Intercept: -1024}}, 0, 1000, -24},
		{"slope and intercept", Image{Rescale: Rescale{Slope: 2, Intercept: -1024}}, 0, 1000, 976},
		{"fractional slope", Image{Rescale: Rescale{Slope: 0.5, Intercept: 0.25}}, 0, 3, 1.75},
		{"negative slope", Image{Rescale: Rescale{Slope: -1, Intercept: 100}}, 0, 30, 70},
		{"zero slope ignored", Image{Rescale: Rescale{Slope: 0, Intercept: 50}}, 0, 7, 7},
		{"per frame", Image{Rescale: Rescale{Slope: 1}, Frames: []FrameMeta{{}, {Rescale: &Rescale{Slope: 1, Intercept: -1000}}}}, 1, 1000, 0},
		{"per frame falls back", Image{Rescale: Rescale{Slope: 1, Intercept: 5}, Frames: []FrameMeta{{}, {}}}, 0, 1, 6},
		{"table below", Image{Rescale: Rescale{Slope: 3}, ModalityLUT: &LUT{FirstMapped: 100, Bits: 16, Data: []uint16{5, 6, 7}}}, 0, 50, 5},
		{"table inside", Image{ModalityLUT: &LUT{FirstMapped: 100, Bits: 16, Data: []uint16{5, 6, 7}}}, 0, 101, 6},
		{"table above", Image{ModalityLUT: &LUT{FirstMapped: 100, Bits: 16, Data: []uint16{5, 6, 7}}}, 0, 500, 7},
	}
	for _, tc := range tests {
		if got := ModalityValue(&tc.im, tc.frame, tc.stored); got != tc.want {
			t.Errorf("%s: stored %d → %g, want %g", tc.name, tc.stored, got, tc.want)
		}
	}
}

func TestMinMaxWindow(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   Window
	}{
		{-1024, 3071, Window{Center: 1024, Width: 4096}}, // (-1024+3071+1)/2, 3071+1024+1
		{0, 4095, Window{Center: 2048, Width: 4096}},
		{7, 7, Window{Center: 7.5, Width: 1}},
	}
	for _, tc := range tests {
		got := minMaxWindow(tc.lo, tc.hi)
		if got.Center != tc.want.Center || got.Width != tc.want.Width {
			t.Errorf("min %g max %g: got c %g w %g, want c %g w %g", tc.lo, tc.hi, got.Center, got.Width, tc.want.Center, tc.want.Width)
		}
	}
	// A modality table need not be monotonic: the range is of the values
	// present.
	m := modality{table: &LUT{FirstMapped: 0, Bits: 16, Data: []uint16{50, 10, 90, 20}}}
	pix := []int32{0, 1, 3, 3}
	lo, hi := minMax(pix)
	if a, b := modalityRange(m, pix, lo, hi); a != 10 || b != 50 {
		t.Errorf("table range: got %g..%g, want 10..50", a, b)
	}
	neg := modality{slope: -2, intercept: 10}
	if a, b := modalityRange(neg, []int32{1, 4}, 1, 4); a != 2 || b != 8 {
		t.Errorf("negative slope range: got %g..%g, want 2..8", a, b)
	}
}

func TestInverted(t *testing.T) {
	tests := []struct {
		pi, shape string
		want      bool
	}{
		{"MONOCHROME2", "", false},
		{"MONOCHROME2", "IDENTITY", false},
		{"MONOCHROME2", "INVERSE", true},
		{"MONOCHROME1", "", true},
		{"MONOCHROME1", "INVERSE", true},
		{"MONOCHROME1", "IDENTITY", false},
		{"MONOCHROME1 ", "inverse ", true},
	}
	for _, tc := range tests {
		if got := inverted(tc.pi, tc.shape); got != tc.want {
			t.Errorf("%q %q: got %v, want %v", tc.pi, tc.shape, got, tc.want)
		}
	}
}

// The composed table must give what the stages give one by one, over the
// whole stored range, for every function and both polarities.
func TestGreyLUTMatchesStages(t *testing.T) {
	mods := []modality{{slope: 1, intercept: -1024}, {slope: 0.37, intercept: 12.5}, {slope: -1, intercept: 0},
		{table: &LUT{FirstMapped: -100, Bits: 12, Data: []uint16{0, 4095, 17, 2000}}}}
	for _, m := range mods {
		for _, fn := range []string{VOILinear, VOILinearExact, VOISigmoid} {
			for _, inv := range []bool{false, true} {
				v, err := newVOI(fn, 40, 400, inv)
				if err != nil {
					t.Fatal(err)
				}
				g := buildGreyLUT(m, v, -2000, 4000, nil)
				for s := int32(-2000); s <= 4000; s++ {
					if want := v.grey(m.value(s)); g.tab[s+2000] != want {
						t.Fatalf("%+v %s inv %v stored %d: table %d, stages %d", m, fn, inv, s, g.tab[s+2000], want)
					}
				}
			}
		}
	}
}
