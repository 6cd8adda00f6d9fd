package dicomweb

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	dcm "github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

func TestObjectMarshal(t *testing.T) {
	item := Object{}
	item.SetString(0x00081150, "UI", "1.2.3")
	o := Object{}
	o.SetString(0x00100010, "PN", "Doe^John=山田^太郎=やまだ^たろう")
	o.SetString(0x00100020, "LO", "")
	o.Set(0x00280010, "US", int64(512))
	o.Set(0x00281050, "DS", 40.5, nil, math.NaN())
	o.Set(0x00081199, "SQ", item, Object{})
	o.Set(0x00081198, "SQ")
	o[0x00091010] = Attr{VR: "OB", InlineBinary: []byte{0, 1, 2, 0xFF}}
	o[0x7FE00010] = Attr{VR: "OW", BulkDataURI: "https://x/bulk"}
	o.SetString(0x00080005, "CS", "ISO_IR 192")
	o.SetString(0x00181030, "LO", `a "quoted" <name> \ here`)
	got, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"00080005":{"vr":"CS","Value":["ISO_IR 192"]},` +
		`"00081198":{"vr":"SQ"},` +
		`"00081199":{"vr":"SQ","Value":[{"00081150":{"vr":"UI","Value":["1.2.3"]}},{}]},` +
		`"00091010":{"vr":"OB","InlineBinary":"AAEC/w=="},` +
		`"00100010":{"vr":"PN","Value":[{"Alphabetic":"Doe^John","Ideographic":"山田^太郎","Phonetic":"やまだ^たろう"}]},` +
		`"00100020":{"vr":"LO"},` +
		`"00181030":{"vr":"LO","Value":["a \"quoted\" \u003cname\u003e \\ here"]},` +
		`"00280010":{"vr":"US","Value":[512]},` +
		`"00281050":{"vr":"DS","Value":[40.5,null,null]},` +
		`"7FE00010":{"vr":"OW","BulkDataURI":"https://x/bulk"}}`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// Invalid UTF-8 still gives valid JSON.
	bad := Object{}
	bad.SetString(0x00100010, "PN", "M\xfcller")
	b, err := json.Marshal(bad)
	if err != nil || !json.Valid(b) {
		t.Fatalf("invalid UTF-8: %s %v", b, err)
	}
	// An unsupported Go value is an error, not a panic.
	if _, err := json.Marshal(Object{1: Attr{VR: "XX", Values: []any{struct{}{}}}}); err == nil {
		t.Fatal("a struct value marshalled")
	}
}

func TestStringValue(t *testing.T) {
	cases := []struct {
		vr, in string
		want   any
	}{
		{"DS", " 1.5 ", 1.5},
		{"DS", "-0.000123E+02", -0.0123},
		{"DS", "abc", nil},
		{"IS", "+42", int64(42)},
		{"IS", "-7 ", int64(-7)},
		{"IS", "4.2", nil},
		{"LO", "  padded  ", "padded"},
		{"UI", "1.2.3\x00", "1.2.3"},
		{"LT", "  keep leading  ", "  keep leading"},
		{"CS", "", nil},
	}
	for _, tc := range cases {
		if got := stringValue(tc.vr, tc.in); got != tc.want {
			t.Errorf("%s %q: %#v, want %#v", tc.vr, tc.in, got, tc.want)
		}
	}
}

func mustElem(t *testing.T, tg tag.Tag, data any) *dcm.Element {
	t.Helper()
	e, err := dcm.NewElement(tg, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustValue(t *testing.T, data any) dcm.Value {
	t.Helper()
	v, err := dcm.NewValue(data)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFromDatasetElements(t *testing.T) {
	seqItem := []*dcm.Element{mustElem(t, tag.ReferencedSOPInstanceUID, []string{"1.2.3"})}
	elems := []*dcm.Element{
		mustElem(t, tag.TransferSyntaxUID, []string{"1.2.840.10008.1.2.1"}),
		mustElem(t, tag.PatientName, []string{"DOE^JANE"}),
		mustElem(t, tag.ImageType, []string{"ORIGINAL", "", "AXIAL"}),
		mustElem(t, tag.Rows, []int{512}),
		mustElem(t, tag.WindowCenter, []string{"40", "-600"}),
		mustElem(t, tag.DateOfLastCalibration, []string{`20090304\20090305`}),
		mustElem(t, tag.ImageComments, []string{`a\b`}),
		mustElem(t, tag.FrameIncrementPointer, []int{0x0018, 0x1063}),
		mustElem(t, tag.ReferencedImageSequence, [][]*dcm.Element{seqItem}),
		mustElem(t, tag.RedPaletteColorLookupTableData, []byte{1, 2, 3, 4}),
		mustElem(t, tag.PixelData, dcm.PixelDataInfo{IntentionallySkipped: true}),
		{Tag: tag.Tag{Group: 0x0029, Element: 0x1010}, RawValueRepresentation: "OB", Value: mustValue(t, make([]byte, maxInline+1))},
		{Tag: tag.Tag{Group: 0x0029, Element: 0x0010}, RawValueRepresentation: "UN", Value: mustValue(t, []byte("ACME 1.0"))},
		{Tag: tag.Tag{Group: 0x0029, Element: 0x1011}, RawValueRepresentation: "UN", Value: mustValue(t, []byte{})},
		{Tag: tag.PixelPaddingValue, RawValueRepresentation: "  ", Value: mustValue(t, []string{"\x00\x80"})},
	}
	o, err := FromDataset(elems)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(o)
	got := string(b)
	for _, s := range []string{
		`"00080008":{"vr":"CS","Value":["ORIGINAL",null,"AXIAL"]}`,
		`"00081140":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["1.2.3"]}}]}`,
		`"00100010":{"vr":"PN","Value":[{"Alphabetic":"DOE^JANE"}]}`,
		`"00280010":{"vr":"US","Value":[512]}`,
		`"00281050":{"vr":"DS","Value":[40,-600]}`,
		`"00181200":{"vr":"DA","Value":["20090304","20090305"]}`,
		`"00204000":{"vr":"LT","Value":["a\\b"]}`,
		`"00280009":{"vr":"AT","Value":["00181063"]}`,
		`"00281201":{"vr":"OW","InlineBinary":"AQIDBA=="}`,
		`"00290010":{"vr":"LO","Value":["ACME 1.0"]}`,
		`"00291011":{"vr":"UN"}`,
		`"00280120":{"vr":"UN","InlineBinary":"AIA="}`,
	} {
		if !strings.Contains(got, s) {
			t.Errorf("missing %s in\n%s", s, got)
		}
	}
	for _, s := range []string{`"00020010"`, `"7FE00010"`, `"00291010"`} {
		if strings.Contains(got, s) {
			t.Errorf("%s should be left out of\n%s", s, got)
		}
	}
}

// The encoder agrees with dcmtk's dcm2json on every testdata file: the same
// attributes, VRs and values, except Pixel Data and binary values above
// maxInline, which Lightbox leaves out.
func TestFromDatasetMatchesDcm2json(t *testing.T) {
	bin, err := exec.LookPath("dcm2json")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("dcm2json (Debian package dcmtk) is needed: apt-get install dcmtk")
		}
		t.Skip("dcm2json not installed")
	}
	if _, err := exec.LookPath("dcmodify"); err != nil {
		t.Fatal("dcmodify (dcmtk) is needed with dcm2json")
	}
	dir := t.TempDir()
	for _, f := range testFiles(t) {
		// dcm2json cannot write compressed pixel data: give it a copy
		// without Pixel Data, which Lightbox leaves out anyway.
		cp := filepath.Join(dir, filepath.Base(f.path))
		if err := os.WriteFile(cp, f.bytes, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("dcmodify", "-nb", "-ea", "(7fe0,0010)", cp).CombinedOutput(); err != nil {
			t.Fatalf("%s: dcmodify: %v %s", f.path, err, out)
		}
		out, err := exec.Command(bin, "-ee", cp).CombinedOutput()
		if err != nil && strings.Contains(string(out), "is not supported by the utilized character set conversion library") {
			t.Logf("%s: dcm2json cannot convert its character set here; skipped", f.path)
			continue
		}
		if err != nil {
			t.Errorf("%s: dcm2json: %v %s", f.path, err, out)
			continue
		}
		var theirs map[string]any
		if err := json.Unmarshal(out, &theirs); err != nil {
			t.Fatalf("%s: dcm2json output: %v", f.path, err)
		}
		o, err := FromDataset(f.file.Dataset.Elements)
		if err != nil {
			t.Fatalf("%s: %v", f.path, err)
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var ours map[string]any
		if err := json.Unmarshal(b, &ours); err != nil {
			t.Fatalf("%s: our JSON: %v", f.path, err)
		}
		var diffs []string
		compareJSON("", ours, theirs, &diffs)
		if len(diffs) > 0 {
			sort.Strings(diffs)
			t.Errorf("%s: %d differences from dcm2json:\n  %s", f.path, len(diffs), strings.Join(diffs[:min(len(diffs), 10)], "\n  "))
		}
	}
}

// compareJSON lists where two DICOM JSON objects differ.
func compareJSON(path string, ours, theirs map[string]any, diffs *[]string) {
	for k, tv := range theirs {
		ta := tv.(map[string]any)
		ov, ok := ours[k]
		if !ok {
			if k == "7FE00010" || k == "FFFCFFFC" || strings.HasSuffix(k, "0000") || len(fmt.Sprint(ta["InlineBinary"]))*3/4 > maxInline {
				continue
			}
			*diffs = append(*diffs, path+k+": missing")
			continue
		}
		oa := ov.(map[string]any)
		if oa["vr"] == "UN" && (k[3]-'0')%2 == 1 {
			continue // a private element: dcmtk's private dictionary knows its VR
		}
		if oa["vr"] == "FL" || oa["vr"] == "OF" {
			roundFloat32(oa)
			roundFloat32(ta)
		}
		if oa["vr"] != ta["vr"] {
			*diffs = append(*diffs, fmt.Sprintf("%s%s: VR %v, dcm2json %v", path, k, oa["vr"], ta["vr"]))
			continue
		}
		if ta["vr"] == "SQ" {
			oi, _ := oa["Value"].([]any)
			ti, _ := ta["Value"].([]any)
			if len(oi) != len(ti) {
				*diffs = append(*diffs, fmt.Sprintf("%s%s: %d items, dcm2json %d", path, k, len(oi), len(ti)))
				continue
			}
			for i := range oi {
				compareJSON(fmt.Sprintf("%s%s[%d].", path, k, i), oi[i].(map[string]any), ti[i].(map[string]any), diffs)
			}
			continue
		}
		delete(oa, "vr")
		delete(ta, "vr")
		if !reflect.DeepEqual(oa, ta) {
			*diffs = append(*diffs, fmt.Sprintf("%s%s: %.120v, dcm2json %.120v", path, k, oa, ta))
		}
	}
	for k := range ours {
		if _, ok := theirs[k]; !ok {
			*diffs = append(*diffs, path+k+": not in dcm2json")
		}
	}
}

// roundFloat32 rounds FL values to float32, where the writers' decimal
// forms of the same float32 agree.
func roundFloat32(a map[string]any) {
	vs, _ := a["Value"].([]any)
	for i, v := range vs {
		if f, ok := v.(float64); ok {
			vs[i] = float64(float32(f))
		}
	}
}

func BenchmarkFromDataset(b *testing.B) {
	var f testFile
	for _, c := range testFiles(b) {
		if strings.HasSuffix(c.path, "ct-enhanced-multiframe.dcm") {
			f = c
		}
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		o, err := FromDataset(f.file.Dataset.Elements)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := o.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
