// Package orthanc starts a throwaway Orthanc server (Debian's package) on
// free loopback ports, as a real DICOM and DICOMweb peer for tests.
package orthanc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Binary is where Debian installs Orthanc.
const Binary = "/usr/sbin/Orthanc"

// Server is a running Orthanc.
type Server struct {
	URL       string // REST API, http://127.0.0.1:PORT
	DICOMPort int
	AETitle   string
	cmd       *exec.Cmd
	exited    chan struct{}
	log       string
}

// Config is what a test adds to Orthanc's configuration: DICOM modalities
// ("lightbox": ["LIGHTBOX", "127.0.0.1", 11112]), DICOMweb servers, and
// whether to load the DICOMweb plugin.
type Config struct {
	Modalities map[string][]any
	DICOMweb   map[string]any // the "Servers" of the DicomWeb section
	Plugins    bool
}

// Pid is the Orthanc process's ID, for benchmarks that read its CPU time.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Start runs Orthanc in dir until Stop. It fails with a clear error when
// the package is not installed.
func Start(dir string, c Config) (*Server, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("orthanc not installed (Debian packages orthanc, orthanc-dicomweb): %w", err)
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dicomPort, err := freePort()
	if err != nil {
		return nil, err
	}
	if c.Modalities == nil {
		c.Modalities = map[string][]any{}
	}
	if c.DICOMweb == nil {
		c.DICOMweb = map[string]any{}
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), DICOMPort: dicomPort, AETitle: "ORTHANC", log: filepath.Join(dir, "orthanc.log")}
	cfg := map[string]any{
		"Name":                            "lightbox-test",
		"StorageDirectory":                filepath.Join(dir, "storage"),
		"IndexDirectory":                  filepath.Join(dir, "storage"),
		"HttpPort":                        httpPort,
		"DicomPort":                       dicomPort,
		"DicomAet":                        s.AETitle,
		"RemoteAccessAllowed":             false,
		"AuthenticationEnabled":           false,
		"HttpsVerifyPeers":                false,
		"DicomModalities":                 c.Modalities,
		"DicomAlwaysAllowStore":           true,
		"DicomCheckModalityHost":          false,
		"StableAge":                       1,
		"HttpTimeout":                     60,
		"DicomScuTimeout":                 30,
		"SaveJobs":                        false,
		"OverwriteInstances":              false,
		"StorageCompression":              false,
		"LimitFindResults":                0,
		"DicomAssociationCloseDelay":      0,
		"DicomScpTimeout":                 30,
		"ExecuteLuaEnabled":               false,
		"RestApiWriteToFileSystemEnabled": false,
	}
	if c.Plugins {
		cfg["Plugins"] = []string{"/usr/share/orthanc/plugins/libOrthancDicomWeb.so"}
		cfg["DicomWeb"] = map[string]any{"Enable": true, "Root": "/dicom-web/", "Servers": c.DICOMweb}
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	conf := filepath.Join(dir, "orthanc.json")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(Binary, conf)
	// Orthanc's DICOM stack is dcmtk, which sets TCP_NODELAY only when
	// told to: without it every response waits out Nagle + delayed ACK.
	s.cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start orthanc: %w", err)
	}
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	s.exited = exited
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return nil, fmt.Errorf("orthanc exited at start: %s", s.Log())
		default:
		}
		if resp, err := http.Get(s.URL + "/system"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Stop()
	return nil, fmt.Errorf("orthanc did not answer within 30 s: %s", s.Log())
}

// Stop ends Orthanc.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// Log returns the tail of Orthanc's log, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Call sends a REST request and returns the answer's body; a status
// other than 2xx is an error carrying Orthanc's message.
func (s *Server) Call(method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("orthanc %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// Do sends a REST request with body read from r (may be nil) and decodes
// a JSON answer into out (if not nil).
func (s *Server) Do(method, path string, r io.Reader, out any) error {
	var body []byte
	if r != nil {
		var err error
		if body, err = io.ReadAll(r); err != nil {
			return err
		}
	}
	b, err := s.Call(method, path, body)
	if err != nil {
		return err
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Upload stores a DICOM file in Orthanc and returns its study's Orthanc ID.
func (s *Server) Upload(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var r struct{ ParentStudy string }
	if err := s.Do("POST", "/instances", f, &r); err != nil {
		return "", err
	}
	if r.ParentStudy == "" {
		return "", errors.New("orthanc: no study in the upload answer")
	}
	return r.ParentStudy, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
