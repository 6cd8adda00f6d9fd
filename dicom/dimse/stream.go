package dimse

import (
	"encoding/binary"
	"fmt"
	"io"
)

// controlPDU is returned by pdvStream when, between messages, the peer sends
// a PDU other than P-DATA-TF that the association loop must act on.
type controlPDU struct {
	typ  byte
	body []byte
}

func (c *controlPDU) Error() string { return fmt.Sprintf("PDU type %#x", c.typ) }

// pdvStream reads the PDVs of consecutive P-DATA-TF PDUs straight from the
// connection, so a data set flows from the socket buffer into the handler's
// buffer without being gathered in memory (PS3.8 9.3.5, Annex E).
type pdvStream struct {
	r io.Reader
	// maxPDU is the Maximum Length Received we advertised; a P-DATA-TF whose
	// length field is larger is a protocol violation.
	maxPDU uint32
	// beforePDU runs before each PDU header is read (the server sets the
	// idle deadline there). It may be nil.
	beforePDU func()

	pduLeft uint32 // bytes of PDV items left in the current P-DATA-TF
	pdvLeft uint32 // data bytes left in the current PDV
	pcid    byte
	mch     byte
}

// nextPDV advances to the next PDV header, reading a new P-DATA-TF PDU when
// the current one is used up. Any other PDU is returned as *controlPDU (with
// its validated 4-byte body) or, if unknown or malformed, as a protocol error.
func (s *pdvStream) nextPDV() error {
	for s.pduLeft == 0 {
		if s.beforePDU != nil {
			s.beforePDU()
		}
		typ, length, err := readPDUHeader(s.r)
		if err != nil {
			return err
		}
		if typ != pduPData {
			body, err := readBody(s.r, typ, length)
			if err != nil {
				return err
			}
			return &controlPDU{typ: typ, body: body}
		}
		if length < pdvHeaderLen || length > s.maxPDU {
			return protoErr(abortInvalidParamValue, "P-DATA-TF length %d outside %d..%d", length, pdvHeaderLen, s.maxPDU)
		}
		s.pduLeft = length
	}
	if s.pduLeft < pdvHeaderLen {
		return protoErr(abortInvalidParamValue, "%d bytes left in P-DATA-TF, too few for a PDV", s.pduLeft)
	}
	var h [pdvHeaderLen]byte
	if _, err := io.ReadFull(s.r, h[:]); err != nil {
		return noEOF(err)
	}
	n := binary.BigEndian.Uint32(h[0:4])
	if n < 2 || n > s.pduLeft-4 {
		return protoErr(abortInvalidParamValue, "PDV item length %d outside 2..%d", n, s.pduLeft-4)
	}
	if h[5]&^(mchCommand|mchLast) != 0 {
		return protoErr(abortInvalidParamValue, "message control header %#x has reserved bits set", h[5])
	}
	if h[4]%2 == 0 {
		return protoErr(abortInvalidParamValue, "PDV presentation context ID %d is even", h[4])
	}
	s.pduLeft -= 4 + n
	s.pdvLeft = n - 2
	s.pcid, s.mch = h[4], h[5]
	return nil
}

// readCommand reads the fragments of one command set (PS3.7 6.3.1) and
// returns it with its presentation context ID. A *controlPDU error before
// the first fragment means the peer released or aborted between messages.
func (s *pdvStream) readCommand() ([]byte, byte, error) {
	var cmd []byte
	first := true
	var pcid byte
	for {
		if err := s.nextPDV(); err != nil {
			if !first {
				if _, ok := err.(*controlPDU); ok {
					return nil, 0, protoErr(abortUnexpectedPDU, "%v in the middle of a command set", err)
				}
				err = noEOF(err)
			}
			return nil, 0, err
		}
		if s.mch&mchCommand == 0 {
			return nil, 0, protoErr(abortUnexpectedParam, "data set PDV where a command was expected")
		}
		if first {
			pcid = s.pcid
			first = false
		} else if s.pcid != pcid {
			return nil, 0, protoErr(abortUnexpectedParam, "command fragments on presentation contexts %d and %d", pcid, s.pcid)
		}
		if uint64(len(cmd))+uint64(s.pdvLeft) > maxCommandSetLen {
			return nil, 0, protoErr(abortInvalidParamValue, "command set longer than %d bytes", maxCommandSetLen)
		}
		start := len(cmd)
		cmd = append(cmd, make([]byte, s.pdvLeft)...)
		if _, err := io.ReadFull(s.r, cmd[start:]); err != nil {
			return nil, 0, noEOF(err)
		}
		s.pdvLeft = 0
		if s.mch&mchLast != 0 {
			return cmd, pcid, nil
		}
	}
}

// dataReader streams one data set's PDV fragments (PS3.7 6.3.1) as an
// io.Reader. Errors are sticky: once the stream breaks, the association is
// lost and every later Read says so.
type dataReader struct {
	s     *pdvStream
	pcid  byte
	last  bool
	err   error
	nread int64
}

func newDataReader(s *pdvStream, pcid byte) *dataReader {
	return &dataReader{s: s, pcid: pcid}
}

func (d *dataReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	for d.s.pdvLeft == 0 {
		if d.last {
			d.err = io.EOF
			return 0, io.EOF
		}
		if err := d.s.nextPDV(); err != nil {
			if _, ok := err.(*controlPDU); ok {
				err = protoErr(abortUnexpectedPDU, "%v in the middle of a data set", err)
			}
			d.err = noEOF(err)
			return 0, d.err
		}
		if d.s.mch&mchCommand != 0 {
			d.err = protoErr(abortUnexpectedParam, "command PDV in the middle of a data set")
			return 0, d.err
		}
		if d.s.pcid != d.pcid {
			d.err = protoErr(abortUnexpectedParam, "data set PDV on presentation context %d, command on %d", d.s.pcid, d.pcid)
			return 0, d.err
		}
		d.last = d.s.mch&mchLast != 0
	}
	if len(p) == 0 {
		return 0, nil
	}
	if uint64(len(p)) > uint64(d.s.pdvLeft) {
		p = p[:d.s.pdvLeft]
	}
	n, err := d.s.r.Read(p)
	d.s.pdvLeft -= uint32(n)
	d.nread += int64(n)
	if err != nil {
		// Short of the PDV's declared length, any end is unexpected.
		d.err = noEOF(err)
		if n > 0 {
			return n, nil
		}
		return 0, d.err
	}
	return n, nil
}

// drain reads and discards what the handler left unread, so the next
// message starts at a PDU boundary.
func (d *dataReader) drain() error {
	var buf [32 << 10]byte
	for {
		_, err := d.Read(buf[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
