package dicomweb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"lightbox/internal/chromium"
	"lightbox/internal/npm"
	"lightbox/storage"
)

// The JavaScript DICOMweb client of OHIF and dcmjs, run unmodified in
// headless Chromium as a browser viewer would run it.
const (
	clientPkg       = "dicomweb-client"
	clientVersion   = "0.11.3"
	clientIntegrity = "sha512-7t1Rc/01fyFnKlQeNPW9Pvxvmsx8R/BgB2n7BxTuWirRFwlTC5upEeLeS3vO72P+n6/SQZ3+5ij0bgaWDHQG/A=="
)

// clientRun is what the page reports of one instance.
type clientRun struct {
	Study, Series, SOP string
	MetaSOP            string
	SHA256             string
	Frames             []int
	Rendered           []int
	Thumbnail          []int
	SeriesInstances    int
}

// TestDicomwebClient: dicomweb-client stores three instances by STOW-RS,
// finds them by QIDO-RS at every level, and reads each back by WADO-RS:
// metadata, the instance (byte for byte), its first frame (native samples
// of the right length, decoded from JPEG where it is stored so), a
// rendered JPEG, a thumbnail, and its whole series. It does so from a
// page of the same origin, and from a page of another origin that
// AllowedOrigins names (CORS, as for a viewer on another host); from an
// origin not named, the browser lets no request through and nothing is
// stored.
func TestDicomwebClient(t *testing.T) {
	for _, c := range []struct {
		name  string
		other bool     // DICOMweb on another origin than the page
		allow []string // AllowedOrigins; "PAGE" is the page's origin
	}{
		{"same origin", false, nil},
		{"another origin, allowed", true, []string{"https://viewer.example.org", "PAGE"}},
		{"another origin, not allowed", true, []string{"https://viewer.example.org"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			testDicomwebClient(t, c.other, c.allow)
		})
	}
}

func testDicomwebClient(t *testing.T, other bool, allow []string) {
	bin := chromium.Find(t)
	js := npm.File(t, clientPkg, clientVersion, clientIntegrity, "package/build/dicomweb-client.js")
	names := []string{"mr-small.dcm", "ct-signed-implicit-512.dcm", "xa-jpeg-baseline-96frame.dcm"}
	want := map[string]testFile{}
	for _, f := range testFiles(t) {
		for _, n := range names {
			if filepath.Base(f.path) == n {
				want[f.meta.SOPInstanceUID] = f
			}
		}
	}
	if len(want) != len(names) {
		t.Fatalf("found %d of %v in testdata", len(want), names)
	}

	r := chi.NewRouter()
	r.Get("/client/dicomweb-client.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, js) })
	r.Get("/client/file/{name}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join("../../testdata", filepath.Base(chi.URLParam(r, "name"))))
	})
	r.Get("/client/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>client</title><script src="/client/dicomweb-client.js"></script>`)
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	for i, o := range allow {
		if o == "PAGE" {
			allow[i] = srv.URL
		}
	}
	store := newStore(t)
	root := srv.URL + "/dicom-web"
	dw := New(Config{Store: store, Authenticate: authenticate, AllowedOrigins: allow})
	if other {
		api := chi.NewRouter()
		api.Mount("/dicom-web", dw)
		// 127.0.0.1 and localhost are two origins.
		apiSrv := httptest.NewServer(api)
		t.Cleanup(apiSrv.Close)
		root = strings.Replace(apiSrv.URL, "127.0.0.1", "localhost", 1) + "/dicom-web"
	} else {
		r.Mount("/dicom-web", dw)
	}
	allowed := !other || slices.Contains(allow, srv.URL)

	page := chromium.Start(t, bin, srv.URL+"/client/", 800, 600)
	page.WaitFor("dicomweb-client", `window.DICOMwebClient && DICOMwebClient.api`)
	names2, _ := json.Marshal(names)
	script := strings.NewReplacer("NAMES", string(names2), "TOKEN", token, "ROOT", root).Replace(clientScript)
	out, err := page.TryEval(script)
	if !allowed {
		n, _ := store.Catalog.Instances(context.Background(), storage.Query{})
		if err == nil || len(n) != 0 {
			t.Fatalf("from an origin not allowed: %v, %d instances stored; want the browser to refuse, and none", err, len(n))
		}
		return
	}
	if err != nil {
		t.Fatalf("the client failed: %v", err)
	}
	var runs []clientRun
	if err := json.Unmarshal([]byte(out), &runs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(runs) != len(want) {
		t.Fatalf("QIDO-RS led the client to %d instances, want %d: %s", len(runs), len(want), out)
	}
	for _, run := range runs {
		f, ok := want[run.SOP]
		if !ok {
			t.Errorf("unknown instance %s", run.SOP)
			continue
		}
		name := filepath.Base(f.path)
		im := f.meta.Image
		sum := sha256.Sum256(f.bytes)
		switch {
		case run.Study != f.meta.Study.InstanceUID || run.Series != f.meta.Series.InstanceUID:
			t.Errorf("%s: found under study %s series %s", name, run.Study, run.Series)
		case run.MetaSOP != run.SOP:
			t.Errorf("%s: metadata names %s", name, run.MetaSOP)
		case run.SHA256 != hex.EncodeToString(sum[:]):
			t.Errorf("%s: the retrieved instance differs from the one stored", name)
		case len(run.Frames) != 1 || run.Frames[0] != im.Rows*im.Columns*im.SamplesPerPixel*im.BitsAllocated/8:
			t.Errorf("%s: frame 1 is %v bytes, want %d", name, run.Frames, im.Rows*im.Columns*im.SamplesPerPixel*im.BitsAllocated/8)
		case len(run.Rendered) != 2 || run.Rendered[0] != 0xFF || run.Rendered[1] != 0xD8:
			t.Errorf("%s: rendered starts %v, not a JPEG", name, run.Rendered)
		case len(run.Thumbnail) != 2 || run.Thumbnail[0] != 0xFF || run.Thumbnail[1] != 0xD8:
			t.Errorf("%s: thumbnail starts %v, not a JPEG", name, run.Thumbnail)
		case run.SeriesInstances != 1:
			t.Errorf("%s: its series came back with %d instances", name, run.SeriesInstances)
		}
	}
}

// clientScript is the page's side: every call is the library's own.
const clientScript = `(async () => {
	const c = new DICOMwebClient.api.DICOMwebClient({
		url: "ROOT",
		headers: {Authorization: "Bearer TOKEN"},
	});
	const bufs = await Promise.all(NAMES.map(n => fetch("/client/file/" + n).then(r => r.arrayBuffer())));
	await c.storeInstances({datasets: bufs});
	const sha256 = async b => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", b)))
		.map(x => x.toString(16).padStart(2, "0")).join("");
	const first = x => Array.isArray(x) ? x[0] : x;
	const runs = [];
	for (const st of await c.searchForStudies()) {
		const studyInstanceUID = st["0020000D"].Value[0];
		for (const se of await c.searchForSeries({studyInstanceUID})) {
			const seriesInstanceUID = se["0020000E"].Value[0];
			for (const i of await c.searchForInstances({studyInstanceUID, seriesInstanceUID})) {
				const sopInstanceUID = i["00080018"].Value[0];
				const ids = {studyInstanceUID, seriesInstanceUID, sopInstanceUID};
				const meta = await c.retrieveInstanceMetadata(ids);
				const inst = await c.retrieveInstance(ids);
				const frames = await c.retrieveInstanceFrames({...ids, frameNumbers: [1]});
				const jpeg = first(await c.retrieveInstanceRendered({...ids, mediaTypes: [{mediaType: "image/jpeg"}]}));
				const thumb = first(await c.retrieveInstanceThumbnail({...ids, mediaTypes: [{mediaType: "image/jpeg"}]}));
				const series = await c.retrieveSeries({studyInstanceUID, seriesInstanceUID});
				runs.push({
					Study: studyInstanceUID, Series: seriesInstanceUID, SOP: sopInstanceUID,
					MetaSOP: meta[0]["00080018"].Value[0],
					SHA256: await sha256(inst),
					Frames: frames.map(f => f.byteLength),
					Rendered: Array.from(new Uint8Array(jpeg, 0, 2)),
					Thumbnail: Array.from(new Uint8Array(thumb, 0, 2)),
					SeriesInstances: series.length,
				});
			}
		}
	}
	return JSON.stringify(runs);
})()`
