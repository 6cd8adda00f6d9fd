package dimse

import "testing"

func TestUIDLists(t *testing.T) {
	for _, list := range [][]string{DefaultSOPClasses, DefaultTransferSyntaxes, {ImplementationClassUID, VerificationSOPClass, ApplicationContext}} {
		seen := map[string]bool{}
		for _, u := range list {
			if !validUID(u) {
				t.Errorf("%q is not a valid UID", u)
			}
			if seen[u] {
				t.Errorf("%q listed twice", u)
			}
			seen[u] = true
		}
	}
	if len(ImplementationVersionName) > 16 {
		t.Errorf("implementation version name %q longer than 16", ImplementationVersionName)
	}
}

func TestValidUID(t *testing.T) {
	tests := map[string]bool{
		"1.2.840.10008.1.2":             true,
		"0":                             true,
		"":                              false,
		"1..2":                          false,
		"1.02":                          false,
		"1.2.":                          false,
		"1.2a":                          false,
		"1." + string(make([]byte, 70)): false,
	}
	for in, want := range tests {
		if validUID(in) != want {
			t.Errorf("validUID(%q) = %v", in, !want)
		}
	}
	for in, want := range map[string]bool{"999.999.1.083000": true, "1.2.3": true, "": false, "1.2 ": false, "1.2.x": false} {
		if plausibleUID(in) != want {
			t.Errorf("plausibleUID(%q) = %v", in, !want)
		}
	}
}
