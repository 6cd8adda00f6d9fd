package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

const serveTestData = "../../testdata"

// waitURL reads the server's start line from r and returns the URL in it.
// The deadline only stops a hung test; nothing is measured.
func waitURL(t *testing.T, r io.Reader, errc <-chan error) string {
	t.Helper()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), "https://"); i >= 0 {
				lines <- sc.Text()[i:]
				break
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case u := <-lines:
		return u
	case err := <-errc:
		t.Fatalf("server ended before printing its URL: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server printed no URL within a minute")
	}
	return ""
}

// startServe runs serve with o until the returned stop is called; stop
// returns serve's result.
func startServe(t *testing.T, o serveOptions) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- serve(ctx, o, pw, slog.New(slog.DiscardHandler))
		pw.Close()
	}()
	u := waitURL(t, pr, errc)
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-errc
	}
	t.Cleanup(func() { _ = stop() })
	return u, stop
}

// trustingClient verifies the server against exactly the certificate in
// certFile, by the name in the URL: a stricter check than skipping
// verification.
func trustingClient(t testing.TB, certFile string) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no certificate", certFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func getPage(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	return string(b)
}

func TestServeSelfSignedCertificate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	o := serveOptions{data: data, addr: "127.0.0.1:0", testdata: serveTestData}
	url, stop := startServe(t, o)
	if !strings.HasPrefix(url, "https://localhost:") {
		t.Errorf("printed URL %q, want https://localhost:PORT/", url)
	}
	certFile, keyFile := filepath.Join(data, "cert.pem"), filepath.Join(data, "key.pem")
	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key.pem mode %v, want 0600", st.Mode().Perm())
	}
	if st, err := os.Stat(data); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data folder: %v %v, want mode 0700", st.Mode().Perm(), err)
	}
	leaf, err := loadCert(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("key is %T, want ECDSA", leaf.PublicKey)
	}
	host, _ := os.Hostname()
	for _, name := range []string{"localhost", host} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not cover %q: %v", name, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(ip); err != nil {
			t.Errorf("certificate does not cover %s: %v", ip, err)
		}
	}
	client := trustingClient(t, certFile)
	if page := getPage(t, client, url); !strings.Contains(page, "Lightbox") {
		t.Errorf("GET / is not the viewer: %.200s", page)
	}
	if list := getPage(t, client, url+"api/files"); !strings.Contains(list, `"files"`) {
		t.Errorf("GET /api/files: %.200s", list)
	}
	// The port also answers on 127.0.0.1 by IP, with the same certificate.
	port := url[strings.LastIndex(url, ":")+1 : len(url)-1]
	getPage(t, client, "https://127.0.0.1:"+port+"/")
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	// A restart keeps the certificate: browsers that accepted it once
	// keep working.
	before, _ := os.ReadFile(certFile)
	keyBefore, _ := os.ReadFile(keyFile)
	url, stop = startServe(t, o)
	after, _ := os.ReadFile(certFile)
	keyAfter, _ := os.ReadFile(keyFile)
	if !bytes.Equal(before, after) || !bytes.Equal(keyBefore, keyAfter) {
		t.Error("restart made a new certificate")
	}
	getPage(t, trustingClient(t, certFile), url)
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestServeOwnCertificate: --cert/--key are served as given and nothing
// is made under --data.
func TestServeOwnCertificate(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "own.crt"), filepath.Join(dir, "own.key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	url, stop := startServe(t, serveOptions{data: data, addr: "127.0.0.1:0", testdata: serveTestData, cert: certFile, key: keyFile})
	getPage(t, trustingClient(t, certFile), url) // verifies against own.crt only
	if _, err := os.Stat(filepath.Join(data, "cert.pem")); !os.IsNotExist(err) {
		t.Errorf("made cert.pem although --cert was given (%v)", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestServeFailsClearly(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		o    serveOptions
		want string
	}{
		{"bad address", serveOptions{data: dir, addr: "127.0.0.1:99999", testdata: serveTestData}, "listen"},
		{"no testdata", serveOptions{data: dir, addr: "127.0.0.1:0", testdata: filepath.Join(dir, "none")}, "testdata"},
		{"missing cert", serveOptions{data: dir, addr: "127.0.0.1:0", testdata: serveTestData, cert: filepath.Join(dir, "x.crt"), key: filepath.Join(dir, "x.key")}, "TLS certificate"},
	}
	for _, c := range cases {
		// With DICOM asked for too: serve must still return its error, and
		// must not have taken associations in the meantime.
		c.o.dimse = freeAddr(t)
		errc := make(chan error, 1)
		go func() { errc <- serve(context.Background(), c.o, io.Discard, slog.New(slog.DiscardHandler)) }()
		var err error
		select {
		case err = <-errc:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: serve still running 30 s after a start-up error", c.name)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one mentioning %q", c.name, err, c.want)
		}
		if conn, err := net.Dial("tcp", c.o.dimse); err == nil {
			conn.Close()
			t.Errorf("%s: the DICOM port is still open", c.name)
		}
	}
}

// TestRunServeSignal: the real command serves with its defaults (no
// testdata folder, wherever it runs) and stops cleanly on SIGTERM.
func TestRunServeSignal(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = pw
	defer func() { os.Stdout = saved }()
	errc := make(chan error, 1)
	go func() {
		errc <- runServe([]string{"--data", t.TempDir(), "--http", "127.0.0.1:0"}) // no --testdata: none is listed
		pw.Close()
	}()
	url := waitURL(t, pr, errc)
	os.Stdout = saved
	res, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// runServe registered for SIGTERM before it printed the URL, so the
	// signal reaches it rather than ending the test binary.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("runServe after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("runServe did not stop on SIGTERM")
	}
}

func TestParseServeFlags(t *testing.T) {
	o, err := parseServeFlags(nil, io.Discard)
	if err != nil || o.data != "./lightbox-data" || o.addr != "127.0.0.1:8443" || o.testdata != "" || o.ae != "LIGHTBOX" || o.dimse != "" {
		t.Errorf("defaults: %+v %v", o, err)
	}
	o, err = parseServeFlags([]string{"--data", "d", "--http", ":1", "--testdata", "t", "--cert", "c", "--key", "k",
		"--db", "postgres://x", "--blobs", "s3://y", "--dimse", ":2", "--dimse-tls", ":3", "--dimse-client-ca", "ca.pem", "--ae", "PACSGW", "--orphan-grace", "1h",
		"--cors-origin", "HTTPS://Viewer.Example.org:443/", "--cors-origin", "http://127.0.0.1:3000"}, io.Discard)
	want := serveOptions{data: "d", addr: ":1", testdata: "t", cert: "c", key: "k", db: "postgres://x", blobs: "s3://y",
		dimse: ":2", dimseTLS: ":3", clientCA: "ca.pem", ae: "PACSGW", orphanGrace: time.Hour,
		corsOrigins: []string{"https://viewer.example.org", "http://127.0.0.1:3000"}}
	if err != nil || !reflect.DeepEqual(o, want) {
		t.Errorf("flags: %+v %v", o, err)
	}
	for _, args := range [][]string{{"--cert", "c"}, {"--key", "k"}, {"extra"}, {"--nope"},
		{"--cors-origin", "*"}, {"--cors-origin", "https://viewer.example.org/ohif"}, {"--cors-origin", "viewer.example.org"}} {
		if _, err := parseServeFlags(args, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestEnsureSelfSigned: a certificate near its end, a damaged pair, or a
// key others can read are each put right at start-up.
func TestEnsureSelfSigned(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	now := time.Now()
	if made, err := ensureSelfSigned(cert, key, now); !made || err != nil {
		t.Fatalf("first: made %v, %v", made, err)
	}
	first, _ := os.ReadFile(cert)
	if made, err := ensureSelfSigned(cert, key, now.Add(24*time.Hour)); made || err != nil {
		t.Errorf("next day: made %v, %v", made, err)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ensureSelfSigned(cert, key, now); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
		t.Errorf("key left at %v", st.Mode().Perm())
	}
	if made, err := ensureSelfSigned(cert, key, now.Add(certLifetime-renewBefore+time.Hour)); !made || err != nil {
		t.Errorf("near expiry: made %v, %v", made, err)
	}
	if again, _ := os.ReadFile(cert); bytes.Equal(first, again) {
		t.Error("renewed certificate is the old one")
	}
	if err := os.WriteFile(key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if made, err := ensureSelfSigned(cert, key, now); !made || err != nil {
		t.Errorf("damaged key: made %v, %v", made, err)
	}
	if _, err := loadCert(cert, key); err != nil {
		t.Errorf("after repair: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestOpenURL(t *testing.T) {
	cases := []struct {
		ip   string
		want string
	}{
		{"127.0.0.1", "https://localhost:8443/"},
		{"::1", "https://localhost:8443/"},
		{"0.0.0.0", "https://localhost:8443/"},
		{"::", "https://localhost:8443/"},
		{"192.168.1.20", "https://192.168.1.20:8443/"},
		{"fd00::5", "https://[fd00::5]:8443/"},
	}
	for _, c := range cases {
		if got := openURL(&net.TCPAddr{IP: net.ParseIP(c.ip), Port: 8443}); got != c.want {
			t.Errorf("openURL(%s) = %s, want %s", c.ip, got, c.want)
		}
	}
}
