// Package npm fetches one file of a package from the npm registry for the
// tests that run a real JavaScript client in the browser. The tarball is
// checked against the integrity the registry published for that version,
// and the file is kept in the user's cache, so the registry is asked once
// per machine.
package npm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Registry is where tarballs come from.
var Registry = "https://registry.npmjs.org"

// File returns the path of name (e.g. "package/build/x.js") inside
// pkg@version, whose tarball must match integrity ("sha512-…"). Outside CI
// a registry that cannot be reached skips the test; in CI it fails it.
func File(t testing.TB, pkg, version, integrity, name string) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "lightbox", "npm", pkg+"@"+version)
	path := filepath.Join(dir, filepath.FromSlash(name))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := fetch(pkg, version, integrity, name, path); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("npm %s@%s: %v", pkg, version, err)
		}
		t.Fatalf("npm %s@%s: %v", pkg, version, err)
	}
	return path
}

func fetch(pkg, version, integrity, name, path string) error {
	want, ok := strings.CutPrefix(integrity, "sha512-")
	if !ok {
		return fmt.Errorf("integrity %q is not sha512", integrity)
	}
	url := fmt.Sprintf("%s/%s/-/%s-%s.tgz", Registry, pkg, pkg[strings.LastIndex(pkg, "/")+1:], version)
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	tgz, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	sum := sha512.Sum512(tgz)
	if got := base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("%s: sha512 %s, the registry published %s", url, got, want)
	}
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s has no %s", url, name)
		}
		if err != nil {
			return err
		}
		if h.Name != name {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(path), ".fetch-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if _, err := io.Copy(tmp, tr); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), path)
	}
}
