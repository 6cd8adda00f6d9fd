package dicom

import (
	"image"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// Overlay is one overlay plane (PS3.3 C.9.2) of a group 60xx: a bitmap of
// Rows × Columns bits over the image, one per overlay frame. Graphics
// overlays ("G") carry a scanner's or a workstation's marks, such as
// Siemens's MedCom object graphics, and a viewer draws them.
type Overlay struct {
	Group         uint16 `json:"Group"`
	Rows, Columns int
	Type          string // "G" graphics, "R" region of interest
	// Origin is the row and column, from 1, of the image pixel under the
	// bitmap's first bit; it may lie outside the image.
	Origin      [2]int
	Frames      int // overlay frames (Number of Frames in Overlay), at least 1
	FrameOrigin int // the image frame, from 1, of the first overlay frame
	Description string
	Data        []byte `json:"-"` // the bits, least significant first (PS3.5 8.1.2)
}

// overlaysOf reads the overlay planes held in (60xx,3000). Overlays in the
// unused high bits of Pixel Data (retired in 2004) are not read, nor is a
// plane whose data is shorter than its size says: a bad overlay must not
// stop the image from showing.
func overlaysOf(ds elems) []Overlay {
	var out []Overlay
	for _, data := range ds {
		// One pass over the header finds the planes: ingest parses every
		// instance, and most have none.
		g := data.Tag.Group
		if g&0xFF01 != 0x6000 || data.Tag.Element != 0x3000 || data.Value == nil {
			continue
		}
		at := func(e uint16) tag.Tag { return tag.Tag{Group: g, Element: e} }
		o := Overlay{
			Group:       g,
			Rows:        ds.integer(at(0x0010), 0),
			Columns:     ds.integer(at(0x0011), 0),
			Type:        ds.str(at(0x0040)),
			Frames:      max(1, ds.integer(at(0x0015), 1)),
			FrameOrigin: max(1, ds.integer(at(0x0051), 1)),
			Description: ds.str(at(0x0022)),
		}
		if v := ds.ints(at(0x0050)); len(v) >= 2 {
			o.Origin = [2]int{v[0], v[1]}
		}
		b, _ := data.Value.GetValue().([]byte)
		o.Data = b
		need := (int64(o.Rows)*int64(o.Columns)*int64(o.Frames) + 7) / 8
		if o.Rows <= 0 || o.Columns <= 0 || ds.integer(at(0x0100), 1) != 1 || ds.integer(at(0x0102), 0) != 0 || int64(len(b)) < need {
			continue
		}
		out = append(out, o)
	}
	return out
}

// drawOverlays draws the graphics overlays that cover frame (from 0) over
// img, a grey rendering of the whole frame, in white: what dcmtk does by
// default ("Replace" mode, foreground density 1). Region-of-interest
// overlays are not drawn.
func drawOverlays(img *image.Gray, im *Image, frame int) {
	for i := range im.Overlays {
		o := &im.Overlays[i]
		f := frame - (o.FrameOrigin - 1)
		if o.Type != "G" || f < 0 || f >= o.Frames {
			continue
		}
		base := int64(f) * int64(o.Rows) * int64(o.Columns)
		b := img.Bounds()
		for r := 0; r < o.Rows; r++ {
			y := o.Origin[0] - 1 + r
			if y < b.Min.Y || y >= b.Max.Y {
				continue
			}
			for c := 0; c < o.Columns; c++ {
				x := o.Origin[1] - 1 + c
				if x < b.Min.X || x >= b.Max.X {
					continue
				}
				bit := base + int64(r)*int64(o.Columns) + int64(c)
				if o.Data[bit>>3]>>(bit&7)&1 != 0 {
					img.Pix[(y-b.Min.Y)*img.Stride+(x-b.Min.X)] = 0xFF
				}
			}
		}
	}
}
