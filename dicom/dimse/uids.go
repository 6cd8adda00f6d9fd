package dimse

// UIDs this SCP negotiates (PS3.6 Annex A). They are spelled out here rather
// than taken from another package so that dimse depends on nothing but the
// standard library.

// ApplicationContext is the one DICOM application context name (PS3.7 A.2.1).
const ApplicationContext = "1.2.840.10008.3.1.1.1"

// ImplementationClassUID identifies Lightbox's upper-layer implementation in
// A-ASSOCIATE-AC (PS3.7 D.3.3.2). It is a UUID-derived UID (PS3.5 B.2) since
// the project has no registered root.
const ImplementationClassUID = "2.25.245584654929724318742815914635412620731"

// ImplementationVersionName goes with ImplementationClassUID (at most 16
// characters); bump it when the wire behaviour changes.
const ImplementationVersionName = "LIGHTBOX_1"

// VerificationSOPClass is the C-ECHO SOP class (PS3.4 A.4).
const VerificationSOPClass = "1.2.840.10008.1.1"

// Transfer syntaxes (PS3.5 Section 10 and Annex A).
const (
	ImplicitVRLittleEndian = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
	DeflatedExplicitVRLE   = "1.2.840.10008.1.2.1.99"
	ExplicitVRBigEndian    = "1.2.840.10008.1.2.2"
	JPEGBaseline8Bit       = "1.2.840.10008.1.2.4.50"
	JPEGExtended12Bit      = "1.2.840.10008.1.2.4.51"
	JPEGLossless           = "1.2.840.10008.1.2.4.57"
	JPEGLosslessSV1        = "1.2.840.10008.1.2.4.70"
	JPEGLSLossless         = "1.2.840.10008.1.2.4.80"
	JPEGLSNearLossless     = "1.2.840.10008.1.2.4.81"
	JPEG2000Lossless       = "1.2.840.10008.1.2.4.90"
	JPEG2000               = "1.2.840.10008.1.2.4.91"
	RLELossless            = "1.2.840.10008.1.2.5"
)

// DefaultTransferSyntaxes are the transfer syntaxes accepted when
// Config.TransferSyntaxes is nil: every syntax the DICOM core decodes.
// The order does not matter; the peer's proposal order does (see
// chooseTransferSyntax).
var DefaultTransferSyntaxes = []string{
	ExplicitVRLittleEndian,
	ImplicitVRLittleEndian,
	ExplicitVRBigEndian,
	DeflatedExplicitVRLE,
	JPEGBaseline8Bit,
	JPEGExtended12Bit,
	JPEGLossless,
	JPEGLosslessSV1,
	JPEGLSLossless,
	JPEGLSNearLossless,
	JPEG2000Lossless,
	JPEG2000,
	RLELossless,
}

// Storage SOP classes (PS3.4 B.5).
const (
	CRImageStorage                   = "1.2.840.10008.5.1.4.1.1.1"
	DXImageStorageForPresentation    = "1.2.840.10008.5.1.4.1.1.1.1"
	DXImageStorageForProcessing      = "1.2.840.10008.5.1.4.1.1.1.1.1"
	MGImageStorageForPresentation    = "1.2.840.10008.5.1.4.1.1.1.2"
	MGImageStorageForProcessing      = "1.2.840.10008.5.1.4.1.1.1.2.1"
	CTImageStorage                   = "1.2.840.10008.5.1.4.1.1.2"
	EnhancedCTImageStorage           = "1.2.840.10008.5.1.4.1.1.2.1"
	USMultiFrameImageStorageRetired  = "1.2.840.10008.5.1.4.1.1.3"
	USMultiFrameImageStorage         = "1.2.840.10008.5.1.4.1.1.3.1"
	MRImageStorage                   = "1.2.840.10008.5.1.4.1.1.4"
	EnhancedMRImageStorage           = "1.2.840.10008.5.1.4.1.1.4.1"
	USImageStorageRetired            = "1.2.840.10008.5.1.4.1.1.6"
	USImageStorage                   = "1.2.840.10008.5.1.4.1.1.6.1"
	SecondaryCaptureImageStorage     = "1.2.840.10008.5.1.4.1.1.7"
	MultiFrameSingleBitSCStorage     = "1.2.840.10008.5.1.4.1.1.7.1"
	MultiFrameGrayscaleByteSCStorage = "1.2.840.10008.5.1.4.1.1.7.2"
	MultiFrameGrayscaleWordSCStorage = "1.2.840.10008.5.1.4.1.1.7.3"
	MultiFrameTrueColorSCStorage     = "1.2.840.10008.5.1.4.1.1.7.4"
	XAImageStorage                   = "1.2.840.10008.5.1.4.1.1.12.1"
	EnhancedXAImageStorage           = "1.2.840.10008.5.1.4.1.1.12.1.1"
	XRFImageStorage                  = "1.2.840.10008.5.1.4.1.1.12.2"
	EnhancedXRFImageStorage          = "1.2.840.10008.5.1.4.1.1.12.2.1"
	NMImageStorage                   = "1.2.840.10008.5.1.4.1.1.20"
	PETImageStorage                  = "1.2.840.10008.5.1.4.1.1.128"
	EnhancedPETImageStorage          = "1.2.840.10008.5.1.4.1.1.130"
)

// DefaultSOPClasses are the storage SOP classes accepted when
// Config.SOPClasses is nil. The retired ultrasound classes stay because
// older ultrasound machines still send them.
var DefaultSOPClasses = []string{
	CRImageStorage,
	DXImageStorageForPresentation,
	DXImageStorageForProcessing,
	MGImageStorageForPresentation,
	MGImageStorageForProcessing,
	CTImageStorage,
	EnhancedCTImageStorage,
	USMultiFrameImageStorageRetired,
	USMultiFrameImageStorage,
	MRImageStorage,
	EnhancedMRImageStorage,
	USImageStorageRetired,
	USImageStorage,
	SecondaryCaptureImageStorage,
	MultiFrameSingleBitSCStorage,
	MultiFrameGrayscaleByteSCStorage,
	MultiFrameGrayscaleWordSCStorage,
	MultiFrameTrueColorSCStorage,
	XAImageStorage,
	EnhancedXAImageStorage,
	XRFImageStorage,
	EnhancedXRFImageStorage,
	NMImageStorage,
	PETImageStorage,
	EnhancedPETImageStorage,
}

// validUID reports whether s is a syntactically valid UID (PS3.5 9.1):
// dot-separated numeric components without leading zeros, at most 64
// characters.
func validUID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
			continue
		}
		comp := s[start:i]
		if len(comp) == 0 || (len(comp) > 1 && comp[0] == '0') {
			return false
		}
		start = i + 1
	}
	return true
}

// plausibleUID is the check applied to UIDs received from peers: digits and
// dots, at most 64 characters. It tolerates what validUID refuses (leading
// zeros, empty components), which legacy modalities do emit; whoever stores
// the instance may be stricter.
func plausibleUID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}
