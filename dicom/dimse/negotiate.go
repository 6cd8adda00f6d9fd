package dimse

import (
	"errors"
	"fmt"
	"net"
)

// Sentinel errors reported in Event.Err, so that callers can tell the
// reasons for a rejected or ended association apart.
var (
	// ErrCalledAENotRecognized: the peer called another AE title than ours
	// (rejected, permanent, reason 7).
	ErrCalledAENotRecognized = errors.New("called AE title not recognised")
	// ErrCallingAENotRecognized: Config.Allow refused the calling AE title
	// and address (rejected, permanent, reason 3).
	ErrCallingAENotRecognized = errors.New("calling AE title not recognised")
	// ErrLocalLimitExceeded: Config.MaxAssociations associations are open
	// (rejected, transient, reason 2).
	ErrLocalLimitExceeded = errors.New("local limit of associations exceeded")
	// ErrApplicationContext: the peer proposed another application context
	// than DICOM's (rejected, permanent).
	ErrApplicationContext = errors.New("application context not supported")
	// ErrProtocolVersion: the peer does not speak protocol version 1.
	ErrProtocolVersion = errors.New("protocol version not supported")
	// ErrTimeout: ARTIM expired before the A-ASSOCIATE-RQ arrived, or the
	// peer was silent longer than Config.IdleTimeout.
	ErrTimeout = errors.New("timed out")
	// ErrShutdown: the server is shutting down; idle associations are
	// aborted after the message in flight is answered.
	ErrShutdown = errors.New("server shutting down")
	// ErrPeerAborted: the peer sent A-ABORT.
	ErrPeerAborted = errors.New("peer aborted the association")
	// ErrConnectionClosed: the peer closed the connection without releasing
	// the association.
	ErrConnectionClosed = errors.New("connection closed without release")
	// ErrHandlerPanic: the storage handler panicked; the association is
	// aborted and no response is sent for that instance.
	ErrHandlerPanic = errors.New("storage handler panicked")
)

// rejection is an A-ASSOCIATE-RJ to send, with the error to report.
type rejection struct {
	result, source, reason byte
	err                    error
}

// acceptedContext is what an accepted presentation context fixes for the
// messages sent on it.
type acceptedContext struct {
	abstractSyntax string
	transferSyntax string
}

// negotiate decides an A-ASSOCIATE-RQ (PS3.8 7.1.1, 9.3.3): it checks the
// protocol version, application context and AE titles, then answers each
// presentation context. The association limit is checked by the caller.
func (c *Config) negotiate(rq *associateRQ, remote net.Addr) (*associateAC, map[byte]acceptedContext, *rejection) {
	if rq.protocolVersion&1 == 0 {
		return nil, nil, &rejection{rjPermanent, rjSourceACSE, rjACSEProtocolVersion,
			fmt.Errorf("%w: %#04x", ErrProtocolVersion, rq.protocolVersion)}
	}
	if rq.appContext != ApplicationContext {
		return nil, nil, &rejection{rjPermanent, rjSourceUser, rjUserAppContext,
			fmt.Errorf("%w: %q", ErrApplicationContext, rq.appContext)}
	}
	if rq.calledAE != c.AETitle {
		return nil, nil, &rejection{rjPermanent, rjSourceUser, rjUserCalledAE,
			fmt.Errorf("%w: %q (we are %q)", ErrCalledAENotRecognized, rq.calledAE, c.AETitle)}
	}
	if c.Allow != nil && !c.Allow(rq.callingAE, remote) {
		return nil, nil, &rejection{rjPermanent, rjSourceUser, rjUserCallingAE,
			fmt.Errorf("%w: %q from %v", ErrCallingAENotRecognized, rq.callingAE, remote)}
	}
	ac := &associateAC{
		calledAE:  rq.calledAE,
		callingAE: rq.callingAE,
		maxLength: c.MaxPDULength,
	}
	accepted := map[byte]acceptedContext{}
	for _, pc := range rq.contexts {
		res := contextResult{id: pc.id}
		switch {
		case !c.supportsAbstract(pc.abstractSyntax):
			res.result = pcAbstractNotSupported
		default:
			ts := c.chooseTransferSyntax(pc.transferSyntaxes)
			if ts == "" {
				res.result = pcTransferNotSupported
				break
			}
			res.result = pcAccepted
			res.transferSyntax = ts
			accepted[pc.id] = acceptedContext{abstractSyntax: pc.abstractSyntax, transferSyntax: ts}
		}
		ac.contexts = append(ac.contexts, res)
	}
	return ac, accepted, nil
}

func (c *Config) supportsAbstract(uid string) bool {
	if uid == VerificationSOPClass {
		return true
	}
	return c.Store != nil && c.sopClassSet[uid]
}

// chooseTransferSyntax picks from the syntaxes the peer proposed for one
// context. PS3.8 9.3.3.2 leaves the choice to the acceptor; we keep the
// peer's order (it proposes first what it holds, so nothing is converted)
// but pass over Implicit VR Little Endian when the peer also offers an
// explicit VR syntax we accept, because implicit VR loses the VR of private
// and unknown elements.
func (c *Config) chooseTransferSyntax(proposed []string) string {
	fallback := ""
	for _, ts := range proposed {
		if !c.transferSyntaxSet[ts] {
			continue
		}
		if ts != ImplicitVRLittleEndian {
			return ts
		}
		if fallback == "" {
			fallback = ts
		}
	}
	return fallback
}
