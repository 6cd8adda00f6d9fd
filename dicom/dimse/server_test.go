package dimse

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

func TestEchoSCU(t *testing.T) {
	echoscu := needTool(t, "echoscu")
	ts := startServer(t, Config{}, nil)
	out, err := run(echoscu, "-aet", "TESTSCU", "-aec", "LIGHTBOX", "127.0.0.1", ts.port())
	if err != nil {
		t.Fatalf("echoscu: %v\n%s", err, out)
	}
	ts.ev.waitFor(t, "echo", func(e Event) bool { return e.Kind == EventEcho && e.CallingAE == "TESTSCU" })
	ts.ev.waitFor(t, "released", func(e Event) bool { return e.Kind == EventReleased })
}

// variant is a test file re-encoded in one transfer syntax.
type variant struct {
	path, source, ts string
}

// variantRecipe makes a variant with a dcmtk or gdcm tool: args get the
// input and output paths appended.
type variantRecipe struct {
	ts   string
	tool string
	args []string
}

var variantRecipes = []variantRecipe{
	{ExplicitVRLittleEndian, "dcmconv", []string{"+te"}},
	{ImplicitVRLittleEndian, "dcmconv", []string{"+ti"}},
	{ExplicitVRBigEndian, "dcmconv", []string{"+tb"}},
	{DeflatedExplicitVRLE, "dcmconv", []string{"+td"}},
	{JPEGBaseline8Bit, "dcmcjpeg", []string{"+eb"}},
	{JPEGExtended12Bit, "dcmcjpeg", []string{"+ee"}},
	{JPEGLossless, "dcmcjpeg", []string{"+el"}},
	{JPEGLosslessSV1, "dcmcjpeg", []string{"+e1"}},
	{JPEGLSLossless, "dcmcjpls", []string{"+el"}},
	{JPEGLSNearLossless, "dcmcjpls", []string{"+en"}},
	{RLELossless, "dcmcrle", nil},
	{JPEG2000Lossless, "gdcmconv", []string{"--j2k"}},
	{JPEG2000, "gdcmconv", []string{"--j2k", "--lossy", "-q", "40"}},
}

var (
	variantsOnce sync.Once
	variantsDir  string
	variantsList []variant
	variantsLog  []string
)

// makeVariants re-encodes every test file in every transfer syntax we
// accept, once per test binary. A tool may refuse a file (baseline JPEG of
// 16-bit data, say); that is logged, and the caller checks each transfer
// syntax still has variants.
func makeVariants(t *testing.T) []variant {
	t.Helper()
	for _, r := range variantRecipes {
		needTool(t, r.tool)
	}
	variantsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dimse-variants-")
		if err != nil {
			t.Fatal(err)
		}
		variantsDir = dir
		for i, src := range dicomFiles(t) {
			p, err := readPart10(src)
			if err != nil {
				variantsLog = append(variantsLog, fmt.Sprintf("%s: %v", src, err))
				continue
			}
			variantsList = append(variantsList, variant{path: src, source: src, ts: p.transferSyntax})
			for j, r := range variantRecipes {
				if r.ts == p.transferSyntax {
					continue
				}
				out := filepath.Join(dir, fmt.Sprintf("%d-%d.dcm", i, j))
				args := append(append([]string{}, r.args...), src, out)
				if r.tool == "gdcmconv" {
					args = append(append([]string{}, r.args...), "-i", src, "-o", out)
				}
				if msg, err := run(r.tool, args...); err != nil {
					variantsLog = append(variantsLog, fmt.Sprintf("%s %s: %v %s", r.tool, src, err, strings.TrimSpace(msg)))
					continue
				}
				q, err := readPart10(out)
				if err != nil || q.transferSyntax != r.ts {
					variantsLog = append(variantsLog, fmt.Sprintf("%s %s: wrote %v (%v)", r.tool, src, q, err))
					continue
				}
				variantsList = append(variantsList, variant{path: out, source: src, ts: r.ts})
			}
		}
	})
	if len(variantsList) == 0 {
		t.Fatal("no variants")
	}
	return variantsList
}

// storescuConfig writes a storescu association profile proposing exactly
// ts for each SOP class of files (storescu's -x options have no choice for
// some syntaxes, such as JPEG .57).
func storescuConfig(t *testing.T, dir, ts string, sopClasses []string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[[TransferSyntaxes]]\n[TS]\nTransferSyntax1 = %s\n\n[[PresentationContexts]]\n[PC]\n", ts)
	for i, c := range sopClasses {
		fmt.Fprintf(&b, "PresentationContext%d = %s\\TS\n", i+1, c)
	}
	b.WriteString("\n[[Profiles]]\n[P]\nPresentationContexts = PC\n")
	path := filepath.Join(dir, "storescu.cfg")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStoreSCU sends every test file in every accepted transfer syntax with
// dcmtk storescu and checks that the handler received exactly the data set
// of the file, in the negotiated transfer syntax.
func TestStoreSCU(t *testing.T) {
	storescu := needTool(t, "storescu")
	vs := makeVariants(t)
	for _, l := range variantsLog {
		t.Log("variant skipped:", l)
	}
	byTS := map[string][]variant{}
	for _, v := range vs {
		byTS[v.ts] = append(byTS[v.ts], v)
	}
	for _, ts := range DefaultTransferSyntaxes {
		group := byTS[ts]
		t.Run(ts, func(t *testing.T) {
			if len(group) == 0 {
				t.Fatalf("no test file could be encoded in %s", ts)
			}
			dir := t.TempDir()
			fs := newFileStore(dir)
			srv := startServer(t, Config{Store: fs.store}, nil)
			classes := map[string]bool{}
			var args []string
			want := map[string]*part10{}
			for _, v := range group {
				p, err := readPart10(v.path)
				if err != nil {
					t.Fatal(err)
				}
				classes[p.sopClass] = true
				want[p.sopInstance] = p
				args = append(args, v.path)
			}
			var cl []string
			for c := range classes {
				cl = append(cl, c)
			}
			sort.Strings(cl)
			cfg := storescuConfig(t, dir, ts, cl)
			out, err := run(storescu, append([]string{"-xf", cfg, "P", "-aet", "TESTSCU", "-aec", "LIGHTBOX",
				"127.0.0.1", srv.port()}, args...)...)
			if err != nil {
				t.Fatalf("storescu: %v\n%s", err, out)
			}
			for inst, w := range want {
				got, err := readPart10(filepath.Join(dir, inst+".dcm"))
				if err != nil {
					t.Errorf("%s: %v", inst, err)
					continue
				}
				if got.transferSyntax != ts {
					t.Errorf("%s: received in %s, want %s", inst, got.transferSyntax, ts)
				}
				wb, err1 := w.plainDataset()
				gb, err2 := got.plainDataset()
				if err1 != nil || err2 != nil {
					t.Errorf("%s: inflate: %v %v", inst, err1, err2)
					continue
				}
				if !bytes.Equal(wb, gb) {
					t.Errorf("%s: data set differs: %d bytes received, %d in file, first difference at %d",
						inst, len(gb), len(wb), firstDiff(wb, gb))
				}
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
