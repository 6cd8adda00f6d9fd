package storage

import (
	"context"
	"path/filepath"
	"testing"
)

func TestGlobPattern(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SMITH*", "SMITH*"},
		{"?OE", "?OE"},
		{"[C]T*", "[[]C]T*"},
		{"A_C%4", "A_C%4"},
	} {
		if got := globPattern(tc.in); got != tc.want {
			t.Errorf("globPattern(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOpenSQLiteBadPath(t *testing.T) {
	for _, p := range []string{"", "x.db?mode=ro", filepath.Join(t.TempDir(), "a#b")} {
		if c, err := OpenSQLite(context.Background(), p); err == nil {
			c.Close()
			t.Errorf("OpenSQLite(%q) succeeded", p)
		}
	}
}

// TestSQLiteDurabilitySettings: the pragmas that make a commit durable are
// in force on the connections the catalog writes with.
func TestSQLiteDurabilitySettings(t *testing.T) {
	c, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := c.(*sqlCatalog).db.(*sqliteDB).w
	for pragma, want := range map[string]string{
		"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000",
	} {
		var got string
		if err := w.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}
