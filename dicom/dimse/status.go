package dimse

import "fmt"

// Status is a DIMSE status code (0000,0900). The storage handler returns
// one for each C-STORE; the SCP sends it back unchanged in the C-STORE-RSP.
type Status uint16

// Statuses of the Storage Service Class (PS3.4 B.2.3) and the general ones
// of PS3.7 Annex C that a storage SCP may return. For the ranges (A7xx,
// A9xx, Cxxx) the named value is the one to send; the low byte may carry
// detail.
const (
	// StatusSuccess: the instance is stored (durably).
	StatusSuccess Status = 0x0000

	// StatusCoercionOfDataElements (warning): stored, with some elements
	// changed (PS3.4 B.2.3).
	StatusCoercionOfDataElements Status = 0xB000
	// StatusElementsDiscarded (warning): stored, some elements dropped.
	StatusElementsDiscarded Status = 0xB006
	// StatusDataSetDoesNotMatchSOPClassWarning (warning): stored although
	// the data set does not match the SOP class.
	StatusDataSetDoesNotMatchSOPClassWarning Status = 0xB007

	// StatusOutOfResources (refused, A7xx): the SCP cannot store now, e.g.
	// the disk is full; the sender may retry later.
	StatusOutOfResources Status = 0xA700
	// StatusDataSetDoesNotMatchSOPClass (error, A9xx).
	StatusDataSetDoesNotMatchSOPClass Status = 0xA900
	// StatusCannotUnderstand (error, Cxxx): the data set cannot be parsed.
	StatusCannotUnderstand Status = 0xC000

	// StatusDuplicateSOPInstance (failure, PS3.7 C.5.8).
	StatusDuplicateSOPInstance Status = 0x0111
	// StatusProcessingFailure (failure, PS3.7 C.5.9): a general failure
	// that is not the data set's fault.
	StatusProcessingFailure Status = 0x0110
	// StatusNotAuthorized (refused, PS3.7 C.5.21).
	StatusNotAuthorized Status = 0x0124
	// StatusSOPClassNotSupported (refused, PS3.7 C.5.12).
	StatusSOPClassNotSupported Status = 0x0122
	// StatusInvalidSOPInstance (failure, PS3.7 C.5.14).
	StatusInvalidSOPInstance Status = 0x0117
	// StatusUnrecognizedOperation (failure, PS3.7 C.5.6): a DIMSE command
	// this SCP does not perform.
	StatusUnrecognizedOperation Status = 0x0211
	// StatusMistypedArgument (failure, PS3.7 C.5.10).
	StatusMistypedArgument Status = 0x0212
)

// IsSuccess reports whether s is 0000.
func (s Status) IsSuccess() bool { return s == StatusSuccess }

// IsWarning reports whether s is a warning (stored, with a caveat): 0001 or
// Bxxx (PS3.7 C.4).
func (s Status) IsWarning() bool { return s == 0x0001 || s&0xF000 == 0xB000 }

// IsFailure reports whether s says the instance was not stored.
func (s Status) IsFailure() bool {
	return !s.IsSuccess() && !s.IsWarning() && !s.IsPending() && !s.IsCancel()
}

// IsPending reports whether s is FF00 or FF01 (not used by C-STORE).
func (s Status) IsPending() bool { return s == 0xFF00 || s == 0xFF01 }

// IsCancel reports whether s is FE00 (not used by C-STORE).
func (s Status) IsCancel() bool { return s == 0xFE00 }

// String names s as PS3.4 B.2.3 and PS3.7 Annex C do, with its hex value.
func (s Status) String() string {
	var name string
	switch {
	case s == StatusSuccess:
		name = "success"
	case s == StatusCoercionOfDataElements:
		name = "warning: coercion of data elements"
	case s == StatusElementsDiscarded:
		name = "warning: elements discarded"
	case s == StatusDataSetDoesNotMatchSOPClassWarning:
		name = "warning: data set does not match SOP class"
	case s.IsWarning():
		name = "warning"
	case s&0xFF00 == 0xA700:
		name = "refused: out of resources"
	case s&0xFF00 == 0xA900:
		name = "error: data set does not match SOP class"
	case s&0xF000 == 0xC000:
		name = "error: cannot understand"
	case s == StatusDuplicateSOPInstance:
		name = "failure: duplicate SOP instance"
	case s == StatusProcessingFailure:
		name = "failure: processing failure"
	case s == StatusNotAuthorized:
		name = "refused: not authorized"
	case s == StatusSOPClassNotSupported:
		name = "refused: SOP class not supported"
	case s == StatusInvalidSOPInstance:
		name = "failure: invalid SOP instance"
	case s == StatusUnrecognizedOperation:
		name = "failure: unrecognized operation"
	case s == StatusMistypedArgument:
		name = "failure: mistyped argument"
	case s.IsPending():
		name = "pending"
	case s.IsCancel():
		name = "cancel"
	default:
		name = "failure"
	}
	return fmt.Sprintf("%s (%04X)", name, uint16(s))
}
