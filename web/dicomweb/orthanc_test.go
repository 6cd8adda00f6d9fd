package dicomweb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// orthancPlugin is where Debian's orthanc-dicomweb installs the plugin.
var orthancPlugins = []string{
	"/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
	"/usr/lib/orthanc/libOrthancDicomWeb.so",
}

// unavailable fails the test under CI and skips it elsewhere.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (install Debian packages orthanc and orthanc-dicomweb)")
	}
	t.Skip(msg)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// orthanc is a running Orthanc with its REST API at url.
type orthanc struct {
	url string
	t   *testing.T
}

func (o *orthanc) call(method, path string, body []byte) []byte {
	o.t.Helper()
	req, err := http.NewRequest(method, o.url+path, bytes.NewReader(body))
	if err != nil {
		o.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatalf("Orthanc %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		o.t.Fatalf("Orthanc %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

func (o *orthanc) json(method, path string, in, out any) {
	o.t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	b := o.call(method, path, body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			o.t.Fatalf("Orthanc %s %s: %v in %s", method, path, err, b)
		}
	}
}

// startOrthanc runs Orthanc with its own storage and free loopback ports,
// its DICOMweb client pointed at lightboxURL with the test token.
func startOrthanc(t *testing.T, lightboxURL string) *orthanc {
	bin, err := exec.LookPath("Orthanc")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/Orthanc"); err2 == nil {
			bin = "/usr/sbin/Orthanc"
		} else {
			unavailable(t, "Orthanc not installed")
		}
	}
	plugin := ""
	for _, p := range orthancPlugins {
		if _, err := os.Stat(p); err == nil {
			plugin = p
			break
		}
	}
	if plugin == "" {
		unavailable(t, "Orthanc's DICOMweb plugin not installed")
	}
	dir := t.TempDir()
	httpPort, dicomPort := freePort(t), freePort(t)
	cfg := map[string]any{
		"Name":                  "LIGHTBOXTEST",
		"StorageDirectory":      filepath.Join(dir, "storage"),
		"IndexDirectory":        filepath.Join(dir, "storage"),
		"HttpPort":              httpPort,
		"DicomPort":             dicomPort,
		"RemoteAccessAllowed":   false,
		"AuthenticationEnabled": false,
		"HttpsVerifyPeers":      false,
		"Plugins":               []string{plugin},
		"DicomWeb": map[string]any{
			"Enable": true,
			"Root":   "/dicom-web/",
			"Servers": map[string]any{
				"lightbox": map[string]any{
					"Url":         lightboxURL + "/dicom-web/",
					"HttpHeaders": map[string]string{"Authorization": "Bearer " + token},
				},
			},
		},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(dir, "orthanc.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "orthanc.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		unavailable(t, "start Orthanc: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	o := &orthanc{url: fmt.Sprintf("http://127.0.0.1:%d", httpPort), t: t}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(o.url + "/system")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return o
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			unavailable(t, "Orthanc exited at start:\n%s", log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			unavailable(t, "Orthanc did not answer within 30 s:\n%s", log)
		}
	}
}

// Orthanc, a real DICOMweb peer: its client sends a study to Lightbox by
// STOW-RS, finds it by QIDO-RS, and reads it back by WADO-RS, byte for
// byte.
func TestOrthancPeer(t *testing.T) {
	store := newStore(t)
	lb := newTestServer(t, store, true)
	o := startOrthanc(t, lb.URL)

	var f testFile
	for _, c := range testFiles(t) {
		if strings.HasSuffix(c.path, "ct-signed-implicit-512.dcm") {
			f = c
		}
	}
	var up struct{ ID, ParentStudy string }
	b := o.call("POST", "/instances", f.bytes)
	if err := json.Unmarshal(b, &up); err != nil || up.ID == "" {
		t.Fatalf("upload to Orthanc: %s %v", b, err)
	}

	// STOW-RS: Orthanc → Lightbox.
	var job map[string]any
	o.json("POST", "/dicom-web/servers/lightbox/stow", map[string]any{"Resources": []string{up.ParentStudy}}, &job)
	ctx := context.Background()
	in, err := store.Catalog.GetInstance(ctx, f.meta.SOPInstanceUID)
	if err != nil {
		t.Fatalf("Lightbox did not store what Orthanc sent: %v (job %v)", err, job)
	}
	if in.Source != "stow:pacs1" {
		t.Errorf("source %q", in.Source)
	}

	// QIDO-RS: Orthanc asks Lightbox.
	// Orthanc's client answers in its own simplified form of each attribute.
	var studies []map[string]struct{ Value any }
	o.json("POST", "/dicom-web/servers/lightbox/qido", map[string]any{
		"Uri": "/studies", "Arguments": map[string]string{"StudyInstanceUID": f.meta.Study.InstanceUID},
	}, &studies)
	if len(studies) != 1 || studies[0]["0020000D"].Value != f.meta.Study.InstanceUID || studies[0]["00100020"].Value != f.meta.Patient.ID {
		t.Fatalf("QIDO through Orthanc: %v", studies)
	}
	var md []map[string]jsonAttr
	o.json("POST", "/dicom-web/servers/lightbox/get", map[string]any{
		"Uri": "/studies/" + f.meta.Study.InstanceUID + "/metadata",
	}, &md)
	if len(md) != 1 || md[0]["00080018"].str(t) != f.meta.SOPInstanceUID {
		t.Fatalf("metadata through Orthanc: %d objects", len(md))
	}

	// WADO-RS: Orthanc forgets the instance, then retrieves it from
	// Lightbox; it must be the file first uploaded, byte for byte.
	o.call("DELETE", "/instances/"+up.ID, nil)
	var ids []string
	o.json("GET", "/instances", nil, &ids)
	if len(ids) != 0 {
		t.Fatalf("Orthanc still holds %v", ids)
	}
	o.json("POST", "/dicom-web/servers/lightbox/retrieve", map[string]any{
		"Resources": []map[string]string{{"Study": f.meta.Study.InstanceUID}},
	}, nil)
	got := o.call("GET", "/instances/"+up.ID+"/file", nil)
	if !bytes.Equal(got, f.bytes) {
		t.Fatalf("Orthanc retrieved %d bytes, not the %d sent", len(got), len(f.bytes))
	}
}
