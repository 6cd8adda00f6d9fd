package dicom

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

func testGrey(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			g.Pix[y*g.Stride+x] = uint8((x*3 + y*5) % 256)
		}
	}
	return g
}

func testColour(w, h int) *image.NRGBA {
	c := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c.SetNRGBA(x, y, color.NRGBA{uint8(x * 4), uint8(y * 4), 128, 255})
		}
	}
	return c
}

func TestEncodePNGLossless(t *testing.T) {
	for _, img := range []image.Image{testGrey(61, 33), testColour(40, 20)} {
		var b bytes.Buffer
		if err := EncodePNG(&b, img); err != nil {
			t.Fatal(err)
		}
		back, err := png.Decode(&b)
		if err != nil {
			t.Fatal(err)
		}
		if back.Bounds() != img.Bounds() {
			t.Fatalf("bounds %v, want %v", back.Bounds(), img.Bounds())
		}
		for y := 0; y < img.Bounds().Dy(); y++ {
			for x := 0; x < img.Bounds().Dx(); x++ {
				r1, g1, b1, _ := img.At(x, y).RGBA()
				r2, g2, b2, _ := back.At(x, y).RGBA()
				if r1 != r2 || g1 != g2 || b1 != b2 {
					t.Fatalf("%T pixel %d,%d differs after PNG", img, x, y)
				}
			}
		}
	}
}

// meanAbs is the mean absolute difference of two images' grey (or red,
// green and blue) levels.
func meanAbs(a, b image.Image) float64 {
	var sum, n float64
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x-r.Min.X, y-r.Min.Y).RGBA()
			for _, d := range []int{int(r1>>8) - int(r2>>8), int(g1>>8) - int(g2>>8), int(b1>>8) - int(b2>>8)} {
				sum += float64(max(d, -d))
				n++
			}
		}
	}
	return sum / n
}

func TestEncodeJPEG(t *testing.T) {
	sub := testGrey(64, 64).SubImage(image.Rect(8, 8, 40, 30))
	tests := []struct {
		name string
		img  image.Image
		grey bool
	}{
		{"grey", testGrey(97, 45), true},
		{"colour", testColour(48, 32), false},
		{"RGBA", image.NewRGBA(image.Rect(0, 0, 16, 16)), false},
		{"grey sub-image", sub, true},
		{"Gray16 falls back to Go", image.NewGray16(image.Rect(0, 0, 8, 8)), false}, // image/jpeg writes only *image.Gray as grey
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := EncodeJPEG(&b, tc.img, 95); err != nil {
				t.Fatal(err)
			}
			back, err := jpeg.Decode(&b)
			if err != nil {
				t.Fatal(err)
			}
			if back.Bounds().Dx() != tc.img.Bounds().Dx() || back.Bounds().Dy() != tc.img.Bounds().Dy() {
				t.Fatalf("size %v, want %v", back.Bounds(), tc.img.Bounds())
			}
			if _, isGrey := back.(*image.Gray); isGrey != tc.grey {
				t.Errorf("decoded as %T; grey in should be grey out", back)
			}
			if d := meanAbs(tc.img, back); d > 3 {
				t.Errorf("mean difference %.2f levels at quality 95", d)
			}
		})
	}
	// The Go encoder and libturbojpeg (with cgo) both give faithful
	// pictures of the same input.
	var b bytes.Buffer
	if err := encodeJPEGGo(&b, testGrey(50, 50), 90); err != nil {
		t.Fatal(err)
	}
	back, err := jpeg.Decode(&b)
	if err != nil || meanAbs(testGrey(50, 50), back) > 3 {
		t.Errorf("Go encoder: %v", err)
	}
}

func TestEncodeJPEGQuality(t *testing.T) {
	for _, q := range []int{0, -1, 101} {
		if err := EncodeJPEG(&bytes.Buffer{}, testGrey(8, 8), q); !errors.Is(err, ErrQuality) {
			t.Errorf("quality %d: got %v, want ErrQuality", q, err)
		}
	}
	var lo, hi bytes.Buffer
	if err := EncodeJPEG(&lo, testGrey(128, 128), 10); err != nil {
		t.Fatal(err)
	}
	if err := EncodeJPEG(&hi, testGrey(128, 128), 100); err != nil {
		t.Fatal(err)
	}
	if lo.Len() >= hi.Len() {
		t.Errorf("quality 10 gave %d bytes, quality 100 %d: quality is not passed on", lo.Len(), hi.Len())
	}
	if JPEGEncoder() == "" {
		t.Error("no encoder name")
	}
}

// The whole pipeline for one frame, as the viewer runs it: decode the frame
// from the file, LUT to 8 bits, encode. The CT is a 512×512 signed slice
// with rescale and window; the X-ray a 2140×1760 MONOCHROME1 CR.
var pipelineFiles = []struct{ name, path string }{
	{"CT512", "../testdata/ct-signed-implicit-512.dcm"},
	{"XRay2140x1760", "../testdata/cr-chest-monochrome1.dcm"},
}

func benchPipeline(b *testing.B, encode func(*bytes.Buffer, image.Image) error) {
	for _, pf := range pipelineFiles {
		b.Run(pf.name, func(b *testing.B) {
			f, err := Open(pf.path)
			if err != nil {
				b.Skip(err)
			}
			var buf bytes.Buffer
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				fr, err := f.Frame(0)
				if err != nil {
					b.Fatal(err)
				}
				img, err := Render(&f.Meta, fr, View{})
				if err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				if err := encode(&buf, img); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(buf.Len()), "bytes/frame")
		})
	}
}

func BenchmarkPipelineJPEG(b *testing.B) {
	benchPipeline(b, func(w *bytes.Buffer, img image.Image) error { return EncodeJPEG(w, img, 90) })
}

func BenchmarkPipelinePNG(b *testing.B) {
	benchPipeline(b, func(w *bytes.Buffer, img image.Image) error { return EncodePNG(w, img) })
}

// The stages one by one, to see where the time goes.
func BenchmarkStages(b *testing.B) {
	for _, pf := range pipelineFiles {
		f, err := Open(pf.path)
		if err != nil {
			b.Skip(err)
		}
		fr, err := f.Frame(0)
		if err != nil {
			b.Fatal(err)
		}
		img, err := Render(&f.Meta, fr, View{})
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		b.Run(pf.name+"/Decode", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := f.Frame(0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(pf.name+"/Render", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := Render(&f.Meta, fr, View{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(pf.name+"/Fit1024", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := Render(&f.Meta, fr, View{MaxW: 1024, MaxH: 1024, Upscale: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(pf.name+"/JPEG90-"+JPEGEncoder(), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				buf.Reset()
				if err := EncodeJPEG(&buf, img, 90); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(pf.name+"/JPEG90-image-jpeg", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				buf.Reset()
				if err := encodeJPEGGo(&buf, img, 90); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(pf.name+"/PNG", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				buf.Reset()
				if err := EncodePNG(&buf, img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
