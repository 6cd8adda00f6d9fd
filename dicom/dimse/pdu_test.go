package dimse

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

func TestAssociateRQRoundTrip(t *testing.T) {
	rq := echoRQ("SCU", "LIGHTBOX")
	rq.implVersion = "TEST_1"
	rq.asyncInvoked, rq.asyncPerformed = 0, 1
	rq.roles = []roleSelection{{sopClass: CTImageStorage, scu: true}}
	b := rq.encode()
	typ, n, err := readPDUHeader(bytes.NewReader(b))
	if err != nil || typ != pduAssociateRQ || int(n) != len(b)-6 {
		t.Fatalf("header %#x %d %v", typ, n, err)
	}
	got, err := decodeAssociateRQ(b[6:])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rq) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, rq)
	}
}

// TestDecodeAssociateRQErrors: every malformed request is a protocol error
// with a reason, never a panic.
func TestDecodeAssociateRQErrors(t *testing.T) {
	good := echoRQ("SCU", "LIGHTBOX").encode()[6:]
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := map[string][]byte{
		"short":            good[:67],
		"item overrun":     append(good[:68:68], 0x10, 0, 0, 200, '1'),
		"no app context":   append(good[:68:68], mut(func(b []byte) []byte { return b[68+4+len(ApplicationContext):] })...),
		"even context id":  mut(func(b []byte) []byte { b[68+4+len(ApplicationContext)+4] = 2; return b }),
		"duplicate id":     append(good[:len(good):len(good)], good[68+4+len(ApplicationContext):68+4+len(ApplicationContext)+4+4+4+len(VerificationSOPClass)+4+len(ImplicitVRLittleEndian)]...),
		"bad max length":   append(good[:68:68], 0x10, 0, 0, 1, '1', 0x50, 0, 0, 5, 0x51, 0, 0, 1, 9),
		"no contexts":      append(good[:68:68], 0x10, 0, 0, 1, '1'),
		"truncated header": append(good[:68:68], 0x10, 0),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decodeAssociateRQ(b)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("err = %v, want ErrProtocol", err)
			}
		})
	}
}

// TestUnknownItemsSkipped: PS3.8 9.3.1 says unknown items are ignored.
func TestUnknownItemsSkipped(t *testing.T) {
	b := echoRQ("SCU", "LIGHTBOX").encode()[6:]
	b = append(b, 0x7e, 0, 0, 3, 1, 2, 3)
	if _, err := decodeAssociateRQ(b); err != nil {
		t.Fatal(err)
	}
}

func TestReadBodyLimits(t *testing.T) {
	tests := []struct {
		typ byte
		n   uint32
		ok  bool
	}{
		{pduAssociateRQ, 67, false},
		{pduAssociateRQ, maxAssociatePDULen + 1, false},
		{pduAssociateRQ, 68, true},
		{pduReleaseRQ, 4, true},
		{pduReleaseRQ, 5, false},
		{pduAbort, 0xFFFFFFFF, false},
		{0x08, 4, false},
	}
	for _, tc := range tests {
		// A reader with fewer bytes than claimed: a huge claim must fail on
		// the limit, before any allocation or read.
		_, err := readBody(bytes.NewReader(make([]byte, 100)), tc.typ, tc.n)
		if tc.ok != (err == nil) {
			t.Errorf("type %#x length %d: err = %v", tc.typ, tc.n, err)
		}
	}
}

func TestAssociateACEncode(t *testing.T) {
	ac := &associateAC{calledAE: "LIGHTBOX", callingAE: "SCU", maxLength: 1 << 20, contexts: []contextResult{
		{id: 1, result: pcAccepted, transferSyntax: ExplicitVRLittleEndian},
		{id: 3, result: pcAbstractNotSupported},
	}}
	b := ac.encode()
	if b[0] != pduAssociateAC || int(be32(b[2:6])) != len(b)-6 {
		t.Fatalf("bad header % x", b[:6])
	}
	// The AC has the RQ's layout: reuse the RQ item walker on it.
	var results []byte
	var max uint32
	err := items(b[6+68:], func(typ byte, v []byte) error {
		switch typ {
		case itemPresContextAC:
			results = append(results, v[0], v[2])
		case itemUserInfo:
			return items(v, func(typ byte, v []byte) error {
				if typ == itemMaxLength {
					max = be32(v)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(results, []byte{1, pcAccepted, 3, pcAbstractNotSupported}) || max != 1<<20 {
		t.Errorf("results % x, max %d", results, max)
	}
	if got := trimAE(b[6+4 : 6+20]); got != "LIGHTBOX" {
		t.Errorf("called AE %q", got)
	}
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// TestAppendPDataFragments: a message larger than the peer's maximum PDU
// is split, only the last fragment carries the last bit, and the stream
// reader puts it back together.
func TestAppendPDataFragments(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	for _, max := range []uint32{0, 4096, 7, 10006} {
		b := appendPData(nil, 5, mchLast, data, max)
		s := &pdvStream{r: bytes.NewReader(b), maxPDU: 1 << 20}
		got, err := io.ReadAll(newDataReader(s, 5))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("max %d: %d bytes back, %v", max, len(got), err)
		}
		for off := 0; off < len(b); {
			n := int(be32(b[off+2:]))
			if max != 0 && uint32(n) > max && max >= 7 {
				t.Errorf("max %d: PDU of %d", max, n)
			}
			off += 6 + n
		}
	}
}

// TestCaptureSeeds records what dcmtk sends to our SCP into
// testdata/pdu, the seeds of FuzzPDU. Run with DIMSE_CAPTURE=1 to refresh.
func TestCaptureSeeds(t *testing.T) {
	if os.Getenv("DIMSE_CAPTURE") == "" {
		t.Skip("set DIMSE_CAPTURE=1 to re-capture the fuzz seeds")
	}
	ts := startServer(t, Config{Store: newFileStore(t.TempDir()).store}, nil)
	capture := func(name string, args ...string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var rec bytes.Buffer
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", ts.addr.String())
			if err != nil {
				return
			}
			go io.Copy(c, s)
			io.Copy(io.MultiWriter(s, &rec), c)
			s.(*net.TCPConn).CloseWrite()
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		args = append(args[:1:1], append([]string{"-aec", "LIGHTBOX", "127.0.0.1", itoa(port)}, args[1:]...)...)
		if out, err := run(args[0], args[1:]...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		wg.Wait()
		if err := os.WriteFile(filepath.Join("testdata", "pdu", name), rec.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join("testdata", "pdu"), 0o755)
	capture("echoscu.bin", "echoscu")
	small := dicomFiles(t)[len(dicomFiles(t))-1] // suyashkumar 6.dcm: 4.6 KB, deflated
	for _, f := range dicomFiles(t) {
		if filepath.Base(f) == "3.dcm" {
			small = f
		}
	}
	capture("storescu-mr.bin", "storescu", "-R", small)
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// seedPDUs returns the captured sessions under testdata/pdu.
func seedPDUs(tb testing.TB) [][]byte {
	tb.Helper()
	m, _ := filepath.Glob(filepath.Join("testdata", "pdu", "*.bin"))
	if len(m) == 0 {
		tb.Fatal("no captured PDUs in testdata/pdu (run with DIMSE_CAPTURE=1)")
	}
	var out [][]byte
	for _, p := range m {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestSeedSessions replays the captured dcmtk sessions through the PDU
// readers: every PDU of a real session must parse.
func TestSeedSessions(t *testing.T) {
	for _, b := range seedPDUs(t) {
		n, err := readSession(b)
		if err != nil {
			t.Errorf("real session: %v after %d messages", err, n)
		}
		if n < 2 {
			t.Errorf("only %d messages parsed", n)
		}
	}
}

// readSession parses a client's byte stream as the SCP does: one
// A-ASSOCIATE-RQ, then DIMSE messages until a release or abort. It returns
// the number of PDUs/messages read and the first error (nil at a clean
// release).
func readSession(b []byte) (int, error) {
	r := bytes.NewReader(b)
	typ, n, err := readPDUHeader(r)
	if err != nil {
		return 0, err
	}
	body, err := readBody(r, typ, n)
	if err != nil {
		return 0, err
	}
	if typ != pduAssociateRQ {
		return 0, errors.New("first PDU is not A-ASSOCIATE-RQ")
	}
	if _, err := decodeAssociateRQ(body); err != nil {
		return 0, err
	}
	s := &pdvStream{r: r, maxPDU: 1 << 20}
	count := 1
	for {
		raw, pcid, err := s.readCommand()
		if err != nil {
			var ctl *controlPDU
			if errors.As(err, &ctl) && ctl.typ == pduReleaseRQ {
				return count, nil
			}
			return count, err
		}
		count++
		cmd, err := parseCommand(raw)
		if err != nil {
			return count, err
		}
		if cmd.hasDataSet() {
			if _, err := io.Copy(io.Discard, newDataReader(s, pcid)); err != nil {
				return count, err
			}
		}
	}
}

// FuzzPDU feeds arbitrary client byte streams to the PDU, PDV and command
// readers: they must return errors, never panic or allocate beyond the
// limits.
func FuzzPDU(f *testing.F) {
	for _, b := range seedPDUs(f) {
		f.Add(b)
	}
	f.Add(echoRQ("A", "B").encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		readSession(b)
	})
}
