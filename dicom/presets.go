package dicom

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownPreset: no CT window preset of that name.
var ErrUnknownPreset = errors.New("dicom: unknown window preset")

// Preset is a named CT window in Hounsfield units.
type Preset struct {
	Name   string  `json:"name"`
	Center float64 `json:"center"`
	Width  float64 `json:"width"`
	// Shows is what the window is for, for the viewer's menu.
	Shows string `json:"shows"`
}

// Presets are the standard CT windows of everyday radiology, as taught (e.g.
// Radiopaedia, "Windowing (CT)") and as the common viewers ship them. Where
// the teaching gives a range, the middle is taken:
//
//	brain        W 80    L 40    grey/white matter
//	subdural     W 215   L 75    thin collections against the skull (W 130–300, L 50–100)
//	stroke       W 40    L 40    early ischaemia: a narrow brain window (W 8 L 32 is the extreme variant)
//	lung         W 1500  L -600  parenchyma, airways
//	mediastinum  W 350   L 50    heart, vessels, nodes
//	abdomen      W 400   L 50    abdominal soft tissue
//	liver        W 150   L 30    liver lesions against parenchyma
//	bone         W 1800  L 400   cortex and medulla
//
// They only make sense on a modality output in HU (CT); the viewer offers
// them for CT.
var Presets = []Preset{
	{Name: "brain", Center: 40, Width: 80, Shows: "brain"},
	{Name: "subdural", Center: 75, Width: 215, Shows: "subdural blood"},
	{Name: "stroke", Center: 40, Width: 40, Shows: "early stroke"},
	{Name: "lung", Center: -600, Width: 1500, Shows: "lungs"},
	{Name: "mediastinum", Center: 50, Width: 350, Shows: "mediastinum"},
	{Name: "abdomen", Center: 50, Width: 400, Shows: "abdominal soft tissue"},
	{Name: "liver", Center: 30, Width: 150, Shows: "liver"},
	{Name: "bone", Center: 400, Width: 1800, Shows: "bone"},
}

// PresetByName finds a preset, ignoring case and surrounding space.
func PresetByName(name string) (Preset, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, p := range Presets {
		if p.Name == n {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("%w: %q", ErrUnknownPreset, name)
}
