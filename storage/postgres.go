package storage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationLockID is the advisory lock key held while migrating; any fixed
// number works as long as nothing else in the database uses it.
const migrationLockID = 0x4c42_5354 // "LBST"

var postgresDialect = dialect{
	name:        "postgres",
	wildcard:    func(col, ph string) string { return col + ` LIKE ` + ph + ` ESCAPE '\'` },
	pattern:     likePattern,
	timeArg:     func(t time.Time) any { return t.UTC() },
	migrateLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockID),
}

// likePattern turns a DICOM pattern into a LIKE pattern with \ as escape.
func likePattern(p string) string {
	var b strings.Builder
	for _, r := range p {
		switch r {
		case '*':
			b.WriteByte('%')
		case '?':
			b.WriteByte('_')
		case '%', '_', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// OpenPostgres connects to the PostgreSQL database at a postgres:// URL
// (any pgx connection string; pool_max_conns and friends work) and brings
// its schema up to date.
func OpenPostgres(ctx context.Context, dbURL string) (Catalog, error) {
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", redactURL(dbURL), err)
	}
	db := &pgDB{pool: pool}
	ms, err := loadMigrations(migrationsFS, postgresDialect.name)
	if err == nil {
		err = migrate(ctx, db, &postgresDialect, ms)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", redactURL(dbURL), err)
	}
	return &sqlCatalog{db: db, d: &postgresDialect}, nil
}

// redactURL hides the password of a URL for error messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// pgDB adapts pgxpool to sqlDB.
type pgDB struct{ pool *pgxpool.Pool }

type pgRows struct{ pgx.Rows }

type pgRow struct{ pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	return err
}

func (db *pgDB) exec(ctx context.Context, q string, args ...any) error {
	_, err := db.pool.Exec(ctx, q, args...)
	return err
}

func (db *pgDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{r}, nil
}

func (db *pgDB) queryRow(ctx context.Context, q string, args ...any) row {
	return pgRow{db.pool.QueryRow(ctx, q, args...)}
}

func (db *pgDB) begin(ctx context.Context) (sqlTx, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return pgTx{tx}, nil
}

// beginRebuildable is begin: PostgreSQL commits durably, as its
// synchronous_commit says, and several nodes may share it.
func (db *pgDB) beginRebuildable(ctx context.Context) (sqlTx, error) {
	return db.begin(ctx)
}

func (db *pgDB) close() error {
	db.pool.Close()
	return nil
}

type pgTx struct{ tx pgx.Tx }

func (t pgTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, q, args...)
	return err
}

func (t pgTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{r}, nil
}

func (t pgTx) queryRow(ctx context.Context, q string, args ...any) row {
	return pgRow{t.tx.QueryRow(ctx, q, args...)}
}

func (t pgTx) commit(ctx context.Context) error { return t.tx.Commit(ctx) }

func (t pgTx) rollback(ctx context.Context) error {
	if err := t.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return err
	}
	return nil
}
