package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"lightbox/dicom"
)

// rendered is one encoded picture with what the client needs to know of it.
type rendered struct {
	body  []byte
	ctype string
	// window is the VOI window the picture was made with, "C,W", or empty
	// for colour and palette images (no VOI applies) and VOI LUTs: the viewer shows it and starts a
	// window/level drag from it.
	window string
}

// dicomView turns a validated request into the pipeline's View. The API
// numbers file windows and VOI LUTs from 0, as they appear in the JSON
// header; the pipeline numbers them from 1, as dcmj2pnm does.
func dicomView(v view) dicom.View {
	dv := dicom.View{MaxW: v.w, MaxH: v.h, Upscale: true}
	switch v.mode {
	case "window":
		dv.Window, dv.Center, dv.Width = dicom.WindowExplicit, v.center, v.width
	case "preset":
		dv.Window, dv.Preset = dicom.WindowPreset, v.preset
	case "index":
		dv.Window, dv.Index = dicom.WindowFile, v.index+1
	case "voilut":
		dv.Window, dv.Index = dicom.WindowVOILUT, v.index+1
	case "minmax":
		dv.Window = dicom.WindowMinMax
	default:
		dv.Window = dicom.WindowDefault
	}
	return dv
}

// renderEntry reads, decodes, renders and encodes frame n of e. Errors
// that are the request's fault come back as *httpError; the rest are about
// the file (the caller answers 422).
func renderEntry(e *entry, n int, v view) (rendered, error) {
	f, err := dicom.Open(e.Path)
	if err != nil {
		return rendered{}, err
	}
	return renderFile(f, n, v)
}

// renderFile decodes, renders and encodes frame n of a parsed file, from
// the testdata folder or from the blob store alike.
func renderFile(f *dicom.File, n int, v view) (rendered, error) {
	fr, err := f.Frame(n)
	if err != nil {
		if errors.Is(err, dicom.ErrNoFrame) {
			return rendered{}, &httpError{http.StatusNotFound, fmt.Sprintf("no frame %d", n)}
		}
		return rendered{}, err
	}
	dv := dicomView(v)
	img, err := dicom.Render(&f.Meta, fr, dv)
	if err != nil {
		if requestFault(err) {
			return rendered{}, badRequest(strings.TrimPrefix(err.Error(), "dicom: "))
		}
		return rendered{}, err
	}
	out := rendered{ctype: "image/png"}
	if pi := fr.Photometric; pi == "MONOCHROME1" || pi == "MONOCHROME2" {
		if voi, err := dicom.ResolveVOI(&f.Meta, fr, dv); err == nil && voi.LUT == nil {
			out.window = strconv.FormatFloat(voi.Window.Center, 'g', 8, 64) + "," + strconv.FormatFloat(voi.Window.Width, 'g', 8, 64)
		}
	}
	var buf bytes.Buffer
	if v.format == "jpeg" {
		out.ctype = "image/jpeg"
		err = dicom.EncodeJPEG(&buf, img, v.q)
	} else {
		err = dicom.EncodePNG(&buf, img)
	}
	if err != nil {
		return rendered{}, err
	}
	out.body = buf.Bytes()
	return out, nil
}

// requestFault reports whether a pipeline error is about what the request
// asked for (a window the function cannot use, a window the file does not
// have) rather than about the file.
func requestFault(err error) bool {
	for _, target := range []error{dicom.ErrWindowWidth, dicom.ErrVOIFunction, dicom.ErrNoWindow,
		dicom.ErrNoVOILUT, dicom.ErrUnknownPreset, dicom.ErrSize, dicom.ErrQuality} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// presetList is the pipeline's CT presets as the UI shows them.
func presetList() []presetInfo {
	out := make([]presetInfo, 0, len(dicom.Presets))
	for _, p := range dicom.Presets {
		out = append(out, presetInfo{
			Name:   p.Name,
			Label:  strings.ToUpper(p.Name[:1]) + p.Name[1:],
			Shows:  p.Shows,
			Center: p.Center,
			Width:  p.Width,
		})
	}
	return out
}

func knownPreset(name string) bool {
	_, err := dicom.PresetByName(name)
	return err == nil
}

func presetNames() []string {
	out := make([]string, 0, len(dicom.Presets))
	for _, p := range dicom.Presets {
		out = append(out, p.Name)
	}
	return out
}
