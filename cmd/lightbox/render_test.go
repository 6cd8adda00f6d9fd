package main

import (
	"image"
	_ "image/jpeg"
	_ "image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		w, h    int    // expected output size
		wantErr string // substring of the error, or "" for success
	}{
		{"ct default window", []string{"../../testdata/ct-signed-implicit-512.dcm", "ct.png"}, 512, 512, ""},
		{"ct preset jpeg", []string{"--preset", "lung", "../../testdata/ct-signed-implicit-512.dcm", "ct.jpg"}, 512, 512, ""},
		{"enhanced ct frame 2", []string{"--frame", "2", "--window", "40,400", "../../testdata/ct-enhanced-multiframe.dcm", "e.png"}, 512, 512, ""},
		{"x-ray resized", []string{"--size", "440x1000", "../../testdata/cr-chest-monochrome1.dcm", "cr.png"}, 440, 535, ""},
		{"min-max", []string{"--minmax", "../../testdata/mr-small.dcm", "mr.png"}, 64, 64, ""},
		{"frame out of range", []string{"--frame", "3", "../../testdata/mr-small.dcm", "x.png"}, 0, 0, "has 1 frames"},
		{"bad window", []string{"--window", "40", "../../testdata/mr-small.dcm", "x.png"}, 0, 0, "CENTER,WIDTH"},
		{"unknown preset", []string{"--preset", "kidney", "../../testdata/mr-small.dcm", "x.png"}, 0, 0, "preset"},
		{"two windows", []string{"--minmax", "--preset", "lung", "../../testdata/mr-small.dcm", "x.png"}, 0, 0, "at most one"},
		{"bad output", []string{"../../testdata/mr-small.dcm", "x.gif"}, 0, 0, ".png"},
		{"not dicom", []string{"../../testdata/SOURCES.md", "x.png"}, 0, 0, "DICM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{}, tc.args...)
			out := filepath.Join(dir, args[len(args)-1])
			args[len(args)-1] = out
			err := runRender(args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				if _, statErr := os.Stat(out); statErr == nil {
					t.Error("a failed render left an output file")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fh, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			cfg, _, err := image.DecodeConfig(fh)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Width != tc.w || cfg.Height != tc.h {
				t.Errorf("output %dx%d, want %dx%d", cfg.Width, cfg.Height, tc.w, tc.h)
			}
		})
	}
}

func TestInfo(t *testing.T) {
	old := os.Stdout
	r, w, _ := os.Pipe()
	os.Stdout = w
	err := runInfo([]string{"../../testdata/ct-enhanced-multiframe.dcm"})
	w.Close()
	os.Stdout = old
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1<<20)
	n, _ := r.Read(b)
	out := string(b[:n])
	for _, want := range []string{`"Modality": "CT"`, `"NumberOfFrames": 2`, `"RescaleIntercept": -1024`} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %s:\n%s", want, out)
		}
	}
	if err := runInfo([]string{"../../testdata/nope.dcm"}); err == nil {
		t.Error("no error for a missing file")
	}
}
