package dicom

// Meta is what Lightbox knows of one instance from its header: who and what
// it shows (patient, study, series, instance), the image geometry, and
// everything the display pipeline needs. It is read without the pixel data,
// so listing and ingest stay cheap. JSON names follow the DICOM keywords.
type Meta struct {
	TransferSyntaxUID string `json:"TransferSyntaxUID"`
	SOPClassUID       string `json:"SOPClassUID"`
	SOPInstanceUID    string `json:"SOPInstanceUID"`
	// CharacterSet is Specific Character Set (0008,0005), as declared.
	CharacterSet string `json:"SpecificCharacterSet,omitempty"`

	Patient  Patient  `json:"Patient"`
	Study    Study    `json:"Study"`
	Series   Series   `json:"Series"`
	Instance Instance `json:"Instance"`
	Image    Image    `json:"Image"`
}

// Patient is the patient module (PS3.3 C.7.1.1).
type Patient struct {
	ID        string `json:"PatientID,omitempty"`
	Name      string `json:"PatientName,omitempty"`
	BirthDate string `json:"PatientBirthDate,omitempty"`
	Sex       string `json:"PatientSex,omitempty"`
}

// Study is the general study module (PS3.3 C.7.2.1).
type Study struct {
	InstanceUID      string `json:"StudyInstanceUID"`
	Date             string `json:"StudyDate,omitempty"`
	Time             string `json:"StudyTime,omitempty"`
	Description      string `json:"StudyDescription,omitempty"`
	AccessionNumber  string `json:"AccessionNumber,omitempty"`
	ID               string `json:"StudyID,omitempty"`
	ReferringPhysian string `json:"ReferringPhysicianName,omitempty"`
}

// Series is the general series module (PS3.3 C.7.3.1).
type Series struct {
	InstanceUID string `json:"SeriesInstanceUID"`
	Modality    string `json:"Modality,omitempty"`
	Number      int    `json:"SeriesNumber,omitempty"`
	Description string `json:"SeriesDescription,omitempty"`
	BodyPart    string `json:"BodyPartExamined,omitempty"`
}

// Instance is the part of the general image and SOP common modules that
// names one instance.
type Instance struct {
	Number          int    `json:"InstanceNumber,omitempty"`
	ContentDate     string `json:"ContentDate,omitempty"`
	ContentTime     string `json:"ContentTime,omitempty"`
	ImageType       string `json:"ImageType,omitempty"`
	AcquisitionDate string `json:"AcquisitionDate,omitempty"`
}

// Image is the image pixel module (PS3.3 C.7.6.3) with the geometry and
// the display attributes of the whole instance. Where an enhanced
// multi-frame object keeps these in its functional groups, the shared
// group's values are here and each frame's own values in Frames.
type Image struct {
	Rows                int    `json:"Rows"`
	Columns             int    `json:"Columns"`
	NumberOfFrames      int    `json:"NumberOfFrames"`
	SamplesPerPixel     int    `json:"SamplesPerPixel"`
	Photometric         string `json:"PhotometricInterpretation"`
	BitsAllocated       int    `json:"BitsAllocated"`
	BitsStored          int    `json:"BitsStored"`
	HighBit             int    `json:"HighBit"`
	PixelRepresentation int    `json:"PixelRepresentation"`
	PlanarConfiguration int    `json:"PlanarConfiguration"`

	// PixelSpacing is row spacing then column spacing in mm (0028,0030);
	// ImagerPixelSpacing is the detector's (0018,1164), which projection
	// X-rays often carry instead.
	PixelSpacing            []float64 `json:"PixelSpacing,omitempty"`
	ImagerPixelSpacing      []float64 `json:"ImagerPixelSpacing,omitempty"`
	ImagePositionPatient    []float64 `json:"ImagePositionPatient,omitempty"`
	ImageOrientationPatient []float64 `json:"ImageOrientationPatient,omitempty"`
	SliceThickness          float64   `json:"SliceThickness,omitempty"`
	SpacingBetweenSlices    float64   `json:"SpacingBetweenSlices,omitempty"`

	// Rescale is the modality LUT as a linear function, the default
	// (slope 1, intercept 0) when absent.
	Rescale     Rescale `json:"Rescale"`
	ModalityLUT *LUT    `json:"ModalityLUT,omitempty"`

	Windows        []Window `json:"Windows,omitempty"`
	VOIFunction    string   `json:"VOILUTFunction,omitempty"`
	VOILUTs        []LUT    `json:"VOILUTs,omitempty"`
	PresentationLU string   `json:"PresentationLUTShape,omitempty"`

	// Palette holds the red, green and blue LUTs of PALETTE COLOR.
	Palette *Palette `json:"-"`

	// LossyCompression is true when Lossy Image Compression (0028,2110) is
	// "01" or the transfer syntax is lossy: viewers must say so.
	LossyCompression bool      `json:"LossyImageCompression"`
	LossyRatio       []float64 `json:"LossyImageCompressionRatio,omitempty"`
	LossyMethod      []string  `json:"LossyImageCompressionMethod,omitempty"`

	// Overlays are the overlay planes (60xx), drawn over grey renderings.
	Overlays []Overlay `json:"Overlays,omitempty"`

	// Frames holds per-frame values of enhanced multi-frame objects
	// (Per-frame Functional Groups Sequence, 5200,9230); nil otherwise.
	Frames []FrameMeta `json:"PerFrame,omitempty"`
}

// Rescale is the linear modality LUT: output = stored*Slope + Intercept.
type Rescale struct {
	Slope     float64 `json:"RescaleSlope"`
	Intercept float64 `json:"RescaleIntercept"`
	Type      string  `json:"RescaleType,omitempty"`
}

// Window is one VOI window with the explanation the modality gave it
// (e.g. "BRAIN"), shown to the user as a choice.
type Window struct {
	Center      float64 `json:"WindowCenter"`
	Width       float64 `json:"WindowWidth"`
	Explanation string  `json:"Explanation,omitempty"`
}

// LUT is a lookup table from a Modality LUT Sequence, VOI LUT Sequence or
// palette (PS3.3 C.11.1.1, C.11.2.1.1): Descriptor is (entries, first
// stored value mapped, bits per entry); input values below FirstMapped take
// Data[0], above the last entry take the last.
type LUT struct {
	FirstMapped int      `json:"FirstMapped"`
	Bits        int      `json:"Bits"`
	Data        []uint16 `json:"-"`
	Explanation string   `json:"Explanation,omitempty"`
	Entries     int      `json:"Entries"`
}

// Palette is the PALETTE COLOR lookup (PS3.3 C.7.6.3.1.5).
type Palette struct {
	Red, Green, Blue LUT
}

// FrameMeta is what one frame of an enhanced multi-frame object overrides.
// A nil or empty field means "as Image says".
type FrameMeta struct {
	Rescale              *Rescale  `json:"Rescale,omitempty"`
	Windows              []Window  `json:"Windows,omitempty"`
	ImagePositionPatient []float64 `json:"ImagePositionPatient,omitempty"`
}

// RescaleOf returns the modality rescale that applies to frame i (from 0).
func (im *Image) RescaleOf(i int) Rescale {
	if i >= 0 && i < len(im.Frames) && im.Frames[i].Rescale != nil {
		return *im.Frames[i].Rescale
	}
	return im.Rescale
}

// WindowsOf returns the VOI windows that apply to frame i (from 0).
func (im *Image) WindowsOf(i int) []Window {
	if i >= 0 && i < len(im.Frames) && len(im.Frames[i].Windows) > 0 {
		return im.Frames[i].Windows
	}
	return im.Windows
}
