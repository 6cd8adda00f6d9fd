package dimse

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEchoSCU(t *testing.T) {
	echoscu := needTool(t, "echoscu")
	ts := startServer(t, Config{}, nil)
	out, err := run(echoscu, "-aet", "TESTSCU", "-aec", "LIGHTBOX", "127.0.0.1", ts.port())
	if err != nil {
		t.Fatalf("echoscu: %v\n%s", err, out)
	}
	ts.ev.waitFor(t, "echo", func(e Event) bool { return e.Kind == EventEcho && e.CallingAE == "TESTSCU" })
	ts.ev.waitFor(t, "released", func(e Event) bool { return e.Kind == EventReleased })
}

// variant is a test file re-encoded in one transfer syntax.
type variant struct {
	path, source, ts string
}

// variantRecipe makes a variant with a dcmtk or gdcm tool: args get the
// input and output paths appended.
type variantRecipe struct {
	ts   string
	tool string
	args []string
}

var variantRecipes = []variantRecipe{
	{ExplicitVRLittleEndian, "dcmconv", []string{"+te"}},
	{ImplicitVRLittleEndian, "dcmconv", []string{"+ti"}},
	{ExplicitVRBigEndian, "dcmconv", []string{"+tb"}},
	{DeflatedExplicitVRLE, "dcmconv", []string{"+td"}},
	{JPEGBaseline8Bit, "dcmcjpeg", []string{"+eb"}},
	{JPEGExtended12Bit, "dcmcjpeg", []string{"+ee"}},
	{JPEGLossless, "dcmcjpeg", []string{"+el"}},
	{JPEGLosslessSV1, "dcmcjpeg", []string{"+e1"}},
	{JPEGLSLossless, "dcmcjpls", []string{"+el"}},
	{JPEGLSNearLossless, "dcmcjpls", []string{"+en"}},
	{RLELossless, "dcmcrle", nil},
	{JPEG2000Lossless, "gdcmconv", []string{"--j2k"}},
	{JPEG2000, "gdcmconv", []string{"--j2k", "--lossy", "-q", "40"}},
}

var (
	variantsOnce sync.Once
	variantsDir  string
	variantsList []variant
	variantsLog  []string
)

// makeVariants returns, once per test binary, every test file whose SOP
// class we accept as it is, plus the suyashkumar/dicom files re-encoded in
// every transfer syntax we accept (through an Explicit VR Little Endian
// intermediate, since gdcmconv mangles implicit VR input). A tool may
// refuse a file (near-lossless JPEG-LS of signed data, say); that is logged,
// and TestStoreSCU checks each transfer syntax still has files.
func makeVariants(t *testing.T) []variant {
	t.Helper()
	for _, r := range variantRecipes {
		needTool(t, r.tool)
	}
	variantsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dimse-variants-")
		if err != nil {
			t.Fatal(err)
		}
		variantsDir = dir
		accepted := map[string]bool{}
		for _, c := range DefaultSOPClasses {
			accepted[c] = true
		}
		for i, src := range dicomFiles(t) {
			p, err := readPart10(src)
			if err != nil || !accepted[p.sopClass] {
				variantsLog = append(variantsLog, fmt.Sprintf("%s: not sent (SOP class %s, %v)", src, sopClassOf(p), err))
				continue
			}
			variantsList = append(variantsList, variant{path: src, source: src, ts: p.transferSyntax})
			if !strings.Contains(src, "suyashkumar") {
				continue
			}
			base := filepath.Join(dir, fmt.Sprintf("%d-base.dcm", i))
			if msg, err := run("dcmconv", "+te", src, base); err != nil {
				variantsLog = append(variantsLog, fmt.Sprintf("dcmconv +te %s: %v %s", src, err, msg))
				continue
			}
			for j, r := range variantRecipes {
				if r.ts == p.transferSyntax {
					continue
				}
				out := filepath.Join(dir, fmt.Sprintf("%d-%d.dcm", i, j))
				args := append(append([]string{}, r.args...), base, out)
				if r.tool == "gdcmconv" {
					args = append(append([]string{}, r.args...), "-i", base, "-o", out)
				}
				if msg, err := run(r.tool, args...); err != nil {
					variantsLog = append(variantsLog, fmt.Sprintf("%s %s: %v %s", r.tool, src, err, strings.TrimSpace(msg)))
					continue
				}
				q, err := readPart10(out)
				if err != nil || q.transferSyntax != r.ts {
					variantsLog = append(variantsLog, fmt.Sprintf("%s %s: wrote another transfer syntax (%v)", r.tool, src, err))
					continue
				}
				variantsList = append(variantsList, variant{path: out, source: src, ts: r.ts})
			}
		}
	})
	if len(variantsList) == 0 {
		t.Fatal("no variants")
	}
	return variantsList
}

// batches splits vs so that no batch holds two files with the same SOP
// Instance UID (several test files share one), since the handler keys
// what it receives by that UID.
func batches(t *testing.T, vs []variant) [][]*part10 {
	t.Helper()
	var out [][]*part10
	var seen []map[string]bool
	for _, v := range vs {
		p, err := readPart10(v.path)
		if err != nil {
			t.Fatal(err)
		}
		p.path = v.path
		i := 0
		for ; i < len(out); i++ {
			if !seen[i][p.sopInstance] {
				break
			}
		}
		if i == len(out) {
			out = append(out, nil)
			seen = append(seen, map[string]bool{})
		}
		out[i] = append(out[i], p)
		seen[i][p.sopInstance] = true
	}
	return out
}

// storescuConfig writes a storescu association profile proposing exactly
// ts for each SOP class of files (storescu's -x options have no choice for
// some syntaxes, such as JPEG .57).
func storescuConfig(t *testing.T, dir, ts string, sopClasses []string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[[TransferSyntaxes]]\n[TS]\nTransferSyntax1 = %s\n\n[[PresentationContexts]]\n[PC]\n", ts)
	for i, c := range sopClasses {
		fmt.Fprintf(&b, "PresentationContext%d = %s\\TS\n", i+1, c)
	}
	b.WriteString("\n[[Profiles]]\n[P]\nPresentationContexts = PC\n")
	path := filepath.Join(dir, "storescu.cfg")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStoreSCU sends every test file in every accepted transfer syntax with
// dcmtk storescu and checks that the handler received exactly the data set
// of the file, in the negotiated transfer syntax.
func TestStoreSCU(t *testing.T) {
	storescu := needTool(t, "storescu")
	vs := makeVariants(t)
	for _, l := range variantsLog {
		t.Log("variant skipped:", l)
	}
	byTS := map[string][]variant{}
	for _, v := range vs {
		byTS[v.ts] = append(byTS[v.ts], v)
	}
	for _, ts := range DefaultTransferSyntaxes {
		group := byTS[ts]
		t.Run(ts, func(t *testing.T) {
			if len(group) == 0 {
				t.Fatalf("no test file could be encoded in %s", ts)
			}
			for _, batch := range batches(t, group) {
				sendAndCompare(t, storescu, ts, batch)
			}
		})
	}
}

func sopClassOf(p *part10) string {
	if p == nil {
		return "?"
	}
	return p.sopClass
}

// sendAndCompare stores files (all in transfer syntax ts) with one storescu
// run to our SCP and one to dcmtk's storescp in bit-preserving mode, and
// checks that each data set we received equals, byte for byte, what
// storescp received. (storescu re-encodes data sets — it drops group
// lengths and trailing padding — so the file's own bytes are not the
// reference; where storescu sends them unchanged, they are also checked.)
func sendAndCompare(t *testing.T, storescu, ts string, files []*part10) {
	t.Helper()
	dir, refDir := t.TempDir(), t.TempDir()
	fs := newFileStore(dir)
	srv := startServer(t, Config{Store: fs.store}, nil)
	classes := map[string]bool{}
	var paths []string
	for _, p := range files {
		classes[p.sopClass] = true
		paths = append(paths, p.path)
	}
	var cl []string
	for c := range classes {
		cl = append(cl, c)
	}
	sort.Strings(cl)
	cfg := storescuConfig(t, t.TempDir(), ts, cl)
	send := func(port string) {
		out, err := run(storescu, append([]string{"-xf", cfg, "P", "-aet", "TESTSCU", "-aec", "LIGHTBOX",
			"127.0.0.1", port}, paths...)...)
		if err != nil {
			t.Fatalf("storescu to port %s: %v\n%s\nfiles: %v", port, err, out, paths)
		}
	}
	send(srv.port())
	send(startStoreSCP(t, refDir, cfg))

	ref := map[string]*part10{}
	entries, _ := os.ReadDir(refDir)
	for _, e := range entries {
		if p, err := readPart10(filepath.Join(refDir, e.Name())); err == nil {
			ref[p.sopInstance] = p
		}
	}
	identical := 0
	for _, w := range files {
		got, err := readPart10(filepath.Join(dir, w.sopInstance+".dcm"))
		if err != nil {
			t.Errorf("%s: %v", w.path, err)
			continue
		}
		if got.transferSyntax != ts {
			t.Errorf("%s: received in %s, want %s", w.path, got.transferSyntax, ts)
		}
		if got.sopClass != w.sopClass {
			t.Errorf("%s: SOP class %s, want %s", w.path, got.sopClass, w.sopClass)
		}
		r := ref[w.sopInstance]
		if r == nil {
			t.Errorf("%s: storescp received nothing", w.path)
			continue
		}
		rb, err1 := r.plainDataset()
		gb, err2 := got.plainDataset()
		if err1 != nil || err2 != nil {
			t.Errorf("%s: inflate: %v %v", w.path, err1, err2)
			continue
		}
		if !bytes.Equal(rb, gb) {
			t.Errorf("%s: data set differs from storescp's: %d bytes received, %d by storescp, first difference at %d",
				w.path, len(gb), len(rb), firstDiff(rb, gb))
		}
		if wb, err := w.plainDataset(); err == nil && bytes.Equal(wb, gb) {
			identical++
		}
	}
	t.Logf("%d files, %d received byte-identical to the file's data set", len(files), identical)
}

// startStoreSCPPlain runs dcmtk storescp as it is usually run (all storage
// SOP classes, uncompressed transfer syntaxes, files written to dir).
func startStoreSCPPlain(tb testing.TB, env []string, dir string) string {
	tb.Helper()
	return startDCMTK(tb, env, "-aet", "LIGHTBOX", "-od", dir)
}

// startStoreSCP runs dcmtk storescp with the association profile cfg (its
// --accept-all lacks JPEG .57), writing exactly what it receives into dir,
// on a free port until the test ends.
func startStoreSCP(t *testing.T, dir, cfg string) string {
	t.Helper()
	return startDCMTK(t, nil, "-aet", "LIGHTBOX", "-xf", cfg, "P", "+B", "-od", dir)
}

// startDCMTK starts storescp with args on a free port until the test ends.
func startDCMTK(t testing.TB, env []string, args ...string) string {
	t.Helper()
	storescp := needTool(t, "storescp")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(storescp, append(args, port)...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			return port
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("storescp did not start")
	return ""
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestReject checks each association rejection against echoscu: the
// association fails with the reason PS3.8 9.3.4 gives, and the event says
// which.
func TestReject(t *testing.T) {
	echoscu := needTool(t, "echoscu")
	var allowed []string
	var mu sync.Mutex
	cfg := Config{
		AETitle: "LIGHTBOX",
		Allow: func(calling string, remote net.Addr) bool {
			mu.Lock()
			allowed = append(allowed, calling+"@"+remote.(*net.TCPAddr).IP.String())
			mu.Unlock()
			return calling == "GOODSCU"
		},
		MaxAssociations: 1,
	}
	ts := startServer(t, cfg, nil)
	tests := []struct {
		name, calling, called string
		wantOut               string
		wantErr               error
	}{
		{"called AE", "GOODSCU", "OTHER", "Called AE Title Not Recognized", ErrCalledAENotRecognized},
		{"calling AE", "BADSCU", "LIGHTBOX", "Calling AE Title Not Recognized", ErrCallingAENotRecognized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(echoscu, "-aet", tc.calling, "-aec", tc.called, "127.0.0.1", ts.port())
			if err == nil {
				t.Fatalf("echoscu succeeded:\n%s", out)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Errorf("echoscu output lacks %q:\n%s", tc.wantOut, out)
			}
			ts.ev.waitFor(t, "rejection", func(e Event) bool {
				return e.Kind == EventRejected && errors.Is(e.Err, tc.wantErr) && e.CallingAE == tc.calling
			})
		})
	}
	t.Run("too many associations", func(t *testing.T) {
		held := associateRaw(t, ts.addr, echoRQ("GOODSCU", "LIGHTBOX"))
		out, err := run(echoscu, "-aet", "GOODSCU", "-aec", "LIGHTBOX", "127.0.0.1", ts.port())
		if err == nil {
			t.Fatalf("echoscu succeeded past the limit:\n%s", out)
		}
		if !strings.Contains(out, "Local Limit Exceeded") {
			t.Errorf("echoscu output lacks the reason:\n%s", out)
		}
		ts.ev.waitFor(t, "limit rejection", func(e Event) bool {
			return e.Kind == EventRejected && errors.Is(e.Err, ErrLocalLimitExceeded)
		})
		// Releasing the held association frees the slot.
		held.Write(encodeSmall(pduReleaseRQ, 0, 0, 0))
		if typ, _, err := readRawPDU(held); err != nil || typ != pduReleaseRP {
			t.Fatalf("want A-RELEASE-RP, got %#x %v", typ, err)
		}
		held.Close()
		ts.ev.waitFor(t, "release", func(e Event) bool { return e.Kind == EventReleased })
		if out, err := run(echoscu, "-aet", "GOODSCU", "-aec", "LIGHTBOX", "127.0.0.1", ts.port()); err != nil {
			t.Fatalf("echoscu after release: %v\n%s", err, out)
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if len(allowed) == 0 || !strings.HasSuffix(allowed[0], "@127.0.0.1") {
		t.Errorf("Allow saw %v", allowed)
	}
}

// TestTimeouts: a connection that never sends its A-ASSOCIATE-RQ is closed
// when ARTIM expires; an association that goes quiet is aborted after the
// idle timeout.
func TestTimeouts(t *testing.T) {
	ts := startServer(t, Config{ARTIMTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}, nil)
	t.Run("ARTIM", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		n, err := io.Copy(io.Discard, c)
		if err != nil || n != 0 {
			t.Fatalf("want a close without data, got %d bytes, %v", n, err)
		}
		ts.ev.waitFor(t, "ARTIM", func(e Event) bool { return e.Kind == EventAborted && errors.Is(e.Err, ErrTimeout) })
	})
	t.Run("idle", func(t *testing.T) {
		c := associateRaw(t, ts.addr, echoRQ("IDLE", "LIGHTBOX"))
		expectAbortAndClose(t, c)
		ts.ev.waitFor(t, "idle", func(e Event) bool {
			return e.Kind == EventAborted && e.CallingAE == "IDLE" && errors.Is(e.Err, ErrTimeout)
		})
	})
}

// TestHostilePDU sends malformed PDUs over raw connections: each gets an
// A-ABORT and a close, and the server still answers echoscu afterwards.
func TestHostilePDU(t *testing.T) {
	echoscu := needTool(t, "echoscu")
	ts := startServer(t, Config{MaxPDULength: 16384}, nil)
	good := echoRQ("HOSTILE", "LIGHTBOX").encode()
	cmd := (&command{field: cmdCEchoRQ, messageID: 1, affectedSOPClass: VerificationSOPClass, dataSetType: noDataSet}).encode()
	pdata := func(pcid, mch byte, data []byte) []byte { return appendPData(nil, pcid, mch, data, 0) }
	withLen := func(b []byte, n uint32) []byte {
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint32(b[2:6], n)
		return b
	}
	hugeCmdElem := append([]byte{0, 0, 0x00, 0x01, 0xff, 0xff, 0xff, 0x7f}, 1, 2)
	tests := []struct {
		name      string
		associate bool // send a valid A-ASSOCIATE-RQ first
		send      []byte
		closeOnly bool // a truncated PDU: the server sees EOF
	}{
		{name: "huge associate length", send: withLen(good, 0xFFFFFFF0)},
		{name: "unknown PDU type", send: []byte{0x09, 0, 0, 0, 0, 4, 0, 0, 0, 0}},
		{name: "release before associate", send: encodeSmall(pduReleaseRQ, 0, 0, 0)},
		{name: "associate item overruns", send: withLen(append(good[:74:74], 0x10, 0, 0xff, 0xff), 72)},
		{name: "associate without contexts", send: (&associateRQ{protocolVersion: 1, calledAE: "LIGHTBOX", callingAE: "X", appContext: ApplicationContext}).encode()},
		{name: "truncated associate", send: withLen(good[:40], uint32(len(good)-6)), closeOnly: true},
		{name: "P-DATA over max length", associate: true, send: withLen(pdata(1, 3, cmd), 1<<24)},
		{name: "PDV overruns PDU", associate: true, send: func() []byte {
			b := pdata(1, 3, cmd)
			binary.BigEndian.PutUint32(b[6:10], 1000)
			return b
		}()},
		{name: "reserved control bits", associate: true, send: pdata(1, 0x83, cmd)},
		{name: "unaccepted context", associate: true, send: pdata(7, 3, cmd)},
		{name: "command element overruns", associate: true, send: pdata(1, 3, hugeCmdElem)},
		{name: "data before command", associate: true, send: pdata(1, 2, []byte{1, 2, 3, 4})},
		{name: "second associate", associate: true, send: good},
		{name: "huge command set", associate: true, send: func() []byte {
			var b []byte
			for range 5 {
				b = append(b, pdata(1, 1, make([]byte, 16000))...)
			}
			return b
		}()},
		{name: "truncated P-DATA", associate: true, send: pdata(1, 3, cmd)[:12], closeOnly: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c net.Conn
			if tc.associate {
				c = associateRaw(t, ts.addr, echoRQ("HOSTILE", "LIGHTBOX"))
			} else {
				c = dialRaw(t, ts.addr)
			}
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.closeOnly {
				c.(*net.TCPConn).CloseWrite()
				if _, err := io.Copy(io.Discard, c); err != nil {
					t.Fatalf("not closed: %v", err)
				}
			} else {
				expectAbortAndClose(t, c)
			}
			e := ts.ev.waitFor(t, "abort", func(e Event) bool {
				return e.Kind == EventAborted && e.RemoteAddr.String() == c.LocalAddr().String()
			})
			if !tc.closeOnly && !errors.Is(e.Err, ErrProtocol) {
				t.Errorf("abort reason %v, want ErrProtocol", e.Err)
			}
			if tc.closeOnly && !errors.Is(e.Err, io.ErrUnexpectedEOF) {
				t.Errorf("abort reason %v, want unexpected EOF", e.Err)
			}
		})
	}
	if out, err := run(echoscu, "-aec", "LIGHTBOX", "127.0.0.1", ts.port()); err != nil {
		t.Fatalf("echoscu after hostile PDUs: %v\n%s", err, out)
	}
}

// TestHandlerResults: the handler's status and comment reach storescu; a
// handler that reads part of the data set has the rest drained, so the
// next instance on the same association still works; a panicking handler
// aborts its association only.
func TestHandlerResults(t *testing.T) {
	storescu := needTool(t, "storescu")
	var files []string
	for _, f := range dicomFiles(t) {
		if strings.Contains(f, "suyashkumar") && !strings.HasSuffix(f, "6.dcm") {
			files = append(files, f) // 1-5: PET, MR, CR, Enhanced CT; explicit/implicit
		}
	}
	var mu sync.Mutex
	calls := 0
	handler := func(_ context.Context, req *StoreRequest) (Status, string) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		buf := make([]byte, 10)
		io.ReadFull(req.Data, buf)
		switch n {
		case 1:
			return StatusSuccess, ""
		case 2:
			return StatusCoercionOfDataElements, "coerced"
		default:
			return StatusOutOfResources, "disk full\\really"
		}
	}
	ts := startServer(t, Config{Store: handler}, nil)
	out, _ := run(storescu, append([]string{"-v", "-nh", "-aec", "LIGHTBOX", "127.0.0.1", ts.port()}, files...)...)
	var stores []Event
	for _, e := range ts.ev.list() {
		if e.Kind == EventStore {
			stores = append(stores, e)
		}
	}
	ts.ev.waitFor(t, "release", func(e Event) bool { return e.Kind == EventReleased })
	if len(stores) != len(files) {
		t.Fatalf("%d stores for %d files:\n%s", len(stores), len(files), out)
	}
	for i, e := range stores {
		want := []Status{StatusSuccess, StatusCoercionOfDataElements, StatusOutOfResources}[min(i, 2)]
		if e.Status != want {
			t.Errorf("store %d: status %v, want %v", i, e.Status, want)
		}
		p, _ := readPart10(files[i])
		// storescu drops group lengths, so the count is a little below the
		// file's; far more than the 10 bytes the handler read.
		if lo := int64(len(p.dataset)) * 99 / 100; e.Bytes < lo || e.Bytes > int64(len(p.dataset)) {
			t.Errorf("store %d: %d bytes drained, file data set %d", i, e.Bytes, len(p.dataset))
		}
	}
	for _, s := range []string{"Received Store Response (Success)", "Warning: CoercionOfDataElements", "Refused: OutOfResources"} {
		if !strings.Contains(out, s) {
			t.Errorf("storescu output lacks %q:\n%s", s, out)
		}
	}

	t.Run("panic", func(t *testing.T) {
		ts := startServer(t, Config{Store: func(context.Context, *StoreRequest) (Status, string) { panic("boom") }}, nil)
		if out, err := run(storescu, "-aec", "LIGHTBOX", "127.0.0.1", ts.port(), files[0]); err == nil {
			t.Errorf("storescu succeeded against a panicking handler:\n%s", out)
		}
		ts.ev.waitFor(t, "panic abort", func(e Event) bool { return e.Kind == EventAborted && errors.Is(e.Err, ErrHandlerPanic) })
		if out, err := run("echoscu", "-aec", "LIGHTBOX", "127.0.0.1", ts.port()); err != nil {
			t.Errorf("echoscu after panic: %v\n%s", err, out)
		}
	})
}

// TestShutdown cancels Serve while a C-STORE is in the handler: that
// instance is still answered with the handler's status, Serve returns once
// the association is gone, and the port no longer accepts.
func TestShutdown(t *testing.T) {
	storescu := needTool(t, "storescu")
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	handler := func(_ context.Context, req *StoreRequest) (Status, string) {
		io.Copy(io.Discard, req.Data)
		entered <- struct{}{}
		<-release
		return StatusSuccess, ""
	}
	ts := startServer(t, Config{Store: handler}, nil)
	files := dicomFiles(t)[:3]
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := run(storescu, append([]string{"-v", "-aec", "LIGHTBOX", "127.0.0.1", ts.port()}, files...)...)
		done <- result{out, err}
	}()
	<-entered
	ts.cancel()
	close(release)
	r := <-done
	if !strings.Contains(r.out, "Received Store Response (Success)") {
		t.Errorf("the instance in flight was not answered:\n%s", r.out)
	}
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		ts.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	ts.ev.waitFor(t, "shutdown abort", func(e Event) bool { return e.Kind == EventAborted && errors.Is(e.Err, ErrShutdown) })
	if c, err := net.Dial("tcp", ts.addr.String()); err == nil {
		c.Close()
		t.Error("listener still accepting after shutdown")
	}
}
