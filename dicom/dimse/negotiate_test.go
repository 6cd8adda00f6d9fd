package dimse

import (
	"context"
	"errors"
	"net"
	"testing"
)

func TestChooseTransferSyntax(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		proposed []string
		want     string
	}{
		{[]string{ImplicitVRLittleEndian}, ImplicitVRLittleEndian},
		{[]string{ImplicitVRLittleEndian, ExplicitVRLittleEndian}, ExplicitVRLittleEndian},
		{[]string{JPEGLSLossless, ExplicitVRLittleEndian}, JPEGLSLossless},
		{[]string{"1.2.840.10008.1.2.4.100", ExplicitVRBigEndian}, ExplicitVRBigEndian},
		{[]string{"1.2.840.10008.1.2.4.100"}, ""},
		{[]string{ImplicitVRLittleEndian, "1.2.840.10008.1.2.4.100"}, ImplicitVRLittleEndian},
	}
	for _, tc := range tests {
		if got := cfg.chooseTransferSyntax(tc.proposed); got != tc.want {
			t.Errorf("%v: chose %q, want %q", tc.proposed, got, tc.want)
		}
	}
}

func TestNegotiate(t *testing.T) {
	remote := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 104}
	store := func(context.Context, *StoreRequest) (Status, string) { return StatusSuccess, "" }
	allow := func(ae string, addr net.Addr) bool {
		return ae == "PACS" && addr.(*net.TCPAddr).IP.Equal(net.IPv4(10, 0, 0, 1))
	}
	rq := func(mod func(*associateRQ)) *associateRQ {
		r := echoRQ("PACS", "LIGHTBOX")
		r.contexts = append(r.contexts,
			proposedContext{id: 5, abstractSyntax: "1.2.840.10008.5.1.4.1.2.2.1", transferSyntaxes: []string{ImplicitVRLittleEndian}},
			proposedContext{id: 7, abstractSyntax: MRImageStorage, transferSyntaxes: []string{"1.2.840.10008.1.2.4.100"}})
		if mod != nil {
			mod(r)
		}
		return r
	}
	tests := []struct {
		name    string
		cfg     Config
		rq      *associateRQ
		wantErr error
		results []byte // per proposed context
	}{
		{"storage", Config{Store: store, Allow: allow}, rq(nil), nil,
			[]byte{pcAccepted, pcAccepted, pcAbstractNotSupported, pcTransferNotSupported}},
		{"echo only", Config{Allow: allow}, rq(nil), nil,
			[]byte{pcAccepted, pcAbstractNotSupported, pcAbstractNotSupported, pcAbstractNotSupported}},
		{"called AE", Config{AETitle: "OTHER"}, rq(nil), ErrCalledAENotRecognized, nil},
		{"calling AE", Config{Allow: allow}, rq(func(r *associateRQ) { r.callingAE = "EVIL" }), ErrCallingAENotRecognized, nil},
		{"app context", Config{}, rq(func(r *associateRQ) { r.appContext = "1.2.3" }), ErrApplicationContext, nil},
		{"protocol version", Config{}, rq(func(r *associateRQ) { r.protocolVersion = 2 }), ErrProtocolVersion, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.cfg.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			ac, accepted, rj := cfg.negotiate(tc.rq, remote)
			if tc.wantErr != nil {
				if rj == nil || !errors.Is(rj.err, tc.wantErr) {
					t.Fatalf("rejection %+v, want %v", rj, tc.wantErr)
				}
				return
			}
			if rj != nil {
				t.Fatalf("rejected: %v", rj.err)
			}
			var got []byte
			for _, r := range ac.contexts {
				got = append(got, r.result)
			}
			if string(got) != string(tc.results) {
				t.Errorf("results %v, want %v", got, tc.results)
			}
			if len(accepted) != countAccepted(tc.results) {
				t.Errorf("%d contexts kept", len(accepted))
			}
			if ac.maxLength != DefaultMaxPDULength {
				t.Errorf("advertised %d", ac.maxLength)
			}
		})
	}
}

func countAccepted(r []byte) int {
	n := 0
	for _, v := range r {
		if v == pcAccepted {
			n++
		}
	}
	return n
}

func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{AETitle: "WAY_TOO_LONG_AE_TITLE"},
		{AETitle: " LEADING"},
		{AETitle: "BACK\\SLASH"},
		{MaxPDULength: 100},
		{TransferSyntaxes: []string{"1.2.x"}},
		{SOPClasses: []string{""}},
	}
	for _, c := range bad {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c, err := Config{}.withDefaults()
	if err != nil || c.AETitle != "LIGHTBOX" || c.MaxAssociations != 32 {
		t.Errorf("defaults %+v %v", c, err)
	}
}
