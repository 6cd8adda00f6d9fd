package web

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"lightbox/internal/chromium"
)

// viewerState is what a failed wait in the viewer reports.
const viewerState = `"viewport " + JSON.stringify(document.getElementById("viewport").dataset) + " " + document.querySelector(".message-text").textContent`

// shotDir is where screenshots go: LIGHTBOX_SCREENSHOTS keeps them for a
// person to look at; otherwise they are temporary.
func shotDir(t *testing.T) string {
	if d := os.Getenv("LIGHTBOX_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowserViewer loads the viewer in headless Chromium over TLS at
// desktop and phone sizes: the list shows every file, the image asked for
// (or the first) is rendered losslessly, and the screenshot has a picture
// where the viewport is.
func TestBrowserViewer(t *testing.T) {
	bin := chromium.Find(t)
	srv := newTestServer(t, testDataDir)
	files := listed(t, srv)
	first := ""
	for _, f := range files {
		if f.Error == "" && f.Frames > 0 {
			first = f.ID
			break
		}
	}
	xa := findFile(t, files, "xa-jpeg-baseline-96frame.dcm")
	ct := findFile(t, files, "ct-signed-implicit-512.dcm")
	dir := shotDir(t)
	vp := `document.getElementById("viewport").dataset`
	for _, c := range []struct {
		name, hash string
		want       string // id/frame the viewport must show
		w, h       int
	}{
		{"viewer-desktop", "", first + "/0", 1400, 900},
		{"viewer-multiframe", "#" + xa.ID + "/40", xa.ID + "/39", 1400, 900},
		{"viewer-ct", "#" + ct.ID + "/1", ct.ID + "/0", 1100, 800},
		{"viewer-phone", "", first + "/0", 420, 860},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := chromium.Start(t, bin, srv.URL+"/"+c.hash, c.w, c.h)
			b.Diagnose = viewerState
			b.WaitFor("the image", vp+`.state === "loaded" && `+vp+`.rendered === "`+c.want+`" && `+vp+`.query.includes("format=png")`)
			if n, _ := strconv.Atoi(b.Eval(`document.querySelectorAll("#file-list .file[data-id]").length`)); n != len(files) {
				t.Errorf("page lists %d files, the API %d", n, len(files))
			}
			if got := b.Eval(`document.querySelector(".file.selected").dataset.id`); !strings.HasPrefix(c.want, got+"/") {
				t.Errorf("selected %q in the list, showing %s", got, c.want)
			}
			if n := b.Eval(`document.querySelectorAll("[data-preset]").length`); n != "8" {
				t.Errorf("%s preset buttons, want 8", n)
			}
			var shot struct{ Data []byte }
			b.Call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
			p := filepath.Join(dir, c.name+".png")
			if err := os.WriteFile(p, shot.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(shot.Data))
			if err != nil {
				t.Fatal(err)
			}
			if img.Bounds().Dx() != c.w {
				t.Errorf("screenshot %d wide, want %d", img.Bounds().Dx(), c.w)
			}
			// The viewport sits in the middle of the page at every
			// width: its centre must hold a picture, not a flat fill.
			r := img.Bounds()
			mid := image.Rect(r.Min.X+r.Dx()*2/5, r.Min.Y+r.Dy()*3/10, r.Min.X+r.Dx()*3/5, r.Min.Y+r.Dy()*7/10)
			if sd, levels := spread(img, mid); sd < 8 || levels < 32 {
				t.Errorf("viewport centre looks blank (std dev %.1f, %d grey levels); see %s", sd, levels, p)
			}
			t.Logf("screenshot: %s", p)
		})
	}
}

// spread is the standard deviation and the number of distinct values of
// the luminance in r.
func spread(img image.Image, r image.Rectangle) (float64, int) {
	var sum, sq float64
	n := 0
	seen := map[uint8]bool{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			l := (0.299*float64(cr) + 0.587*float64(cg) + 0.114*float64(cb)) / 257
			sum += l
			sq += l * l
			seen[uint8(l)] = true
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	m := sum / float64(n)
	return math.Sqrt(math.Max(0, sq/float64(n)-m*m)), len(seen)
}

// TestBrowserInteraction drives the viewer as a radiologist would: a
// preset key, a right-drag to window, the wheel and arrow keys to scroll
// frames, and checks each reaches the server as the right render.
func TestBrowserInteraction(t *testing.T) {
	bin := chromium.Find(t)
	srv := newTestServer(t, testDataDir)
	files := listed(t, srv)
	ct := findFile(t, files, "ct-signed-implicit-512.dcm")
	xa := findFile(t, files, "xa-jpeg-baseline-96frame.dcm")
	c := chromium.Start(t, bin, srv.URL+"/#"+ct.ID+"/1", 1400, 900)
	c.Diagnose = viewerState
	vp := `document.getElementById("viewport").dataset`
	c.WaitFor("the CT", vp+`.rendered === "`+ct.ID+`/0" && `+vp+`.state === "loaded"`)

	// Key 4 is the fourth preset, lung.
	c.Key("4", "Digit4", 52)
	c.WaitFor("lung preset", vp+`.query.includes("preset=lung") && `+vp+`.query.includes("format=png")`)
	if got := c.Eval(`document.getElementById("ov-bl").textContent`); !strings.Contains(got, "W 1500  L -600") || !strings.Contains(got, "Lung") {
		t.Errorf("overlay after preset: %q", got)
	}

	// Right-drag 100 px right and 50 down from the lung window: width
	// and level move by width/250 per pixel.
	var box struct{ X, Y float64 }
	if err := json.Unmarshal([]byte(c.Eval(`JSON.stringify((r => ({X: r.left + r.width / 2, Y: r.top + r.height / 2}))(document.getElementById("viewport").getBoundingClientRect()))`)), &box); err != nil {
		t.Fatal(err)
	}
	c.Mouse("mouseMoved", box.X, box.Y, "none", 0)
	c.Mouse("mousePressed", box.X, box.Y, "right", 2)
	for i := 1; i <= 10; i++ {
		c.Mouse("mouseMoved", box.X+float64(10*i), box.Y+float64(5*i), "right", 2)
	}
	c.Mouse("mouseReleased", box.X+100, box.Y+50, "right", 0)
	c.WaitFor("dragged window", vp+`.query.includes("window=-300%2C2100") && `+vp+`.query.includes("format=png")`)
	if wc, ww := c.Eval(`document.getElementById("wc").value`), c.Eval(`document.getElementById("ww").value`); wc != "-300" || ww != "2100" {
		t.Errorf("level/width inputs %s/%s after the drag, want -300/2100", wc, ww)
	}

	// Another file from the list; the wheel and the arrow keys scroll.
	c.Eval(`document.querySelector('.file[data-id="` + xa.ID + `"]').click()`)
	c.WaitFor("the XA", vp+`.rendered === "`+xa.ID+`/0"`)
	for i := 0; i < 3; i++ {
		c.Wheel(box.X, box.Y, 100) // 50 px a frame
	}
	c.WaitFor("wheel to frame 7", vp+`.rendered === "`+xa.ID+`/6" && `+vp+`.query.includes("format=png")`)
	c.Key("ArrowDown", "ArrowDown", 40)
	c.WaitFor("arrow to frame 8", vp+`.rendered === "`+xa.ID+`/7" && `+vp+`.query.includes("format=png")`)
	if got := c.Eval(`document.getElementById("frame-label").textContent`); got != "8 / 96" {
		t.Errorf("frame label %q, want 8 / 96", got)
	}
	if got := c.Eval(`location.hash`); got != "#"+xa.ID+"/8" {
		t.Errorf("location.hash %q", got)
	}
	c.Key("End", "End", 35)
	c.WaitFor("End to the last frame", vp+`.rendered === "`+xa.ID+`/95"`)

	// The page as the user sees it now.
	var shot struct{ Data []byte }
	c.Call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	img, err := png.Decode(bytes.NewReader(shot.Data))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if sd, levels := spread(img, image.Rect(b.Dx()*2/5, b.Dy()*3/10, b.Dx()*3/5, b.Dy()*7/10)); sd < 8 || levels < 32 {
		t.Errorf("viewport looks blank after scrolling (std dev %.1f, %d levels)", sd, levels)
	}
	p := filepath.Join(shotDir(t), "viewer-interaction.png")
	if err := os.WriteFile(p, shot.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}
