package chromium

import (
	"strings"
	"testing"
)

// TestPage loads a page, evaluates script (a promise is awaited), waits
// for a condition, sends a key, and reports a thrown error.
func TestPage(t *testing.T) {
	bin := Find(t)
	p := Start(t, bin, `data:text/html,<input id=i autofocus><script>document.title="ready"</script>`, 400, 300)
	p.WaitFor("the page", `document.title === "ready"`)
	if got := p.Eval(`new Promise(r => setTimeout(() => r(6 * 7), 10))`); got != "42" {
		t.Errorf("awaited %q, want 42", got)
	}
	p.Eval(`document.getElementById("i").focus()`)
	p.Key("x", "KeyX", 88)
	p.WaitFor("the typed key", `document.getElementById("i").value === "x"`)
	if _, err := p.TryEval(`(async () => { throw new Error("boom") })()`); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("thrown error: %v", err)
	}
}
