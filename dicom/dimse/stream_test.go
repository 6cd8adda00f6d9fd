package dimse

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestStreamCommandThenData: a command and its data set in one PDU, then
// the data set continued over several PDUs, read one byte at a time.
func TestStreamCommandThenData(t *testing.T) {
	cmd := (&command{field: cmdCStoreRQ, messageID: 1, affectedSOPClass: CTImageStorage, affectedSOPInstance: "1.2", dataSetType: 0}).encode()
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 3000)
	// One PDU holding the command's PDV and the first data PDV.
	first := appendPData(nil, 3, mchCommand|mchLast, cmd, 0)
	second := appendPData(nil, 3, 0, data[:100], 0)
	one := append([]byte{pduPData, 0, 0, 0, 0, 0}, first[6:]...)
	one = append(one, second[6:]...)
	be := uint32(len(one) - 6)
	one[2], one[3], one[4], one[5] = byte(be>>24), byte(be>>16), byte(be>>8), byte(be)
	stream := append(one, appendPData(nil, 3, mchLast, data[100:], 4096)...)
	stream = append(stream, encodeSmall(pduReleaseRQ, 0, 0, 0)...)

	s := &pdvStream{r: iotest.OneByteReader(bytes.NewReader(stream)), maxPDU: 1 << 20}
	raw, pcid, err := s.readCommand()
	if err != nil || pcid != 3 || !bytes.Equal(raw, cmd) {
		t.Fatalf("command: %v pcid %d", err, pcid)
	}
	got, err := io.ReadAll(newDataReader(s, pcid))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data: %d bytes, %v", len(got), err)
	}
	_, _, err = s.readCommand()
	var ctl *controlPDU
	if !errors.As(err, &ctl) || ctl.typ != pduReleaseRQ {
		t.Fatalf("want A-RELEASE-RQ, got %v", err)
	}
}

func TestStreamErrors(t *testing.T) {
	cmd := (&command{field: cmdCEchoRQ, messageID: 1, dataSetType: 0}).encode()
	tests := map[string][]byte{
		"release mid data": append(appendPData(appendPData(nil, 1, mchCommand|mchLast, cmd, 0), 1, 0, []byte{1, 2}, 0),
			encodeSmall(pduReleaseRQ, 0, 0, 0)...),
		"other context":    appendPData(appendPData(nil, 1, mchCommand|mchLast, cmd, 0), 3, mchLast, []byte{1, 2}, 0),
		"command mid data": appendPData(appendPData(nil, 1, mchCommand|mchLast, cmd, 0), 1, mchCommand, []byte{1, 2}, 0),
		"eof mid data":     appendPData(appendPData(nil, 1, mchCommand|mchLast, cmd, 0), 1, 0, []byte{1, 2}, 0),
	}
	for name, b := range tests {
		s := &pdvStream{r: bytes.NewReader(b), maxPDU: 1 << 20}
		_, pcid, err := s.readCommand()
		if err != nil {
			t.Fatalf("%s: command: %v", name, err)
		}
		d := newDataReader(s, pcid)
		if _, err := io.ReadAll(d); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err2 := d.Read(make([]byte, 1)); err2 == nil {
			t.Errorf("%s: error not sticky", name)
		}
	}
}

// BenchmarkDataReader measures the PDV stream on its own: 1 MB data sets
// in 128 KiB PDUs (what dcmtk sends), copied out in 32 KiB reads.
func BenchmarkDataReader(b *testing.B) {
	cmd := (&command{field: cmdCStoreRQ, messageID: 1, affectedSOPClass: CTImageStorage, affectedSOPInstance: "1.2", dataSetType: 0}).encode()
	data := make([]byte, 1<<20)
	msg := appendPData(appendPData(nil, 1, mchCommand|mchLast, cmd, 0), 1, mchLast, data, 128<<10)
	r := bytes.NewReader(msg)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(msg)
		s := &pdvStream{r: r, maxPDU: 1 << 20}
		_, pcid, err := s.readCommand()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{newDataReader(s, pcid)}, buf); err != nil {
			b.Fatal(err)
		}
	}
}
