package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"lightbox/dicom"
	"lightbox/dicom/dimse"
	"lightbox/storage"
)

// storeHandler ingests what a PACS C-STOREs, answering with the PS3.4
// Annex B status that says why when it cannot keep it.
func storeHandler(store *storage.Store, log *slog.Logger) dimse.StoreHandler {
	return func(ctx context.Context, req *dimse.StoreRequest) (dimse.Status, string) {
		host := ""
		if a, ok := req.RemoteAddr.(*net.TCPAddr); ok {
			host = a.IP.String()
		}
		meta := dicom.FileMeta{TransferSyntaxUID: req.TransferSyntax, SOPClassUID: req.SOPClassUID, SOPInstanceUID: req.SOPInstanceUID, SourceAE: req.CallingAE}
		res, err := store.IngestDataset(ctx, meta, req.Data, "dimse:"+req.CallingAE+"@"+host)
		status, comment := dimseStatus(res, err)
		// UIDs only: never patient data in the logs.
		attrs := []any{"calling_ae", req.CallingAE, "remote", host, "sop_instance", req.SOPInstanceUID, "status", status.String()}
		switch {
		case err != nil:
			log.Warn("c-store not kept", append(attrs, "err", err)...)
		case res.Outcome == storage.Conflict:
			log.Warn("c-store not kept", append(attrs, "outcome", res.Outcome.String())...)
		}
		return status, comment
	}
}

// dimseStatus maps an ingest result to a C-STORE status and error comment.
func dimseStatus(res storage.Result, err error) (dimse.Status, string) {
	switch {
	case err == nil && res.Outcome == storage.Conflict:
		return dimse.StatusElementsDiscarded, "another instance with this SOP Instance UID is stored; kept it, discarded this copy"
	case err == nil:
		return dimse.StatusSuccess, ""
	case errors.Is(err, storage.ErrSOPClass):
		return dimse.StatusSOPClassNotSupported, "SOP class not supported"
	case errors.Is(err, storage.ErrMismatch):
		return dimse.StatusDataSetDoesNotMatchSOPClass, "data set does not match the request"
	case errors.Is(err, storage.ErrNotDICOM), errors.Is(err, storage.ErrBadInstance):
		return dimse.StatusCannotUnderstand, "malformed data set"
	default:
		return dimse.StatusOutOfResources, "could not store the instance"
	}
}

// logDIMSE logs association events; stores are logged by the handler.
func logDIMSE(log *slog.Logger) func(dimse.Event) {
	return func(e dimse.Event) {
		attrs := []any{"event", e.Kind.String(), "remote", addrString(e.RemoteAddr), "calling_ae", e.CallingAE}
		switch {
		case e.Kind == dimse.EventStore:
			log.Debug("dimse", append(attrs, "sop_instance", e.SOPInstanceUID, "status", e.Status.String(), "bytes", e.Bytes, "ms", e.Duration.Milliseconds())...)
		case e.Err != nil:
			log.Warn("dimse", append(attrs, "err", e.Err)...)
		default:
			log.Info("dimse", attrs...)
		}
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// startDIMSE starts the DICOM listeners the options ask for, plain and TLS,
// sharing one server (and so one association limit). They stop when ctx
// ends or when the returned func is called; it waits for them to finish.
func startDIMSE(ctx context.Context, o serveOptions, store *storage.Store, cert tls.Certificate, log *slog.Logger) (func(), error) {
	if o.dimse == "" && o.dimseTLS == "" {
		return func() {}, nil
	}
	srv := &dimse.Server{Config: dimse.Config{
		AETitle: o.ae,
		Allow:   allowPACS(store, log),
		Store:   storeHandler(store, log),
		Event:   logDIMSE(log),
	}}
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	if o.dimse != "" {
		ln, err := net.Listen("tcp", o.dimse)
		if err != nil {
			return nil, fmt.Errorf("listen DICOM %s: %w", o.dimse, err)
		}
		lns = append(lns, ln)
		log.Info("DICOM service", "addr", ln.Addr().String(), "ae", o.ae)
	}
	if o.dimseTLS != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if o.clientCA != "" {
			pem, err := os.ReadFile(o.clientCA)
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("DICOM TLS client CAs: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				closeAll()
				return nil, fmt.Errorf("DICOM TLS client CAs: no certificate in %s", o.clientCA)
			}
			cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		ln, err := net.Listen("tcp", o.dimseTLS)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen DICOM TLS %s: %w", o.dimseTLS, err)
		}
		lns = append(lns, tls.NewListener(ln, cfg))
		log.Info("DICOM TLS service", "addr", ln.Addr().String(), "ae", o.ae, "client_certificates", o.clientCA != "")
	}
	// The services stop with ctx, or when serve returns for another reason
	// (the HTTPS server failed): stop cancels them and waits.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, ln); err != nil {
				log.Error("DICOM service stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	return func() { cancel(); wg.Wait() }, nil
}

// allowPACS admits a calling AE only if `lightbox pacs add` listed it with
// the address it calls from. It asks the catalog on every association, so
// an added or removed PACS takes effect at once, even from another process.
func allowPACS(store *storage.Store, log *slog.Logger) func(string, net.Addr) bool {
	return func(ae string, remote net.Addr) bool {
		a, ok := remote.(*net.TCPAddr)
		if !ok {
			return false
		}
		allowed, err := store.Catalog.AllowPACS(context.Background(), ae, a.IP)
		if err != nil {
			log.Error("PACS allow-list", "calling_ae", ae, "err", err)
			return false
		}
		return allowed
	}
}
