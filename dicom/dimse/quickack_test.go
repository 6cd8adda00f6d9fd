package dimse

import (
	"net"
	"runtime"
	"testing"
)

// TestQuickAcker: on Linux a TCP connection gets an ACK hook, and calling
// it works; a non-TCP connection gets none.
func TestQuickAcker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := quickAcker(c)
	if (q != nil) != (runtime.GOOS == "linux") {
		t.Fatalf("quickAcker on %s: %v", runtime.GOOS, q != nil)
	}
	if q != nil {
		q()
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if quickAcker(a) != nil {
		t.Error("hook for a pipe")
	}
}
