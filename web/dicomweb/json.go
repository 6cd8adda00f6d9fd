package dicomweb

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	dcm "github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"lightbox/dicom"
)

// maxInline bounds the binary values written inline (base64) in metadata.
// Larger ones — a private blob, an embedded PDF — are left out, so that a
// metadata response stays proportional to the header a viewer needs.
const maxInline = 64 << 10

// maxDepth bounds sequence nesting when encoding; the Part 10 reader
// already refuses deeper files, this only keeps the encoder safe on its own.
const maxDepth = 64

// Object is one DICOM JSON data set (PS3.18 F.2): attributes keyed by tag.
// It marshals with its attributes in tag order, as PS3.18 F.2.1 asks.
type Object map[uint32]Attr

// Attr is one DICOM JSON attribute. Values holds, per VR, strings, PN
// strings (components separated by ^, groups by =), int64 or float64
// numbers, Objects (sequence items), or nil for an empty value within a
// multi-valued attribute. An Attr with no values is written without
// "Value", as DICOM JSON encodes an empty attribute.
type Attr struct {
	VR           string
	Values       []any
	InlineBinary []byte
	BulkDataURI  string
}

// Set adds or replaces an attribute.
func (o Object) Set(t uint32, vr string, values ...any) { o[t] = Attr{VR: vr, Values: values} }

// SetString adds a string attribute; an empty string gives an attribute
// without a value (present, zero length), as QIDO-RS returns type 2
// attributes the catalog holds no value for.
func (o Object) SetString(t uint32, vr, s string) {
	if s == "" {
		o[t] = Attr{VR: vr}
		return
	}
	o[t] = Attr{VR: vr, Values: []any{s}}
}

// MarshalJSON writes the object with its attributes in ascending tag order.
func (o Object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := o.encode(&b, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (o Object) encode(b *bytes.Buffer, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("dicom json: sequences nested deeper than %d", maxDepth)
	}
	tags := make([]uint32, 0, len(o))
	for t := range o {
		tags = append(tags, t)
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i] < tags[j] })
	b.WriteByte('{')
	for i, t := range tags {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `"%08X":`, t)
		if err := o[t].encode(b, depth); err != nil {
			return fmt.Errorf("%08X: %w", t, err)
		}
	}
	b.WriteByte('}')
	return nil
}

func (a Attr) encode(b *bytes.Buffer, depth int) error {
	b.WriteString(`{"vr":`)
	writeString(b, a.VR)
	switch {
	case a.BulkDataURI != "":
		b.WriteString(`,"BulkDataURI":`)
		writeString(b, a.BulkDataURI)
	case a.InlineBinary != nil:
		b.WriteString(`,"InlineBinary":"`)
		enc := base64.NewEncoder(base64.StdEncoding, b)
		enc.Write(a.InlineBinary)
		enc.Close()
		b.WriteByte('"')
	case len(a.Values) > 0:
		b.WriteString(`,"Value":[`)
		for i, v := range a.Values {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeValue(b, a.VR, v, depth); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return nil
}

func encodeValue(b *bytes.Buffer, vr string, v any, depth int) error {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		if vr == "PN" {
			writePN(b, v)
		} else {
			writeString(b, v)
		}
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case int:
		b.WriteString(strconv.Itoa(v))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b.WriteString("null") // JSON has no NaN; DICOM JSON says nothing better
		} else {
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
	case Object:
		return v.encode(b, depth+1)
	default:
		return fmt.Errorf("dicom json: cannot encode a %T", v)
	}
	return nil
}

// writePN writes a person name as its component groups (PS3.18 F.2.2).
func writePN(b *bytes.Buffer, s string) {
	groups := strings.SplitN(s, "=", 3)
	names := [...]string{"Alphabetic", "Ideographic", "Phonetic"}
	b.WriteByte('{')
	first := true
	for i, g := range groups {
		if g == "" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeString(b, names[i])
		b.WriteByte(':')
		writeString(b, g)
	}
	b.WriteByte('}')
}

// writeString writes s as a JSON string. Invalid UTF-8 (a header in a
// character set the reader did not convert) becomes U+FFFD, as
// encoding/json does.
func writeString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}

// FromDataset converts a parsed header to DICOM JSON: every element with
// its VR and values, sequences nested. File meta elements (group 0002) and
// group lengths are left out, as is Pixel Data (clients fetch frames);
// other binary values are inlined up to maxInline bytes and left out above.
func FromDataset(elems []*dcm.Element) (Object, error) {
	var c conv
	for _, e := range elems {
		switch {
		case e == nil || e.Value == nil:
		case e.Tag == tag.TransferSyntaxUID:
			if v, ok := e.Value.GetValue().([]string); ok && len(v) == 1 {
				c.implicit = strings.Trim(v[0], " \x00") == "1.2.840.10008.1.2"
			}
		case e.Tag == tag.PixelRepresentation:
			if v, ok := e.Value.GetValue().([]int); ok && len(v) == 1 {
				c.signed = v[0] == 1
			}
		}
	}
	return c.fromElems(elems, 0, true)
}

// conv is what converting a data set needs to know of the whole: in
// implicit VR, the VR of "US or SS" elements follows Pixel Representation
// (PS3.5 Annex A.1), which the reader's dictionary does not apply.
type conv struct {
	implicit, signed bool
}

func (c conv) fromElems(elems []*dcm.Element, depth int, top bool) (Object, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("dicom json: sequences nested deeper than %d", maxDepth)
	}
	o := make(Object, len(elems))
	for _, e := range elems {
		if e == nil {
			continue
		}
		t := e.Tag
		switch {
		case top && t.Group == 0x0002, t.Element == 0 && t.Group != 0, t.Group == 0xFFFE:
			continue // file meta, group lengths, item delimiters
		case t == tag.PixelData || t == tag.FloatPixelData || t == tag.DoubleFloatPixelData:
			continue
		}
		a, ok, err := c.attrOf(e, depth)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		if ok {
			o[t.Uint32()] = a
		}
	}
	return o, nil
}

// vrOf is the element's VR as read, or the dictionary's when the reader
// had none.
func vrOf(e *dcm.Element) string {
	vr := strings.TrimSpace(e.RawValueRepresentation)
	if len(vr) == 2 {
		return vr
	}
	if info, err := tag.Find(e.Tag); err == nil && len(info.VRs) > 0 && len(info.VRs[0]) == 2 {
		return info.VRs[0]
	}
	return "UN"
}

// attrOf converts one element; ok is false for an element left out.
func (c conv) attrOf(e *dcm.Element, depth int) (Attr, bool, error) {
	vr := vrOf(e)
	a := Attr{VR: vr}
	if e.Value == nil {
		return a, true, nil
	}
	if e.Tag == tag.SpecificCharacterSet {
		// The reader has converted every string to UTF-8, and DICOM JSON
		// is UTF-8 (PS3.18 F.2), so the data set now says so.
		a.Values = []any{"ISO_IR 192"}
		return a, true, nil
	}
	if v, ok := e.Value.GetValue().([]string); ok && len(e.RawValueRepresentation) == 2 && !dicom.KnownVR(e.RawValueRepresentation) {
		// Written with a VR that is none (two spaces, say): what its
		// bytes mean is unknown, so they go as they came.
		a.VR = "UN"
		return stringAttr(a, v)
	}
	if raw, ok := e.Value.GetValue().([]byte); ok && vr == "UN" && e.Tag.Group%2 == 1 && e.Tag.Element >= 0x0010 && e.Tag.Element <= 0x00FF {
		// A private creator read in implicit VR: always LO (PS3.5 7.8.1).
		a.VR = "LO"
		return stringAttr(a, []string{string(raw)})
	}
	switch v := e.Value.GetValue().(type) {
	case []*dcm.SequenceItemValue:
		a.VR = "SQ" // an undefined-length UN is read as the sequence it is (PS3.5 6.2.2)
		for _, it := range v {
			items, _ := it.GetValue().([]*dcm.Element)
			obj, err := c.fromElems(items, depth+1, false)
			if err != nil {
				return a, false, err
			}
			a.Values = append(a.Values, obj)
		}
	case []string:
		return stringAttr(a, v)
	case []int:
		if vr == "AT" {
			for i := 0; i+1 < len(v); i += 2 {
				a.Values = append(a.Values, fmt.Sprintf("%04X%04X", uint16(v[i]), uint16(v[i+1])))
			}
			return a, true, nil
		}
		if c.implicit && c.signed && vr == "US" {
			if info, err := tag.Find(e.Tag); err == nil && len(info.VRs) == 2 && info.VRs[1] == "SS" {
				a.VR = "SS"
				for _, n := range v {
					a.Values = append(a.Values, int64(int16(uint16(n))))
				}
				return a, true, nil
			}
		}
		for _, n := range v {
			a.Values = append(a.Values, int64(n))
		}
	case []float64:
		for _, f := range v {
			a.Values = append(a.Values, f)
		}
	case []byte:
		if len(v) > maxInline {
			return a, false, nil
		}
		if len(v) > 0 {
			a.InlineBinary = v
		}
	}
	return a, true, nil
}

// stringAttr converts the values of a string-valued element. The reader
// also returns OD, OF, OL, OV and friends as one raw string: those become
// InlineBinary.
func stringAttr(a Attr, v []string) (Attr, bool, error) {
	switch a.VR {
	case "OB", "OD", "OF", "OL", "OV", "OW", "UN":
		n := 0
		for _, s := range v {
			n += len(s)
		}
		if n > maxInline {
			return a, false, nil
		}
		if n > 0 {
			a.InlineBinary = []byte(strings.Join(v, `\`))
		}
		return a, true, nil
	}
	switch a.VR {
	case "LT", "ST", "UT", "UR":
		// Single-valued: a backslash in them is text, not a separator.
		v = []string{strings.Join(v, `\`)}
	default:
		// Elsewhere it separates values, which the reader leaves joined
		// for some VRs (a DA of two dates, say).
		var split []string
		for _, s := range v {
			split = append(split, strings.Split(s, `\`)...)
		}
		v = split
	}
	vals := make([]any, 0, len(v))
	for _, s := range v {
		vals = append(vals, stringValue(a.VR, s))
	}
	// One empty value is an empty attribute, not [null].
	if len(vals) == 1 && vals[0] == nil {
		vals = nil
	}
	a.Values = vals
	return a, true, nil
}

// stringValue turns one value of a string VR into its JSON form: numbers
// for DS and IS, trimmed text otherwise, nil when empty or unparsable as
// the number its VR promises.
func stringValue(vr, s string) any {
	switch vr {
	case "LT", "ST", "UT", "UR":
		// Leading spaces are significant in these VRs (PS3.5 6.2).
		s = strings.TrimRight(s, " \x00")
	default:
		s = strings.Trim(s, " \x00")
	}
	if s == "" || vr == "PN" && strings.Trim(s, "^= ") == "" {
		return nil // a name of empty components is an empty name
	}
	switch vr {
	case "DS":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil
		}
		return f
	case "IS":
		n, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64)
		if err != nil {
			return nil
		}
		return n
	}
	return s
}
