package dimse

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkStoreSCU times dcmtk storescu sending benchInstances copies of a
// real 1 MB CT instance (new SOP Instance UIDs each, +II) over loopback to
// our SCP, whose handler writes each to a file (no fsync), and to dcmtk
// storescp for comparison; with and without TCP_NODELAY=1 in storescu's
// environment (dcmtk turns Nagle off only then) and with and without
// TCP_QUICKACK on our side. Run: go test -run X -bench StoreSCU -benchtime 1x
func BenchmarkStoreSCU(b *testing.B) {
	const benchInstances = 200
	storescu := needTool(b, "storescu")
	file := ""
	for _, f := range dicomFiles(b) {
		if filepath.Base(f) == "5.dcm" { // Enhanced CT, 1 MB, explicit VR LE
			file = f
		}
	}
	if file == "" {
		b.Fatal("5.dcm not found")
	}
	p, _ := readPart10(file)
	args := func(port string) []string {
		return []string{"--repeat", fmt.Sprint(benchInstances), "+II", "-aec", "LIGHTBOX", "127.0.0.1", port, file}
	}
	report := func(b *testing.B, d time.Duration) {
		n := float64(benchInstances * b.N)
		b.ReportMetric(n/d.Seconds(), "inst/s")
		b.ReportMetric(n*float64(len(p.dataset))/d.Seconds()/1e6, "MB/s")
	}
	for _, nodelay := range []bool{true, false} {
		env := []string{}
		if nodelay {
			env = append(env, "TCP_NODELAY=1")
		}
		for _, qa := range []bool{true, false} {
			for _, pdu := range []uint32{16 << 10, DefaultMaxPDULength} {
				name := fmt.Sprintf("lightbox/nodelay=%v/quickack=%v/pdu=%dK", nodelay, qa, pdu>>10)
				b.Run(name, func(b *testing.B) {
					quickAckEnabled = qa
					defer func() { quickAckEnabled = true }()
					dir := b.TempDir()
					handler := func(_ context.Context, req *StoreRequest) (Status, string) {
						f, err := os.Create(filepath.Join(dir, req.SOPInstanceUID))
						if err != nil {
							return StatusOutOfResources, err.Error()
						}
						defer f.Close()
						if _, err := io.Copy(f, req.Data); err != nil {
							return StatusProcessingFailure, err.Error()
						}
						return StatusSuccess, ""
					}
					ts := startServer(b, Config{Store: handler, MaxPDULength: pdu}, nil)
					b.ResetTimer()
					start := time.Now()
					for range b.N {
						if out, err := runEnv(env, storescu, args(ts.port())...); err != nil {
							b.Fatalf("storescu: %v\n%s", err, out)
						}
					}
					report(b, time.Since(start))
				})
			}
		}
		b.Run(fmt.Sprintf("storescp/nodelay=%v", nodelay), func(b *testing.B) {
			dir := b.TempDir()
			port := startStoreSCPPlain(b, env, dir) // storescp reads TCP_NODELAY too
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if out, err := runEnv(env, storescu, args(port)...); err != nil {
					b.Fatalf("storescu: %v\n%s", err, out)
				}
			}
			report(b, time.Since(start))
		})
	}
}
