package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"lightbox/dicom"
)

// Ingest errors: why an instance was refused. Each entrance maps them to
// its own protocol's status (C-STORE status, STOW-RS failure reason).
var (
	// ErrNotDICOM: the bytes are not a DICOM Part 10 file or data set.
	ErrNotDICOM = errors.New("not DICOM")
	// ErrBadInstance: DICOM, but malformed or missing what storage needs
	// (UIDs, a pixel data length that matches the header).
	ErrBadInstance = errors.New("malformed instance")
	// ErrSOPClass: a SOP class Lightbox does not store.
	ErrSOPClass = errors.New("SOP class not supported")
	// ErrMismatch: the data set is not the instance the request named.
	ErrMismatch = errors.New("data set does not match the request")
	// ErrTooLarge: beyond Store.MaxInstance.
	ErrTooLarge = errors.New("instance too large")
)

// Outcome says what Ingest did with an instance it accepted.
type Outcome int

const (
	// Stored: new, now durable and in the catalog.
	Stored Outcome = iota
	// Duplicate: the same bytes were already stored; nothing changed.
	Duplicate
	// Conflict: an instance with this SOP Instance UID but other bytes is
	// stored; it was kept and the new copy discarded. Callers answer with
	// a warning and log it.
	Conflict
)

func (o Outcome) String() string {
	return [...]string{"stored", "duplicate", "conflict"}[o]
}

// Store is where every entrance — DIMSE, STOW-RS, browser upload, `lightbox
// import` — puts what it receives, through Ingest.
type Store struct {
	Catalog Catalog
	Blobs   Blobs
	// TempDir spools incoming instances; put it on the data disk.
	TempDir string
	// SOPClasses, when not nil, lists the SOP classes accepted. Whatever
	// the class, an instance without pixel data is refused: Lightbox
	// stores images to show them.
	SOPClasses map[string]bool
	// MaxInstance bounds one instance's size in bytes (0: 4 GiB).
	MaxInstance int64
}

// Result is what Ingest returns for an accepted instance.
type Result struct {
	Outcome  Outcome
	Instance Instance // the stored record (the first copy, for Conflict)
}

// Expect is what the sender declared of the instance (DIMSE's Affected SOP
// Class and Instance UIDs, the transfer syntax of the presentation
// context); empty fields are not checked.
type Expect struct {
	SOPClassUID       string
	SOPInstanceUID    string
	TransferSyntaxUID string
	// StudyInstanceUID is the study a STOW-RS request names in its URL.
	StudyInstanceUID string
}

// Ingest stores one Part 10 file read from r, from source (e.g.
// "dimse:CT1@10.0.0.5"). The bytes are stored as they came. Success is
// returned only once the bytes are durable and the catalog rows committed;
// on error nothing is stored, and Result.Instance holds the UIDs of the
// header when it could be read, for the sender's failure report.
func (s *Store) Ingest(ctx context.Context, r io.Reader, source string, want Expect) (Result, error) {
	return s.ingest(ctx, nil, r, source, want)
}

// IngestDataset stores a data set without file meta information, as DIMSE
// delivers it: a meta group naming the transfer syntax and UIDs is written
// in front, so that what is stored is a Part 10 file.
func (s *Store) IngestDataset(ctx context.Context, meta dicom.FileMeta, r io.Reader, source string) (Result, error) {
	want := Expect{SOPClassUID: meta.SOPClassUID, SOPInstanceUID: meta.SOPInstanceUID, TransferSyntaxUID: meta.TransferSyntaxUID}
	return s.ingest(ctx, &meta, r, source, want)
}

func (s *Store) ingest(ctx context.Context, meta *dicom.FileMeta, r io.Reader, source string, want Expect) (Result, error) {
	// When the sender named the instance (DIMSE does, before its data),
	// look it up while the data arrives rather than after.
	var early chan lookup
	if want.SOPInstanceUID != "" {
		early = make(chan lookup, 1)
		go func() {
			in, err := s.Catalog.GetInstance(ctx, want.SOPInstanceUID)
			early <- lookup{in, err}
		}()
	}
	_, disk := s.Blobs.(*Disk)
	tmp, size, crc, err := s.spool(meta, r, disk)
	if err != nil {
		return Result{}, err
	}
	blob := s.startPlace(ctx, tmp, size)
	defer func() {
		blob.finish()
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	f, err := dicom.ParseMeta(tmp, size)
	switch {
	case errors.Is(err, dicom.ErrNotDICOM):
		return Result{}, fmt.Errorf("%w: %v", ErrNotDICOM, err)
	case err != nil:
		return Result{}, fmt.Errorf("%w: %v", ErrBadInstance, err)
	}
	if f.Bare() {
		// A bare data set (no preamble, no meta group) is stored as a
		// Part 10 file, with the meta group written in front as for DIMSE.
		blob.finish()
		m := f.Meta
		part10, psize, pcrc, err := s.spool(&dicom.FileMeta{TransferSyntaxUID: m.TransferSyntaxUID, SOPClassUID: m.SOPClassUID, SOPInstanceUID: m.SOPInstanceUID}, io.NewSectionReader(tmp, 0, size), disk)
		if err != nil {
			return Result{}, err
		}
		tmp.Close()
		os.Remove(tmp.Name())
		tmp, size, crc = part10, psize, pcrc
		blob = s.startPlace(ctx, tmp, size)
		if f, err = dicom.ParseMeta(tmp, size); err != nil {
			return Result{}, fmt.Errorf("%w: %v", ErrBadInstance, err)
		}
	}
	in, err := s.record(f, want)
	if err != nil {
		return Result{Instance: in}, err
	}
	in.Size, in.CRC32C, in.Source = size, &crc, source
	var old Instance
	if early != nil {
		// record has checked that the data set is the instance named.
		l := <-early
		old, err = l.in, l.err
	} else {
		old, err = s.Catalog.GetInstance(ctx, in.SOPInstanceUID)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Result{}, fmt.Errorf("ingest %s: %w", in.SOPInstanceUID, err)
	}
	if old.SOPInstanceUID != "" {
		return s.compare(ctx, old, in, tmp, f.DatasetOffset())
	}
	// The rows are written while the blob is put in place, and committed
	// only once it is durable.
	in.BlobKey = NewBlobKey(in.SOPInstanceUID)
	blob.put(in.BlobKey)
	blob.waitWritten()
	stored, err := s.Catalog.PutInstance(ctx, in, blob.wait)
	if err != nil {
		if errors.Is(err, ErrExists) {
			// Another ingest stored it first; ours is an orphan.
			if blob.wait() == nil && stored.BlobKey != in.BlobKey {
				s.Blobs.Delete(context.WithoutCancel(ctx), in.BlobKey)
			}
			return s.compare(ctx, stored, in, tmp, f.DatasetOffset())
		}
		// The row may or may not have been written (a commit can fail
		// after it took effect); the blob stays for the orphan scan,
		// which keeps it if a row names it.
		return Result{}, fmt.Errorf("ingest %s: %w", in.SOPInstanceUID, err)
	}
	return Result{Outcome: Stored, Instance: stored}, nil
}

type lookup struct {
	in  Instance
	err error
}

// compare tells a resend of the stored instance old from another copy
// under its SOP Instance UID. The new copy is in, whose bytes are tmp
// with its data set from dsOff. It is a resend if its bytes are the
// stored ones, or if its data set is: the file meta group says how the
// copy came (Source AE, the writer's implementation), not what it is, so
// the same instance sent again by another AE, or by STOW-RS after DIMSE,
// is a duplicate too. Anything else is a conflict. Sizes and checksums
// only save reading the stored copy when they already differ; a resend
// is always confirmed byte for byte.
func (s *Store) compare(ctx context.Context, old, in Instance, tmp *os.File, dsOff int64) (Result, error) {
	dup, conflict := Result{Outcome: Duplicate, Instance: old}, Result{Outcome: Conflict, Instance: old}
	fail := func(err error) (Result, error) {
		return Result{}, fmt.Errorf("ingest %s: compare with the stored copy: %w", old.SOPInstanceUID, err)
	}
	if old.Size == in.Size && (old.CRC32C == nil || in.CRC32C == nil || *old.CRC32C == *in.CRC32C) {
		same, err := s.sameAsStored(ctx, old.BlobKey, 0, io.NewSectionReader(tmp, 0, in.Size))
		if err != nil {
			return fail(err)
		}
		if same {
			return dup, nil
		}
	}
	dsLen := in.Size - dsOff
	oldOff := old.Size - dsLen // where the stored data set starts, if it is this one
	if old.TransferSyntaxUID != in.TransferSyntaxUID || dsOff < 132 || oldOff < 132 || oldOff > maxMetaGroup {
		return conflict, nil
	}
	same, err := s.sameAsStored(ctx, old.BlobKey, oldOff, io.NewSectionReader(tmp, dsOff, dsLen))
	if err != nil {
		return fail(err)
	}
	if same {
		return dup, nil
	}
	return conflict, nil
}

// maxMetaGroup bounds the file meta group compare reads of a stored copy:
// real ones are a few hundred bytes.
const maxMetaGroup = 64 << 10

// sameAsStored reports whether the blob key holds the bytes r reads after
// a file meta group of skip bytes (none: the whole blob), in one read of
// the blob. A stored copy whose meta group does not end exactly there is
// not the same.
func (s *Store) sameAsStored(ctx context.Context, key string, skip int64, r io.Reader) (bool, error) {
	rc, err := s.Blobs.Get(ctx, key)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if skip > 0 {
		head := make([]byte, skip)
		if _, err := io.ReadFull(rc, head); err != nil {
			return false, err
		}
		if end, err := dicom.MetaGroupEnd(head); err != nil || end != skip {
			return false, nil
		}
	}
	return sameBytes(rc, r)
}

// sameBytes reports whether a and b read the same bytes to their ends.
func sameBytes(a, b io.Reader) (bool, error) {
	ba, bb := copyBufs.Get().(*[]byte), copyBufs.Get().(*[]byte)
	defer copyBufs.Put(ba)
	defer copyBufs.Put(bb)
	for {
		na, errA := io.ReadFull(a, *ba)
		if errA != nil && errA != io.EOF && errA != io.ErrUnexpectedEOF {
			return false, errA
		}
		nb, errB := io.ReadFull(b, (*bb)[:na])
		if errB != nil && errB != io.EOF && errB != io.ErrUnexpectedEOF {
			return false, errB
		}
		if nb != na || !bytes.Equal((*ba)[:na], (*bb)[:nb]) {
			return false, nil
		}
		if errA != nil { // a has ended: so must b
			n, err := io.ReadFull(b, (*bb)[:1])
			if err != nil && err != io.EOF {
				return false, err
			}
			return n == 0, nil
		}
	}
}

// record fills a catalog record from the parsed header and checks it
// against what storage needs and what the sender declared.
func (s *Store) record(f *dicom.File, want Expect) (Instance, error) {
	m := &f.Meta
	in := Instance{
		Patient: Patient{PatientID: m.Patient.ID, PatientName: m.Patient.Name, PatientBirthDate: NormalizeDA(m.Patient.BirthDate), PatientSex: m.Patient.Sex},
		Study: Study{
			StudyInstanceUID: m.Study.InstanceUID, StudyDate: NormalizeDA(m.Study.Date), StudyTime: NormalizeTM(m.Study.Time),
			AccessionNumber: m.Study.AccessionNumber, StudyDescription: m.Study.Description,
			ReferringPhysicianName: m.Study.ReferringPhysian, StudyID: m.Study.ID,
		},
		Series:            Series{SeriesInstanceUID: m.Series.InstanceUID, Modality: m.Series.Modality, SeriesDescription: m.Series.Description},
		SOPClassUID:       m.SOPClassUID,
		SOPInstanceUID:    m.SOPInstanceUID,
		NumberOfFrames:    f.NumFrames(),
		Rows:              m.Image.Rows,
		Columns:           m.Image.Columns,
		TransferSyntaxUID: m.TransferSyntaxUID,
		ReceivedAt:        time.Now().UTC(),
	}
	if m.Series.Number != 0 {
		n := m.Series.Number
		in.SeriesNumber = &n
	}
	if m.Instance.Number != 0 {
		n := m.Instance.Number
		in.InstanceNumber = &n
	}
	switch {
	case m.SOPInstanceUID == "" || m.Study.InstanceUID == "" || m.Series.InstanceUID == "" || m.SOPClassUID == "":
		return in, fmt.Errorf("%w: missing SOP Class, SOP Instance, Study or Series Instance UID", ErrBadInstance)
	case f.NumFrames() == 0:
		// A file cut off at an element boundary before its pixels still
		// reads as a header.
		return in, fmt.Errorf("%w: no pixel data (7FE0,0010): the file is cut short, or holds no image", ErrBadInstance)
	case s.SOPClasses != nil && !s.SOPClasses[m.SOPClassUID]:
		return in, fmt.Errorf("%w: %s", ErrSOPClass, m.SOPClassUID)
	case want.SOPInstanceUID != "" && want.SOPInstanceUID != m.SOPInstanceUID:
		return in, fmt.Errorf("%w: SOP Instance UID %s in the data set, %s in the request", ErrMismatch, m.SOPInstanceUID, want.SOPInstanceUID)
	case want.SOPClassUID != "" && want.SOPClassUID != m.SOPClassUID:
		return in, fmt.Errorf("%w: SOP Class UID %s in the data set, %s in the request", ErrMismatch, m.SOPClassUID, want.SOPClassUID)
	case want.StudyInstanceUID != "" && want.StudyInstanceUID != m.Study.InstanceUID:
		return in, fmt.Errorf("%w: instance of study %s sent to study %s", ErrMismatch, m.Study.InstanceUID, want.StudyInstanceUID)
	}
	return in, nil
}
