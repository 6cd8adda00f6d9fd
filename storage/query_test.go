package storage

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNormalizePN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Smith^John", "SMITH^JOHN"},
		{"Smith^John^^^", "SMITH^JOHN"},
		{" Smith ^ John ", "SMITH^JOHN"},
		{"Smith^John^^^=", "SMITH^JOHN"},
		{"Yamada^Tarou=山田^太郎=やまだ^たろう", "YAMADA^TAROU=山田^太郎=やまだ^たろう"},
		{"Müller^Jürgen", "MÜLLER^JÜRGEN"},
		{"^^^", ""},
		{"", ""},
		{"smith*", "SMITH*"},
		{"*^j?hn", "*^J?HN"},
	} {
		if got := normalizePN(tc.in); got != tc.want {
			t.Errorf("normalizePN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidDateTime(t *testing.T) {
	for _, tc := range []struct {
		s          string
		date, time bool
	}{
		{"20200101", true, false},
		{"2020010", false, false},
		{"2020-01-01", false, false},
		{"10", false, true},
		{"1015", false, true},
		{"101500", true, true}, // six digits: a valid TM, and 8 digits are required for DA
		{"101500.123456", false, true},
		{"101500.1234567", false, false},
		{"1015.5", false, false},
		{"101500.", false, false},
		{"10:15", false, false},
		{"", false, false},
	} {
		if got := validDate(tc.s); got != tc.date && len(tc.s) == 8 {
			t.Errorf("validDate(%q) = %v", tc.s, got)
		}
		if got := validTime(tc.s); got != tc.time {
			t.Errorf("validTime(%q) = %v", tc.s, got)
		}
	}
	if validDate("101500") {
		t.Error("validDate accepts 6 digits")
	}
}

func TestSupportedKeys(t *testing.T) {
	study, series, inst := SupportedKeys(LevelStudy), SupportedKeys(LevelSeries), SupportedKeys(LevelInstance)
	if len(study) != 12 || len(series) != 16 || len(inst) != len(matchKeys) {
		t.Errorf("%d/%d/%d keys", len(study), len(series), len(inst))
	}
	for _, k := range study {
		if k == "Modality" || k == "SOPInstanceUID" {
			t.Errorf("study level offers %s", k)
		}
	}
	if !reflect.DeepEqual(inst[:3], []string{"AccessionNumber", "Columns", "InstanceNumber"}) {
		t.Errorf("not sorted: %v", inst[:3])
	}
}

// TestWhereBuilderBounds: values and lists beyond what DICOM can hold are
// refused before they reach the database.
func TestWhereBuilderBounds(t *testing.T) {
	many := strings.Repeat("1.2.3\\", maxListValues) + "1.2.4"
	for name, m := range map[string]map[string]string{
		"too many UIDs":       {"StudyInstanceUID": many},
		"too many modalities": {"ModalitiesInStudy": strings.Repeat("CT,", maxListValues+1)},
		"value too long":      {"PatientID": strings.Repeat("x", maxMatchValue+1)},
		"UID too long":        {"StudyInstanceUID": strings.Repeat("1", 65)},
		"int overflow":        {"SeriesNumber": "99999999999"},
	} {
		w := whereBuilder{d: &sqliteDialect}
		if err := w.build(LevelInstance, Query{Match: m}); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%s: %v", name, err)
		}
	}
	w := whereBuilder{d: &sqliteDialect}
	if err := w.build(LevelInstance, Query{Match: map[string]string{"StudyInstanceUID": strings.Repeat("1.2.3\\", maxListValues-1) + "1.2.4"}}); err != nil {
		t.Errorf("%d UIDs: %v", maxListValues, err)
	}
	if len(w.args) != maxListValues {
		t.Errorf("%d arguments", len(w.args))
	}
}

// FuzzQuery feeds matching keys and values from outside (QIDO query
// strings) through the real SQL of the SQLite catalog: any outcome other
// than a result or ErrBadQuery — above all an SQL error — is a bug in how
// values are escaped or bound.
func FuzzQuery(f *testing.F) {
	for _, tc := range qidoCases {
		for k, v := range tc.match {
			f.Add(k, v, uint8(tc.level), uint8(tc.limit), uint8(tc.offs))
		}
	}
	f.Add("PatientName", `'; DROP TABLE instances; --`, uint8(3), uint8(0), uint8(0))
	f.Add("StudyDescription", `[*]%_\`, uint8(1), uint8(1), uint8(0))
	f.Add("StudyTime", "10-", uint8(1), uint8(0), uint8(0))
	c, err := OpenSQLite(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	putAll(f, c, qidoFixture())
	f.Fuzz(func(t *testing.T, key, value string, level, limit, offset uint8) {
		lv := Level(level%3) + LevelStudy
		q := Query{Match: map[string]string{key: value}, Limit: int(limit), Offset: int(offset)}
		got, err := runQuery(context.Background(), c, lv, q)
		if err != nil && !errors.Is(err, ErrBadQuery) {
			t.Fatalf("%s=%q at level %d: %v", key, value, lv, err)
		}
		if len(got) > 10 {
			t.Fatalf("%d results from a 10-instance archive", len(got))
		}
	})
}

func TestNormalizeDA(t *testing.T) {
	for in, want := range map[string]string{
		"1999.05.24":            "19990524",
		"19990524":              "19990524",
		"1999.05.24-2000.01.01": "19990524-20000101",
		"-1999.05.24":           "-19990524",
		"1999.5.24":             "1999.5.24",
		"":                      "",
	} {
		if got := NormalizeDA(in); got != want {
			t.Errorf("NormalizeDA(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeTM(t *testing.T) {
	for in, want := range map[string]string{
		"11:25:01":          "112501",
		"11:25:01.5":        "112501.5",
		"112501":            "112501",
		"11:25:01-12:00:00": "112501-120000",
		"11:25":             "11:25",
	} {
		if got := NormalizeTM(in); got != want {
			t.Errorf("NormalizeTM(%q) = %q, want %q", in, got, want)
		}
	}
}
