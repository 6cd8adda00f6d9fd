package dicom

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// ImplementationClassUID names Lightbox as the writer of a Part 10 file
// (PS3.10 7.1). A UUID-derived UID (PS3.5 B.2): the project has no
// registered root.
const ImplementationClassUID = "2.25.318698904267067084214541119304902604659"

// ImplementationVersionName goes with ImplementationClassUID.
const ImplementationVersionName = "LIGHTBOX_1"

// FileMeta is what a Part 10 file meta group says of the data set that
// follows it.
type FileMeta struct {
	TransferSyntaxUID string
	SOPClassUID       string
	SOPInstanceUID    string
	// SourceAE is the AE title the data set came from, if from the network.
	SourceAE string
}

// WriteFileMeta writes the 128-byte preamble, "DICM" and the file meta
// group (PS3.10 7.1) so that a data set received over the network (DIMSE
// sends none) becomes a Part 10 file when its bytes follow unchanged.
func WriteFileMeta(w io.Writer, m FileMeta) error {
	for _, u := range []string{m.TransferSyntaxUID, m.SOPClassUID, m.SOPInstanceUID} {
		if u == "" || len(u) > 64 {
			return fmt.Errorf("%w: file meta needs UIDs of 1 to 64 characters, got %q", ErrMalformed, u)
		}
	}
	var g bytes.Buffer
	metaElem(&g, 0x0001, "OB", []byte{0, 1})
	metaElem(&g, 0x0002, "UI", uid(m.SOPClassUID))
	metaElem(&g, 0x0003, "UI", uid(m.SOPInstanceUID))
	metaElem(&g, 0x0010, "UI", uid(m.TransferSyntaxUID))
	metaElem(&g, 0x0012, "UI", uid(ImplementationClassUID))
	metaElem(&g, 0x0013, "SH", text(ImplementationVersionName))
	if m.SourceAE != "" {
		metaElem(&g, 0x0016, "AE", text(m.SourceAE))
	}
	var out bytes.Buffer
	out.Write(make([]byte, 128))
	out.WriteString("DICM")
	metaElem(&out, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(g.Len())))
	out.Write(g.Bytes())
	_, err := w.Write(out.Bytes())
	return err
}

func metaElem(b *bytes.Buffer, element uint16, vr string, v []byte) {
	b.Write([]byte{0x02, 0x00, byte(element), byte(element >> 8)})
	b.WriteString(vr)
	if longVR(vr) {
		b.Write([]byte{0, 0})
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(v))))
	} else {
		b.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(v))))
	}
	b.Write(v)
}

// uid pads a UID to even length with NUL, text with a space (PS3.5 6.2).
func uid(s string) []byte {
	if len(s)%2 == 1 {
		return append([]byte(s), 0)
	}
	return []byte(s)
}

func text(s string) []byte {
	if len(s)%2 == 1 {
		return append([]byte(s), ' ')
	}
	return []byte(s)
}
