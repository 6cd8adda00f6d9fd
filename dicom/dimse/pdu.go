package dimse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PDU types (PS3.8 9.3.1).
const (
	pduAssociateRQ = 0x01
	pduAssociateAC = 0x02
	pduAssociateRJ = 0x03
	pduPData       = 0x04
	pduReleaseRQ   = 0x05
	pduReleaseRP   = 0x06
	pduAbort       = 0x07
)

// Item types inside A-ASSOCIATE-RQ/AC (PS3.8 9.3.2, 9.3.3; PS3.7 D.3.3).
const (
	itemAppContext     = 0x10
	itemPresContextRQ  = 0x20
	itemPresContextAC  = 0x21
	itemAbstractSyntax = 0x30
	itemTransferSyntax = 0x40
	itemUserInfo       = 0x50
	itemMaxLength      = 0x51
	itemImplClassUID   = 0x52
	itemAsyncOpsWindow = 0x53
	itemRoleSelection  = 0x54
	itemImplVersion    = 0x55
)

// A-ABORT reasons when the source is the service provider (PS3.8 9.3.8).
const (
	abortNotSpecified       = 0
	abortUnrecognizedPDU    = 1
	abortUnexpectedPDU      = 2
	abortUnrecognizedParam  = 4
	abortUnexpectedParam    = 5
	abortInvalidParamValue  = 6
	abortSourceServiceUser  = 0
	abortSourceServiceProv  = 2
	pduHeaderLen            = 6
	pdvHeaderLen            = 6 // item length (4), context ID, message control header
	maxAssociatePDULen      = 256 << 10
	minAssociateRQBodyLen   = 68
	maxCommandSetLen        = 64 << 10
	maxPresentationContexts = 128
)

// Limits on what we accept, so that a hostile peer cannot make us allocate
// more than this per association. A real A-ASSOCIATE-RQ with 128
// presentation contexts of a few transfer syntaxes each is about 20 KB.

// ErrProtocol is wrapped by every error caused by bytes that break PS3.8:
// wrong or oversized lengths, unknown or unexpected PDU types, malformed
// items or command sets. The association is aborted; the server goes on.
var ErrProtocol = errors.New("dicom upper layer protocol error")

// protocolError carries the A-ABORT reason that goes with a violation.
type protocolError struct {
	reason byte
	msg    string
}

func (e *protocolError) Error() string { return ErrProtocol.Error() + ": " + e.msg }
func (e *protocolError) Unwrap() error { return ErrProtocol }

func protoErr(reason byte, format string, args ...any) error {
	return &protocolError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// abortReason returns the A-ABORT reason for err (not-specified unless err
// is a protocol violation).
func abortReason(err error) byte {
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe.reason
	}
	return abortNotSpecified
}

// readPDUHeader reads the 6-byte PDU header (type, reserved, length).
func readPDUHeader(r io.Reader) (typ byte, length uint32, err error) {
	var h [pduHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, err
	}
	return h[0], binary.BigEndian.Uint32(h[2:]), nil
}

// readBody reads a non-P-DATA PDU body of the given length after checking it
// against the limit for its type, so that nothing is allocated for a length
// that a well-formed PDU of that type cannot have.
func readBody(r io.Reader, typ byte, length uint32) ([]byte, error) {
	switch typ {
	case pduAssociateRQ, pduAssociateAC:
		if length < minAssociateRQBodyLen || length > maxAssociatePDULen {
			return nil, protoErr(abortInvalidParamValue, "PDU type %#x length %d outside %d..%d", typ, length, minAssociateRQBodyLen, maxAssociatePDULen)
		}
	case pduAssociateRJ, pduReleaseRQ, pduReleaseRP, pduAbort:
		if length != 4 {
			return nil, protoErr(abortInvalidParamValue, "PDU type %#x length %d, want 4", typ, length)
		}
	default:
		return nil, protoErr(abortUnrecognizedPDU, "unknown PDU type %#x", typ)
	}
	b := make([]byte, length)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read PDU type %#x body: %w", typ, noEOF(err))
	}
	return b, nil
}

// noEOF turns a clean EOF inside a PDU into ErrUnexpectedEOF: only between
// PDUs is end of stream a normal close.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// proposedContext is one presentation context of an A-ASSOCIATE-RQ.
type proposedContext struct {
	id               byte
	abstractSyntax   string
	transferSyntaxes []string
}

// roleSelection is an SCP/SCU role selection sub-item (PS3.7 D.3.3.4). We
// parse it to tolerate it; we never answer it, so the default roles stand.
type roleSelection struct {
	sopClass string
	scu, scp bool
}

// associateRQ is a decoded A-ASSOCIATE-RQ (PS3.8 9.3.2).
type associateRQ struct {
	protocolVersion uint16
	calledAE        string
	callingAE       string
	appContext      string
	contexts        []proposedContext
	maxLength       uint32 // 0: the peer set no limit
	implClassUID    string
	implVersion     string
	asyncInvoked    uint16
	asyncPerformed  uint16
	roles           []roleSelection
}

// items walks a sequence of (type, reserved, 2-byte length, value) items.
func items(b []byte, fn func(typ byte, val []byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return protoErr(abortInvalidParamValue, "item header truncated (%d bytes left)", len(b))
		}
		typ := b[0]
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if n > len(b)-4 {
			return protoErr(abortInvalidParamValue, "item %#x length %d exceeds the %d bytes left", typ, n, len(b)-4)
		}
		if err := fn(typ, b[4:4+n]); err != nil {
			return err
		}
		b = b[4+n:]
	}
	return nil
}

// trimUID drops the NUL or space padding some peers leave on UIDs.
func trimUID(b []byte) string {
	return strings.TrimRight(string(b), "\x00 ")
}

// trimAE drops the space padding of a 16-byte AE title field; leading and
// trailing spaces are not significant (PS3.5 6.2, AE).
func trimAE(b []byte) string {
	return strings.Trim(string(b), " \x00")
}

func uidItem(val []byte, what string) (string, error) {
	s := trimUID(val)
	if !validUID(s) {
		return "", protoErr(abortInvalidParamValue, "%s %q is not a valid UID", what, s)
	}
	return s, nil
}

// decodeAssociateRQ decodes the body (after the PDU header) of an
// A-ASSOCIATE-RQ.
func decodeAssociateRQ(b []byte) (*associateRQ, error) {
	if len(b) < minAssociateRQBodyLen {
		return nil, protoErr(abortInvalidParamValue, "A-ASSOCIATE-RQ body %d bytes, want at least %d", len(b), minAssociateRQBodyLen)
	}
	rq := &associateRQ{
		protocolVersion: binary.BigEndian.Uint16(b[0:2]),
		calledAE:        trimAE(b[4:20]),
		callingAE:       trimAE(b[20:36]),
	}
	seenIDs := map[byte]bool{}
	err := items(b[68:], func(typ byte, val []byte) error {
		switch typ {
		case itemAppContext:
			rq.appContext = trimUID(val)
		case itemPresContextRQ:
			if len(rq.contexts) >= maxPresentationContexts {
				return protoErr(abortInvalidParamValue, "more than %d presentation contexts", maxPresentationContexts)
			}
			pc, err := decodeProposedContext(val)
			if err != nil {
				return err
			}
			if seenIDs[pc.id] {
				return protoErr(abortInvalidParamValue, "presentation context ID %d proposed twice", pc.id)
			}
			seenIDs[pc.id] = true
			rq.contexts = append(rq.contexts, pc)
		case itemUserInfo:
			return rq.decodeUserInfo(val)
		default:
			// "Items of unrecognized types shall be ignored and skipped"
			// (PS3.8 9.3.1).
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rq.appContext == "" {
		return nil, protoErr(abortInvalidParamValue, "A-ASSOCIATE-RQ without application context item")
	}
	if len(rq.contexts) == 0 {
		return nil, protoErr(abortInvalidParamValue, "A-ASSOCIATE-RQ without presentation contexts")
	}
	return rq, nil
}

func decodeProposedContext(val []byte) (proposedContext, error) {
	if len(val) < 4 {
		return proposedContext{}, protoErr(abortInvalidParamValue, "presentation context item of %d bytes", len(val))
	}
	pc := proposedContext{id: val[0]}
	if pc.id%2 == 0 {
		return pc, protoErr(abortInvalidParamValue, "presentation context ID %d is even", pc.id)
	}
	err := items(val[4:], func(typ byte, v []byte) error {
		switch typ {
		case itemAbstractSyntax:
			if pc.abstractSyntax != "" {
				return protoErr(abortInvalidParamValue, "presentation context %d has two abstract syntaxes", pc.id)
			}
			// An invalid UID here is the peer's problem, not a protocol
			// violation: the context is simply not supported.
			pc.abstractSyntax = trimUID(v)
		case itemTransferSyntax:
			pc.transferSyntaxes = append(pc.transferSyntaxes, trimUID(v))
		default:
			// Ignored and skipped, as PS3.8 9.3.1 asks.
		}
		return nil
	})
	if err != nil {
		return pc, err
	}
	if pc.abstractSyntax == "" || len(pc.transferSyntaxes) == 0 {
		return pc, protoErr(abortInvalidParamValue, "presentation context %d lacks an abstract or transfer syntax", pc.id)
	}
	return pc, nil
}

func (rq *associateRQ) decodeUserInfo(val []byte) error {
	return items(val, func(typ byte, v []byte) error {
		switch typ {
		case itemMaxLength:
			if len(v) != 4 {
				return protoErr(abortInvalidParamValue, "maximum length item of %d bytes", len(v))
			}
			rq.maxLength = binary.BigEndian.Uint32(v)
		case itemImplClassUID:
			rq.implClassUID = trimUID(v)
		case itemImplVersion:
			rq.implVersion = strings.TrimRight(string(v), " \x00")
		case itemAsyncOpsWindow:
			if len(v) != 4 {
				return protoErr(abortInvalidParamValue, "asynchronous operations window item of %d bytes", len(v))
			}
			rq.asyncInvoked = binary.BigEndian.Uint16(v[0:2])
			rq.asyncPerformed = binary.BigEndian.Uint16(v[2:4])
		case itemRoleSelection:
			if len(v) < 2 {
				return protoErr(abortInvalidParamValue, "role selection item of %d bytes", len(v))
			}
			n := int(binary.BigEndian.Uint16(v[0:2]))
			if len(v) != 2+n+2 {
				return protoErr(abortInvalidParamValue, "role selection item of %d bytes with a %d-byte UID", len(v), n)
			}
			rq.roles = append(rq.roles, roleSelection{
				sopClass: trimUID(v[2 : 2+n]),
				scu:      v[2+n] == 1,
				scp:      v[3+n] == 1,
			})
		default:
			// Extended negotiation, user identity and future items: not
			// answered, which PS3.7 D.3.3 lets the acceptor do.
		}
		return nil
	})
}

// contextResult is one presentation context of an A-ASSOCIATE-AC.
type contextResult struct {
	id             byte
	result         byte // PS3.8 9.3.3.2: 0 acceptance … 4 transfer syntaxes not supported
	transferSyntax string
}

// Presentation context results (PS3.8 9.3.3.2).
const (
	pcAccepted             = 0
	pcUserRejection        = 1
	pcNoReason             = 2
	pcAbstractNotSupported = 3
	pcTransferNotSupported = 4
)

// associateAC is what we answer to an acceptable A-ASSOCIATE-RQ.
type associateAC struct {
	calledAE, callingAE string
	contexts            []contextResult
	maxLength           uint32
}

// appendItem appends an item with a 2-byte length.
func appendItem(b []byte, typ byte, val []byte) []byte {
	b = append(b, typ, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(val)))
	return append(b, val...)
}

func appendAE(b []byte, ae string) []byte {
	var f [16]byte
	for i := range f {
		f[i] = ' '
	}
	copy(f[:], ae)
	return append(b, f[:]...)
}

// appendPDUHeader starts a PDU whose length is filled in by finishPDU.
func appendPDUHeader(b []byte, typ byte) []byte {
	return append(b, typ, 0, 0, 0, 0, 0)
}

func finishPDU(b []byte) []byte {
	binary.BigEndian.PutUint32(b[2:6], uint32(len(b)-pduHeaderLen))
	return b
}

// encode returns the whole A-ASSOCIATE-AC PDU.
func (ac *associateAC) encode() []byte {
	b := appendPDUHeader(nil, pduAssociateAC)
	b = append(b, 0, 1, 0, 0) // protocol version 1, reserved
	b = appendAE(b, ac.calledAE)
	b = appendAE(b, ac.callingAE)
	b = append(b, make([]byte, 32)...)
	b = appendItem(b, itemAppContext, []byte(ApplicationContext))
	for _, pc := range ac.contexts {
		var sub []byte
		ts := pc.transferSyntax
		if ts == "" {
			// The sub-item must be present even for a rejected context;
			// its value is then not significant (PS3.8 9.3.3.2).
			ts = ImplicitVRLittleEndian
		}
		sub = appendItem(sub, itemTransferSyntax, []byte(ts))
		val := append([]byte{pc.id, 0, pc.result, 0}, sub...)
		b = appendItem(b, itemPresContextAC, val)
	}
	var ui []byte
	ui = appendItem(ui, itemMaxLength, binary.BigEndian.AppendUint32(nil, ac.maxLength))
	ui = appendItem(ui, itemImplClassUID, []byte(ImplementationClassUID))
	ui = appendItem(ui, itemImplVersion, []byte(ImplementationVersionName))
	b = appendItem(b, itemUserInfo, ui)
	return finishPDU(b)
}

// encode returns the whole A-ASSOCIATE-RQ PDU. The SCP never sends one; it
// is here so tests and fuzz seeds can speak to the server without dcmtk.
func (rq *associateRQ) encode() []byte {
	b := appendPDUHeader(nil, pduAssociateRQ)
	b = binary.BigEndian.AppendUint16(b, rq.protocolVersion)
	b = append(b, 0, 0)
	b = appendAE(b, rq.calledAE)
	b = appendAE(b, rq.callingAE)
	b = append(b, make([]byte, 32)...)
	b = appendItem(b, itemAppContext, []byte(rq.appContext))
	for _, pc := range rq.contexts {
		var sub []byte
		sub = appendItem(sub, itemAbstractSyntax, []byte(pc.abstractSyntax))
		for _, ts := range pc.transferSyntaxes {
			sub = appendItem(sub, itemTransferSyntax, []byte(ts))
		}
		b = appendItem(b, itemPresContextRQ, append([]byte{pc.id, 0, 0, 0}, sub...))
	}
	var ui []byte
	ui = appendItem(ui, itemMaxLength, binary.BigEndian.AppendUint32(nil, rq.maxLength))
	if rq.implClassUID != "" {
		ui = appendItem(ui, itemImplClassUID, []byte(rq.implClassUID))
	}
	for _, r := range rq.roles {
		v := binary.BigEndian.AppendUint16(nil, uint16(len(r.sopClass)))
		v = append(v, r.sopClass...)
		v = append(v, b2u8(r.scu), b2u8(r.scp))
		ui = appendItem(ui, itemRoleSelection, v)
	}
	if rq.asyncInvoked != 0 || rq.asyncPerformed != 0 {
		v := binary.BigEndian.AppendUint16(nil, rq.asyncInvoked)
		ui = appendItem(ui, itemAsyncOpsWindow, binary.BigEndian.AppendUint16(v, rq.asyncPerformed))
	}
	if rq.implVersion != "" {
		ui = appendItem(ui, itemImplVersion, []byte(rq.implVersion))
	}
	b = appendItem(b, itemUserInfo, ui)
	return finishPDU(b)
}

func b2u8(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// A-ASSOCIATE-RJ result, source and reason values (PS3.8 9.3.4).
const (
	rjPermanent = 1
	rjTransient = 2

	rjSourceUser     = 1 // DICOM UL service-user
	rjSourceACSE     = 2 // DICOM UL service-provider (ACSE related)
	rjSourcePresProv = 3 // DICOM UL service-provider (presentation related)

	rjUserNoReason           = 1
	rjUserAppContext         = 2
	rjUserCallingAE          = 3
	rjUserCalledAE           = 7
	rjACSEProtocolVersion    = 2
	rjPresLocalLimitExceeded = 2
)

// encodeSmall returns one of the fixed 4-byte-body PDUs: A-ASSOCIATE-RJ
// (reserved, result, source, reason), A-RELEASE-RQ/RP (reserved) and
// A-ABORT (reserved, reserved, source, reason).
func encodeSmall(typ, b1, b2, b3 byte) []byte {
	return []byte{typ, 0, 0, 0, 0, 4, 0, b1, b2, b3}
}

func encodeReject(result, source, reason byte) []byte {
	return encodeSmall(pduAssociateRJ, result, source, reason)
}

func encodeAbort(source, reason byte) []byte {
	return encodeSmall(pduAbort, 0, source, reason)
}

// Message control header bits (PS3.8 E.2).
const (
	mchCommand = 0x01
	mchLast    = 0x02
)

// appendPData appends P-DATA-TF PDUs carrying data as PDVs of the given
// presentation context, fragmented so that no PDU exceeds maxPDU (the
// peer's Maximum Length Received; 0 means no limit).
func appendPData(b []byte, pcid, mch byte, data []byte, maxPDU uint32) []byte {
	const unlimitedChunk = 1 << 20
	chunk := unlimitedChunk
	if maxPDU != 0 && int(maxPDU)-pdvHeaderLen < chunk {
		chunk = int(maxPDU) - pdvHeaderLen
	}
	if chunk < 1 {
		chunk = 1
	}
	for {
		n := min(len(data), chunk)
		flags := mch &^ mchLast
		if n == len(data) {
			flags |= mch & mchLast
		}
		b = append(b, pduPData, 0)
		b = binary.BigEndian.AppendUint32(b, uint32(pdvHeaderLen+n))
		b = binary.BigEndian.AppendUint32(b, uint32(2+n))
		b = append(b, pcid, flags)
		b = append(b, data[:n]...)
		data = data[n:]
		if len(data) == 0 {
			return b
		}
	}
}
