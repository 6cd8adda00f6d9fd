package orthanc

import (
	"os"
	"testing"
)

// TestStart runs a real Orthanc, stores a real file in it and finds it.
func TestStart(t *testing.T) {
	if _, err := os.Stat(Binary); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Orthanc is not installed: %v", err)
		}
		t.Skip("Orthanc is not installed")
	}
	s, err := Start(t.TempDir(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	study, err := s.Upload("../../testdata/mr-small.dcm")
	if err != nil {
		t.Fatal(err)
	}
	var studies []string
	if err := s.Do("GET", "/studies", nil, &studies); err != nil {
		t.Fatal(err)
	}
	if len(studies) != 1 || studies[0] != study {
		t.Errorf("studies %v, want [%s]", studies, study)
	}
	if _, err := s.Upload("../../testdata/SOURCES.md"); err == nil {
		t.Error("Orthanc accepted a text file")
	}
}
