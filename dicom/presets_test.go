package dicom

import (
	"errors"
	"testing"
)

func TestPresetByName(t *testing.T) {
	tests := []struct {
		name     string
		c, w     float64
		wantErr  error
		wantName string
	}{
		{"brain", 40, 80, nil, "brain"},
		{" Lung ", -600, 1500, nil, "lung"},
		{"BONE", 400, 1800, nil, "bone"},
		{"subdural", 75, 215, nil, "subdural"},
		{"stroke", 40, 40, nil, "stroke"},
		{"mediastinum", 50, 350, nil, "mediastinum"},
		{"abdomen", 50, 400, nil, "abdomen"},
		{"liver", 30, 150, nil, "liver"},
		{"pelvis", 0, 0, ErrUnknownPreset, ""},
		{"", 0, 0, ErrUnknownPreset, ""},
	}
	for _, tc := range tests {
		p, err := PresetByName(tc.name)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("%q: error %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if p.Name != tc.wantName || p.Center != tc.c || p.Width != tc.w {
			t.Errorf("%q: got %+v, want %s c %g w %g", tc.name, p, tc.wantName, tc.c, tc.w)
		}
	}
}

// Every preset must be a usable LINEAR window with a distinct name.
func TestPresetsUsable(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Presets {
		if seen[p.Name] {
			t.Errorf("preset %q twice", p.Name)
		}
		seen[p.Name] = true
		if _, err := newVOI(VOILinear, p.Center, p.Width, false); err != nil {
			t.Errorf("preset %q: %v", p.Name, err)
		}
	}
	if len(Presets) != 8 {
		t.Errorf("%d presets, want the 8 of the issue", len(Presets))
	}
}
