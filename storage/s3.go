package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is the blob store in an S3-compatible bucket (AWS S3, MinIO,
// SeaweedFS, Ceph RGW, versitygw): one object per blob at prefix+key.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string // "" or ends in "/"
}

// S3Config is what an s3:// URL says.
type S3Config struct {
	Endpoint  string // host:port
	Bucket    string
	Prefix    string // object name prefix, "" or ending in "/"
	AccessKey string
	SecretKey string
	Secure    bool // https
	Region    string
	Create    bool // create the bucket if it is missing
}

// ParseS3URL reads
//
//	s3://ACCESS:SECRET@HOST[:PORT]/BUCKET[/PREFIX]?secure=false&region=R&create=true
//
// The access and secret keys are URL-escaped; when absent, the environment
// variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are used. secure
// (https) defaults to true, region to us-east-1, create to false.
func ParseS3URL(raw string) (S3Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return S3Config{}, fmt.Errorf("s3 URL: %w", err)
	}
	if u.Scheme != "s3" || u.Host == "" {
		return S3Config{}, fmt.Errorf("s3 URL %s: want s3://ACCESS:SECRET@HOST:PORT/BUCKET", u.Redacted())
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if bucket == "" {
		return S3Config{}, fmt.Errorf("s3 URL %s: no bucket", u.Redacted())
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		if err := checkKey(prefix); err != nil {
			return S3Config{}, fmt.Errorf("s3 URL %s: prefix: %w", u.Redacted(), err)
		}
		prefix += "/"
	}
	c := S3Config{Endpoint: u.Host, Bucket: bucket, Prefix: prefix, Secure: true, Region: "us-east-1"}
	if u.User != nil {
		c.AccessKey = u.User.Username()
		c.SecretKey, _ = u.User.Password()
	} else {
		c.AccessKey = os.Getenv("AWS_ACCESS_KEY_ID")
		c.SecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	q := u.Query()
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "secure", "create":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return S3Config{}, fmt.Errorf("s3 URL %s: %s=%q is not true or false", u.Redacted(), k, v)
			}
			if k == "secure" {
				c.Secure = b
			} else {
				c.Create = b
			}
		case "region":
			c.Region = v
		default:
			return S3Config{}, fmt.Errorf("s3 URL %s: unknown parameter %q", u.Redacted(), k)
		}
	}
	return c, nil
}

// OpenS3 connects to the bucket an s3:// URL names (see ParseS3URL) and
// checks that it exists, creating it if the URL says create=true.
func OpenS3(ctx context.Context, rawURL string) (*S3, error) {
	c, err := ParseS3URL(rawURL)
	if err != nil {
		return nil, err
	}
	client, err := minio.New(c.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure: c.Secure,
		Region: c.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("open s3 %s: %w", redactURL(rawURL), err)
	}
	ok, err := client.BucketExists(ctx, c.Bucket)
	if err != nil {
		return nil, fmt.Errorf("open s3 %s: %w", redactURL(rawURL), err)
	}
	if !ok {
		if !c.Create {
			return nil, fmt.Errorf("open s3 %s: bucket %q does not exist", redactURL(rawURL), c.Bucket)
		}
		err := client.MakeBucket(ctx, c.Bucket, minio.MakeBucketOptions{Region: c.Region})
		if err != nil && !isS3Code(err, "BucketAlreadyOwnedByYou") {
			return nil, fmt.Errorf("open s3 %s: create bucket: %w", redactURL(rawURL), err)
		}
	}
	return &S3{client: client, bucket: c.Bucket, prefix: c.Prefix}, nil
}

func isS3Code(err error, codes ...string) bool {
	code := minio.ToErrorResponse(err).Code
	for _, c := range codes {
		if code == c {
			return true
		}
	}
	return false
}

func (s *S3) notFound(key string, err error) error {
	if isS3Code(err, "NoSuchKey", "NotFound") {
		return fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	return fmt.Errorf("blob %s: %w", key, err)
}

// countingReader counts what PutObject read and remembers how the input
// ended, so that a failed Put can say whether the length was wrong.
type countingReader struct {
	r   io.Reader
	n   int64
	eof bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// Put stores the blob with one PutObject: S3 makes an object visible only
// when it is complete (a large one goes up as a multipart upload, visible
// only when completed), and acknowledges only once it is stored.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	cr := &countingReader{r: r}
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, cr, size,
		minio.PutObjectOptions{ContentType: "application/dicom"})
	if err != nil {
		if size >= 0 && (cr.eof && cr.n < size || cr.n > size) {
			return fmt.Errorf("put %s: %w: read %d bytes, want %d (%w)", key, ErrSizeMismatch, cr.n, size, err)
		}
		return fmt.Errorf("put %s: %w", key, err)
	}
	if size >= 0 {
		// PutObject reads exactly size bytes; a longer input is as wrong
		// as a shorter one. The object is not in the catalog yet, so
		// removing it again is safe.
		var one [1]byte
		if n, _ := io.ReadFull(r, one[:]); n > 0 {
			return errors.Join(fmt.Errorf("put %s: %w: more than %d bytes", key, ErrSizeMismatch, size),
				s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, s.prefix+key, minio.RemoveObjectOptions{}))
		}
	}
	return nil
}

// Get opens the object. The first request is made here, so a missing
// object is reported now rather than at the first Read.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.notFound(key, err)
	}
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, s.notFound(key, err)
	}
	return obj, nil
}

// GetRange opens length bytes at offset with a ranged GET.
func (s *S3) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if err := checkRange(info.Size, offset, length); err != nil {
		return nil, fmt.Errorf("blob %s: %w", key, err)
	}
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(offset, offset+length-1); err != nil {
		return nil, fmt.Errorf("blob %s: %w", key, err)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, opts)
	if err != nil {
		return nil, s.notFound(key, err)
	}
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, s.notFound(key, err)
	}
	// Never hand out more than asked for, whatever the server sends.
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(obj, length), obj}, nil
}

// Stat returns the object's size and time.
func (s *S3) Stat(ctx context.Context, key string) (BlobInfo, error) {
	if err := checkKey(key); err != nil {
		return BlobInfo{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return BlobInfo{}, s.notFound(key, err)
	}
	return BlobInfo{Key: key, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// Delete removes the object.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil && !isS3Code(err, "NoSuchKey", "NotFound") {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// List lists the objects under prefix; S3 lists in byte order of keys.
func (s *S3) List(ctx context.Context, prefix string, fn func(BlobInfo) error) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if fn gives up early
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{
		Prefix: s.prefix + prefix, Recursive: true,
	}) {
		if oi.Err != nil {
			return fmt.Errorf("list blobs %q: %w", prefix, oi.Err)
		}
		key := strings.TrimPrefix(oi.Key, s.prefix)
		if checkKey(key) != nil {
			continue // not ours: something else writes to this bucket
		}
		if err := fn(BlobInfo{Key: key, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Sweep aborts multipart uploads under the prefix that were started more
// than olderThan ago and never completed; their parts cost storage but are
// never visible as objects.
func (s *S3) Sweep(ctx context.Context, olderThan time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cutoff := time.Now().Add(-olderThan)
	var stale []string
	for u := range s.client.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
		if u.Err != nil {
			return fmt.Errorf("sweep blobs: %w", u.Err)
		}
		if olderThan <= 0 || u.Initiated.Before(cutoff) {
			stale = append(stale, u.Key)
		}
	}
	for _, k := range stale {
		if err := s.client.RemoveIncompleteUpload(ctx, s.bucket, k); err != nil {
			return fmt.Errorf("sweep blobs: abort upload of %s: %w", k, err)
		}
	}
	return nil
}
