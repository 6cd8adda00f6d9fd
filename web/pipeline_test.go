package web

import (
	"fmt"
	"testing"

	"lightbox/dicom"
)

func TestDicomView(t *testing.T) {
	cases := []struct {
		v    view
		want dicom.View
	}{
		{view{}, dicom.View{Window: dicom.WindowDefault, Upscale: true}},
		{view{mode: "window", center: -600, width: 1500, w: 10, h: 20}, dicom.View{Window: dicom.WindowExplicit, Center: -600, Width: 1500, MaxW: 10, MaxH: 20, Upscale: true}},
		{view{mode: "preset", preset: "bone"}, dicom.View{Window: dicom.WindowPreset, Preset: "bone", Upscale: true}},
		{view{mode: "index", index: 0}, dicom.View{Window: dicom.WindowFile, Index: 1, Upscale: true}},
		{view{mode: "voilut", index: 2}, dicom.View{Window: dicom.WindowVOILUT, Index: 3, Upscale: true}},
		{view{mode: "minmax"}, dicom.View{Window: dicom.WindowMinMax, Upscale: true}},
	}
	for _, c := range cases {
		if got := dicomView(c.v); got != c.want {
			t.Errorf("dicomView(%+v) = %+v, want %+v", c.v, got, c.want)
		}
	}
}

func TestRequestFault(t *testing.T) {
	for _, err := range []error{dicom.ErrWindowWidth, dicom.ErrNoWindow, dicom.ErrNoVOILUT, dicom.ErrUnknownPreset, dicom.ErrSize, dicom.ErrVOIFunction} {
		if !requestFault(fmt.Errorf("frame 1: %w", err)) {
			t.Errorf("%v is the request's fault", err)
		}
	}
	for _, err := range []error{dicom.ErrFrameShape, dicom.ErrMalformed, dicom.ErrNoPixels, fmt.Errorf("x")} {
		if requestFault(err) {
			t.Errorf("%v is the file's fault", err)
		}
	}
}

func TestPresetList(t *testing.T) {
	got := presetList()
	if len(got) != len(dicom.Presets) {
		t.Fatalf("%d presets, core has %d", len(got), len(dicom.Presets))
	}
	for i, p := range dicom.Presets {
		g := got[i]
		if g.Name != p.Name || g.Center != p.Center || g.Width != p.Width || g.Label == "" || !knownPreset(g.Name) {
			t.Errorf("preset %d: %+v from %+v", i, g, p)
		}
	}
	if knownPreset("kidney") {
		t.Error("knownPreset(kidney)")
	}
}
