package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
			// A power failure may also take the last catalog rows (SQLite
			// commits an instance's row without an fsync): take one, and
			// the restart must put it back from its blob.
			var lost string
			for path := range acked {
				g, _ := dicom.Open(path)
				lost = g.Meta.SOPInstanceUID
				break
			}
			dropRow(t, data, extra, lost)
			srv = startServer(t, data, extra, freeAddr(t))
			srv.stop(t)

			store := openStore(t, data, extra)
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
			if in, err := store.Catalog.GetInstance(ctx, lost); err != nil || in.Source != "recovered" {
				t.Errorf("the instance whose row was taken: %+v, %v; want it re-indexed", in, err)
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
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, _ := io.Copy(h, rc)
	if n != in.Size || in.CRC32C == nil || h.Sum32() != *in.CRC32C {
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
	_, stored := storedFrom(t, data, "ORTHANC", files)
	for f, s := range stored {
		if s.in.TransferSyntaxUID != s.sent.Meta.TransferSyntaxUID {
			t.Errorf("%s: transfer syntax %s, sent %s", f, s.in.TransferSyntaxUID, s.sent.Meta.TransferSyntaxUID)
		}
	}
}

// stored is one test file sent to Lightbox and the catalog row it got.
type stored struct {
	sent *dicom.File
	in   storage.Instance
}

// storedFrom opens the stopped server's store and finds each test file's
// instance in it: stored, sent by ae from 127.0.0.1, its blob matching the
// row. A file that is missing fails the test and is left out.
func storedFrom(t *testing.T, data, ae string, files []string) (*storage.Store, map[string]stored) {
	t.Helper()
	store, err := storeFlags{data: data}.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Catalog.Close() })
	out := map[string]stored{}
	for _, f := range files {
		sent, err := dicom.Open(filepath.Join(serveTestData, f))
		if err != nil {
			t.Fatal(err)
		}
		in, err := store.Catalog.GetInstance(context.Background(), sent.Meta.SOPInstanceUID)
		if err != nil {
			t.Errorf("%s not stored: %v", f, err)
			continue
		}
		if !strings.HasPrefix(in.Source, "dimse:"+ae+"@127.0.0.1") {
			t.Errorf("%s: source %q", f, in.Source)
		}
		checkBlob(t, store, in)
		out[f] = stored{sent, in}
	}
	return store, out
}

// TestPeersStoreToLightbox has two more DICOM implementations C-STORE test
// files to Lightbox: the Central Test Node's send_image (Debian ctn), which
// re-encodes in Explicit VR Little Endian and writes Pixel Padding Value
// with the VR two spaces (which Lightbox once refused), and PixelMed's
// StorageSOPClassSCU (Debian libpixelmed-java, by the DICOM standard's
// editor), which sends each file as it is. Every pixel must arrive.
func TestPeersStoreToLightbox(t *testing.T) {
	files := []string{"ct-signed-implicit-512.dcm", "mr-small.dcm", "cr-chest-monochrome1.dcm", "ct-rle.dcm", "us-palette-rle-10frame.dcm"}
	for _, p := range []struct {
		name, ae, need string
		send           func(host, port, file string) *exec.Cmd
	}{
		{"ctn", "CTNSCU", "send_image", func(host, port, file string) *exec.Cmd {
			return exec.Command("send_image", "-a", "CTNSCU", "-c", "LIGHTBOX", "-q", "-r", "-X", "1.2.840.10008.1.2.1", host, port, file)
		}},
		{"pixelmed", "PIXELMED", "/usr/share/java/pixelmed.jar", func(host, port, file string) *exec.Cmd {
			return exec.Command("java", "-cp", "/usr/share/java/pixelmed.jar", "com.pixelmed.network.StorageSOPClassSCU", host, port, "LIGHTBOX", "PIXELMED", file, "0")
		}},
	} {
		t.Run(p.name, func(t *testing.T) {
			if _, err := exec.LookPath(p.need); err != nil {
				if _, err := os.Stat(p.need); err != nil {
					if os.Getenv("CI") != "" {
						t.Fatalf("%s not found (Debian packages ctn, libpixelmed-java)", p.need)
					}
					t.Skipf("%s not found", p.need)
				}
			}
			data := t.TempDir()
			admin(t, data, nil, "pacs", "add", "--ae", p.ae, "--host", "127.0.0.1")
			srv := startServer(t, data, nil, freeAddr(t))
			host, port, _ := net.SplitHostPort(srv.dimse)
			for _, f := range files {
				if out, err := p.send(host, port, filepath.Join(serveTestData, f)).CombinedOutput(); err != nil {
					t.Fatalf("%s %s: %v\n%s\n%s", p.name, f, err, out, srv.out.String())
				}
			}
			srv.stop(t)
			store, got := storedFrom(t, data, p.ae, files)
			if len(got) != len(files) {
				t.Logf("server log:\n%s", srv.out.String())
			}
			for f, s := range got {
				g, done, err := store.Open(context.Background(), s.in)
				if err != nil {
					t.Errorf("%s: %v", f, err)
					continue
				}
				a, errA := g.Frame(0)
				b, errB := s.sent.Frame(0)
				done()
				if errA != nil || errB != nil || !slices.Equal(a.Pix, b.Pix) {
					t.Errorf("%s: frame 1 differs from the file sent (%v, %v)", f, errA, errB)
				}
			}
		})
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

// datasetOf returns the data set of a Part 10 file: what follows the file
// meta group, whose length (0002,0000) is at offset 140.
func datasetOf(t testing.TB, b []byte) []byte {
	t.Helper()
	if len(b) < 144 || string(b[128:132]) != "DICM" || string(b[132:136]) != "\x02\x00\x00\x00" {
		t.Fatalf("not a Part 10 file with a meta group length")
	}
	n := int(b[140]) | int(b[141])<<8 | int(b[142])<<16 | int(b[143])<<24
	return b[144+n:]
}

// TestStorescuThenDICOMweb is the whole way of a study on each back-end:
// storescu sends every test file Lightbox accepts (and compressed
// variants made by dcmtk) over DIMSE; QIDO-RS finds each instance; WADO-RS
// returns it in the transfer syntax it arrived in, with the data set
// storescu sent byte for byte — the reference is what dcmtk's storescp
// received in bit-preserving mode (+B) from the same storescu command.
func TestStorescuThenDICOMweb(t *testing.T) {
	needCmd(t, "storescu")
	needCmd(t, "storescp")
	needCmd(t, "dcmcjpeg")
	// The files to send: one per SOP Instance UID (storescu sends each
	// once per association), of classes the DICOM service accepts.
	dir := t.TempDir()
	var files []string
	seen := map[string]bool{}
	add := func(p string) {
		f, err := dicom.Open(p)
		if err != nil || seen[f.Meta.SOPInstanceUID] {
			return
		}
		store, _ := storeFlags{data: t.TempDir()}.open(context.Background())
		ok := store.SOPClasses[f.Meta.SOPClassUID]
		store.Catalog.Close()
		if ok {
			seen[f.Meta.SOPInstanceUID] = true
			files = append(files, p)
		}
	}
	all, _ := filepath.Glob(filepath.Join(serveTestData, "*.dcm"))
	for _, p := range all {
		add(p)
	}
	// Compressed variants of a CT and an X-ray, each a new instance.
	for i, v := range []struct{ tool, src string }{
		{"dcmcjpeg", "ct-signed-rescale-small.dcm"}, {"dcmcjpls", "ct-signed-rescale-small.dcm"}, {"dcmcrle", "cr-monochrome1-rescale-16x16.dcm"},
	} {
		src := copies(t, filepath.Join(serveTestData, v.src), i+1, t.TempDir())[i]
		out := filepath.Join(dir, fmt.Sprintf("variant%d.dcm", i))
		if msg, err := exec.Command(v.tool, src, out).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", v.tool, err, msg)
		}
		add(out)
	}
	if len(files) < 20 {
		t.Fatalf("only %d files to send", len(files))
	}
	// The reference: what storescp +B receives from the same command.
	// storescu proposes one compressed syntax per run: send each transfer
	// syntax's files with a profile proposing exactly that syntax.
	byTS := map[string][]string{}
	classes := map[string]map[string]bool{}
	for _, p := range files {
		f, _ := dicom.Open(p)
		ts := f.Meta.TransferSyntaxUID
		byTS[ts] = append(byTS[ts], p)
		if classes[ts] == nil {
			classes[ts] = map[string]bool{}
		}
		classes[ts][f.Meta.SOPClassUID] = true
	}
	profiles := t.TempDir()
	send := func(addr string) {
		host, port, _ := net.SplitHostPort(addr)
		for range 50 {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for ts, group := range byTS {
			cfg := storescuProfile(t, profiles, ts, []string{ts}, classes[ts])
			args := append([]string{"-xf", cfg, "P", "-aet", "STORESCU", "-aec", "LIGHTBOX", host, port}, group...)
			if out, err := exec.Command("storescu", args...).CombinedOutput(); err != nil {
				t.Fatalf("storescu %s to %s: %v: %s", ts, addr, err, out)
			}
		}
	}
	refDir := t.TempDir()
	refAddr := freeAddr(t)
	_, refPort, _ := net.SplitHostPort(refAddr)
	// storescp accepts only some syntaxes by default: one profile accepts
	// every syntax sent, for every SOP class.
	var allTS []string
	allClasses := map[string]bool{}
	for ts := range byTS {
		allTS = append(allTS, ts)
		for c := range classes[ts] {
			allClasses[c] = true
		}
	}
	scpCfg := storescuProfile(t, t.TempDir(), "all", allTS, allClasses)
	scp := exec.Command("storescp", "-xf", scpCfg, "P", "+B", "-od", refDir, "-aet", "LIGHTBOX", refPort)
	if err := scp.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { scp.Process.Kill(); scp.Wait() }()
	send(refAddr)
	ref := map[string][]byte{}
	received, _ := os.ReadDir(refDir)
	for _, e := range received {
		b, _ := os.ReadFile(filepath.Join(refDir, e.Name()))
		if f, err := dicom.Parse(bytes.NewReader(b), int64(len(b))); err == nil {
			ref[f.Meta.SOPInstanceUID] = b
		}
	}
	if len(ref) != len(files) {
		t.Fatalf("storescp received %d of %d", len(ref), len(files))
	}
	t.Logf("%d instances in %d transfer syntaxes", len(files), len(byTS))

	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			extra := b.flags(t)
			data := t.TempDir()
			admin(t, data, extra, "pacs", "add", "--ae", "STORESCU", "--host", "127.0.0.1")
			out, err := exec.Command(lightboxBin(t), append([]string{"token", "create", "--data", data, "--name", "e2e", "--role", "pacs"}, extra...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("token create: %v: %s", err, out)
			}
			words := strings.Fields(string(out))
			token := words[len(words)-1]
			srv := startServer(t, data, extra, freeAddr(t))
			send(srv.dimse)
			client := trustingClient(t, filepath.Join(data, "cert.pem"))
			get := func(path, accept string) (*http.Response, []byte) {
				req, _ := http.NewRequest("GET", srv.url+"dicom-web"+path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Accept", accept)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp, body
			}
			for uid, sent := range ref {
				f, _ := dicom.Parse(bytes.NewReader(sent), int64(len(sent)))
				m := f.Meta
				resp, body := get("/instances?SOPInstanceUID="+uid, "application/dicom+json")
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), uid) {
					t.Errorf("QIDO %s: %s %.200s", uid, resp.Status, body)
					continue
				}
				resp, body = get("/studies/"+m.Study.InstanceUID+"/series/"+m.Series.InstanceUID+"/instances/"+uid,
					`multipart/related; type="application/dicom"; transfer-syntax=*`)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("WADO %s: %s %.200s", uid, resp.Status, body)
					continue
				}
				_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
				part, err := multipart.NewReader(bytes.NewReader(body), params["boundary"]).NextPart()
				if err != nil {
					t.Fatalf("WADO %s: %v", uid, err)
				}
				got, _ := io.ReadAll(part)
				g, err := dicom.Parse(bytes.NewReader(got), int64(len(got)))
				if err != nil {
					t.Errorf("WADO %s: %v", uid, err)
					continue
				}
				if g.Meta.TransferSyntaxUID != m.TransferSyntaxUID {
					t.Errorf("%s: retrieved in %s, sent in %s", uid, g.Meta.TransferSyntaxUID, m.TransferSyntaxUID)
				}
				if !bytes.Equal(datasetOf(t, got), datasetOf(t, sent)) {
					t.Errorf("%s: retrieved data set differs from the one sent", uid)
				}
			}
		})
	}
}

// writeClientCA makes a CA and a client certificate it signed, as PEM
// files in dir, for DICOM TLS with client certificates.
func writeClientCA(t testing.TB, dir string) (caFile, keyFile, certFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test hospital CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "STORESCU"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	caFile, keyFile, certFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.key"), filepath.Join(dir, "client.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return caFile, keyFile, certFile
}

// TestDICOMTLS stores over DICOM TLS (PS3.15 B) with storescu: a client
// with a certificate from the configured CA gets in, one without is
// refused, and plain DICOM on the TLS port fails.
func TestDICOMTLS(t *testing.T) {
	needCmd(t, "storescu")
	data := t.TempDir()
	caFile, keyFile, certFile := writeClientCA(t, t.TempDir())
	admin(t, data, nil, "pacs", "add", "--ae", "STORESCU", "--host", "127.0.0.1")
	tlsAddr := freeAddr(t)
	srv := startServer(t, data, []string{"--dimse-tls", tlsAddr, "--dimse-client-ca", caFile}, freeAddr(t))
	host, port, _ := net.SplitHostPort(tlsAddr)
	file := filepath.Join(serveTestData, "ct-signed-implicit-512.dcm")
	serverCert := filepath.Join(data, "cert.pem")
	run := func(args ...string) error {
		out, err := exec.Command("storescu", append(append([]string{"-aet", "STORESCU", "-aec", "LIGHTBOX"}, args...), host, port, file)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := run("+tls", keyFile, certFile, "+cf", serverCert); err != nil {
		t.Fatalf("storescu with a client certificate: %v", err)
	}
	if err := run("+tla", "+cf", serverCert); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	if err := run(); err == nil {
		t.Error("plain DICOM on the TLS port was accepted")
	}
	srv.stop(t)
	store, err := storeFlags{data: data}.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Catalog.Close()
	f, _ := dicom.Open(file)
	if _, err := store.Catalog.GetInstance(context.Background(), f.Meta.SOPInstanceUID); err != nil {
		t.Errorf("not stored over TLS: %v", err)
	}
}

// storescuProfile writes a dcmtk association configuration (for storescu
// and storescp alike) whose profile "P" offers the transfer syntaxes tss
// for each SOP class.
func storescuProfile(t testing.TB, dir, name string, tss []string, classes map[string]bool) string {
	var b strings.Builder
	b.WriteString("[[TransferSyntaxes]]\n[TS]\n")
	for i, ts := range tss {
		fmt.Fprintf(&b, "TransferSyntax%d = %s\n", i+1, ts)
	}
	b.WriteString("\n[[PresentationContexts]]\n[PC]\n")
	i := 0
	for c := range classes {
		i++
		fmt.Fprintf(&b, "PresentationContext%d = %s\\TS\n", i, c)
	}
	b.WriteString("\n[[Profiles]]\n[P]\nPresentationContexts = PC\n")
	path := filepath.Join(dir, name+".cfg")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// openStore opens the store a server ran with (its --data and the
// back-end flags in extra); the caller closes the catalog.
func openStore(t *testing.T, data string, extra []string) *storage.Store {
	t.Helper()
	store, err := storeFlags{data: data, db: flagVal(extra, "--db"), blobs: flagVal(extra, "--blobs")}.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// dropRow deletes an instance's catalog row and leaves its blob, as a
// power failure that took the row's commit would.
func dropRow(t *testing.T, data string, extra []string, sopInstanceUID string) {
	t.Helper()
	store := openStore(t, data, extra)
	defer store.Catalog.Close()
	if _, err := store.Catalog.DeleteInstance(context.Background(), sopInstanceUID); err != nil {
		t.Fatal(err)
	}
}
