// Package chromium drives a headless Chromium from tests: it finds (in CI,
// installs) Debian's browser and speaks enough of the Chrome DevTools
// Protocol over --remote-debugging-pipe to load a page, evaluate script
// and send real input events, without a dependency.
package chromium

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Find returns a headless-capable Chromium. In CI a missing browser is
// installed with apt-get, and a browser that still cannot be found fails
// the test; elsewhere the test is skipped.
func Find(t testing.TB) string {
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

// Page is one browser tab under the test's control. The browser stops
// when the test ends.
type Page struct {
	// Diagnose, when set, is a script expression whose value WaitFor adds
	// to its failure message: the state a person needs to see.
	Diagnose string

	t       testing.TB
	w       io.Writer
	mu      sync.Mutex
	next    int
	waiting map[int]chan reply
	session string
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// Start launches Chromium (bin) with the debugging pipe (fd 3 in, fd 4
// out, messages ended by NUL) and opens url in a w×h page it attaches to.
func Start(t testing.TB, bin, url string, w, h int) *Page {
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
	c := &Page{t: t, w: inW, waiting: map[int]chan reply{}}
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
				reply
			}
			if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
				continue // an event
			}
			c.mu.Lock()
			ch := c.waiting[m.ID]
			delete(c.waiting, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m.reply
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
	c.Call("Emulation.setDeviceMetricsOverride", map[string]any{"width": w, "height": h, "deviceScaleFactor": 1, "mobile": false}, nil)
	c.Call("Page.enable", nil, nil)
	c.Call("Runtime.enable", nil, nil)
	c.Call("Page.navigate", map[string]any{"url": url}, nil)
	return c
}

// Call sends one command to the page and waits for its answer, decoded
// into out (a hung browser fails the test after a minute; nothing is
// timed).
func (c *Page) Call(method string, params map[string]any, out any) {
	c.t.Helper()
	c.call(c.session, method, params, out)
}

func (c *Page) call(session, method string, params map[string]any, out any) {
	c.t.Helper()
	if err := c.try(session, method, params, out); err != nil {
		c.t.Fatal(err)
	}
}

func (c *Page) try(session, method string, params map[string]any, out any) error {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan reply, 1)
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

// Eval runs a script expression in the page, awaiting a promise, and
// returns its value as a string; an exception fails the test.
func (c *Page) Eval(expr string) string {
	c.t.Helper()
	v, err := c.TryEval(expr)
	if err != nil {
		c.t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

// TryEval is Eval that returns the exception instead of failing.
func (c *Page) TryEval(expr string) (string, error) {
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception *struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := c.try(c.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		return "", err
	}
	if d := r.ExceptionDetails; d != nil {
		if d.Exception != nil && d.Exception.Description != "" {
			return "", errors.New(d.Exception.Description)
		}
		return "", errors.New(d.Text)
	}
	if r.Result.Value == nil {
		return "", nil
	}
	return fmt.Sprint(r.Result.Value), nil
}

// WaitFor polls expr until it is true; the deadline only guards against a
// hang.
func (c *Page) WaitFor(what, expr string) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		// An error is "not yet": a click that loads another page makes an
		// evaluation in flight fail with "Inspected target navigated".
		v, err := c.TryEval("(() => { try { return !!(" + expr + ") } catch (e) { return false } })()")
		if err == nil && v == "true" {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	state := ""
	if c.Diagnose != "" {
		state, _ = c.TryEval(c.Diagnose)
	}
	c.t.Fatalf("waiting for %s: %s stayed false (last error %v); %s", what, expr, last, state)
}

// Mouse sends one mouse event at (x, y).
func (c *Page) Mouse(typ string, x, y float64, button string, buttons int) {
	c.t.Helper()
	c.Call("Input.dispatchMouseEvent", map[string]any{
		"type": typ, "x": x, "y": y, "button": button, "buttons": buttons, "clickCount": 1,
	}, nil)
}

// Wheel turns the mouse wheel by dy at (x, y).
func (c *Page) Wheel(x, y, dy float64) {
	c.t.Helper()
	c.Call("Input.dispatchMouseEvent", map[string]any{"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": dy}, nil)
}

// Key presses and releases one key.
func (c *Page) Key(key, code string, vk int) {
	c.t.Helper()
	for _, typ := range []string{"keyDown", "keyUp"} {
		p := map[string]any{"type": typ, "key": key, "code": code, "windowsVirtualKeyCode": vk}
		if typ == "keyDown" && len(key) == 1 {
			p["text"] = key
		}
		c.Call("Input.dispatchKeyEvent", p, nil)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
