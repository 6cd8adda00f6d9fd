package dimse

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

func TestZZDebugServe(t *testing.T) {
	if os.Getenv("DEBUG_SERVE") == "" {
		t.Skip()
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:11197")
	fs := newFileStore(t.TempDir())
	startServer(t, Config{Store: fs.store, Event: func(e Event) { fmt.Printf("%s %v %v %s\n", e.Kind, e.Err, e.Status, e.SOPInstanceUID) }}, ln)
	time.Sleep(8 * time.Second)
}
