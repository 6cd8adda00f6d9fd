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

// TestSQLiteSyncPerTransaction: an instance's row commits without an fsync
// (synchronous=NORMAL, rebuilt by Store.Recover if lost); every other
// write, such as a token, with one (FULL).
func TestSQLiteSyncPerTransaction(t *testing.T) {
	ctx := context.Background()
	c, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := c.(*sqlCatalog).db.(*sqliteDB).w
	level := func() string {
		var got string
		if err := w.QueryRow("PRAGMA synchronous").Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if _, err := c.PutInstance(ctx, testInstance(1, 1, 1), nil); err != nil {
		t.Fatal(err)
	}
	if got := level(); got != "1" {
		t.Errorf("after an instance: synchronous %s, want 1 (NORMAL)", got)
	}
	if _, _, err := c.(Admin).CreateToken(ctx, "t", RolePACS); err != nil {
		t.Fatal(err)
	}
	if got := level(); got != "2" {
		t.Errorf("after a token: synchronous %s, want 2 (FULL)", got)
	}
	// A write outside a transaction of the catalog's own gets FULL too.
	if _, err := c.PutInstance(ctx, testInstance(1, 1, 2), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.(*sqlCatalog).db.exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	if got := level(); got != "2" {
		t.Errorf("after a bare write: synchronous %s, want 2 (FULL)", got)
	}
}
