package dimse

import (
	"crypto/tls"
	"net"
	"syscall"
)

// quickAcker returns a function that asks the kernel to acknowledge the
// data just read at once instead of delaying the ACK (TCP_QUICKACK, which
// Linux clears again on its own, hence once per read). A sender with Nagle
// on — dcmtk unless TCP_NODELAY=1 is in its environment — holds the small
// tail of each message until that ACK arrives; without this every instance
// waits out the ~40 ms delayed-ACK timer. nil when conn is not TCP.
func quickAcker(conn net.Conn) func() {
	if !quickAckEnabled {
		return nil
	}
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	set := func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	}
	return func() { rc.Control(set) }
}
