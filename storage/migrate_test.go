package storage

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	for _, d := range []string{"sqlite", "postgres"} {
		ms, err := loadMigrations(migrationsFS, d)
		if err != nil {
			t.Fatal(err)
		}
		if ms[0].version != 1 || ms[0].name != "0001_init" {
			t.Errorf("%s: first migration %+v", d, ms[0])
		}
	}
	// Both dialects must have the same migrations, or one back-end
	// would lag the other.
	a, _ := loadMigrations(migrationsFS, "sqlite")
	b, _ := loadMigrations(migrationsFS, "postgres")
	if len(a) != len(b) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(a), len(b))
	}
	for i := range a {
		if a[i].name != b[i].name {
			t.Errorf("migration %d: %s vs %s", i, a[i].name, b[i].name)
		}
	}

	for name, fsys := range map[string]fstest.MapFS{
		"duplicate number": {"migrations/x/0001_a.sql": {}, "migrations/x/1_b.sql": {}},
		"no number":        {"migrations/x/init.sql": {}},
		"zero":             {"migrations/x/0000_a.sql": {}},
		"empty":            {"migrations/x/README": {}},
		"missing":          {},
	} {
		if _, err := loadMigrations(fsys, "x"); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	ms, err := loadMigrations(fstest.MapFS{
		"migrations/x/0010_c.sql": {Data: []byte("c")},
		"migrations/x/0002_b.sql": {Data: []byte("b")},
		"migrations/x/notes.txt":  {},
	}, "x")
	if err != nil || len(ms) != 2 || ms[0].version != 2 || ms[1].version != 10 || ms[1].sql != "c" {
		t.Errorf("ordering: %+v, %v", ms, err)
	}
}

func appliedMigrations(t *testing.T, c Catalog) []int {
	t.Helper()
	r, err := c.(*sqlCatalog).db.query(context.Background(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var vs []int
	for r.Next() {
		var v int
		if err := r.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

// TestMigrationsIdempotent: opening again, or from several processes at
// once (separate pools over one database), applies each migration once and
// keeps the data.
func TestMigrationsIdempotent(t *testing.T) {
	for _, m := range catalogMakers {
		t.Run(m.name, func(t *testing.T) {
			open := m.new(t)
			const n = 4
			cats := make([]Catalog, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cats[i], errs[i] = open()
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("open %d: %v", i, err)
				}
				t.Cleanup(func() { cats[i].Close() })
			}
			want, _ := loadMigrations(migrationsFS, cats[0].(*sqlCatalog).d.name)
			if got := appliedMigrations(t, cats[0]); len(got) != len(want) {
				t.Errorf("applied %v, want %d migrations once each", got, len(want))
			}
			putAll(t, cats[0], []Instance{testInstance(1, 1, 1)})
			again := mustOpen(t, open)
			if ok, err := again.HasInstance(context.Background(), "1.2.3.1.1.1"); !ok || err != nil {
				t.Errorf("reopening lost data: %v %v", ok, err)
			}
			if got := appliedMigrations(t, again); len(got) != len(want) {
				t.Errorf("after reopening: applied %v", got)
			}
		})
	}
}

// TestSchemaTooNew: a database migrated by a newer program is refused
// rather than used with a schema this one does not know.
func TestSchemaTooNew(t *testing.T) {
	for _, m := range catalogMakers {
		t.Run(m.name, func(t *testing.T) {
			open := m.new(t)
			c, err := open()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.(*sqlCatalog).db.exec(context.Background(),
				"INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')"); err != nil {
				t.Fatal(err)
			}
			c.Close()
			if c, err = open(); !errors.Is(err, ErrSchemaTooNew) {
				if c != nil {
					c.Close()
				}
				t.Errorf("open = %v, want ErrSchemaTooNew", err)
			}
		})
	}
}

// TestMigrateToCRC32C upgrades a catalog whose instances carry a SHA-256
// (migration 0003): they keep their rows, without a checksum, and new
// ones get theirs. The older schema is made by undoing 0003 by hand.
func TestMigrateToCRC32C(t *testing.T) {
	for _, m := range catalogMakers {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			open := m.new(t)
			c, err := open()
			if err != nil {
				t.Fatal(err)
			}
			old := testInstance(1, 1, 1)
			putAll(t, c, []Instance{old})
			db := c.(*sqlCatalog).db
			for _, q := range []string{
				"ALTER TABLE instances DROP COLUMN crc32c",
				"ALTER TABLE instances ADD COLUMN sha256 " + map[string]string{"sqlite": "BLOB", "postgres": "BYTEA"}[m.name],
				"UPDATE instances SET sha256 = " + map[string]string{"sqlite": "zeroblob(32)", "postgres": "decode(repeat('00', 32), 'hex')"}[m.name],
				"DELETE FROM schema_migrations WHERE version = 3",
			} {
				if err := db.exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			c.Close()
			c = mustOpen(t, open)
			got, err := c.GetInstance(ctx, old.SOPInstanceUID)
			if err != nil || got.CRC32C != nil || got.BlobKey != old.BlobKey {
				t.Fatalf("after the upgrade: %+v, %v; want the row, without a checksum", got, err)
			}
			fresh := testInstance(1, 1, 2)
			top := uint32(0xFFFFFFFF) // the sign bit of an INTEGER that is not 64-bit
			fresh.CRC32C = &top
			putAll(t, c, []Instance{fresh})
			if got, err := c.GetInstance(ctx, fresh.SOPInstanceUID); err != nil || got.CRC32C == nil || *got.CRC32C != *fresh.CRC32C {
				t.Errorf("a new instance: %+v, %v; want its CRC-32C", got.CRC32C, err)
			}
		})
	}
}
