package dimse

import (
	"errors"
	"testing"
)

func TestCommandRoundTrip(t *testing.T) {
	tests := []*command{
		{field: cmdCEchoRQ, messageID: 7, affectedSOPClass: VerificationSOPClass, dataSetType: noDataSet},
		{field: cmdCStoreRQ, messageID: 9, priority: 2, affectedSOPClass: CTImageStorage,
			affectedSOPInstance: "1.2.3.45", dataSetType: 0},
		{field: cmdCStoreRSP, respondedTo: 9, affectedSOPClass: CTImageStorage,
			affectedSOPInstance: "1.2.3", dataSetType: noDataSet, status: 0xA700, errorComment: "disk full"},
	}
	for _, c := range tests {
		got, err := parseCommand(c.encode())
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		c.hasField, c.hasDataSetType = true, true
		c.hasMessageID = c.field&cmdResponse == 0
		if *got != *c {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
		}
	}
}

func TestCommandGroupLength(t *testing.T) {
	b := (&command{field: cmdCEchoRSP, respondedTo: 1, affectedSOPClass: VerificationSOPClass, dataSetType: noDataSet}).encode()
	if gl := int(b[8]) | int(b[9])<<8; gl != len(b)-12 {
		t.Errorf("group length %d, want %d", gl, len(b)-12)
	}
	if len(b)%2 != 0 {
		t.Errorf("odd command length %d", len(b))
	}
}

func TestSanitizeComment(t *testing.T) {
	tests := map[string]string{
		"disk full":                          "disk full",
		"a\\b\nc":                            "a b c",
		string(make([]byte, 80)):             "",
		"x" + string(make([]byte, 70)) + "y": "x",
	}
	long := ""
	for range 70 {
		long += "z"
	}
	tests[long] = long[:64]
	for in, want := range tests {
		if got := sanitizeComment(in); got != want {
			t.Errorf("sanitizeComment(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseCommandErrors(t *testing.T) {
	el := func(group, elem uint16, v ...byte) []byte {
		n := len(v)
		return append([]byte{byte(group), byte(group >> 8), byte(elem), byte(elem >> 8), byte(n), byte(n >> 8), 0, 0}, v...)
	}
	field := el(0, tagCommandField, 0x30, 0)
	dst := el(0, tagDataSetType, 0x01, 0x01)
	tests := map[string][]byte{
		"empty":            nil,
		"no field":         dst,
		"no data set type": field,
		"other group":      append(append(field, dst...), el(8, 0x16, '1', 0)...),
		"short US":         append(el(0, tagCommandField, 1), dst...),
		"overrun":          append(field, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff),
		"truncated header": append(append(field, dst...), 0, 0, 0),
		"long UID":         append(append(field, dst...), el(0, tagAffectedSOPClass, make([]byte, 70)...)...),
	}
	for name, b := range tests {
		if _, err := parseCommand(b); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", name, err)
		}
	}
}

// FuzzCommand: the command-set parser returns an error or a command whose
// encoding parses back to the same command.
func FuzzCommand(f *testing.F) {
	for _, b := range seedPDUs(f) {
		// The command sets inside the captured sessions.
		if i := indexCommand(b); i >= 0 {
			f.Add(b[i:])
		}
	}
	f.Add((&command{field: cmdCStoreRQ, messageID: 1, affectedSOPClass: CTImageStorage, affectedSOPInstance: "1.2", dataSetType: 0}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCommand(b)
		if err != nil {
			return
		}
		c2, err := parseCommand(c.encode())
		if err != nil {
			t.Fatalf("re-encoded command does not parse: %v", err)
		}
		if c2.field != c.field || c2.dataSetType != c.dataSetType {
			t.Fatalf("round trip changed %+v to %+v", c, c2)
		}
	})
}

// indexCommand finds the first command set (it starts with the group
// length element 0000,0000 UL) in a captured byte stream.
func indexCommand(b []byte) int {
	for i := 0; i+8 <= len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 0 && b[i+3] == 0 && b[i+4] == 4 && b[i+5] == 0 && b[i+6] == 0 && b[i+7] == 0 && i >= 6 && b[i-1]&mchCommand != 0 {
			return i
		}
	}
	return -1
}
