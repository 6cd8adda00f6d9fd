package dicom

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// TestOverlayOracle adds a graphics overlay plane to real files with
// dcmodify (grey and MONOCHROME1, explicit and implicit VR, and a
// multi-frame file whose overlay covers one middle frame), partly outside
// the image, and compares every rendering with dcmj2pnm, which draws
// overlays by default.
func TestOverlayOracle(t *testing.T) {
	needTool(t, "dcmodify")
	needTool(t, "dcmj2pnm")
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	for _, c := range []struct {
		file            string
		group           string
		rows, cols      int
		origin          string
		frames, firstOf int
	}{
		{"mr-small.dcm", "6000", 20, 30, `5\-3`, 1, 1},
		{"cr-monochrome1-rescale-16x16.dcm", "6000", 8, 12, `10\6`, 1, 1},
		{"ct-signed-implicit-512.dcm", "6002", 100, 64, `400\480`, 1, 1},
		{"xa-jpeg-baseline-96frame.dcm", "601E", 32, 48, `1\1`, 2, 48},
	} {
		t.Run(c.file, func(t *testing.T) {
			bits := make([]byte, (c.rows*c.cols*c.frames+15)/16*2)
			rng.Read(bits)
			bin := filepath.Join(dir, c.file+".bits")
			if err := os.WriteFile(bin, bits, 0o644); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join("../testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, c.file)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			g := "(" + c.group + ","
			args := []string{"-nb", "-q",
				"-i", g + "0010)=" + itoa(c.rows), "-i", g + "0011)=" + itoa(c.cols),
				"-i", g + "0040)=G", "-i", g + "0050)=" + c.origin,
				"-i", g + "0015)=" + itoa(c.frames), "-i", g + "0051)=" + itoa(c.firstOf),
				"-i", g + "0100)=1", "-i", g + "0102)=0",
				"-if", g + "3000)=" + bin, path}
			if out, err := runTool("dcmodify", args...); err != nil {
				t.Fatalf("dcmodify: %v: %s", err, out)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(f.Meta.Image.Overlays); n != 1 {
				t.Fatalf("%d overlays read, want 1", n)
			}
			oracleVariant(t, oracleFile{"with overlay " + c.group, path})
		})
	}
}
