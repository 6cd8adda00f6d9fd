package dicom

import (
	"bytes"
	"os"
	"testing"
)

// TestWriteFileMeta puts a fresh meta group in front of a real file's data
// set, as the DIMSE receiver does, and checks the result reads the same.
func TestWriteFileMeta(t *testing.T) {
	for _, path := range testFiles(t) {
		f, err := Open(path)
		if err != nil || f.lay.deflated {
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		err = WriteFileMeta(&b, FileMeta{TransferSyntaxUID: f.Meta.TransferSyntaxUID, SOPClassUID: f.Meta.SOPClassUID, SOPInstanceUID: f.Meta.SOPInstanceUID, SourceAE: "MODALITY"})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b.Write(raw[f.lay.metaEnd:])
		g, err := Parse(bytes.NewReader(b.Bytes()), int64(b.Len()))
		if err != nil {
			t.Fatalf("%s: rewritten file: %v", path, err)
		}
		if g.Meta.SOPInstanceUID != f.Meta.SOPInstanceUID || g.NumFrames() != f.NumFrames() || g.Meta.TransferSyntaxUID != f.Meta.TransferSyntaxUID {
			t.Errorf("%s: rewritten file reads differently", path)
		}
	}
	if err := WriteFileMeta(&bytes.Buffer{}, FileMeta{}); err == nil {
		t.Error("empty UIDs accepted")
	}
}
