package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"lightbox/dicom"
	"lightbox/internal/orthanc"
	"lightbox/storage"
)

// End-to-end tests of the real binary: a PACS (dcmtk's storescu, Orthanc)
// sends over DIMSE; the server is killed with SIGKILL mid-transfer; what it
// acknowledged must survive, and nothing half-written may remain.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// lightboxBin builds the binary once per test run.
func lightboxBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lightbox-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "lightbox")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func needCmd(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (Debian package dcmtk)", name)
		}
		t.Skipf("%s not found", name)
	}
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// backend is a catalog and blob store pair the server runs on.
type backend struct {
	name  string
	flags func(t testing.TB) []string // --db/--blobs; none for the embedded default
}

var backends = []backend{
	{"sqlite+disk", func(testing.TB) []string { return nil }},
	{"postgres+s3", func(t testing.TB) []string {
		pg, s3 := os.Getenv("LIGHTBOX_TEST_POSTGRES"), os.Getenv("LIGHTBOX_TEST_S3")
		if pg == "" || s3 == "" {
			if os.Getenv("CI") != "" {
				t.Fatal("LIGHTBOX_TEST_POSTGRES/LIGHTBOX_TEST_S3 unset under CI: run under scripts/test-services.sh")
			}
			t.Skip("run under scripts/test-services.sh to test PostgreSQL + S3")
		}
		return []string{"--db", freshDatabase(t, pg), "--blobs", withPrefix(s3, "e2e-"+randHex(4))}
	}},
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freshDatabase creates an empty database beside the one url names.
func freshDatabase(t testing.TB, url string) string {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := "e2e_" + randHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	cfg, _ := pgx.ParseConfig(url)
	return strings.Replace(url, "/"+cfg.Database+"?", "/"+name+"?", 1)
}

// withPrefix puts blobs under a prefix of the test bucket.
func withPrefix(s3, prefix string) string {
	u, q, _ := strings.Cut(s3, "?")
	return u + "/" + prefix + "?" + q
}

// server is a running `lightbox serve` process.
type server struct {
	cmd   *exec.Cmd
	url   string // https://localhost:PORT/
	dimse string
	out   *bytes.Buffer
	done  chan struct{}
}

func startServer(t testing.TB, data string, extra []string, dimseAddr string) *server {
	t.Helper()
	args := append([]string{"serve", "--data", data, "--http", "127.0.0.1:0", "--testdata", serveTestData, "--dimse", dimseAddr}, extra...)
	cmd := exec.Command(lightboxBin(t), args...)
	pr, pw := io.Pipe()
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(pw, &out)
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, dimse: dimseAddr, out: &out, done: make(chan struct{})}
	go func() { cmd.Wait(); pw.Close(); close(s.done) }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		ok := false
		for sc.Scan() {
			if i := strings.Index(sc.Text(), "https://"); i >= 0 && !ok {
				ok = true
				s.url = strings.TrimSpace(sc.Text()[i:])
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("server exited: %s", out.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("server not ready within a minute: %s", out.String())
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.done })
	return s
}

func (s *server) stop(t testing.TB) {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not stop on SIGTERM: %s", s.out.String())
	}
}

func admin(t testing.TB, data string, extra []string, args ...string) {
	t.Helper()
	out, err := exec.Command(lightboxBin(t), append(append(args, "--data", data), extra...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("lightbox %v: %v: %s", args, err, out)
	}
}

// copies writes n copies of a real file, each a new instance: its SOP
// Instance UID replaced by another of the same length, so no element
// length changes.
func copies(t testing.TB, src string, n int, dir string) []string {
	t.Helper()
	f, err := dicom.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(src)
	uid := f.Meta.SOPInstanceUID
	var paths []string
	for i := range n {
		suffix := fmt.Sprintf(".%d", 100000+i)
		nu := uid[:len(uid)-len(suffix)] + suffix
		p := filepath.Join(dir, fmt.Sprintf("ct%04d.dcm", i))
		if err := os.WriteFile(p, bytes.ReplaceAll(raw, []byte(uid), []byte(nu)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// TestKill9LosesNothingAcknowledged sends instances with storescu, kills
// the server with SIGKILL once some are acknowledged, restarts it, and
// checks every acknowledged instance is there with its bytes, and no blob
// is left without its catalog row.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	needCmd(t, "storescu")
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			extra := b.flags(t)
			data := t.TempDir()
			admin(t, data, extra, "pacs", "add", "--ae", "STORESCU", "--host", "127.0.0.1")
			files := copies(t, "../../testdata/ct-signed-implicit-512.dcm", 60, t.TempDir())
			srv := startServer(t, data, extra, freeAddr(t))
			host, port, _ := net.SplitHostPort(srv.dimse)
			cmd := exec.Command("storescu", append([]string{"-v", "-aet", "STORESCU", "-aec", "LIGHTBOX", host, port}, files...)...)
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = cmd.Stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := map[string]bool{}
			var sending string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				if i := strings.Index(line, "Sending file: "); i >= 0 {
					sending = strings.TrimSpace(line[i+len("Sending file: "):])
				}
				if strings.Contains(line, "Received Store Response (Success)") {
					acked[sending] = true
					if len(acked) == 20 {
						srv.cmd.Process.Kill() // SIGKILL: no shutdown, no flush
					}
				}
			}
			cmd.Wait()
			<-srv.done
			if len(acked) < 20 || len(acked) == len(files) {
				t.Fatalf("%d of %d acknowledged: the kill did not land mid-transfer", len(acked), len(files))
			}
			srv = startServer(t, data, extra, freeAddr(t))
			srv.stop(t)

			store, err := storeFlags{data: data, db: flagVal(extra, "--db"), blobs: flagVal(extra, "--blobs")}.open(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer store.Catalog.Close()
			ctx := context.Background()
			for path := range acked {
				g, _ := dicom.Open(path)
				in, err := store.Catalog.GetInstance(ctx, g.Meta.SOPInstanceUID)
				if err != nil {
					t.Errorf("acknowledged %s lost: %v", filepath.Base(path), err)
					continue
				}
				checkBlob(t, store, in)
			}
			all, err := store.Catalog.Instances(ctx, storage.Query{})
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range all {
				checkBlob(t, store, in)
			}
			blobs := 0
			store.Blobs.List(ctx, "", func(storage.BlobInfo) error { blobs++; return nil })
			if blobs != len(all) {
				t.Errorf("%d blobs for %d catalog rows after restart: orphans left", blobs, len(all))
			}
			t.Logf("%d acknowledged before the kill, %d stored after restart", len(acked), len(all))
		})
	}
}

func flagVal(args []string, name string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			return args[i+1]
		}
	}
	return ""
}

// checkBlob reads an instance's blob and compares it with the catalog.
func checkBlob(t *testing.T, store *storage.Store, in storage.Instance) {
	t.Helper()
	rc, err := store.Blobs.Get(context.Background(), in.BlobKey)
	if err != nil {
		t.Errorf("%s: blob: %v", in.SOPInstanceUID, err)
		return
	}
	defer rc.Close()
	h := sha256.New()
	n, _ := io.Copy(h, rc)
	if n != in.Size || !bytes.Equal(h.Sum(nil), in.SHA256[:]) {
		t.Errorf("%s: blob of %d bytes does not match the catalog (%d bytes)", in.SOPInstanceUID, n, in.Size)
	}
}

// TestOrthancStoresToLightbox has a real PACS (Orthanc) C-STORE a study to
// Lightbox, and checks an AE that is not allow-listed is refused.
func TestOrthancStoresToLightbox(t *testing.T) {
	needCmd(t, "echoscu")
	if _, err := os.Stat(orthanc.Binary); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("Orthanc not installed")
		}
		t.Skip("Orthanc not installed")
	}
	data := t.TempDir()
	admin(t, data, nil, "pacs", "add", "--ae", "ORTHANC", "--host", "127.0.0.1")
	srv := startServer(t, data, nil, freeAddr(t))
	host, port, _ := net.SplitHostPort(srv.dimse)
	var p int
	fmt.Sscan(port, &p)
	o, err := orthanc.Start(t.TempDir(), orthanc.Config{Modalities: map[string][]any{"lightbox": {"LIGHTBOX", host, p}}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Stop()
	var study string
	files := []string{"ct-signed-implicit-512.dcm", "ct-rle.dcm", "cr-chest-monochrome1.dcm", "mr-small-j2k-lossless.dcm"}
	for _, f := range files {
		if study, err = o.Upload(filepath.Join(serveTestData, f)); err != nil {
			t.Fatal(err)
		}
		var job map[string]any
		if err := o.Do("POST", "/modalities/lightbox/store", strings.NewReader(`{"Resources":["`+study+`"],"Synchronous":true}`), &job); err != nil {
			t.Fatalf("Orthanc C-STORE to Lightbox: %v\n%s", err, srv.out.String())
		}
	}
	if out, err := exec.Command("echoscu", "-aet", "STRANGER", "-aec", "LIGHTBOX", host, port).CombinedOutput(); err == nil {
		t.Errorf("an AE title not on the allow-list was accepted: %s", out)
	}
	srv.stop(t)
	store, err := storeFlags{data: data}.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Catalog.Close()
	for _, f := range files {
		g, _ := dicom.Open(filepath.Join(serveTestData, f))
		in, err := store.Catalog.GetInstance(context.Background(), g.Meta.SOPInstanceUID)
		if err != nil {
			t.Errorf("%s not stored: %v", f, err)
			continue
		}
		if !strings.HasPrefix(in.Source, "dimse:ORTHANC@127.0.0.1") || in.TransferSyntaxUID != g.Meta.TransferSyntaxUID {
			t.Errorf("%s: source %q, transfer syntax %s (sent %s)", f, in.Source, in.TransferSyntaxUID, g.Meta.TransferSyntaxUID)
		}
		checkBlob(t, store, in)
	}
}

// TestDICOMwebWithToken stores a study by STOW-RS through the running
// server with a token made by `lightbox token create`, finds it by
// QIDO-RS, and is refused without the token.
func TestDICOMwebWithToken(t *testing.T) {
	data := t.TempDir()
	out, err := exec.Command(lightboxBin(t), "token", "create", "--data", data, "--name", "e2e", "--role", "pacs").CombinedOutput()
	if err != nil {
		t.Fatalf("token create: %v: %s", err, out)
	}
	words := strings.Fields(string(out))
	token := words[len(words)-1]
	srv := startServer(t, data, nil, freeAddr(t))
	client := trustingClient(t, filepath.Join(data, "cert.pem"))

	raw, _ := os.ReadFile(filepath.Join(serveTestData, "ct-rle.dcm"))
	var body bytes.Buffer
	body.WriteString("--XYZ\r\nContent-Type: application/dicom\r\n\r\n")
	body.Write(raw)
	body.WriteString("\r\n--XYZ--\r\n")
	do := func(method, path, tok string, b io.Reader, ctype string) (int, string) {
		req, _ := http.NewRequest(method, srv.url+"dicom-web"+path, b)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Accept", "application/dicom+json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(rb)
	}
	ctype := `multipart/related; type="application/dicom"; boundary=XYZ`
	if code, _ := do("POST", "/studies", "", bytes.NewReader(body.Bytes()), ctype); code != http.StatusUnauthorized {
		t.Errorf("STOW without a token: %d, want 401", code)
	}
	if code, _ := do("POST", "/studies", "lbx_wrong", bytes.NewReader(body.Bytes()), ctype); code != http.StatusUnauthorized {
		t.Errorf("STOW with a wrong token: %d, want 401", code)
	}
	if code, msg := do("POST", "/studies", token, bytes.NewReader(body.Bytes()), ctype); code != http.StatusOK {
		t.Fatalf("STOW: %d %s", code, msg)
	}
	f, _ := dicom.Open(filepath.Join(serveTestData, "ct-rle.dcm"))
	code, msg := do("GET", "/studies?StudyInstanceUID="+f.Meta.Study.InstanceUID, token, nil, "")
	if code != http.StatusOK || !strings.Contains(msg, f.Meta.Study.InstanceUID) {
		t.Errorf("QIDO: %d %s", code, msg)
	}
}
