package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqlitePragmas make every connection durable and patient: WAL with
// synchronous=FULL fsyncs the log at each commit, so a commit survives
// power loss (ingest relaxes this per transaction: beginRebuildable);
// busy_timeout lets a second process (an admin
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
//
// Statements are prepared once and kept: parsing SQL was a tenth of the
// CPU of an ingest. The writer's are prepared outside any transaction —
// preparing on w while a transaction holds its one connection would wait
// for ever — so a statement first seen in a transaction runs unprepared
// and is prepared once the transaction ends.
type sqliteDB struct {
	w, r *sql.DB

	syncMode string // the writer's synchronous setting, "" before the first

	mu      sync.Mutex
	rstmts  map[string]*sql.Stmt
	wstmts  map[string]*sql.Stmt
	pending map[string]bool
}

// maxStmts bounds each cache: QIDO builds its SQL from the query, and
// rarely the same twice.
const maxStmts = 64

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

// sqlRunner runs SQL: *sql.DB and *sql.Tx with its text, a prepared
// statement (stmtRunner) without.
type sqlRunner interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// stmtRunner runs a prepared statement, ignoring the text it was made from.
type stmtRunner struct{ st *sql.Stmt }

func (s stmtRunner) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return s.st.ExecContext(ctx, args...)
}

func (s stmtRunner) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return s.st.QueryContext(ctx, args...)
}

func (s stmtRunner) QueryRowContext(ctx context.Context, _ string, args ...any) *sql.Row {
	return s.st.QueryRowContext(ctx, args...)
}

func queryOn(ctx context.Context, r sqlRunner, q string, args ...any) (rows, error) {
	rs, err := r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

// reader returns q prepared on the reader pool, or nil to run it as is.
// The lock is not held while preparing: that waits for a free reader,
// which a caller holding the lock for its next query would never free.
func (db *sqliteDB) reader(ctx context.Context, q string) *sql.Stmt {
	db.mu.Lock()
	st, ok := db.rstmts[q]
	full := len(db.rstmts) >= maxStmts
	db.mu.Unlock()
	if ok || full {
		return st
	}
	st, err := db.r.PrepareContext(ctx, q)
	if err != nil {
		return nil // run as is, and let that report the error
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if prev, ok := db.rstmts[q]; ok {
		st.Close()
		return prev
	}
	if db.rstmts == nil {
		db.rstmts = map[string]*sql.Stmt{}
	}
	db.rstmts[q] = st
	return st
}

// writer returns q prepared on the writer, or nil after noting it for
// prepareWriter.
func (db *sqliteDB) writer(q string) *sql.Stmt {
	db.mu.Lock()
	defer db.mu.Unlock()
	if st, ok := db.wstmts[q]; ok {
		return st
	}
	if len(db.wstmts)+len(db.pending) < maxStmts {
		if db.pending == nil {
			db.pending = map[string]bool{}
		}
		db.pending[q] = true
	}
	return nil
}

// prepareWriter prepares what transactions noted; called with no
// transaction of ours open.
func (db *sqliteDB) prepareWriter(ctx context.Context) {
	db.mu.Lock()
	var qs []string
	for q := range db.pending {
		qs = append(qs, q)
	}
	db.pending = nil
	db.mu.Unlock()
	for _, q := range qs {
		st, err := db.w.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		db.mu.Lock()
		if db.wstmts == nil {
			db.wstmts = map[string]*sql.Stmt{}
		}
		if _, ok := db.wstmts[q]; ok {
			st.Close()
		} else {
			db.wstmts[q] = st
		}
		db.mu.Unlock()
	}
}

// exec runs a write in a transaction of its own: run bare on the writer,
// it would commit with whatever synchronous setting the last transaction
// left on the connection, perhaps NORMAL (see beginSync).
func (db *sqliteDB) exec(ctx context.Context, q string, args ...any) error {
	t, err := db.begin(ctx)
	if err != nil {
		return err
	}
	if err := t.exec(ctx, q, args...); err != nil {
		t.rollback(ctx)
		return err
	}
	return t.commit(ctx)
}

// on returns what runs q on the reader pool: its prepared statement, or
// the pool itself.
func (db *sqliteDB) on(ctx context.Context, q string) sqlRunner {
	if st := db.reader(ctx, q); st != nil {
		return stmtRunner{st}
	}
	return db.r
}

func (db *sqliteDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	return queryOn(ctx, db.on(ctx, q), q, args...)
}

func (db *sqliteDB) queryRow(ctx context.Context, q string, args ...any) row {
	return sqlRow{db.on(ctx, q).QueryRowContext(ctx, q, args...)}
}

func (db *sqliteDB) begin(ctx context.Context) (sqlTx, error) {
	return db.beginSync(ctx, "FULL")
}

// beginRebuildable commits with synchronous=NORMAL: in WAL mode the
// commit is not fsynced, and is durable at the next checkpoint. A process
// crash loses nothing (the log is in the page cache); a power failure may
// lose the last commits, which is safe only for what can be rebuilt.
// That fsync was a tenth of an ingest.
func (db *sqliteDB) beginRebuildable(ctx context.Context) (sqlTx, error) {
	return db.beginSync(ctx, "NORMAL")
}

// beginSync begins a transaction on the writer with its commit synced as
// sync says. SQLite refuses to change that inside a transaction, so it is
// set on the connection first, when it differs from the last setting
// (a connection database/sql opens afresh starts at FULL, and is then
// at worst more durable than asked).
func (db *sqliteDB) beginSync(ctx context.Context, sync string) (sqlTx, error) {
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return nil, err
	}
	// The writer has one connection and we hold it: db.syncMode is ours.
	if db.syncMode != sync {
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = "+sync); err != nil {
			conn.Close()
			return nil, fmt.Errorf("set synchronous: %w", err)
		}
		db.syncMode = sync
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &sqliteTx{tx: tx, conn: conn, db: db}, nil
}

func (db *sqliteDB) close() error {
	return errors.Join(db.r.Close(), db.w.Close())
}

type sqliteTx struct {
	tx   *sql.Tx
	conn *sql.Conn
	db   *sqliteDB
	done bool
}

// on returns what runs q in the transaction: the writer's prepared
// statement bound to it, or the transaction itself.
func (t *sqliteTx) on(ctx context.Context, q string) sqlRunner {
	if st := t.db.writer(q); st != nil {
		return stmtRunner{t.tx.StmtContext(ctx, st)}
	}
	return t.tx
}

func (t *sqliteTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.on(ctx, q).ExecContext(ctx, q, args...)
	return err
}

func (t *sqliteTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	return queryOn(ctx, t.on(ctx, q), q, args...)
}

func (t *sqliteTx) queryRow(ctx context.Context, q string, args ...any) row {
	return sqlRow{t.on(ctx, q).QueryRowContext(ctx, q, args...)}
}

func (t *sqliteTx) commit(ctx context.Context) error {
	err := t.tx.Commit()
	t.end(ctx)
	return err
}

func (t *sqliteTx) rollback(ctx context.Context) error {
	err := t.tx.Rollback()
	t.end(ctx)
	if err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

// end hands the connection back, then prepares what the transaction
// noted: preparing needs that connection.
func (t *sqliteTx) end(ctx context.Context) {
	if !t.done {
		t.done = true
		t.conn.Close()
		t.db.prepareWriter(context.WithoutCancel(ctx))
	}
}
