package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqlitePragmas make every connection durable and patient: WAL with
// synchronous=FULL fsyncs the log at each commit, so a committed instance
// survives power loss; busy_timeout lets a second process (an admin
// command) wait for the write lock instead of failing.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"

var sqliteDialect = dialect{
	name: "sqlite",
	// GLOB is case-sensitive, as DICOM matching is; PN keys are matched on
	// an upper-cased copy instead.
	wildcard: func(col, ph string) string { return col + " GLOB " + ph },
	pattern:  globPattern,
	timeArg:  func(t time.Time) any { return t.UTC().Format(storedTimeLayout) },
}

// globPattern escapes GLOB's own specials; * and ? mean what they mean in
// DICOM.
func globPattern(p string) string {
	var b strings.Builder
	for _, r := range p {
		switch r {
		case '[':
			b.WriteString("[[]")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// OpenSQLite opens (creating if needed) the SQLite catalog at path and
// brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (Catalog, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite: unusable path %q", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// One connection writes, so writers queue in Go rather than spin on
	// SQLite's busy handler; BEGIN IMMEDIATE takes the write lock at once,
	// so a transaction never fails half-way upgrading a read lock.
	w, err := sql.Open("sqlite", path+"?"+sqlitePragmas+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", path+"?"+sqlitePragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	db := &sqliteDB{w: w, r: r}
	if err := pingSQLite(ctx, w); err != nil {
		db.close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	ms, err := loadMigrations(migrationsFS, sqliteDialect.name)
	if err == nil {
		err = migrate(ctx, db, &sqliteDialect, ms)
	}
	if err != nil {
		db.close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &sqlCatalog{db: db, d: &sqliteDialect}, nil
}

// pingSQLite opens the first connection. Switching a new database to WAL
// needs an exclusive lock, and SQLite answers SQLITE_BUSY at once, without
// its busy handler, when another process opening the same new database
// holds a lock (seen with four opening together): so retry, for as long
// as busy_timeout would have waited.
func pingSQLite(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := db.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sqliteDB adapts database/sql to sqlDB: reads go to a pool of read-only
// connections, writes to the single writer.
type sqliteDB struct {
	w, r *sql.DB
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

type sqlRow struct{ *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return errNoRows
	}
	return err
}

func (db *sqliteDB) exec(ctx context.Context, q string, args ...any) error {
	_, err := db.w.ExecContext(ctx, q, args...)
	return err
}

func (db *sqliteDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (db *sqliteDB) queryRow(ctx context.Context, q string, args ...any) row {
	return sqlRow{db.r.QueryRowContext(ctx, q, args...)}
}

func (db *sqliteDB) begin(ctx context.Context) (sqlTx, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqliteTx{tx}, nil
}

func (db *sqliteDB) close() error {
	return errors.Join(db.r.Close(), db.w.Close())
}

type sqliteTx struct{ tx *sql.Tx }

func (t sqliteTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, q, args...)
	return err
}

func (t sqliteTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (t sqliteTx) queryRow(ctx context.Context, q string, args ...any) row {
	return sqlRow{t.tx.QueryRowContext(ctx, q, args...)}
}

func (t sqliteTx) commit(context.Context) error { return t.tx.Commit() }

func (t sqliteTx) rollback(context.Context) error {
	if err := t.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}
