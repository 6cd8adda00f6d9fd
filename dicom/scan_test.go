package dicom

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// TestMetaGroupEnd finds, from a file's first bytes alone, where its data
// set starts, as the full parse does: for every test file given its meta
// group exactly or with the data set after it, and an error when a meta
// element is cut or there is no DICM prefix.
func TestMetaGroupEnd(t *testing.T) {
	for _, path := range testFiles(t) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParseMeta(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		want := f.DatasetOffset()
		if f.Bare() {
			continue
		}
		for _, n := range []int64{want, want + 1, int64(len(raw))} {
			if got, err := MetaGroupEnd(raw[:min(n, int64(len(raw)))]); err != nil || got != want {
				t.Errorf("%s, first %d bytes: %d, %v; want %d", path, n, got, err, want)
			}
		}
		if _, err := MetaGroupEnd(raw[:want-1]); err == nil {
			t.Errorf("%s: the last meta element cut short: no error", path)
		}
	}
	if _, err := MetaGroupEnd(make([]byte, 200)); !errors.Is(err, ErrNotDICOM) {
		t.Errorf("no DICM prefix: %v, want ErrNotDICOM", err)
	}
}
