package dimse

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a CA with a server and a client certificate, the keys and
// certificates also written as PEM for dcmtk.
type testPKI struct {
	pool                        *x509.CertPool
	server                      tls.Certificate
	caPEM, clientKey, clientPEM string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	key := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Lightbox test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, *rsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	srvDER, srvKey := issue(2, "lightbox", x509.ExtKeyUsageServerAuth)
	cliDER, cliKey := issue(3, "TESTPACS", x509.ExtKeyUsageClientAuth)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pk := &testPKI{pool: x509.NewCertPool()}
	pk.pool.AddCert(ca)
	pk.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	pk.caPEM = write("ca.pem", "CERTIFICATE", caDER)
	pk.clientPEM = write("client.pem", "CERTIFICATE", cliDER)
	pk.clientKey = write("client.key", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(cliKey))
	return pk
}

// TestTLS stores over DICOM TLS (PS3.15 B.1) with a verified client
// certificate, and checks that a client without one is refused.
func TestTLS(t *testing.T) {
	storescu := needTool(t, "storescu")
	echoscu := needTool(t, "echoscu")
	pk := newTestPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{pk.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pk.pool,
		MinVersion:   tls.VersionTLS12,
	})
	dir := t.TempDir()
	fs := newFileStore(dir)
	var peerCN string
	store := func(ctx context.Context, req *StoreRequest) (Status, string) {
		if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
			peerCN = req.TLS.PeerCertificates[0].Subject.CommonName
		}
		return fs.store(ctx, req)
	}
	ts := startServer(t, Config{Store: store}, tln)
	file := dicomFiles(t)[0]
	out, err := run(storescu, "+tls", pk.clientKey, pk.clientPEM, "+cf", pk.caPEM, "-aec", "LIGHTBOX",
		"127.0.0.1", ts.port(), file)
	if err != nil {
		t.Fatalf("storescu +tls: %v\n%s", err, out)
	}
	want, _ := readPart10(file)
	got, err := readPart10(filepath.Join(dir, want.sopInstance+".dcm"))
	if err != nil {
		t.Fatalf("nothing stored over TLS: %v", err)
	}
	if len(got.dataset) == 0 {
		t.Error("empty data set over TLS")
	}
	if peerCN != "TESTPACS" {
		t.Errorf("handler saw client certificate %q", peerCN)
	}

	out, err = run(echoscu, "+tla", "+cf", pk.caPEM, "-aec", "LIGHTBOX", "127.0.0.1", ts.port())
	if err == nil {
		t.Fatalf("echoscu without a client certificate succeeded:\n%s", out)
	}
	ts.ev.waitFor(t, "TLS failure", func(e Event) bool {
		return e.Kind == EventAborted && e.Err != nil && !errors.Is(e.Err, ErrProtocol) &&
			strings.Contains(e.Err.Error(), "TLS handshake")
	})
}
