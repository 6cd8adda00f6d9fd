package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

// blobMakers open a fresh, empty blob store of each kind.
var blobMakers = []struct {
	name string
	open func(t testing.TB) Blobs
}{
	{"disk", func(t testing.TB) Blobs {
		d, err := OpenDisk(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}},
	{"s3", func(t testing.TB) Blobs { return openTestS3(t, needEnv(t, "LIGHTBOX_TEST_S3")) }},
}

// openTestS3 opens the test server's bucket under a prefix of its own, and
// empties that prefix after the test.
func openTestS3(t testing.TB, base string) *S3 {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	u.Path = strings.TrimSuffix(u.Path, "/") + "/t-" + hex.EncodeToString(b[:])
	s, err := OpenS3(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		if err := s.List(ctx, "", func(bi BlobInfo) error { keys = append(keys, bi.Key); return nil }); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, k := range keys {
			if err := s.Delete(ctx, k); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return s
}

func forEachBlobs(t *testing.T, f func(t *testing.T, b Blobs)) {
	for _, m := range blobMakers {
		t.Run(m.name, func(t *testing.T) { f(t, m.open(t)) })
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// readAll reads what Get or GetRange opened: readAll(t)(b.Get(ctx, k)).
func readAll(t *testing.T) func(io.ReadCloser, error) []byte {
	return func(rc io.ReadCloser, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func listKeys(t *testing.T, b Blobs, prefix string) []string {
	t.Helper()
	var keys []string
	if err := b.List(context.Background(), prefix, func(bi BlobInfo) error {
		keys = append(keys, bi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestBlobsRoundTrip(t *testing.T) {
	forEachBlobs(t, func(t *testing.T, b Blobs) {
		ctx := context.Background()
		for _, n := range []int{0, 1, 4096, 1<<20 + 3} {
			key := fmt.Sprintf("ab/cd/1.2.3.%d-x.dcm", n)
			data := randomBytes(n)
			if err := b.Put(ctx, key, bytes.NewReader(data), int64(n)); err != nil {
				t.Fatalf("put %d bytes: %v", n, err)
			}
			if got := readAll(t)(b.Get(ctx, key)); !bytes.Equal(got, data) {
				t.Errorf("%d bytes: got %d bytes back, different", n, len(got))
			}
			info, err := b.Stat(ctx, key)
			if err != nil || info.Size != int64(n) || info.Key != key || info.ModTime.IsZero() {
				t.Errorf("stat: %+v, %v", info, err)
			}
		}
		// Unknown size.
		data := randomBytes(70000)
		if err := b.Put(ctx, "unknown-size", iotest.OneByteReader(bytes.NewReader(data)), -1); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t)(b.Get(ctx, "unknown-size")); !bytes.Equal(got, data) {
			t.Error("unknown size: different bytes back")
		}
		// Put over an existing key replaces it whole.
		if err := b.Put(ctx, "unknown-size", strings.NewReader("new"), 3); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t)(b.Get(ctx, "unknown-size")); string(got) != "new" {
			t.Errorf("replaced blob reads %d bytes", len(got))
		}
	})
}

func TestBlobsMissing(t *testing.T) {
	forEachBlobs(t, func(t *testing.T, b Blobs) {
		ctx := context.Background()
		if _, err := b.Get(ctx, "no/such"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get: %v", err)
		}
		if _, err := b.GetRange(ctx, "no/such", 0, 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetRange: %v", err)
		}
		if _, err := b.Stat(ctx, "no/such"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat: %v", err)
		}
		if err := b.Delete(ctx, "no/such"); err != nil {
			t.Errorf("Delete of a missing blob: %v", err)
		}
		if err := b.Put(ctx, "k", strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete: %v", err)
		}
		if keys := listKeys(t, b, ""); keys != nil {
			t.Errorf("List after Delete: %v", keys)
		}
	})
}

// TestBlobsFailedPutStoresNothing: a Put that fails — wrong length, a
// reader error, a cancelled context — leaves no blob and nothing listed.
func TestBlobsFailedPutStoresNothing(t *testing.T) {
	forEachBlobs(t, func(t *testing.T, b Blobs) {
		data := randomBytes(10000)
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		for _, tc := range []struct {
			name string
			ctx  context.Context
			r    io.Reader
			size int64
			want error
		}{
			{"short", context.Background(), bytes.NewReader(data[:9999]), 10000, ErrSizeMismatch},
			{"long", context.Background(), bytes.NewReader(data), 9999, ErrSizeMismatch},
			{"reader error", context.Background(), io.MultiReader(bytes.NewReader(data[:5000]), iotest.ErrReader(errors.New("boom"))), 10000, nil},
			{"cancelled", cancelled, bytes.NewReader(data), 10000, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				key := "ab/cd/" + strings.ReplaceAll(tc.name, " ", "-")
				err := b.Put(tc.ctx, key, tc.r, tc.size)
				if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("Put = %v, want an error (%v)", err, tc.want)
				}
				if _, err := b.Stat(context.Background(), key); !errors.Is(err, ErrNotFound) {
					t.Errorf("after a failed Put, Stat = %v", err)
				}
				if keys := listKeys(t, b, ""); keys != nil {
					t.Errorf("after a failed Put, List = %v", keys)
				}
			})
		}
	})
}

func TestBlobsGetRange(t *testing.T) {
	forEachBlobs(t, func(t *testing.T, b Blobs) {
		ctx := context.Background()
		data := randomBytes(1000)
		if err := b.Put(ctx, "r", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ off, n int64 }{{0, 1000}, {0, 1}, {999, 1}, {128, 500}, {1000, 0}, {10, 0}} {
			got := readAll(t)(b.GetRange(ctx, "r", tc.off, tc.n))
			if !bytes.Equal(got, data[tc.off:tc.off+tc.n]) {
				t.Errorf("range %d+%d: %d bytes, wrong", tc.off, tc.n, len(got))
			}
		}
		for _, tc := range []struct{ off, n int64 }{{-1, 1}, {0, 1001}, {1000, 1}, {999, 2}, {0, -1}, {1 << 62, 1 << 62}} {
			if _, err := b.GetRange(ctx, "r", tc.off, tc.n); !errors.Is(err, ErrBadRange) {
				t.Errorf("range %d+%d: %v, want ErrBadRange", tc.off, tc.n, err)
			}
		}
	})
}

func TestBlobsBadKeys(t *testing.T) {
	forEachBlobs(t, func(t *testing.T, b Blobs) {
		ctx := context.Background()
		for _, k := range []string{"", "/abs", "a//b", "a/", "../x", "a/../../x", ".tmp-x", "a/.tmp-x",
			"a/./b", `a\b`, "a b", "a\x00b", "é", strings.Repeat("x", 513)} {
			if err := b.Put(ctx, k, strings.NewReader("x"), 1); !errors.Is(err, ErrBadKey) {
				t.Errorf("Put(%q) = %v", k, err)
			}
			if _, err := b.Get(ctx, k); !errors.Is(err, ErrBadKey) {
				t.Errorf("Get(%q) = %v", k, err)
			}
			if _, err := b.Stat(ctx, k); !errors.Is(err, ErrBadKey) {
				t.Errorf("Stat(%q) = %v", k, err)
			}
			if err := b.Delete(ctx, k); !errors.Is(err, ErrBadKey) {
				t.Errorf("Delete(%q) = %v", k, err)
			}
		}
		if err := b.List(ctx, "../", func(BlobInfo) error { return nil }); !errors.Is(err, ErrBadKey) {
			t.Errorf("List(../) = %v", err)
		}
	})
}

// TestBlobsList: byte order of keys (the order the orphan scan merges the
// catalog's keys in), prefixes that end inside a name or at a "/", and
// stopping early.
func TestBlobsList(t *testing.T) {
	forEachBlobs(t, func(t *testing.T, b Blobs) {
		ctx := context.Background()
		keys := []string{"a/b", "a.b", "a0", "a/c/d", "a/b-1", "B", "ab/cd/1.2.3-x.dcm", "ab/cd/1.2.30-y.dcm", "ab/ce/1"}
		for _, k := range keys {
			if err := b.Put(ctx, k, strings.NewReader(k), int64(len(k))); err != nil {
				t.Fatal(err)
			}
		}
		sorted := append([]string(nil), keys...)
		sort.Strings(sorted)
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", sorted},
			{"a", []string{"a.b", "a/b", "a/b-1", "a/c/d", "a0", "ab/cd/1.2.3-x.dcm", "ab/cd/1.2.30-y.dcm", "ab/ce/1"}},
			{"a/", []string{"a/b", "a/b-1", "a/c/d"}},
			{"a/b", []string{"a/b", "a/b-1"}},
			{"ab/cd/1.2.3-", []string{"ab/cd/1.2.3-x.dcm"}},
			{"ab/cd/1.2.3", []string{"ab/cd/1.2.3-x.dcm", "ab/cd/1.2.30-y.dcm"}},
			{"ab/c", []string{"ab/cd/1.2.3-x.dcm", "ab/cd/1.2.30-y.dcm", "ab/ce/1"}},
			{"zz", nil},
		} {
			if got := listKeys(t, b, tc.prefix); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("List(%q) = %v, want %v", tc.prefix, got, tc.want)
			}
		}
		var sizes []int64
		b.List(ctx, "a/c", func(bi BlobInfo) error { sizes = append(sizes, bi.Size); return nil })
		if !reflect.DeepEqual(sizes, []int64{5}) {
			t.Errorf("List sizes %v", sizes)
		}
		stop := errors.New("stop")
		n := 0
		if err := b.List(ctx, "", func(BlobInfo) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Errorf("stopping: %v after %d", err, n)
		}
	})
}

// TestBlobsConcurrentPuts: Puts into the same new fan-out folders at once
// all succeed.
func TestBlobsConcurrentPuts(t *testing.T) {
	forEachBlobs(t, func(t *testing.T, b Blobs) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := fmt.Sprintf("x1/y2/%d", i)
				errs[i] = b.Put(ctx, k, strings.NewReader(k), int64(len(k)))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("put %d: %v", i, err)
			}
		}
		if got := listKeys(t, b, "x1/"); len(got) != len(errs) {
			t.Errorf("listed %d blobs, want %d", len(got), len(errs))
		}
	})
}

func TestBlobKey(t *testing.T) {
	uid := "1.2.840.113619.2.55.3.604688119.969.1268071029.320"
	k := BlobKey(uid)
	if k != BlobKey(uid) || !strings.HasSuffix(k, "/"+uid) || len(k) != len(uid)+3 || checkKey(k) != nil {
		t.Errorf("BlobKey = %q", k)
	}
	// Fan-out spreads UIDs that differ only at the end.
	dirs := map[string]bool{}
	for i := range 100 {
		dirs[BlobKey(fmt.Sprintf("1.2.3.%d", i))[:2]] = true
	}
	// 100 draws from 256 folders land in ~84 distinct ones.
	if len(dirs) < 70 {
		t.Errorf("100 UIDs went to only %d folders", len(dirs))
	}
	a, b := NewBlobKey(uid), NewBlobKey(uid)
	if a == b || !strings.HasPrefix(a, k+"-") || !strings.HasSuffix(a, ".dcm") || checkKey(a) != nil {
		t.Errorf("NewBlobKey = %q, %q", a, b)
	}
	// Listing BlobKey(uid)+"-" finds the blobs of that UID and no other:
	// UIDs have only digits and dots, so "-" ends the UID.
	if strings.HasPrefix(NewBlobKey(uid+"1"), k+"-") {
		t.Error("a longer UID's key starts with this UID's prefix")
	}
}

func TestOpenBlobs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := OpenBlobs(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := b.(*Disk); !ok || d.root != filepath.Join(dir, BlobsDir) {
		t.Errorf("default blobs: %#v", b)
	}
	for _, u := range []string{"file:" + filepath.Join(dir, "x"), "file://" + filepath.Join(dir, "y"), filepath.Join(dir, "z")} {
		if _, err := OpenBlobs(ctx, u, ""); err != nil {
			t.Errorf("OpenBlobs(%q): %v", u, err)
		}
	}
	for _, u := range []string{"", "gs://bucket", "s3://"} {
		if _, err := OpenBlobs(ctx, u, ""); err == nil {
			t.Errorf("OpenBlobs(%q, \"\") succeeded", u)
		}
	}
}

// BenchmarkBlobsPut: one durable Put of a 512×512×2 CT slice (≈ 0.5 MB),
// each under a new key as the ingest does.
func BenchmarkBlobsPut(b *testing.B) {
	data := randomBytes(512*512*2 + 1500)
	for _, m := range blobMakers {
		b.Run(m.name, func(b *testing.B) {
			s := m.open(b)
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := range b.N {
				if err := s.Put(ctx, NewBlobKey(fmt.Sprintf("1.2.3.%d", i)), bytes.NewReader(data), int64(len(data))); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "blobs/s")
		})
	}
}
