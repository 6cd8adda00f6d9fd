package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// Blob store errors callers must tell apart.
var (
	// ErrSizeMismatch means Put read a different number of bytes than it
	// was told; nothing was stored.
	ErrSizeMismatch = errors.New("storage: blob size mismatch")
	// ErrBadKey means a key is not one the blob stores accept.
	ErrBadKey = errors.New("storage: bad blob key")
	// ErrBadRange means a ranged read lies outside the blob.
	ErrBadRange = errors.New("storage: range outside blob")
)

// BlobInfo describes one stored blob.
type BlobInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Blobs stores instance bytes under keys. Both implementations (disk, S3)
// pass the same conformance suite.
type Blobs interface {
	// Put stores exactly size bytes from r under key, atomically: readers
	// see the whole blob or none of it, and once Put returns nil the bytes
	// are durable. size -1 means unknown (no length check). Put replaces
	// a blob already under key; use NewBlobKey so that it never has to.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the blob for reading, or returns ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// GetRange opens length bytes at offset (for a frame of a multi-frame
	// instance); the range must lie within the blob (ErrBadRange).
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat returns the blob's size and time, or ErrNotFound.
	Stat(ctx context.Context, key string) (BlobInfo, error)
	// Delete removes the blob; deleting what is not there is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every blob whose key starts with prefix, in
	// ascending byte order of keys (the order Catalog.ListBlobKeys uses).
	List(ctx context.Context, prefix string, fn func(BlobInfo) error) error
	// Sweep removes what interrupted Puts left behind (temporary files,
	// unfinished multipart uploads) that is older than olderThan. It never
	// touches a complete blob.
	Sweep(ctx context.Context, olderThan time.Duration) error
}

// BlobsDir is the name of the disk blob store inside the data directory.
const BlobsDir = "blobs"

// OpenBlobs opens the blob store named by blobsURL: an s3:// URL (see
// OpenS3) opens a bucket; "file:PATH" or a plain path opens a folder; ""
// opens dataDir/blobs.
func OpenBlobs(ctx context.Context, blobsURL, dataDir string) (Blobs, error) {
	switch {
	case strings.HasPrefix(blobsURL, "s3://"):
		return OpenS3(ctx, blobsURL)
	case blobsURL == "":
		if dataDir == "" {
			return nil, fmt.Errorf("open blobs: neither a blob store URL nor a data directory")
		}
		return OpenDisk(filepath.Join(dataDir, BlobsDir))
	case strings.HasPrefix(blobsURL, "file:"):
		return OpenDisk(strings.TrimPrefix(strings.TrimPrefix(blobsURL, "file:"), "//"))
	case strings.Contains(blobsURL, "://"):
		return nil, fmt.Errorf("open blobs: unknown URL scheme in %q", redactURL(blobsURL))
	default:
		return OpenDisk(blobsURL)
	}
}

// BlobKey is the deterministic part of an instance's blob key: one level
// of 256-way fan-out from a hash of the UID, then the UID:
// "3f/1.2.840.113619.2.55.3.604688119.969.1268071029.320". One level,
// not two: every new folder costs an fsync of its parent on the ingest
// path, and 65,536 folders would keep creating them for the first
// hundred thousand instances; 256 exist after the first thousand, and a
// million instances is ~4,000 files a folder, which ext4 and XFS index.
// Listing BlobKey(uid) finds every blob stored for that UID.
func BlobKey(sopInstanceUID string) string {
	h := sha256.Sum256([]byte(sopInstanceUID))
	return hex.EncodeToString(h[:1]) + "/" + sopInstanceUID
}

// NewBlobKey is the key to store a newly received instance under:
// BlobKey(uid), then "-" and a random suffix, then ".dcm". Every receipt
// gets its own key, so a second copy of an instance — sent again, or with
// different bytes, even at the same moment from another node — can never
// overwrite the stored one before the catalog has decided which copy
// wins. The loser's blob is deleted by the ingest (or, after a crash,
// by the orphan scan).
func NewBlobKey(sopInstanceUID string) string {
	var b [10]byte
	rand.Read(b[:]) // never fails: since Go 1.24 a failure crashes the program
	return BlobKey(sopInstanceUID) + "-" + hex.EncodeToString(b[:]) + ".dcm"
}

// checkKey accepts keys that are safe as relative paths and object names:
// non-empty "/"-separated parts of printable ASCII, none starting with "."
// (so no "..", and no clash with the disk store's temporary files).
func checkKey(key string) error {
	if key == "" || len(key) > 512 {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part[0] == '.' {
			return fmt.Errorf("%w: %q", ErrBadKey, key)
		}
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return fmt.Errorf("%w: %q", ErrBadKey, key)
		}
	}
	return nil
}

// checkPrefix accepts "" and any prefix of a valid key.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkKey(strings.TrimSuffix(prefix, "/"))
}

func checkRange(size, offset, length int64) error {
	if offset < 0 || length < 0 || offset > size || length > size-offset {
		return fmt.Errorf("%w: %d bytes at %d of %d", ErrBadRange, length, offset, size)
	}
	return nil
}
