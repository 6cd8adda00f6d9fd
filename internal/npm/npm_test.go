package npm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarball is a package tarball holding the given files, and its integrity.
func tarball(t *testing.T, files map[string]string) ([]byte, string) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	sum := sha512.Sum512(buf.Bytes())
	return buf.Bytes(), "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

// TestFetch: the file comes out of a tarball that matches its integrity,
// from the registry's URL for the version; a tarball that does not match,
// or lacks the file, is an error and leaves nothing in the cache.
func TestFetch(t *testing.T) {
	tgz, integrity := tarball(t, map[string]string{"package/README.md": "hi", "package/build/lib.js": "var x = 1;"})
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		w.Write(tgz)
	}))
	defer srv.Close()
	Registry = srv.URL
	dir := t.TempDir()

	path := filepath.Join(dir, "lib.js")
	if err := fetch("some-lib", "1.2.3", integrity, "package/build/lib.js", path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "var x = 1;" {
		t.Errorf("fetched %q", b)
	}
	if len(asked) != 1 || asked[0] != "/some-lib/-/some-lib-1.2.3.tgz" {
		t.Errorf("asked for %v", asked)
	}

	_, other := tarball(t, map[string]string{"package/build/lib.js": "evil()"})
	for _, c := range []struct{ name, integrity, file, want string }{
		{"tampered", other, "package/build/lib.js", "the registry published"},
		{"missing file", integrity, "package/build/none.js", "has no package/build/none.js"},
		{"not sha512", "sha1-abc", "package/build/lib.js", "not sha512"},
	} {
		p := filepath.Join(dir, c.name)
		err := fetch("some-lib", "1.2.3", c.integrity, c.file, p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s: left %s", c.name, p)
		}
	}
}
