package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// chromium finds a headless-capable Chromium. In CI a missing browser is
// installed with apt-get, and a browser that still cannot be found fails
// the test; elsewhere the test is skipped.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "" {
		t.Skip("chromium not found (apt-get install -y -qq chromium)")
	}
	if os.Geteuid() == 0 {
		out, err := exec.Command("apt-get", "install", "-y", "-qq", "chromium").CombinedOutput()
		if p, lerr := exec.LookPath("chromium"); lerr == nil {
			return p
		}
		t.Fatalf("chromium not found and apt-get install failed: %v\n%s", err, out)
	}
	t.Fatal("chromium not found: install the Debian package chromium")
	return ""
}

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
	bin := chromium(t)
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
			b := startCDP(t, bin, srv.URL+"/"+c.hash, c.w, c.h)
			b.waitFor("the image", vp+`.state === "loaded" && `+vp+`.rendered === "`+c.want+`" && `+vp+`.query.includes("format=png")`)
			if n, _ := strconv.Atoi(b.eval(`document.querySelectorAll("#file-list .file[data-id]").length`)); n != len(files) {
				t.Errorf("page lists %d files, the API %d", n, len(files))
			}
			if got := b.eval(`document.querySelector(".file.selected").dataset.id`); !strings.HasPrefix(c.want, got+"/") {
				t.Errorf("selected %q in the list, showing %s", got, c.want)
			}
			if n := b.eval(`document.querySelectorAll("[data-preset]").length`); n != "8" {
				t.Errorf("%s preset buttons, want 8", n)
			}
			var shot struct{ Data []byte }
			b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
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

// cdp is a minimal Chrome DevTools Protocol client over
// --remote-debugging-pipe (fd 3 in, fd 4 out, messages ended by NUL): enough
// to evaluate script and send real input events, without a dependency.
type cdp struct {
	t       *testing.T
	w       io.Writer
	mu      sync.Mutex
	next    int
	waiting map[int]chan cdpReply
	session string
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// startCDP launches Chromium with the debugging pipe and opens url in a
// page it attaches to.
func startCDP(t *testing.T, bin, url string, w, h int) *cdp {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--ignore-certificate-errors", "--user-data-dir="+t.TempDir(), "--remote-debugging-pipe",
		fmt.Sprintf("--window-size=%d,%d", w, h), "about:blank")
	cmd.ExtraFiles = []*os.File{inR, outW}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	inR.Close()
	outW.Close()
	c := &cdp{t: t, w: inW, waiting: map[int]chan cdpReply{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rd := bufio.NewReader(outR)
		for {
			msg, err := rd.ReadBytes(0)
			if err != nil {
				return
			}
			var m struct {
				ID int `json:"id"`
				cdpReply
			}
			if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
				continue // an event
			}
			c.mu.Lock()
			ch := c.waiting[m.ID]
			delete(c.waiting, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m.cdpReply
			}
		}
	}()
	t.Cleanup(func() {
		inW.Close()
		cancel()
		_ = cmd.Wait()
		<-done
		if t.Failed() {
			t.Logf("chromium stderr: %s", tail(stderr.String(), 1500))
		}
	})
	var target struct{ TargetID string }
	c.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var att struct{ SessionID string }
	c.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	c.session = att.SessionID
	// The window has a minimum width; the emulated viewport is exact.
	c.call(c.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": w, "height": h, "deviceScaleFactor": 1, "mobile": false}, nil)
	c.call(c.session, "Page.enable", nil, nil)
	c.call(c.session, "Runtime.enable", nil, nil)
	c.call(c.session, "Page.navigate", map[string]any{"url": url}, nil)
	return c
}

// call sends one command and waits for its answer (a hung browser fails
// the test after a minute; nothing is timed).
func (c *cdp) call(session, method string, params map[string]any, out any) {
	c.t.Helper()
	if err := c.try(session, method, params, out); err != nil {
		c.t.Fatal(err)
	}
}

// try is call that returns the protocol's error instead of failing.
func (c *cdp) try(session, method string, params map[string]any, out any) error {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan cdpReply, 1)
	c.waiting[id] = ch
	c.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b, _ := json.Marshal(msg)
	if _, err := c.w.Write(append(b, 0)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return fmt.Errorf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				return fmt.Errorf("%s: %w", method, err)
			}
		}
		return nil
	case <-time.After(time.Minute):
		return fmt.Errorf("%s: no answer from chromium", method)
	}
}

// eval runs a script expression in the page and returns its value as a
// string.
func (c *cdp) eval(expr string) string {
	c.t.Helper()
	v, err := c.tryEval(expr)
	if err != nil {
		c.t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

func (c *cdp) tryEval(expr string) (string, error) {
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := c.try(c.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		return "", err
	}
	if r.ExceptionDetails != nil {
		return "", errors.New(r.ExceptionDetails.Text)
	}
	if r.Result.Value == nil {
		return "", nil
	}
	return fmt.Sprint(r.Result.Value), nil
}

// waitFor polls expr until it is "true"; the deadline only guards
// against a hang.
func (c *cdp) waitFor(what, expr string) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		// An error is "not yet": a click that loads another page makes an
		// evaluation in flight fail with "Inspected target navigated".
		v, err := c.tryEval("(() => { try { return !!(" + expr + ") } catch (e) { return false } })()")
		if err == nil && v == "true" {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("waiting for %s: %s stayed false (last error %v); viewport %s", what, expr, last,
		c.eval(`JSON.stringify(document.getElementById("viewport").dataset) + " " + document.querySelector(".message-text").textContent`))
}

func (c *cdp) mouse(typ string, x, y float64, button string, buttons int) {
	c.t.Helper()
	c.call(c.session, "Input.dispatchMouseEvent", map[string]any{
		"type": typ, "x": x, "y": y, "button": button, "buttons": buttons, "clickCount": 1,
	}, nil)
}

func (c *cdp) wheel(x, y, dy float64) {
	c.t.Helper()
	c.call(c.session, "Input.dispatchMouseEvent", map[string]any{"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": dy}, nil)
}

func (c *cdp) key(key, code string, vk int) {
	c.t.Helper()
	for _, typ := range []string{"keyDown", "keyUp"} {
		p := map[string]any{"type": typ, "key": key, "code": code, "windowsVirtualKeyCode": vk}
		if typ == "keyDown" && len(key) == 1 {
			p["text"] = key
		}
		c.call(c.session, "Input.dispatchKeyEvent", p, nil)
	}
}

// TestBrowserInteraction drives the viewer as a radiologist would: a
// preset key, a right-drag to window, the wheel and arrow keys to scroll
// frames, and checks each reaches the server as the right render.
func TestBrowserInteraction(t *testing.T) {
	bin := chromium(t)
	srv := newTestServer(t, testDataDir)
	files := listed(t, srv)
	ct := findFile(t, files, "ct-signed-implicit-512.dcm")
	xa := findFile(t, files, "xa-jpeg-baseline-96frame.dcm")
	c := startCDP(t, bin, srv.URL+"/#"+ct.ID+"/1", 1400, 900)
	vp := `document.getElementById("viewport").dataset`
	c.waitFor("the CT", vp+`.rendered === "`+ct.ID+`/0" && `+vp+`.state === "loaded"`)

	// Key 4 is the fourth preset, lung.
	c.key("4", "Digit4", 52)
	c.waitFor("lung preset", vp+`.query.includes("preset=lung") && `+vp+`.query.includes("format=png")`)
	if got := c.eval(`document.getElementById("ov-bl").textContent`); !strings.Contains(got, "W 1500  L -600") || !strings.Contains(got, "Lung") {
		t.Errorf("overlay after preset: %q", got)
	}

	// Right-drag 100 px right and 50 down from the lung window: width
	// and level move by width/250 per pixel.
	var box struct{ X, Y float64 }
	if err := json.Unmarshal([]byte(c.eval(`JSON.stringify((r => ({X: r.left + r.width / 2, Y: r.top + r.height / 2}))(document.getElementById("viewport").getBoundingClientRect()))`)), &box); err != nil {
		t.Fatal(err)
	}
	c.mouse("mouseMoved", box.X, box.Y, "none", 0)
	c.mouse("mousePressed", box.X, box.Y, "right", 2)
	for i := 1; i <= 10; i++ {
		c.mouse("mouseMoved", box.X+float64(10*i), box.Y+float64(5*i), "right", 2)
	}
	c.mouse("mouseReleased", box.X+100, box.Y+50, "right", 0)
	c.waitFor("dragged window", vp+`.query.includes("window=-300%2C2100") && `+vp+`.query.includes("format=png")`)
	if wc, ww := c.eval(`document.getElementById("wc").value`), c.eval(`document.getElementById("ww").value`); wc != "-300" || ww != "2100" {
		t.Errorf("level/width inputs %s/%s after the drag, want -300/2100", wc, ww)
	}

	// Another file from the list; the wheel and the arrow keys scroll.
	c.eval(`document.querySelector('.file[data-id="` + xa.ID + `"]').click()`)
	c.waitFor("the XA", vp+`.rendered === "`+xa.ID+`/0"`)
	for i := 0; i < 3; i++ {
		c.wheel(box.X, box.Y, 100) // 50 px a frame
	}
	c.waitFor("wheel to frame 7", vp+`.rendered === "`+xa.ID+`/6" && `+vp+`.query.includes("format=png")`)
	c.key("ArrowDown", "ArrowDown", 40)
	c.waitFor("arrow to frame 8", vp+`.rendered === "`+xa.ID+`/7" && `+vp+`.query.includes("format=png")`)
	if got := c.eval(`document.getElementById("frame-label").textContent`); got != "8 / 96" {
		t.Errorf("frame label %q, want 8 / 96", got)
	}
	if got := c.eval(`location.hash`); got != "#"+xa.ID+"/8" {
		t.Errorf("location.hash %q", got)
	}
	c.key("End", "End", 35)
	c.waitFor("End to the last frame", vp+`.rendered === "`+xa.ID+`/95"`)

	// The page as the user sees it now.
	var shot struct{ Data []byte }
	c.call(c.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
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

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
