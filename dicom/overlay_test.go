package dicom

import (
	"bytes"
	"image"
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

// TestOverlaysOf reads only planes that can be drawn, and draws only
// graphics: a short bitmap, overlay bits in Pixel Data (Overlay Bits
// Allocated 16) and a region of interest leave the image as it is.
func TestOverlaysOf(t *testing.T) {
	plane := func(group uint16, typ string, bitsAllocated uint16, data []byte) []byte {
		var b []byte
		b = append(b, elem(group, 0x0010, "US", us(2))...)
		b = append(b, elem(group, 0x0011, "US", us(4))...)
		b = append(b, elem(group, 0x0040, "CS", str(typ))...)
		b = append(b, elem(group, 0x0050, "SS", append(us(1), us(2)...))...)
		b = append(b, elem(group, 0x0100, "US", us(bitsAllocated))...)
		b = append(b, elem(group, 0x0102, "US", us(0))...)
		return append(b, elem(group, 0x3000, "OW", data)...)
	}
	file := append(synthetic(4, 4, 1), plane(0x6000, "G", 1, []byte{0x0F, 0x00})...)
	file = append(file, plane(0x6002, "G", 1, nil)...)                 // no bits at all
	file = append(file, plane(0x6004, "G", 16, []byte{0xFF, 0xFF})...) // in Pixel Data: retired
	file = append(file, plane(0x6006, "R", 1, []byte{0x0F, 0x00})...)
	file = append(file, pixelHeader(32)...)
	file = append(file, make([]byte, 32)...)
	f, err := Parse(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	var groups []uint16
	for _, o := range f.Meta.Image.Overlays {
		groups = append(groups, o.Group)
	}
	if len(groups) != 2 || groups[0] != 0x6000 || groups[1] != 0x6006 {
		t.Fatalf("overlays %x, want 6000 and 6006", groups)
	}
	fr, err := f.Frame(0)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Render(&f.Meta, fr, View{Window: WindowExplicit, Center: 1000, Width: 10})
	if err != nil {
		t.Fatal(err)
	}
	g := img.(*image.Gray)
	// 2×4 bits, 1111 then 0000, at row 1, column 2 (from 1): the first
	// overlay row covers columns 2 to 4 of the 4-wide image, the second
	// row is empty; the ROI draws nothing.
	for y := 0; y < 4; y++ {
		for x := 0; x < 4; x++ {
			want := uint8(0)
			if y == 0 && x >= 1 {
				want = 0xFF
			}
			if got := g.GrayAt(x, y).Y; got != want {
				t.Errorf("pixel (%d,%d) = %d, want %d", x, y, got, want)
			}
		}
	}
}
