package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"lightbox/dicom"
	"lightbox/internal/orthanc"
)

// BenchmarkIngest is the ingest figure: the same 500 CT slices
// (copies of a real 512×512 slice with new UIDs) sent by dcmtk's storescu
// in one run to dcmtk's storescp (writing files), Orthanc (its default
// SQLite index), Lightbox on SQLite + disk and, under
// scripts/test-services.sh, Lightbox on PostgreSQL + S3; each with the
// sender's Nagle off (TCP_NODELAY=1) and on (dcmtk's default), in
// INGEST_ROUNDS rounds (5) whose medians are printed. Run with
// -benchtime=1x: one transfer is the unit.
//
// Every transfer starts with nothing left for the kernel to write (a
// sync, not timed): storescp and Orthanc leave their files in the page
// cache, and the writeback of one target's 265 MB otherwise lands in the
// next one's run. storescp acknowledges each file before it is on disk,
// Lightbox only once it is durable, so storescp is also timed until its
// files are (syncfs once storescu is done): "storescp-to-disk".
func BenchmarkIngest(b *testing.B) {
	for _, tool := range []string{"storescu", "storescp"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s not found (Debian package dcmtk)", tool)
		}
	}
	n := 500
	if s := os.Getenv("INGEST_N"); s != "" {
		fmt.Sscan(s, &n)
	}
	dir := b.TempDir()
	files := copies(b, "../../testdata/ct-signed-implicit-512.dcm", n, dir)
	// Every target's data stays until the end: on ext4 without a journal
	// (as on the machines this runs on: perf shows ext4_fsync_nojournal)
	// creating a file skips the inodes
	// freed in the last 30 s, one by one, so deleting a target's 500 files
	// before the next target runs slows the next one's every file.
	keep := func(b *testing.B) string {
		d, err := os.MkdirTemp(dir, "target-")
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	var bytes int64
	for _, f := range files {
		st, _ := os.Stat(f)
		bytes += st.Size()
	}
	type target struct {
		name string
		// start returns the receiver's process ID too, whose CPU time
		// is read before and after the transfer.
		start func(b *testing.B) (addr, aet string, pid int, stop func())
	}
	var scpOut string // where the running storescp writes
	targets := []target{
		{"storescp", func(b *testing.B) (string, string, int, func()) {
			addr := freeAddr(b)
			_, port, _ := net.SplitHostPort(addr)
			out := keep(b)
			scpOut = out
			cmd := exec.Command("storescp", "--output-directory", out, "-aet", "STORESCP", port)
			cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			waitPort(b, addr)
			return addr, "STORESCP", cmd.Process.Pid, func() { cmd.Process.Kill(); cmd.Wait() }
		}},
		{"orthanc", func(b *testing.B) (string, string, int, func()) {
			o, err := orthanc.Start(keep(b), orthanc.Config{})
			if err != nil {
				b.Fatal(err)
			}
			return fmt.Sprintf("127.0.0.1:%d", o.DICOMPort), o.AETitle, o.Pid(), o.Stop
		}},
	}
	for _, be := range backends {
		be := be
		targets = append(targets, target{"lightbox-" + be.name, func(b *testing.B) (string, string, int, func()) {
			extra := be.flags(b)
			data := keep(b)
			admin(b, data, extra, "pacs", "add", "--ae", "STORESCU", "--host", "127.0.0.1")
			s := startServer(b, data, extra, freeAddr(b))
			return s.dimse, "LIGHTBOX", s.cmd.Process.Pid, func() { s.cmd.Process.Kill(); <-s.done }
		}})
	}
	// Rounds interleave the targets, and the figures are medians: the
	// machine is shared, and one target's run can land in a slow spell.
	rounds := 5
	if s := os.Getenv("INGEST_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	results := map[string][]float64{}
	cpu := map[string][]float64{} // receiver CPU ms per instance
	for round := range rounds {
		for _, nagle := range []bool{false, true} {
			for _, tg := range targets {
				name := tg.name + map[bool]string{false: "/nodelay", true: "/nagle"}[nagle]
				b.Run(fmt.Sprintf("%s/%d", name, round+1), func(b *testing.B) {
					addr, aet, pid, stop := tg.start(b)
					defer stop()
					host, port, _ := net.SplitHostPort(addr)
					for b.Loop() {
						cmd := exec.Command("storescu", append([]string{"-aet", "STORESCU", "-aec", aet, host, port}, files...)...)
						if !nagle {
							cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
						}
						syscall.Sync()
						start, cpu0 := time.Now(), cpuTime(b, pid)
						if out, err := cmd.CombinedOutput(); err != nil {
							b.Fatalf("storescu to %s: %v: %s", tg.name, err, out)
						}
						secs := time.Since(start).Seconds()
						results[name] = append(results[name], float64(n)/secs)
						if tg.name == "storescp" {
							syncFS(b, scpOut)
							k := "storescp-to-disk" + name[len("storescp"):]
							results[k] = append(results[k], float64(n)/time.Since(start).Seconds())
						}
						cpu[name] = append(cpu[name], (cpuTime(b, pid)-cpu0).Seconds()*1000/float64(n))
						b.ReportMetric(float64(n)/secs, "inst/s")
						b.ReportMetric(float64(bytes)/1e6/secs, "MB/s")
					}
				})
			}
		}
	}
	var names []string
	for k := range results {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Printf("\ningest of %d CT slices (%.0f MB) by storescu, median of %d rounds (all rounds in brackets; the receiver's CPU per instance):\n", n, float64(bytes)/1e6, rounds)
	for _, k := range names {
		mode := k[strings.Index(k, "/"):]
		med := median(results[k])
		line := fmt.Sprintf("  %-32s %7.0f inst/s %-22s %5.2f ms CPU/inst", k, med, rates(results[k]), median(cpu[k]))
		if strings.HasPrefix(k, "lightbox") {
			if s := median(results["storescp"+mode]); s > 0 {
				line += fmt.Sprintf("  %.2f× storescp (goal ≥ 0.8)", med/s)
			}
			if s := median(results["storescp-to-disk"+mode]); s > 0 {
				line += fmt.Sprintf("  %.2f× storescp-to-disk", med/s)
			}
			if o := median(results["orthanc"+mode]); o > 0 {
				line += fmt.Sprintf("  %.2f× Orthanc (goal ≥ 2)", med/o)
			}
		}
		fmt.Println(line)
	}
}

// syncFS writes what is cached of dir's file system to disk (syncfs(2)).
func syncFS(b *testing.B, dir string) {
	f, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		b.Fatal(err)
	}
}

// cpuTime is the user and system CPU time a process has used so far
// (proc(5): utime and stime, in clock ticks of 1/100 s on Linux). The
// receiver's CPU per instance varies less than its rate on a shared
// machine: the rate also depends on when the other core is free.
func cpuTime(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis, where state is field 3.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func rates(v []float64) string {
	parts := make([]string, len(v))
	for i, r := range v {
		parts[i] = fmt.Sprintf("%.0f", r)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func waitPort(b *testing.B, addr string) {
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("nothing listens on %s", addr)
}

// BenchmarkSTOWMemory streams 2 GB of CT slices (copies of a real slice
// with new UIDs) in one STOW-RS request to a running server and reports
// the server's peak resident memory (VmHWM): the upload must stream, not
// be held. STOW_MB sets the size.
func BenchmarkSTOWMemory(b *testing.B) {
	mb := 2048
	if s := os.Getenv("STOW_MB"); s != "" {
		fmt.Sscan(s, &mb)
	}
	data := b.TempDir()
	out, err := exec.Command(lightboxBin(b), "token", "create", "--data", data, "--name", "bench", "--role", "pacs").CombinedOutput()
	if err != nil {
		b.Fatalf("token create: %v: %s", err, out)
	}
	words := strings.Fields(string(out))
	token := words[len(words)-1]
	srv := startServer(b, data, nil, freeAddr(b))
	raw, err := os.ReadFile("../../testdata/ct-signed-implicit-512.dcm")
	if err != nil {
		b.Fatal(err)
	}
	f, _ := dicom.Open("../../testdata/ct-signed-implicit-512.dcm")
	uid := f.Meta.SOPInstanceUID
	n := mb << 20 / len(raw)
	client := trustingClient(b, filepath.Join(data, "cert.pem"))
	for b.Loop() {
		pr, pw := io.Pipe()
		go func() {
			for i := range n {
				suffix := fmt.Sprintf(".%d", 1000000+i)
				fmt.Fprintf(pw, "--B\r\nContent-Type: application/dicom\r\n\r\n")
				pw.Write(bytes.ReplaceAll(raw, []byte(uid), []byte(uid[:len(uid)-len(suffix)]+suffix)))
				fmt.Fprintf(pw, "\r\n")
			}
			fmt.Fprintf(pw, "--B--\r\n")
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", srv.url+"dicom-web/studies", pr)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=B`)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("STOW: %s", resp.Status)
		}
		secs := time.Since(start).Seconds()
		b.ReportMetric(float64(n)/secs, "inst/s")
		b.ReportMetric(float64(n*len(raw))/1e6/secs, "MB/s")
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.cmd.Process.Pid))
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb float64
			fmt.Sscan(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), &kb)
			b.ReportMetric(kb/1024, "peak-RSS-MB")
			fmt.Printf("\nSTOW-RS of %d MB (%d CT slices) in one request: server peak RSS %.0f MB\n", n*len(raw)>>20, n, kb/1024)
		}
	}
}

// BenchmarkInfoHugeRSS runs `lightbox info` on a 524 MB multi-frame CT
// (1000 frames of 512×512, sparse on disk) and reports the process's peak
// resident memory: reading the header must not read the pixels.
func BenchmarkInfoHugeRSS(b *testing.B) {
	const rows, cols, frames = 512, 512, 1000
	path := filepath.Join(b.TempDir(), "huge.dcm")
	le := func(v ...any) []byte {
		var buf bytes.Buffer
		for _, x := range v {
			binary.Write(&buf, binary.LittleEndian, x)
		}
		return buf.Bytes()
	}
	el := func(g, e uint16, vr string, val []byte) []byte {
		if len(val)%2 == 1 {
			val = append(val, ' ')
		}
		if vr == "OB" || vr == "OW" {
			return append(append(le(g, e), append([]byte(vr), le(uint16(0), uint32(len(val)))...)...), val...)
		}
		return append(append(le(g, e), append([]byte(vr), le(uint16(len(val)))...)...), val...)
	}
	meta := append(el(2, 1, "OB", []byte{0, 1}), el(2, 0x10, "UI", []byte("1.2.840.10008.1.2.1\x00"))...)
	var h []byte
	h = append(h, make([]byte, 128)...)
	h = append(h, "DICM"...)
	h = append(h, el(2, 0, "UL", le(uint32(len(meta))))...)
	h = append(h, meta...)
	for _, e := range [][]byte{
		el(8, 0x16, "UI", []byte("1.2.840.10008.5.1.4.1.1.2.1\x00")), el(8, 0x18, "UI", []byte("1.2.3.4.5")),
		el(0x20, 0xD, "UI", []byte("1.2.3.4")), el(0x20, 0xE, "UI", []byte("1.2.3.4.1")),
		el(0x28, 2, "US", le(uint16(1))), el(0x28, 4, "CS", []byte("MONOCHROME2")), el(0x28, 8, "IS", []byte(fmt.Sprint(frames))),
		el(0x28, 0x10, "US", le(uint16(rows))), el(0x28, 0x11, "US", le(uint16(cols))), el(0x28, 0x100, "US", le(uint16(16))),
		el(0x28, 0x101, "US", le(uint16(12))), el(0x28, 0x102, "US", le(uint16(11))), el(0x28, 0x103, "US", le(uint16(0))),
	} {
		h = append(h, e...)
	}
	h = append(h, append(le(uint16(0x7FE0), uint16(0x10)), append([]byte("OW"), le(uint16(0), uint32(rows*cols*2*frames))...)...)...)
	if err := os.WriteFile(path, h, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(path, int64(len(h))+rows*cols*2*frames); err != nil {
		b.Fatal(err)
	}
	bin := lightboxBin(b)
	rss := func(file string) float64 {
		cmd := exec.Command(bin, "info", file)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("info: %v: %s", err, out)
		}
		return float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
	}
	var peak, floor float64
	for b.Loop() {
		peak = rss(path)
		floor = rss("../../testdata/mr-small.dcm")
	}
	b.ReportMetric(peak, "peak-RSS-MB")
	b.ReportMetric(peak-floor, "over-a-10KB-file-MB")
	fmt.Printf("\nlightbox info on a %d MB multi-frame file: peak RSS %.1f MB; on a 10 KB file %.1f MB (the process's floor with its C codec libraries)\n",
		(len(h)+rows*cols*2*frames)>>20, peak, floor)
}
