package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"lightbox/dicom"
)

// renderOpts are the flags of `lightbox render`, parsed into a View.
type renderOpts struct {
	frame   int
	window  string
	preset  string
	index   int
	minmax  bool
	size    string
	quality int
}

func (o *renderOpts) view() (dicom.View, error) {
	var v dicom.View
	set := 0
	if o.window != "" {
		c, w, ok := strings.Cut(o.window, ",")
		center, err1 := strconv.ParseFloat(strings.TrimSpace(c), 64)
		width, err2 := strconv.ParseFloat(strings.TrimSpace(w), 64)
		if !ok || err1 != nil || err2 != nil {
			return v, fmt.Errorf("--window %q: want CENTER,WIDTH, e.g. 40,400", o.window)
		}
		v.Window, v.Center, v.Width = dicom.WindowExplicit, center, width
		set++
	}
	if o.preset != "" {
		v.Window, v.Preset = dicom.WindowPreset, o.preset
		set++
	}
	if o.index > 0 {
		v.Window, v.Index = dicom.WindowFile, o.index
		set++
	}
	if o.minmax {
		v.Window = dicom.WindowMinMax
		set++
	}
	if set > 1 {
		return v, errors.New("give at most one of --window, --preset, --window-index, --minmax")
	}
	if o.size != "" {
		w, h, ok := strings.Cut(strings.ToLower(o.size), "x")
		mw, err1 := strconv.Atoi(w)
		mh, err2 := strconv.Atoi(h)
		if !ok || err1 != nil || err2 != nil || mw < 1 || mh < 1 {
			return v, fmt.Errorf("--size %q: want WIDTHxHEIGHT, e.g. 512x512", o.size)
		}
		v.MaxW, v.MaxH, v.Upscale = mw, mh, true
	}
	return v, nil
}

// runRender renders one frame of a DICOM file to PNG or JPEG, as a
// radiology workstation would show it.
func runRender(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	var o renderOpts
	fs.IntVar(&o.frame, "frame", 1, "frame `N`, from 1")
	fs.StringVar(&o.window, "window", "", "window `C,W` in modality units (e.g. Hounsfield: 40,400)")
	fs.StringVar(&o.preset, "preset", "", "CT preset `NAME`: brain, subdural, stroke, lung, mediastinum, abdomen, liver, bone")
	fs.IntVar(&o.index, "window-index", 0, "the file's window number `N`, from 1")
	fs.BoolVar(&o.minmax, "minmax", false, "window over the frame's minimum and maximum")
	fs.StringVar(&o.size, "size", "", "fit the picture in `WxH` pixels, keeping its aspect")
	fs.IntVar(&o.quality, "quality", 90, "JPEG quality `Q`, 1 to 100")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: lightbox render [flags] IN.dcm OUT.png|OUT.jpg\n\nWithout a window flag: the file's first window, else the frame's min-max.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("want an input and an output file")
	}
	in, out := fs.Arg(0), fs.Arg(1)
	ext := strings.ToLower(filepath.Ext(out))
	if ext != ".png" && ext != ".jpg" && ext != ".jpeg" {
		return fmt.Errorf("output %s: want a .png, .jpg or .jpeg name", out)
	}
	v, err := o.view()
	if err != nil {
		return err
	}
	f, err := dicom.Open(in)
	if err != nil {
		return err
	}
	if o.frame < 1 || o.frame > f.NumFrames() {
		return fmt.Errorf("%s: --frame %d: the file has %d frames", in, o.frame, f.NumFrames())
	}
	fr, err := f.Frame(o.frame - 1)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	img, err := dicom.Render(&f.Meta, fr, v)
	if err != nil {
		return fmt.Errorf("%s: frame %d: %w", in, o.frame, err)
	}
	fh, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(fh)
	if ext == ".png" {
		err = dicom.EncodePNG(w, img)
	} else {
		err = dicom.EncodeJPEG(w, img, o.quality)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}
