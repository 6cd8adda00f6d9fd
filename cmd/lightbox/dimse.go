package main

import (
	"context"
	"errors"
	"log/slog"
	"net"

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
		if err != nil || res.Outcome == storage.Conflict {
			// UIDs only: never patient data in the logs.
			log.Warn("c-store not kept", "calling_ae", req.CallingAE, "remote", host, "sop_instance", req.SOPInstanceUID,
				"status", status.String(), "outcome", res.Outcome.String(), "err", err)
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
