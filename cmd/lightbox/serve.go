package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"lightbox/storage"
	"lightbox/web"
	"lightbox/web/dicomweb"
)

// serveOptions are the flags of `lightbox serve`.
type serveOptions struct {
	data     string
	addr     string
	testdata string
	cert     string
	key      string

	db, blobs string // catalog and blob store URLs; empty: SQLite and disk in data

	dimse    string // DICOM listen address; empty: no DIMSE
	dimseTLS string // DICOM TLS (PS3.15 B) listen address; empty: none
	clientCA string // PEM CAs whose client certificates DICOM TLS requires
	ae       string // our AE title
	// orphanGrace spares blobs younger than this in the start-up orphan
	// scan; other nodes sharing the store may be mid-ingest.
	orphanGrace time.Duration
	// corsOrigins may call DICOMweb from their pages (normalized).
	corsOrigins []string
}

func parseServeFlags(args []string, stderr io.Writer) (serveOptions, error) {
	var o serveOptions
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.data, "data", "./lightbox-data", "folder for the server's state: TLS certificate, SQLite catalog, blobs")
	fs.StringVar(&o.db, "db", "", "catalog: postgres://user:pass@host:port/db (default: SQLite in --data)")
	fs.StringVar(&o.blobs, "blobs", "", "blob store: s3://ACCESS:SECRET@host:port/bucket (default: --data/blobs)")
	fs.StringVar(&o.dimse, "dimse", "", "DICOM (C-ECHO, C-STORE) listen address, e.g. 127.0.0.1:11112")
	fs.StringVar(&o.dimseTLS, "dimse-tls", "", "DICOM TLS listen address, e.g. 127.0.0.1:2762 (uses the HTTPS certificate)")
	fs.StringVar(&o.clientCA, "dimse-client-ca", "", "PEM file of CAs: DICOM TLS then requires a client certificate they signed")
	fs.StringVar(&o.ae, "ae", "LIGHTBOX", "the AE title PACS must call")
	fs.DurationVar(&o.orphanGrace, "orphan-grace", 0, "at start, re-index or remove blobs without a catalog row older than this (raise it when several nodes share the store)")
	fs.StringVar(&o.addr, "http", "127.0.0.1:8443", "HTTPS listen address, host:port")
	fs.StringVar(&o.testdata, "testdata", "", "folder of DICOM files the viewer also lists, as make run does with ./testdata (default: none)")
	fs.StringVar(&o.cert, "cert", "", "PEM certificate (chain) to serve instead of the self-signed one; needs --key")
	fs.StringVar(&o.key, "key", "", "PEM private key of --cert")
	fs.Func("cors-origin", "a web origin (https://host[:port]) whose pages may call DICOMweb, e.g. a viewer on another host; repeat for more (default: none)", func(s string) error {
		n, err := dicomweb.NormalizeOrigin(s)
		if err == nil {
			o.corsOrigins = append(o.corsOrigins, n)
		}
		return err
	})
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lightbox serve [flags]\n\nServes the viewer over HTTPS. Without --cert/--key a self-signed\ncertificate is made at first start and kept under --data.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	if (o.cert == "") != (o.key == "") {
		return o, errors.New("serve: --cert and --key go together")
	}
	return o, nil
}

// runServe is `lightbox serve`: it runs until SIGINT or SIGTERM, then
// lets requests in flight finish.
func runServe(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseServeFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	return serve(ctx, o, os.Stdout, log)
}

// serve runs the HTTPS server until ctx ends. The URL to open is printed to
// out once the listener is up, so a script (or test) can wait for it.
func serve(ctx context.Context, o serveOptions, out io.Writer, log *slog.Logger) error {
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	certFile, keyFile := o.cert, o.key
	if certFile == "" {
		certFile, keyFile = filepath.Join(o.data, "cert.pem"), filepath.Join(o.data, "key.pem")
		made, err := ensureSelfSigned(certFile, keyFile, time.Now())
		if err != nil {
			return err
		}
		if made {
			log.Info("made a self-signed TLS certificate", "cert", certFile, "key", keyFile)
		} else {
			log.Info("using the TLS certificate", "cert", certFile)
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}

	store, err := storeFlags{data: o.data, db: o.db, blobs: o.blobs}.open(ctx)
	if err != nil {
		return err
	}
	defer store.Catalog.Close()
	if err := cleanStart(ctx, store, o.orphanGrace, log); err != nil {
		return err
	}
	dw := dicomweb.New(dicomweb.Config{
		Store:          store,
		AllowedOrigins: o.corsOrigins,
		// A token from `lightbox token create`; only its hash is stored.
		Authenticate: func(ctx context.Context, token string) (string, bool) {
			name, _, err := store.Catalog.VerifyToken(ctx, token)
			if err != nil && !errors.Is(err, storage.ErrTokenInvalid) {
				log.Error("token check", "err", err)
			}
			return name, err == nil
		},
		Logger: log,
	})
	h, err := web.New(web.Config{TestData: o.testdata, Logger: log, DICOMweb: dw, Store: store})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: h,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{pair},
		},
		// A slow or stalled client must not hold a connection forever;
		// WriteTimeout leaves room for a large PNG to a slow link.
		ReadHeaderTimeout: 10 * time.Second,
		// Handlers that stream for longer (STOW-RS, WADO-RS) extend their own
		// deadlines with http.ResponseController.
		ReadTimeout:    time.Minute,
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.addr, err)
	}
	// DICOM starts last, once nothing else can fail: a PACS must not have
	// its instances taken by a server that is about to exit.
	stopDIMSE, err := startDIMSE(ctx, o, store, pair, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopDIMSE()
	url := openURL(ln.Addr().(*net.TCPAddr))
	log.Info("serving", "addr", ln.Addr().String(), "url", url, "testdata", o.testdata)
	fmt.Fprintf(out, "Lightbox is running: open %s\n", url)

	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// openURL is the address a user on this machine types: "localhost" for a
// loopback or wildcard listener (it matches the certificate's name), the
// address itself otherwise.
func openURL(a *net.TCPAddr) string {
	host := "localhost"
	if !a.IP.IsLoopback() && !a.IP.IsUnspecified() {
		host = a.IP.String()
	}
	return fmt.Sprintf("https://%s/", net.JoinHostPort(host, fmt.Sprint(a.Port)))
}

// certLifetime is how long a self-signed certificate lasts; it is renewed
// at start-up once less than renewBefore remains.
const (
	certLifetime = 398 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
)

// ensureSelfSigned keeps a usable self-signed certificate at certFile and
// keyFile, making one when either is missing, unreadable or near its end.
// It reports whether it made a new one.
func ensureSelfSigned(certFile, keyFile string, now time.Time) (bool, error) {
	if c, err := loadCert(certFile, keyFile); err == nil && now.Add(renewBefore).Before(c.NotAfter) && now.After(c.NotBefore) {
		// A key that became readable by others (a copy, a restore) is
		// closed again rather than served as it is.
		if st, err := os.Stat(keyFile); err == nil && st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(keyFile, 0o600); err != nil {
				return false, fmt.Errorf("TLS key %s is readable by others: %w", keyFile, err)
			}
		}
		return false, nil
	}
	certPEM, keyPEM, err := selfSigned(now)
	if err != nil {
		return false, err
	}
	// Key first, written whole under a temporary name: a crash leaves
	// either the old pair or a complete new key, never a torn file.
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return false, fmt.Errorf("write TLS key: %w", err)
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return false, fmt.Errorf("write TLS certificate: %w", err)
	}
	return true, nil
}

// loadCert parses the pair and returns its leaf certificate.
func loadCert(certFile, keyFile string) (*x509.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(pair.Certificate[0])
}

// selfSigned makes an ECDSA P-256 certificate for this machine's names.
func selfSigned(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("serial: %w", err)
	}
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Lightbox (self-signed)", Organization: []string{"Lightbox"}},
		NotBefore:             now.Add(-time.Hour), // tolerate a clock a little behind
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// writeFileAtomic writes data to a temporary file with mode perm, syncs
// it and renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
