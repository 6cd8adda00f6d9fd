package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// newPostgresSchema makes an empty schema for one test in the database at
// base and returns a URL whose connections use it; it is dropped after.
func newPostgresSchema(t testing.TB, base string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to LIGHTBOX_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "lbtest_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestLikePattern(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SMITH*", "SMITH%"},
		{"?OE", "_OE"},
		{"A_C%4*", `A\_C\%4%`},
		{`back\slash`, `back\\slash`},
		{"[x]", "[x]"},
		{"", ""},
	} {
		if got := likePattern(tc.in); got != tc.want {
			t.Errorf("likePattern(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	got := redactURL("postgres://user:secret@host:5432/db")
	if strings.Contains(got, "secret") || !strings.Contains(got, "host:5432") {
		t.Errorf("redactURL = %q", got)
	}
	if got := redactURL("s3://AK:SK@h/b"); strings.Contains(got, "SK") {
		t.Errorf("redactURL = %q", got)
	}
	if got := redactURL("::bad"); got != "(unparsable URL)" {
		t.Errorf("redactURL(bad) = %q", got)
	}
}

func TestOpenPostgresBadURL(t *testing.T) {
	_, err := OpenPostgres(context.Background(), "postgres://u:topsecret@127.0.0.1:1/db?connect_timeout=1")
	if err == nil {
		t.Fatal("opened a database on port 1")
	}
	if strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error shows the password: %v", err)
	}
}
