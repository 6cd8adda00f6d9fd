package dimse

import (
	"encoding/binary"
	"strings"
)

// Command fields (PS3.7 E.1).
const (
	cmdCStoreRQ  = 0x0001
	cmdCStoreRSP = 0x8001
	cmdCEchoRQ   = 0x0030
	cmdCEchoRSP  = 0x8030
	cmdCCancelRQ = 0x0FFF
	cmdResponse  = 0x8000 // bit set in every response's command field

	// noDataSet is the Command Data Set Type value meaning "no data set";
	// any other value means one follows (PS3.7 E.1).
	noDataSet = 0x0101
)

// Command element tags in group 0000 (PS3.7 E.1), as element numbers.
const (
	tagGroupLength          = 0x0000
	tagAffectedSOPClass     = 0x0002
	tagCommandField         = 0x0100
	tagMessageID            = 0x0110
	tagMessageIDRespondedTo = 0x0120
	tagPriority             = 0x0700
	tagDataSetType          = 0x0800
	tagStatus               = 0x0900
	tagErrorComment         = 0x0902
	tagAffectedSOPInstance  = 0x1000
	tagMoveOriginatorAET    = 0x1030
	tagMoveOriginatorMsgID  = 0x1031
)

// command is a decoded DIMSE command set: the elements C-ECHO and C-STORE
// use, other elements skipped.
type command struct {
	field               uint16
	messageID           uint16
	respondedTo         uint16
	affectedSOPClass    string
	affectedSOPInstance string
	priority            uint16
	dataSetType         uint16
	status              uint16
	errorComment        string
	moveOriginatorAE    string
	moveOriginatorMsgID uint16

	hasField, hasDataSetType, hasMessageID bool
}

func (c *command) hasDataSet() bool { return c.dataSetType != noDataSet }

// parseCommand decodes a command set: Implicit VR Little Endian, group 0000
// only (PS3.7 6.3.1, Annex E). It never allocates more than the input.
func parseCommand(b []byte) (*command, error) {
	c := &command{}
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, protoErr(abortInvalidParamValue, "command element header truncated (%d bytes left)", len(b))
		}
		group := binary.LittleEndian.Uint16(b[0:2])
		elem := binary.LittleEndian.Uint16(b[2:4])
		n := binary.LittleEndian.Uint32(b[4:8])
		if group != 0 {
			return nil, protoErr(abortInvalidParamValue, "command element (%04X,%04X) outside group 0000", group, elem)
		}
		if uint64(n) > uint64(len(b)-8) {
			return nil, protoErr(abortInvalidParamValue, "command element (0000,%04X) length %d exceeds the %d bytes left", elem, n, len(b)-8)
		}
		v := b[8 : 8+n]
		b = b[8+n:]
		var err error
		switch elem {
		case tagCommandField:
			c.field, err = us(elem, v)
			c.hasField = true
		case tagMessageID:
			c.messageID, err = us(elem, v)
			c.hasMessageID = true
		case tagMessageIDRespondedTo:
			c.respondedTo, err = us(elem, v)
		case tagPriority:
			c.priority, err = us(elem, v)
		case tagDataSetType:
			c.dataSetType, err = us(elem, v)
			c.hasDataSetType = true
		case tagStatus:
			c.status, err = us(elem, v)
		case tagMoveOriginatorMsgID:
			c.moveOriginatorMsgID, err = us(elem, v)
		case tagAffectedSOPClass:
			c.affectedSOPClass, err = ui(elem, v)
		case tagAffectedSOPInstance:
			c.affectedSOPInstance, err = ui(elem, v)
		case tagMoveOriginatorAET:
			c.moveOriginatorAE = strings.Trim(string(v), " \x00")
		case tagErrorComment:
			c.errorComment = strings.TrimRight(string(v), " \x00")
		}
		if err != nil {
			return nil, err
		}
	}
	if !c.hasField || !c.hasDataSetType {
		return nil, protoErr(abortInvalidParamValue, "command set lacks Command Field or Command Data Set Type")
	}
	return c, nil
}

func us(elem uint16, v []byte) (uint16, error) {
	if len(v) != 2 {
		return 0, protoErr(abortInvalidParamValue, "command element (0000,%04X) of %d bytes, want 2", elem, len(v))
	}
	return binary.LittleEndian.Uint16(v), nil
}

func ui(elem uint16, v []byte) (string, error) {
	if len(v) > 64+1 {
		return "", protoErr(abortInvalidParamValue, "command element (0000,%04X) UID of %d bytes", elem, len(v))
	}
	return trimUID(v), nil
}

// maxErrorComment is the LO value length limit (PS3.5 6.2).
const maxErrorComment = 64

// encode returns the command set in Implicit VR Little Endian with its group
// length, elements in ascending tag order as PS3.5 7.1 requires.
func (c *command) encode() []byte {
	var body []byte
	str := func(elem uint16, s string, pad byte) {
		if s == "" {
			return
		}
		v := []byte(s)
		if len(v)%2 == 1 {
			v = append(v, pad)
		}
		body = binary.LittleEndian.AppendUint16(body, 0)
		body = binary.LittleEndian.AppendUint16(body, elem)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(v)))
		body = append(body, v...)
	}
	u16 := func(elem, val uint16) {
		body = binary.LittleEndian.AppendUint16(body, 0)
		body = binary.LittleEndian.AppendUint16(body, elem)
		body = binary.LittleEndian.AppendUint32(body, 2)
		body = binary.LittleEndian.AppendUint16(body, val)
	}
	str(tagAffectedSOPClass, c.affectedSOPClass, 0)
	u16(tagCommandField, c.field)
	if c.field&cmdResponse == 0 {
		u16(tagMessageID, c.messageID)
	} else {
		u16(tagMessageIDRespondedTo, c.respondedTo)
	}
	if c.field&cmdResponse == 0 && c.field != cmdCEchoRQ {
		u16(tagPriority, c.priority)
	}
	u16(tagDataSetType, c.dataSetType)
	if c.field&cmdResponse != 0 {
		u16(tagStatus, c.status)
		str(tagErrorComment, sanitizeComment(c.errorComment), ' ')
	}
	str(tagAffectedSOPInstance, c.affectedSOPInstance, 0)
	out := make([]byte, 0, 12+len(body))
	out = binary.LittleEndian.AppendUint16(out, 0)
	out = binary.LittleEndian.AppendUint16(out, tagGroupLength)
	out = binary.LittleEndian.AppendUint32(out, 4)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...)
}

// sanitizeComment makes s a valid LO value: at most 64 characters, no
// backslash (the value delimiter) and no control characters.
func sanitizeComment(s string) string {
	b := make([]byte, 0, min(len(s), maxErrorComment))
	for i := 0; i < len(s) && len(b) < maxErrorComment; i++ {
		ch := s[i]
		if ch < 0x20 || ch == '\\' || ch >= 0x7F {
			ch = ' '
		}
		b = append(b, ch)
	}
	return strings.TrimRight(string(b), " ")
}
