package dimse

import (
	"strings"
	"testing"
)

func TestStatusClasses(t *testing.T) {
	tests := []struct {
		s                         Status
		success, warning, failure bool
		name                      string
	}{
		{StatusSuccess, true, false, false, "success"},
		{StatusCoercionOfDataElements, false, true, false, "coercion"},
		{StatusElementsDiscarded, false, true, false, "discarded"},
		{0xB123, false, true, false, "warning"},
		{StatusOutOfResources, false, false, true, "out of resources"},
		{0xA7FF, false, false, true, "out of resources"},
		{StatusDataSetDoesNotMatchSOPClass, false, false, true, "does not match"},
		{0xC123, false, false, true, "cannot understand"},
		{StatusUnrecognizedOperation, false, false, true, "unrecognized operation"},
		{0xFF00, false, false, false, "pending"},
	}
	for _, tc := range tests {
		if tc.s.IsSuccess() != tc.success || tc.s.IsWarning() != tc.warning || tc.s.IsFailure() != tc.failure {
			t.Errorf("%04X: success %v warning %v failure %v", uint16(tc.s), tc.s.IsSuccess(), tc.s.IsWarning(), tc.s.IsFailure())
		}
		if !strings.Contains(tc.s.String(), tc.name) {
			t.Errorf("%04X: String %q lacks %q", uint16(tc.s), tc.s, tc.name)
		}
	}
}
