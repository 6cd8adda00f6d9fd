package dicomweb

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	lbxorthanc "lightbox/internal/orthanc"
)

// orthanc is a running Orthanc (lightbox/internal/orthanc) with helpers
// that fail the test.
type orthanc struct {
	*lbxorthanc.Server
	t *testing.T
}

func (o *orthanc) call(method, path string, body []byte) []byte {
	o.t.Helper()
	b, err := o.Call(method, path, body)
	if err != nil {
		o.t.Fatal(err)
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

// startOrthanc runs Orthanc with its DICOMweb client pointed at
// lightboxURL with the test token. Without Orthanc the test fails under
// CI and is skipped elsewhere.
func startOrthanc(t *testing.T, lightboxURL string) *orthanc {
	s, err := lbxorthanc.Start(t.TempDir(), lbxorthanc.Config{Plugins: true, DICOMweb: map[string]any{
		"lightbox": map[string]any{
			"Url":         lightboxURL + "/dicom-web/",
			"HttpHeaders": map[string]string{"Authorization": "Bearer " + token},
		},
	}})
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (install Debian packages orthanc and orthanc-dicomweb)", err)
		}
		t.Skip(err)
	}
	t.Cleanup(s.Stop)
	return &orthanc{Server: s, t: t}
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
