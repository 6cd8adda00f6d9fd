package dicom

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	dcm "github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"lightbox/dicom/codec"
)

// elems is one level of a data set: the top level or a sequence item.
type elems []*dcm.Element

func (es elems) find(t tag.Tag) *dcm.Element {
	for _, e := range es {
		if e.Tag == t {
			return e
		}
	}
	return nil
}

// strs returns an element's values as strings, whatever VR it was read as.
func (es elems) strs(t tag.Tag) []string {
	e := es.find(t)
	if e == nil || e.Value == nil {
		return nil
	}
	switch v := e.Value.GetValue().(type) {
	case []string:
		out := make([]string, 0, len(v))
		for _, s := range v {
			out = append(out, strings.TrimRight(strings.TrimSpace(s), "\x00"))
		}
		return out
	case []int:
		out := make([]string, len(v))
		for i, n := range v {
			out[i] = strconv.Itoa(n)
		}
		return out
	case []float64:
		out := make([]string, len(v))
		for i, n := range v {
			out[i] = strconv.FormatFloat(n, 'g', -1, 64)
		}
		return out
	case []byte:
		return unknownVR(e, v)
	}
	return nil
}

// unknownVR reads a value some writers encode as UN although the
// dictionary knows its VR (PS3.5 6.2.2 lets a reader use the dictionary).
func unknownVR(e *dcm.Element, v []byte) []string {
	info, err := tag.Find(e.Tag)
	if err != nil && e.Tag.Group&0xFF01 == 0x6000 {
		// The overlay groups 6000-601E repeat (PS3.5 7.6); the dictionary
		// names only the first.
		info, err = tag.Find(tag.Tag{Group: 0x6000, Element: e.Tag.Element})
	}
	if err != nil || len(info.VRs) == 0 {
		return nil
	}
	var out []string
	switch vr := info.VRs[0]; vr {
	case "US", "SS":
		for i := 0; i+1 < len(v); i += 2 {
			n := int(binary.LittleEndian.Uint16(v[i:]))
			if vr == "SS" {
				n = int(int16(n))
			}
			out = append(out, strconv.Itoa(n))
		}
	case "UL", "SL":
		for i := 0; i+3 < len(v); i += 4 {
			n := int64(binary.LittleEndian.Uint32(v[i:]))
			if vr == "SL" {
				n = int64(int32(n))
			}
			out = append(out, strconv.FormatInt(n, 10))
		}
	case "AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT":
		for _, s := range strings.Split(string(v), `\`) {
			out = append(out, strings.TrimRight(strings.TrimSpace(s), "\x00"))
		}
	}
	return out
}

func (es elems) str(t tag.Tag) string {
	return strings.Join(es.strs(t), `\`)
}

func (es elems) floats(t tag.Tag) []float64 {
	var out []float64
	for _, s := range es.strs(t) {
		if s == "" {
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil
		}
		out = append(out, f)
	}
	return out
}

func (es elems) float(t tag.Tag) (float64, bool) {
	v := es.floats(t)
	if len(v) == 0 {
		return 0, false
	}
	return v[0], true
}

func (es elems) ints(t tag.Tag) []int {
	e := es.find(t)
	if e == nil || e.Value == nil {
		return nil
	}
	if v, ok := e.Value.GetValue().([]int); ok {
		return v
	}
	var out []int
	for _, s := range es.strs(t) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}

func (es elems) integer(t tag.Tag, def int) int {
	if v := es.ints(t); len(v) > 0 {
		return v[0]
	}
	return def
}

// items returns the items of a sequence element.
func (es elems) items(t tag.Tag) []elems {
	e := es.find(t)
	if e == nil || e.Value == nil {
		return nil
	}
	seq, ok := e.Value.GetValue().([]*dcm.SequenceItemValue)
	if !ok {
		return nil
	}
	out := make([]elems, len(seq))
	for i, it := range seq {
		out[i], _ = it.GetValue().([]*dcm.Element)
	}
	return out
}

// first returns the first item of a sequence, or nil.
func (es elems) first(t tag.Tag) elems {
	if its := es.items(t); len(its) > 0 {
		return its[0]
	}
	return nil
}

// readMeta fills f.Meta from the parsed header.
func (f *File) readMeta() error {
	ds := elems(f.Dataset.Elements)
	m := &f.Meta
	m.TransferSyntaxUID = f.lay.transferSyntax
	m.SOPClassUID = ds.str(tag.SOPClassUID)
	if m.SOPClassUID == "" {
		m.SOPClassUID = ds.str(tag.MediaStorageSOPClassUID)
	}
	m.SOPInstanceUID = ds.str(tag.SOPInstanceUID)
	if m.SOPInstanceUID == "" {
		m.SOPInstanceUID = ds.str(tag.MediaStorageSOPInstanceUID)
	}
	m.CharacterSet = ds.str(tag.SpecificCharacterSet)
	m.Patient = Patient{
		ID:        ds.str(tag.PatientID),
		Name:      ds.str(tag.PatientName),
		BirthDate: ds.str(tag.PatientBirthDate),
		Sex:       ds.str(tag.PatientSex),
	}
	m.Study = Study{
		InstanceUID:      ds.str(tag.StudyInstanceUID),
		Date:             ds.str(tag.StudyDate),
		Time:             ds.str(tag.StudyTime),
		Description:      ds.str(tag.StudyDescription),
		AccessionNumber:  ds.str(tag.AccessionNumber),
		ID:               ds.str(tag.StudyID),
		ReferringPhysian: ds.str(tag.ReferringPhysicianName),
	}
	m.Series = Series{
		InstanceUID: ds.str(tag.SeriesInstanceUID),
		Modality:    ds.str(tag.Modality),
		Number:      ds.integer(tag.SeriesNumber, 0),
		Description: ds.str(tag.SeriesDescription),
		BodyPart:    ds.str(tag.BodyPartExamined),
	}
	m.Instance = Instance{
		Number:          ds.integer(tag.InstanceNumber, 0),
		ContentDate:     ds.str(tag.ContentDate),
		ContentTime:     ds.str(tag.ContentTime),
		ImageType:       ds.str(tag.ImageType),
		AcquisitionDate: ds.str(tag.AcquisitionDate),
	}
	if m.SOPInstanceUID == "" {
		return fmt.Errorf("%w: no SOP Instance UID (0008,0018)", ErrMalformed)
	}
	if !f.lay.hasPixels {
		return nil
	}
	im := &m.Image
	im.Rows = ds.integer(tag.Rows, 0)
	im.Columns = ds.integer(tag.Columns, 0)
	im.NumberOfFrames = ds.integer(tag.NumberOfFrames, 1)
	im.SamplesPerPixel = ds.integer(tag.SamplesPerPixel, 1)
	im.Photometric = ds.str(tag.PhotometricInterpretation)
	im.BitsAllocated = ds.integer(tag.BitsAllocated, 0)
	im.BitsStored = ds.integer(tag.BitsStored, im.BitsAllocated)
	im.HighBit = ds.integer(tag.HighBit, im.BitsStored-1)
	im.PixelRepresentation = ds.integer(tag.PixelRepresentation, 0)
	im.PlanarConfiguration = ds.integer(tag.PlanarConfiguration, 0)
	im.PixelSpacing = ds.floats(tag.PixelSpacing)
	im.ImagerPixelSpacing = ds.floats(tag.ImagerPixelSpacing)
	im.ImagePositionPatient = ds.floats(tag.ImagePositionPatient)
	im.ImageOrientationPatient = ds.floats(tag.ImageOrientationPatient)
	im.SliceThickness, _ = ds.float(tag.SliceThickness)
	im.SpacingBetweenSlices, _ = ds.float(tag.SpacingBetweenSlices)
	im.Rescale = rescaleOf(ds, Rescale{Slope: 1})
	im.Windows = windowsOf(ds)
	im.Overlays = overlaysOf(ds)
	im.VOIFunction = strings.ToUpper(ds.str(tag.VOILUTFunction))
	im.PresentationLU = strings.ToUpper(ds.str(tag.PresentationLUTShape))
	if im.PhotometricIs("MONOCHROME1") || im.PhotometricIs("MONOCHROME2") {
		if it := ds.first(tag.ModalityLUTSequence); it != nil {
			lut, err := f.lutOf(it, tag.LUTDescriptor, tag.LUTData)
			if err != nil {
				return fmt.Errorf("modality LUT: %w", err)
			}
			lut.Explanation = it.str(tag.LUTExplanation)
			im.ModalityLUT = &lut
		}
		for i, it := range ds.items(tag.VOILUTSequence) {
			lut, err := f.lutOf(it, tag.LUTDescriptor, tag.LUTData)
			if err != nil {
				return fmt.Errorf("VOI LUT %d: %w", i+1, err)
			}
			lut.Explanation = it.str(tag.LUTExplanation)
			im.VOILUTs = append(im.VOILUTs, lut)
		}
	}
	if im.Photometric == "PALETTE COLOR" {
		var p Palette
		var err error
		if p.Red, err = f.lutOf(ds, tag.RedPaletteColorLookupTableDescriptor, tag.RedPaletteColorLookupTableData); err == nil {
			if p.Green, err = f.lutOf(ds, tag.GreenPaletteColorLookupTableDescriptor, tag.GreenPaletteColorLookupTableData); err == nil {
				p.Blue, err = f.lutOf(ds, tag.BluePaletteColorLookupTableDescriptor, tag.BluePaletteColorLookupTableData)
			}
		}
		if err != nil {
			return fmt.Errorf("palette: %w", err)
		}
		im.Palette = &p
	}
	f.readFunctionalGroups(ds)
	im.LossyCompression = ds.str(tag.LossyImageCompression) == "01" || codec.Lossy(m.TransferSyntaxUID)
	im.LossyRatio = ds.floats(tag.LossyImageCompressionRatio)
	im.LossyMethod = ds.strs(tag.LossyImageCompressionMethod)
	return nil
}

// PhotometricIs compares the photometric interpretation, ignoring the
// padding some writers leave.
func (im *Image) PhotometricIs(p string) bool {
	return strings.TrimSpace(im.Photometric) == p
}

func rescaleOf(es elems, def Rescale) Rescale {
	r := def
	if v, ok := es.float(tag.RescaleSlope); ok && v != 0 {
		r.Slope = v
	}
	if v, ok := es.float(tag.RescaleIntercept); ok {
		r.Intercept = v
	}
	if t := es.str(tag.RescaleType); t != "" {
		r.Type = t
	}
	return r
}

func windowsOf(es elems) []Window {
	c, w := es.floats(tag.WindowCenter), es.floats(tag.WindowWidth)
	ex := es.strs(tag.WindowCenterWidthExplanation)
	var out []Window
	for i := 0; i < len(c) && i < len(w); i++ {
		win := Window{Center: c[i], Width: w[i]}
		if i < len(ex) {
			win.Explanation = ex[i]
		}
		out = append(out, win)
	}
	return out
}

// readFunctionalGroups takes rescale, window, pixel spacing and position
// from an enhanced multi-frame object's functional groups (PS3.3 C.7.6.16),
// where such objects keep them instead of the top level.
func (f *File) readFunctionalGroups(ds elems) {
	im := &f.Meta.Image
	apply := func(g elems, fm *FrameMeta) {
		if pvt := g.first(tag.PixelValueTransformationSequence); pvt != nil {
			r := rescaleOf(pvt, Rescale{Slope: 1})
			if fm != nil {
				fm.Rescale = &r
			} else {
				im.Rescale = r
			}
		}
		if voi := g.first(tag.FrameVOILUTSequence); voi != nil {
			ws := windowsOf(voi)
			if fn := voi.str(tag.VOILUTFunction); fn != "" && fm == nil {
				im.VOIFunction = strings.ToUpper(fn)
			}
			if fm != nil {
				fm.Windows = ws
			} else if len(ws) > 0 {
				im.Windows = ws
			}
		}
		if pm := g.first(tag.PixelMeasuresSequence); pm != nil && fm == nil {
			if v := pm.floats(tag.PixelSpacing); len(v) == 2 {
				im.PixelSpacing = v
			}
			if v, ok := pm.float(tag.SliceThickness); ok {
				im.SliceThickness = v
			}
		}
		if pp := g.first(tag.PlanePositionSequence); pp != nil {
			if v := pp.floats(tag.ImagePositionPatient); len(v) == 3 {
				if fm != nil {
					fm.ImagePositionPatient = v
				} else {
					im.ImagePositionPatient = v
				}
			}
		}
		if po := g.first(tag.PlaneOrientationSequence); po != nil && fm == nil {
			if v := po.floats(tag.ImageOrientationPatient); len(v) == 6 {
				im.ImageOrientationPatient = v
			}
		}
	}
	if shared := ds.first(tag.SharedFunctionalGroupsSequence); shared != nil {
		apply(shared, nil)
	}
	per := ds.items(tag.PerFrameFunctionalGroupsSequence)
	if len(per) == 0 {
		return
	}
	frames := make([]FrameMeta, len(per))
	any := false
	for i, g := range per {
		apply(g, &frames[i])
		any = any || frames[i].Rescale != nil || len(frames[i].Windows) > 0 || frames[i].ImagePositionPatient != nil
	}
	if any {
		im.Frames = frames
	}
}

// lutOf reads a LUT descriptor (entries, first mapped, bits) and its data
// (PS3.3 C.11.1.1.1). The data may arrive as US values or as OW bytes.
func (f *File) lutOf(es elems, descTag, dataTag tag.Tag) (LUT, error) {
	d := es.ints(descTag)
	if len(d) != 3 {
		return LUT{}, fmt.Errorf("%w: LUT descriptor has %d values, want 3", ErrMalformed, len(d))
	}
	entries := d[0]
	if entries == 0 {
		entries = 65536
	}
	first := d[1]
	// The first mapped value is US or SS as the pixels are (C.11.1.1.1).
	if f.Meta.Image.PixelRepresentation == 1 && first > 32767 {
		first -= 65536
	}
	lut := LUT{FirstMapped: first, Bits: d[2], Entries: entries}
	if lut.Bits < 1 || lut.Bits > 16 {
		return LUT{}, fmt.Errorf("%w: LUT of %d bits per entry", ErrMalformed, lut.Bits)
	}
	e := es.find(dataTag)
	if e == nil || e.Value == nil {
		return LUT{}, fmt.Errorf("%w: LUT data missing", ErrMalformed)
	}
	switch v := e.Value.GetValue().(type) {
	case []int:
		lut.Data = make([]uint16, len(v))
		for i, x := range v {
			lut.Data[i] = uint16(x)
		}
	case []byte:
		var order binary.ByteOrder = binary.LittleEndian
		if f.lay.order == binary.BigEndian {
			order = binary.BigEndian
		}
		if lut.Bits == 8 && len(v) == entries { // 8-bit entries packed one a byte
			lut.Data = make([]uint16, len(v))
			for i, x := range v {
				lut.Data[i] = uint16(x)
			}
			break
		}
		lut.Data = make([]uint16, len(v)/2)
		for i := range lut.Data {
			lut.Data[i] = order.Uint16(v[2*i:])
		}
	default:
		return LUT{}, fmt.Errorf("%w: LUT data of unexpected type %T", ErrMalformed, v)
	}
	if len(lut.Data) < entries {
		return LUT{}, fmt.Errorf("%w: LUT has %d entries, descriptor says %d", ErrMalformed, len(lut.Data), entries)
	}
	lut.Data = lut.Data[:entries]
	return lut, nil
}
