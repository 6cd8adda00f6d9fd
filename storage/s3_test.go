package storage

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestParseS3URL(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "envAK")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "envSK")
	for _, tc := range []struct {
		in   string
		want S3Config
	}{
		{"s3://AK:SK@127.0.0.1:9000/bucket?secure=false",
			S3Config{Endpoint: "127.0.0.1:9000", Bucket: "bucket", AccessKey: "AK", SecretKey: "SK", Region: "us-east-1"}},
		{"s3://AK:S%2FK%40@s3.example.org/bucket/some/prefix/?region=eu-west-2&create=true",
			S3Config{Endpoint: "s3.example.org", Bucket: "bucket", Prefix: "some/prefix/", AccessKey: "AK", SecretKey: "S/K@",
				Secure: true, Region: "eu-west-2", Create: true}},
		{"s3://minio:9000/b",
			S3Config{Endpoint: "minio:9000", Bucket: "b", AccessKey: "envAK", SecretKey: "envSK", Secure: true, Region: "us-east-1"}},
	} {
		got, err := ParseS3URL(tc.in)
		if err != nil {
			t.Errorf("ParseS3URL(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseS3URL(%q) =\n%+v\nwant\n%+v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{
		"s3://AK:SK@host", "s3://AK:SK@host/", "http://host/b", "s3:///b",
		"s3://h/b?secure=maybe", "s3://h/b?bogus=1", "s3://h/b/../x", "s3://h/b/.tmp-x", "::",
	} {
		if _, err := ParseS3URL(bad); err == nil {
			t.Errorf("ParseS3URL(%q) succeeded", bad)
		} else if strings.Contains(err.Error(), "SK") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

// TestS3Sweep: an abandoned multipart upload (what a crash in the middle
// of a large Put leaves) is aborted by Sweep once old enough.
func TestS3Sweep(t *testing.T) {
	s := openTestS3(t, needEnv(t, "LIGHTBOX_TEST_S3"))
	ctx := context.Background()
	core := minio.Core{Client: s.client}
	id, err := core.NewMultipartUpload(ctx, s.bucket, s.prefix+"ab/cd/big", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uploads := func() int {
		n := 0
		for u := range s.client.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			n++
		}
		return n
	}
	if n := uploads(); n != 1 {
		t.Fatalf("%d incomplete uploads, want 1 (%s)", n, id)
	}
	if err := s.Sweep(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := uploads(); n != 1 {
		t.Errorf("Sweep(1h) aborted a fresh upload")
	}
	if err := s.Sweep(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := uploads(); n != 0 {
		t.Errorf("%d incomplete uploads after Sweep(0)", n)
	}
}

func TestOpenS3MissingBucket(t *testing.T) {
	base := needEnv(t, "LIGHTBOX_TEST_S3")
	u := strings.Replace(strings.Replace(base, "create=true", "create=false", 1), "/lightbox-test", "/no-such-bucket-lb", 1)
	if _, err := OpenS3(context.Background(), u); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("OpenS3 of a missing bucket without create: %v", err)
	}
}
