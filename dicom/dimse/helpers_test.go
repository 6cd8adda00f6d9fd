package dimse

import (
	"bytes"
	"compress/flate"
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

// Shared test helpers: a real server on loopback, a handler that writes
// Part 10 files, a File Meta Information reader, and dcmtk runners.

// needTool returns the path of a dcmtk/gdcm tool; without it the test fails
// under CI and is skipped elsewhere.
func needTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s not found (install dcmtk / libgdcm-tools): %v", name, err)
		}
		tb.Skipf("%s not found (install dcmtk / libgdcm-tools)", name)
	}
	return p
}

// events collects Config.Event reports.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) list() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.all...)
}

// waitFor polls until an event matching fn has been seen; events arrive
// from association goroutines after the peer process may have exited.
func (e *events) waitFor(tb testing.TB, what string, fn func(Event) bool) Event {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range e.list() {
			if fn(ev) {
				return ev
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatalf("no %s event; got %+v", what, e.list())
	return Event{}
}

type testServer struct {
	addr   *net.TCPAddr
	ev     *events
	cancel context.CancelFunc
	done   chan error
}

func (ts *testServer) port() string { return fmt.Sprint(ts.addr.Port) }

// startServer serves cfg on 127.0.0.1:0 (or on ln if given) until the test
// ends.
func startServer(tb testing.TB, cfg Config, ln net.Listener) *testServer {
	tb.Helper()
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
	}
	ev := &events{}
	user := cfg.Event
	cfg.Event = func(e Event) {
		ev.add(e)
		if user != nil {
			user(e)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{addr: ln.Addr().(*net.TCPAddr), ev: ev, cancel: cancel, done: make(chan error, 1)}
	srv := &Server{Config: cfg}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				tb.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			tb.Errorf("Serve did not return after cancel")
		}
	})
	return ts
}

// fileStore is a StoreHandler that writes each instance as a Part 10 file
// named after its SOP Instance UID, the way storage will: stream to a temp
// file, then rename.
type fileStore struct {
	dir string
	mu  sync.Mutex
	got map[string]string // SOP Instance UID -> transfer syntax
}

func newFileStore(dir string) *fileStore {
	return &fileStore{dir: dir, got: map[string]string{}}
}

func (fs *fileStore) store(_ context.Context, req *StoreRequest) (Status, string) {
	f, err := os.CreateTemp(fs.dir, "in-*")
	if err != nil {
		return StatusOutOfResources, err.Error()
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(part10Header(req.SOPClassUID, req.SOPInstanceUID, req.TransferSyntax)); err != nil {
		return StatusOutOfResources, err.Error()
	}
	if _, err := io.Copy(f, req.Data); err != nil {
		return StatusProcessingFailure, err.Error()
	}
	if err := f.Close(); err != nil {
		return StatusOutOfResources, err.Error()
	}
	if err := os.Rename(f.Name(), filepath.Join(fs.dir, req.SOPInstanceUID+".dcm")); err != nil {
		return StatusOutOfResources, err.Error()
	}
	fs.mu.Lock()
	fs.got[req.SOPInstanceUID] = req.TransferSyntax
	fs.mu.Unlock()
	return StatusSuccess, ""
}

// part10Header returns preamble, "DICM" and File Meta Information (PS3.10
// 7.1) in Explicit VR Little Endian.
func part10Header(class, inst, ts string) []byte {
	var meta []byte
	el := func(elem uint16, vr string, v []byte) {
		meta = binary.LittleEndian.AppendUint16(meta, 2)
		meta = binary.LittleEndian.AppendUint16(meta, elem)
		meta = append(meta, vr...)
		if vr == "OB" {
			meta = append(meta, 0, 0)
			meta = binary.LittleEndian.AppendUint32(meta, uint32(len(v)))
		} else {
			meta = binary.LittleEndian.AppendUint16(meta, uint16(len(v)))
		}
		meta = append(meta, v...)
	}
	uid := func(s string) []byte {
		b := []byte(s)
		if len(b)%2 == 1 {
			b = append(b, 0)
		}
		return b
	}
	el(0x0001, "OB", []byte{0, 1})
	el(0x0002, "UI", uid(class))
	el(0x0003, "UI", uid(inst))
	el(0x0010, "UI", uid(ts))
	el(0x0012, "UI", uid(ImplementationClassUID))
	out := make([]byte, 128, 128+4+12+len(meta))
	out = append(out, "DICM"...)
	out = append(out, 2, 0, 0, 0, 'U', 'L', 4, 0)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(meta)))
	return append(out, meta...)
}

// part10 holds what the tests need of a Part 10 file.
type part10 struct {
	path           string
	transferSyntax string
	sopClass       string
	sopInstance    string
	dataset        []byte
}

// readPart10 splits a Part 10 file into its meta information and data set.
func readPart10(path string) (*part10, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 132 || string(b[128:132]) != "DICM" {
		return nil, errors.New("no DICM prefix")
	}
	p := &part10{}
	off := 132
	for off+8 <= len(b) && binary.LittleEndian.Uint16(b[off:]) == 2 {
		elem := binary.LittleEndian.Uint16(b[off+2:])
		vr := string(b[off+4 : off+6])
		var n, hdr int
		switch vr {
		case "OB", "OW", "OF", "SQ", "UT", "UN", "UC", "UR", "OD", "OL", "OV", "SV", "UV":
			if off+12 > len(b) {
				return nil, errors.New("meta truncated")
			}
			n, hdr = int(binary.LittleEndian.Uint32(b[off+8:])), 12
		default:
			n, hdr = int(binary.LittleEndian.Uint16(b[off+6:])), 8
		}
		if off+hdr+n > len(b) {
			return nil, errors.New("meta element overruns file")
		}
		v := strings.TrimRight(string(b[off+hdr:off+hdr+n]), "\x00 ")
		switch elem {
		case 0x0002:
			p.sopClass = v
		case 0x0003:
			p.sopInstance = v
		case 0x0010:
			p.transferSyntax = v
		}
		off += hdr + n
	}
	p.dataset = b[off:]
	return p, nil
}

// plainDataset returns the data set bytes, inflated for the deflated
// transfer syntax (whose compressed bytes depend on the encoder's settings).
func (p *part10) plainDataset() ([]byte, error) {
	if p.transferSyntax != DeflatedExplicitVRLE {
		return p.dataset, nil
	}
	return io.ReadAll(flate.NewReader(bytes.NewReader(p.dataset)))
}

// dicomFiles lists the real DICOM files the tests send: the
// suyashkumar/dicom test files and every Part 10 file under testdata/.
func dicomFiles(tb testing.TB) []string {
	tb.Helper()
	var files []string
	gomod := os.Getenv("GOMODCACHE")
	if gomod == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gomod = filepath.Join(home, "go", "pkg", "mod")
		}
	}
	m, _ := filepath.Glob(filepath.Join(gomod, "github.com", "suyashkumar", "dicom@v1.1.0", "testdata", "*.dcm"))
	files = append(files, m...)
	filepath.WalkDir("../../testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if p, err := readPart10(path); err == nil && p.sopInstance != "" {
			files = append(files, path)
		}
		return nil
	})
	sort.Strings(files)
	if len(files) == 0 {
		tb.Fatal("no DICOM test files found")
	}
	return files
}

// run runs a command with a timeout and returns its combined output.
func run(name string, args ...string) (string, error) {
	return runEnv(nil, name, args...)
}

func runEnv(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// echoRQ is an A-ASSOCIATE-RQ proposing Verification and CT storage, as a
// raw test client sends it.
func echoRQ(calling, called string) *associateRQ {
	return &associateRQ{
		protocolVersion: 1,
		calledAE:        called,
		callingAE:       calling,
		appContext:      ApplicationContext,
		contexts: []proposedContext{
			{id: 1, abstractSyntax: VerificationSOPClass, transferSyntaxes: []string{ImplicitVRLittleEndian}},
			{id: 3, abstractSyntax: CTImageStorage, transferSyntaxes: []string{ImplicitVRLittleEndian, ExplicitVRLittleEndian}},
		},
		maxLength:    16384,
		implClassUID: "1.2.3.4",
	}
}

// dialRaw connects a raw TCP client with a deadline on everything, so a
// test that waits for the server can only fail, never hang.
func dialRaw(tb testing.TB, addr net.Addr) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		tb.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	tb.Cleanup(func() { c.Close() })
	return c
}

// readRawPDU reads one PDU (type and body) as a client would.
func readRawPDU(c net.Conn) (byte, []byte, error) {
	typ, n, err := readPDUHeader(c)
	if err != nil {
		return 0, nil, err
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("PDU length %d", n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(c, b)
	return typ, b, err
}

// associateRaw opens an association with a raw client and returns the
// connection once A-ASSOCIATE-AC has arrived.
func associateRaw(tb testing.TB, addr net.Addr, rq *associateRQ) net.Conn {
	tb.Helper()
	c := dialRaw(tb, addr)
	if _, err := c.Write(rq.encode()); err != nil {
		tb.Fatal(err)
	}
	typ, body, err := readRawPDU(c)
	if err != nil || typ != pduAssociateAC {
		tb.Fatalf("want A-ASSOCIATE-AC, got type %#x %x: %v", typ, body, err)
	}
	return c
}

// expectAbortAndClose reads until the server closes the connection and
// reports whether an A-ABORT came first.
func expectAbortAndClose(tb testing.TB, c net.Conn) {
	tb.Helper()
	typ, body, err := readRawPDU(c)
	if err != nil {
		tb.Fatalf("want A-ABORT, got error %v", err)
	}
	if typ != pduAbort {
		tb.Fatalf("want A-ABORT, got PDU type %#x %x", typ, body)
	}
	c.(*net.TCPConn).CloseWrite()
	if _, err := io.Copy(io.Discard, c); err != nil {
		tb.Fatalf("connection not closed after A-ABORT: %v", err)
	}
}

// TestMain removes the shared variants directory after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if variantsDir != "" {
		os.RemoveAll(variantsDir)
	}
	os.Exit(code)
}
