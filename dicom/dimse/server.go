// Package dimse is a DICOM upper-layer (PS3.8) and DIMSE (PS3.7) service
// provider: an SCP for the Verification (C-ECHO) and Storage (C-STORE)
// service classes.
//
// The server never stores anything itself: it hands each received instance
// to Config.Store as a stream and answers the C-STORE-RQ only with the
// status the handler returns, after the handler has returned. It never logs
// either; Config.Event hears about associations and stores.
//
// DICOM TLS (PS3.15 B.1) needs nothing special: pass a tls.Listener to
// Serve.
package dimse

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// StoreRequest is one received C-STORE-RQ (PS3.7 9.1.1.1) with its data set.
type StoreRequest struct {
	CallingAE  string   // the peer's AE title, as it called itself
	CalledAE   string   // our AE title
	RemoteAddr net.Addr // the peer's address
	// TLS is the connection state on a TLS listener (the client
	// certificate, if any, is in PeerCertificates); nil on plain TCP.
	TLS *tls.ConnectionState

	// TransferSyntax is the UID negotiated for the presentation context:
	// the encoding of Data. Data holds the data set only — no preamble, no
	// File Meta Information (PS3.10 7.1); the handler writes those itself.
	TransferSyntax string
	SOPClassUID    string // Affected SOP Class UID (0000,0002)
	SOPInstanceUID string // Affected SOP Instance UID (0000,1000)
	MessageID      uint16
	Priority       uint16 // 0 medium, 1 high, 2 low
	// MoveOriginatorAE and MoveOriginatorMessageID are set when the store
	// is a sub-operation of a C-MOVE (PS3.7 9.3.1.1).
	MoveOriginatorAE        string
	MoveOriginatorMessageID uint16

	// Data streams the data set as its P-DATA fragments arrive. Only the
	// current fragment is buffered; what the handler leaves unread is
	// discarded after it returns. A read error means the association broke:
	// the instance is incomplete and must not be kept.
	Data io.Reader
}

// StoreHandler receives one instance. It returns the status to send in the
// C-STORE-RSP (StatusSuccess only once the instance is durable) and an
// optional Error Comment (0000,0902) shown to the sender; the comment is cut
// to 64 characters. ctx is not cancelled when the server shuts down, so an
// instance in flight is finished; it carries the values of Serve's context.
type StoreHandler func(ctx context.Context, req *StoreRequest) (Status, string)

// Config is the SCP's configuration. The zero value serves C-ECHO only, as
// AE title LIGHTBOX, to any calling AE.
type Config struct {
	// AETitle is our AE title; an A-ASSOCIATE-RQ calling another one is
	// rejected (reason 7). Default "LIGHTBOX".
	AETitle string
	// Allow decides whether a calling AE title from a remote address may
	// associate; false rejects it (reason 3). nil accepts every peer, so a
	// server exposed beyond loopback should always set it.
	Allow func(callingAE string, remote net.Addr) bool
	// Store receives C-STORE data sets. nil rejects every storage
	// presentation context, leaving Verification only.
	Store StoreHandler
	// SOPClasses are the storage SOP classes accepted; nil means
	// DefaultSOPClasses. Verification is always accepted.
	SOPClasses []string
	// TransferSyntaxes are the transfer syntaxes accepted; nil means
	// DefaultTransferSyntaxes.
	TransferSyntaxes []string
	// MaxPDULength is the Maximum Length Received we advertise (PS3.8
	// D.1); the peer's P-DATA-TF PDUs may not be longer. Default
	// DefaultMaxPDULength. dcmtk caps its own PDUs at 128 KiB whatever we
	// advertise.
	MaxPDULength uint32
	// MaxAssociations bounds the associations open at once; one more is
	// rejected as transient, local limit exceeded. Default 32.
	MaxAssociations int
	// ARTIMTimeout bounds the wait for the A-ASSOCIATE-RQ (and the TLS
	// handshake) after a connection is accepted, and for the peer to close
	// the connection after a release, reject or abort (PS3.8 9.1.5).
	// Default 30 s.
	ARTIMTimeout time.Duration
	// IdleTimeout ends an association whose peer sends nothing for this
	// long, between messages or within one (A-ABORT). Default 5 min.
	IdleTimeout time.Duration
	// Event, if set, hears of each association and each message, from the
	// association's goroutine: it should return quickly.
	Event func(Event)

	sopClassSet       map[string]bool
	transferSyntaxSet map[string]bool
}

// DefaultMaxPDULength is the Maximum Length Received advertised unless
// Config.MaxPDULength says otherwise. Larger PDUs mean fewer reads per
// instance; dcmtk sends at most 128 KiB per PDU whatever we advertise.
const DefaultMaxPDULength = 1 << 20

// Bounds on what a Config may ask for. The minimum keeps room for a PDV
// header and some data; the maximum bounds the buffering a peer can make us
// promise (PS3.8 D.1 allows up to 2^32-1).
const (
	minMaxPDULength = 4096
	maxMaxPDULength = 64 << 20
)

// withDefaults returns a validated copy of c with defaults filled in.
func (c Config) withDefaults() (*Config, error) {
	if c.AETitle == "" {
		c.AETitle = "LIGHTBOX"
	}
	if err := checkAETitle(c.AETitle); err != nil {
		return nil, err
	}
	if c.SOPClasses == nil {
		c.SOPClasses = DefaultSOPClasses
	}
	if c.TransferSyntaxes == nil {
		c.TransferSyntaxes = DefaultTransferSyntaxes
	}
	c.sopClassSet = map[string]bool{}
	for _, u := range c.SOPClasses {
		if !validUID(u) {
			return nil, fmt.Errorf("dimse: SOP class %q is not a valid UID", u)
		}
		c.sopClassSet[u] = true
	}
	c.transferSyntaxSet = map[string]bool{}
	for _, u := range c.TransferSyntaxes {
		if !validUID(u) {
			return nil, fmt.Errorf("dimse: transfer syntax %q is not a valid UID", u)
		}
		c.transferSyntaxSet[u] = true
	}
	if c.MaxPDULength == 0 {
		c.MaxPDULength = DefaultMaxPDULength
	}
	if c.MaxPDULength < minMaxPDULength || c.MaxPDULength > maxMaxPDULength {
		return nil, fmt.Errorf("dimse: MaxPDULength %d outside %d..%d", c.MaxPDULength, minMaxPDULength, maxMaxPDULength)
	}
	if c.MaxAssociations <= 0 {
		c.MaxAssociations = 32
	}
	if c.ARTIMTimeout <= 0 {
		c.ARTIMTimeout = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	return &c, nil
}

// checkAETitle enforces PS3.5 6.2 (AE): 1 to 16 characters of the default
// repertoire without backslash or control characters, not all spaces.
func checkAETitle(ae string) error {
	if strings.TrimSpace(ae) != ae || len(ae) == 0 || len(ae) > 16 {
		return fmt.Errorf("dimse: AE title %q must be 1 to 16 characters without leading or trailing spaces", ae)
	}
	for _, r := range ae {
		if r < 0x20 || r >= 0x7F || r == '\\' {
			return fmt.Errorf("dimse: AE title %q has a character outside the default repertoire", ae)
		}
	}
	return nil
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// EventAccepted: an association was accepted.
	EventAccepted EventKind = iota + 1
	// EventRejected: an A-ASSOCIATE-RQ was rejected; Err says why.
	EventRejected
	// EventReleased: the peer released the association normally.
	EventReleased
	// EventAborted: the association or connection ended otherwise: peer
	// abort, protocol error, timeout, shutdown, TLS failure; Err says why.
	EventAborted
	// EventEcho: a C-ECHO was answered.
	EventEcho
	// EventStore: a C-STORE was answered (Status, Bytes, SOP UIDs set).
	EventStore
)

func (k EventKind) String() string {
	switch k {
	case EventAccepted:
		return "accepted"
	case EventRejected:
		return "rejected"
	case EventReleased:
		return "released"
	case EventAborted:
		return "aborted"
	case EventEcho:
		return "echo"
	case EventStore:
		return "store"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event reports something that happened on an association, for the
// caller's log and metrics.
type Event struct {
	Kind       EventKind
	RemoteAddr net.Addr
	CallingAE  string // empty before the A-ASSOCIATE-RQ is read
	CalledAE   string
	// Err is why an association was rejected or aborted; it wraps one of
	// the sentinel errors (ErrCallingAENotRecognized, ErrProtocol, …) or a
	// network/TLS error.
	Err error

	SOPClassUID    string        // EventStore
	SOPInstanceUID string        // EventStore
	TransferSyntax string        // EventStore
	Status         Status        // EventStore
	Bytes          int64         // EventStore: data set bytes received
	Duration       time.Duration // EventStore: from command to response
	// Contexts is the number of presentation contexts accepted
	// (EventAccepted).
	Contexts int
}

// Server is a DICOM SCP. Set Config, then call Serve once per listener; the
// listeners share the association limit. Config must not change after the
// first Serve.
type Server struct {
	Config Config

	once    sync.Once
	cfg     *Config
	cfgErr  error
	mu      sync.Mutex
	assocs  int // established associations
	pending int // connections not yet associated
}

// pendingSlack bounds connections waiting for their A-ASSOCIATE-RQ beyond
// MaxAssociations, so a flood of idle connections costs a bounded number
// of goroutines; the surplus is closed at once.
const pendingSlack = 16

func (s *Server) config() (*Config, error) {
	s.once.Do(func() { s.cfg, s.cfgErr = s.Config.withDefaults() })
	return s.cfg, s.cfgErr
}

// Serve accepts connections on ln until ctx is cancelled or ln fails. On
// cancel it stops accepting, lets each association finish the message in
// flight (the handler completes and its response is sent), aborts idle
// associations, waits for all of them and returns nil. If ln fails, Serve
// returns its error at once and open associations run on to their end.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	cfg, err := s.config()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("dimse: accept: %w", err)
		}
		backoff = 0
		if !s.admit(cfg) {
			conn.Close()
			cfg.emit(Event{Kind: EventAborted, RemoteAddr: conn.RemoteAddr(), Err: ErrLocalLimitExceeded})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := newAssociation(s, cfg, conn)
			a.serve(ctx)
		}()
	}
}

func (s *Server) admit(cfg *Config) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.assocs+s.pending >= cfg.MaxAssociations+pendingSlack {
		return false
	}
	s.pending++
	return true
}

// promote turns a pending connection into an association if the limit
// allows.
func (s *Server) promote(cfg *Config) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.assocs >= cfg.MaxAssociations {
		return false
	}
	s.pending--
	s.assocs++
	return true
}

func (s *Server) done(associated bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if associated {
		s.assocs--
	} else {
		s.pending--
	}
}

func (c *Config) emit(e Event) {
	if c.Event != nil {
		c.Event(e)
	}
}

// association is one connection from accept to close (PS3.8 9.2 state
// machine, acceptor side).
type association struct {
	srv    *Server
	cfg    *Config
	conn   net.Conn
	cr     *connReader
	stream *pdvStream
	remote net.Addr
	tls    *tls.ConnectionState

	calling, called string
	contexts        map[byte]acceptedContext
	peerMaxPDU      uint32
	associated      bool

	mu       sync.Mutex
	idle     bool
	shutting bool
}

func newAssociation(s *Server, cfg *Config, conn net.Conn) *association {
	cr := &connReader{c: conn, until: time.Now().Add(cfg.ARTIMTimeout), quickAck: quickAcker(conn)}
	a := &association{srv: s, cfg: cfg, conn: conn, cr: cr, remote: conn.RemoteAddr()}
	a.stream = &pdvStream{r: bufio.NewReaderSize(cr, 64<<10), maxPDU: cfg.MaxPDULength}
	return a
}

func (a *association) event(e Event) {
	e.RemoteAddr = a.remote
	e.CallingAE = a.calling
	e.CalledAE = a.called
	a.cfg.emit(e)
}

func (a *association) serve(ctx context.Context) {
	defer func() {
		a.conn.Close()
		a.srv.done(a.associated)
	}()
	if tc, ok := a.conn.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(ctx, a.cfg.ARTIMTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			a.event(Event{Kind: EventAborted, Err: fmt.Errorf("TLS handshake: %w", err)})
			return
		}
		st := tc.ConnectionState()
		a.tls = &st
	}
	if !a.associate() {
		return
	}
	a.cr.timeout, a.cr.until = a.cfg.IdleTimeout, time.Time{}
	stop := context.AfterFunc(ctx, a.shutdown)
	defer stop()
	a.loop(context.WithoutCancel(ctx))
}

// shutdown interrupts the association if it is waiting for a message; if
// it is busy, the loop sees the flag once the message is answered.
func (a *association) shutdown() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.shutting = true
	if a.idle {
		a.cr.interrupt()
	}
}

// associate reads and answers the A-ASSOCIATE-RQ. It reports whether the
// association is established.
func (a *association) associate() bool {
	typ, length, err := readPDUHeader(a.stream.r)
	if err != nil {
		a.event(Event{Kind: EventAborted, Err: a.readErr(err)})
		return false
	}
	if typ != pduAssociateRQ {
		err := protoErr(abortUnexpectedPDU, "PDU type %#x before A-ASSOCIATE-RQ", typ)
		if typ == pduAbort {
			err = ErrPeerAborted
		} else if typ > pduAbort || typ == 0 {
			err = protoErr(abortUnrecognizedPDU, "unknown PDU type %#x", typ)
		}
		a.abort(err)
		return false
	}
	body, err := readBody(a.stream.r, typ, length)
	if err != nil {
		a.abort(a.readErr(err))
		return false
	}
	rq, err := decodeAssociateRQ(body)
	if err != nil {
		a.abort(err)
		return false
	}
	a.calling, a.called = rq.callingAE, rq.calledAE
	ac, contexts, rj := a.cfg.negotiate(rq, a.remote)
	if rj == nil && !a.srv.promote(a.cfg) {
		rj = &rejection{rjTransient, rjSourcePresProv, rjPresLocalLimitExceeded,
			fmt.Errorf("%w: %d open", ErrLocalLimitExceeded, a.cfg.MaxAssociations)}
	}
	if rj != nil {
		a.write(encodeReject(rj.result, rj.source, rj.reason))
		a.event(Event{Kind: EventRejected, Err: rj.err})
		a.linger()
		return false
	}
	a.associated = true
	a.contexts = contexts
	a.peerMaxPDU = rq.maxLength
	if err := a.write(ac.encode()); err != nil {
		a.event(Event{Kind: EventAborted, Err: err})
		return false
	}
	a.event(Event{Kind: EventAccepted, Contexts: len(contexts)})
	return true
}

// readErr names the reason a read failed.
func (a *association) readErr(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, errInterrupted):
		return ErrShutdown
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case err == io.EOF:
		return ErrConnectionClosed
	}
	return err
}

// write sends b, bounded by the idle timeout so a peer that stops reading
// cannot hold the association forever.
func (a *association) write(b []byte) error {
	a.conn.SetWriteDeadline(time.Now().Add(a.cfg.IdleTimeout))
	_, err := a.conn.Write(b)
	return err
}

// abort sends A-ABORT (unless the peer aborted), reports err and waits
// briefly for the peer to close (PS3.8 Sta13).
func (a *association) abort(err error) {
	if !errors.Is(err, ErrPeerAborted) && !errors.Is(err, ErrConnectionClosed) {
		a.write(encodeAbort(abortSourceServiceProv, abortReason(err)))
	}
	a.event(Event{Kind: EventAborted, Err: err})
	if errors.Is(err, ErrProtocol) || errors.Is(err, ErrShutdown) {
		a.linger()
	}
}

// linger waits, at most ARTIM, for the peer to close the connection after
// our last PDU, so that the peer sees that PDU rather than a reset and the
// TIME_WAIT state lands on its side (PS3.8 9.1.5, Sta13).
func (a *association) linger() {
	a.cr.until = time.Now().Add(a.cfg.ARTIMTimeout)
	a.cr.interrupted.Store(false)
	io.CopyN(io.Discard, a.stream.r, 64<<10)
}

// loop serves DIMSE messages until release, abort or shutdown.
func (a *association) loop(ctx context.Context) {
	for {
		a.mu.Lock()
		if a.shutting {
			a.mu.Unlock()
			a.abort(ErrShutdown)
			return
		}
		a.idle = true
		a.mu.Unlock()
		raw, pcid, err := a.stream.readCommand()
		a.mu.Lock()
		a.idle = false
		a.mu.Unlock()
		if err != nil {
			var ctl *controlPDU
			if errors.As(err, &ctl) {
				switch ctl.typ {
				case pduReleaseRQ:
					if a.write(encodeSmall(pduReleaseRP, 0, 0, 0)) == nil {
						a.event(Event{Kind: EventReleased})
						a.linger()
						return
					}
					a.event(Event{Kind: EventAborted, Err: ErrConnectionClosed})
				case pduAbort:
					a.abort(ErrPeerAborted)
				default:
					a.abort(protoErr(abortUnexpectedPDU, "PDU type %#x on an established association", ctl.typ))
				}
				return
			}
			a.abort(a.readErr(err))
			return
		}
		if err := a.message(ctx, raw, pcid); err != nil {
			a.abort(a.readErr(err))
			return
		}
	}
}

// message handles one DIMSE request whose command set has been read. An
// error return means the association must be aborted.
func (a *association) message(ctx context.Context, raw []byte, pcid byte) error {
	start := time.Now()
	pc, ok := a.contexts[pcid]
	if !ok {
		return protoErr(abortUnexpectedParam, "message on presentation context %d, which was not accepted", pcid)
	}
	cmd, err := parseCommand(raw)
	if err != nil {
		return err
	}
	var data *dataReader
	if cmd.hasDataSet() {
		data = newDataReader(a.stream, pcid)
	}
	switch cmd.field {
	case cmdCEchoRQ:
		if data != nil {
			if err := data.drain(); err != nil {
				return err
			}
		}
		if err := a.respond(pcid, &command{field: cmdCEchoRSP, respondedTo: cmd.messageID,
			affectedSOPClass: VerificationSOPClass, dataSetType: noDataSet}); err != nil {
			return err
		}
		a.event(Event{Kind: EventEcho})
		return nil
	case cmdCStoreRQ:
		return a.store(ctx, cmd, pc, pcid, data, start)
	case cmdCCancelRQ:
		// Nothing to cancel: C-STORE and C-ECHO have no pending responses.
		if data != nil {
			return data.drain()
		}
		return nil
	}
	if data != nil {
		if err := data.drain(); err != nil {
			return err
		}
	}
	if cmd.field&cmdResponse != 0 {
		return protoErr(abortUnexpectedParam, "DIMSE response %#04x sent to an SCP", cmd.field)
	}
	return a.respond(pcid, &command{field: cmd.field | cmdResponse, respondedTo: cmd.messageID,
		affectedSOPClass: cmd.affectedSOPClass, dataSetType: noDataSet,
		status: uint16(StatusUnrecognizedOperation)})
}

// store runs one C-STORE (PS3.7 9.1.1, PS3.4 B.2).
func (a *association) store(ctx context.Context, cmd *command, pc acceptedContext, pcid byte, data *dataReader, start time.Time) error {
	var status Status
	var comment string
	switch {
	case data == nil:
		status, comment = StatusCannotUnderstand, "C-STORE-RQ without a data set"
	case pc.abstractSyntax == VerificationSOPClass || cmd.affectedSOPClass != pc.abstractSyntax:
		status, comment = StatusSOPClassNotSupported, "SOP class differs from the presentation context's"
	case !plausibleUID(cmd.affectedSOPInstance):
		status, comment = StatusInvalidSOPInstance, "missing or invalid Affected SOP Instance UID"
	default:
		req := &StoreRequest{
			CallingAE:               a.calling,
			CalledAE:                a.called,
			RemoteAddr:              a.remote,
			TLS:                     a.tls,
			TransferSyntax:          pc.transferSyntax,
			SOPClassUID:             cmd.affectedSOPClass,
			SOPInstanceUID:          cmd.affectedSOPInstance,
			MessageID:               cmd.messageID,
			Priority:                cmd.priority,
			MoveOriginatorAE:        cmd.moveOriginatorAE,
			MoveOriginatorMessageID: cmd.moveOriginatorMsgID,
			Data:                    data,
		}
		var err error
		status, comment, err = a.callHandler(ctx, req)
		if err != nil {
			return err
		}
		if data.err != nil && data.err != io.EOF {
			// The handler was fed a broken stream; whatever it answered,
			// the association is lost and no response is due.
			return data.err
		}
	}
	var n int64
	if data != nil {
		if err := data.drain(); err != nil {
			return err
		}
		n = data.nread
	}
	err := a.respond(pcid, &command{field: cmdCStoreRSP, respondedTo: cmd.messageID,
		affectedSOPClass: cmd.affectedSOPClass, affectedSOPInstance: cmd.affectedSOPInstance,
		dataSetType: noDataSet, status: uint16(status), errorComment: comment})
	if err != nil {
		return err
	}
	a.event(Event{Kind: EventStore, SOPClassUID: cmd.affectedSOPClass, SOPInstanceUID: cmd.affectedSOPInstance,
		TransferSyntax: pc.transferSyntax, Status: status, Bytes: n, Duration: time.Since(start)})
	return nil
}

func (a *association) callHandler(ctx context.Context, req *StoreRequest) (st Status, comment string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, r)
		}
	}()
	st, comment = a.cfg.Store(ctx, req)
	return st, comment, nil
}

func (a *association) respond(pcid byte, c *command) error {
	return a.write(appendPData(nil, pcid, mchCommand|mchLast, c.encode(), a.peerMaxPDU))
}

// errInterrupted is returned by connReader reads after a shutdown
// interrupted an idle association.
var errInterrupted = errors.New("interrupted by shutdown")

// connReader sets the read deadline before every read, so the timeout
// measures the peer's silence rather than the length of a transfer, and
// asks Linux for an immediate ACK after each read (see quickAcker).
type connReader struct {
	c       net.Conn
	timeout time.Duration
	// until, when set, is an absolute deadline that replaces timeout: a
	// peer trickling bytes must not stretch ARTIM.
	until       time.Time
	quickAck    func()
	interrupted atomic.Bool
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.until.IsZero() {
		r.c.SetReadDeadline(time.Now().Add(r.timeout))
	} else {
		r.c.SetReadDeadline(r.until)
	}
	if r.interrupted.Load() {
		return 0, errInterrupted
	}
	n, err := r.c.Read(p)
	if r.interrupted.Load() && err != nil {
		return n, errInterrupted
	}
	if n > 0 && r.quickAck != nil {
		r.quickAck()
	}
	return n, err
}

// interrupt makes the blocked or next read fail with errInterrupted.
func (r *connReader) interrupt() {
	r.interrupted.Store(true)
	r.c.SetReadDeadline(time.Unix(1, 0))
}
