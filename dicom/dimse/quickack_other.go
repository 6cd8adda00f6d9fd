//go:build !linux

package dimse

import "net"

// quickAcker is Linux-only (TCP_QUICKACK); elsewhere delayed ACKs stand.
func quickAcker(net.Conn) func() { return nil }
