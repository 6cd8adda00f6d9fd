package dicom

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// testFiles lists every DICOM file the tests run over: the project's
// testdata and, when present in the module cache, suyashkumar/dicom's.
func testFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"../testdata"} {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(strings.ToLower(p), ".dcm") {
				out = append(out, p)
			}
			return nil
		})
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatal("no DICOM files under ../testdata")
	}
	return out
}

// needTool finds a command-line tool the test needs (dcmtk, gdcm). In CI
// a missing tool fails the test; on a developer's machine it skips.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: run `make deps` (Debian packages dcmtk, libgdcm-tools)", name)
		}
		t.Skipf("%s not found", name)
	}
	return p
}
