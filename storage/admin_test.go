package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCanonicalAETitle(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"STORESCU", "STORESCU", true},
		{"  ORTHANC ", "ORTHANC", true},
		{"A", "A", true},
		{"SIXTEEN_CHARS_AE", "SIXTEEN_CHARS_AE", true},
		{"  SIXTEEN_CHARS_AE  ", "SIXTEEN_CHARS_AE", true}, // spaces do not count
		{"CT 1", "CT 1", true},                             // inner spaces are significant
		{"lower", "lower", true},
		{"", "", false},
		{"    ", "", false},
		{"SEVENTEEN_CHARS_A", "", false},
		{`BACK\SLASH`, "", false},
		{"TAB\tAE", "", false},
		{"NUL\x00", "", false},
		{"DEL\x7f", "", false},
		{"MÜLLER", "", false},
		{"\nAE", "", false},
	} {
		got, err := CanonicalAETitle(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("CanonicalAETitle(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CanonicalAETitle(%q): %v does not match ErrInvalid", tc.in, err)
		}
	}
}

func TestCanonicalHost(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"10.0.0.5", "10.0.0.5", true},
		{" 10.0.0.5 ", "10.0.0.5", true},
		{"10.0.0.5/32", "10.0.0.5", true},
		{"10.0.0.0/24", "10.0.0.0/24", true},
		{"10.0.0.77/24", "10.0.0.0/24", true}, // host bits cleared
		{"::1", "::1", true},
		{"0:0:0:0:0:0:0:1", "::1", true},
		{"::ffff:192.168.1.2", "192.168.1.2", true},
		{"::ffff:192.168.1.0/120", "192.168.1.0/24", true},
		{"FD00::/8", "fd00::/8", true},
		{"2001:db8::1/128", "2001:db8::1", true},
		{"any", AnyHost, true},
		{"", "", false},
		{"0.0.0.0/0", "", false},
		{"::/0", "", false},
		{"::ffff:0.0.0.0/96", "", false},
		{"::ffff:0:0/64", "", false},
		{"pacs.hospital.example", "", false},
		{"10.0.0.256", "", false},
		{"10.0.0.0/33", "", false},
		{"fe80::1%eth0", "", false},
		{"ANY", "", false},
		{"*", "", false},
	} {
		got, err := CanonicalHost(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CanonicalHost(%q): %v does not match ErrInvalid", tc.in, err)
		}
	}
}

func TestAdminPACS(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		if got, err := c.ListPACS(ctx); err != nil || len(got) != 0 {
			t.Fatalf("fresh catalog lists %v, %v", got, err)
		}
		before := time.Now().Add(-time.Second)
		n, err := c.AddPACS(ctx, PACSNode{AETitle: " ORTHANC ", Host: "10.0.0.5/32", Description: " main archive "})
		if err != nil {
			t.Fatal(err)
		}
		if n.AETitle != "ORTHANC" || n.Host != "10.0.0.5" || n.Description != "main archive" || n.CreatedAt.Before(before) {
			t.Errorf("AddPACS returned %+v", n)
		}
		for _, add := range []PACSNode{
			{AETitle: "STORESCU", Host: "::1"},
			{AETitle: "ORTHANC", Host: "192.168.0.0/16"},
			{AETitle: "MODALITY", Host: AnyHost},
		} {
			if _, err := c.AddPACS(ctx, add); err != nil {
				t.Fatal(err)
			}
		}

		// The same node again, in any spelling of it, is refused and the
		// error names the one that is there.
		for _, dup := range []PACSNode{{AETitle: "ORTHANC", Host: "10.0.0.5"}, {AETitle: "ORTHANC  ", Host: "::ffff:10.0.0.5"}} {
			_, err := c.AddPACS(ctx, dup)
			if !errors.Is(err, ErrDuplicate) {
				t.Fatalf("AddPACS(%+v) again: %v, want ErrDuplicate", dup, err)
			}
			for _, want := range []string{"ORTHANC", "10.0.0.5", "main archive", n.CreatedAt.Format(time.RFC3339)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("duplicate error %q does not name %q", err, want)
				}
			}
		}
		for _, bad := range []PACSNode{{AETitle: "", Host: "10.0.0.1"}, {AETitle: `A\B`, Host: "10.0.0.1"},
			{AETitle: "X", Host: "pacs.example"}, {AETitle: "X", Host: "0.0.0.0/0"}} {
			if _, err := c.AddPACS(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("AddPACS(%+v): %v, want ErrInvalid", bad, err)
			}
		}

		got, err := c.ListPACS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, g := range got {
			keys = append(keys, g.AETitle+"@"+g.Host)
			if g.CreatedAt.IsZero() {
				t.Errorf("%s: no CreatedAt", g.AETitle)
			}
		}
		want := "MODALITY@any ORTHANC@10.0.0.5 ORTHANC@192.168.0.0/16 STORESCU@::1"
		if strings.Join(keys, " ") != want {
			t.Errorf("ListPACS = %v, want %s", keys, want)
		}
		if !got[1].CreatedAt.Equal(n.CreatedAt) || got[1].Description != "main archive" {
			t.Errorf("stored %+v, returned %+v", got[1], n)
		}

		if err := c.RemovePACS(ctx, "ORTHANC", "10.0.0.5/32"); err != nil {
			t.Fatal(err)
		}
		if err := c.RemovePACS(ctx, "ORTHANC", "10.0.0.5"); !errors.Is(err, ErrNotFound) {
			t.Errorf("removing twice: %v, want ErrNotFound", err)
		}
		if err := c.RemovePACS(ctx, "ORTHANC", "bad host"); !errors.Is(err, ErrInvalid) {
			t.Errorf("RemovePACS bad host: %v, want ErrInvalid", err)
		}
		if got, _ := c.ListPACS(ctx); len(got) != 3 {
			t.Errorf("after remove: %v", got)
		}
		// Removed, it can be added again.
		if _, err := c.AddPACS(ctx, PACSNode{AETitle: "ORTHANC", Host: "10.0.0.5"}); err != nil {
			t.Errorf("re-adding a removed node: %v", err)
		}
	})
}

func TestAdminAllowPACS(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		for _, n := range []PACSNode{
			{AETitle: "STORESCU", Host: "127.0.0.1"},
			{AETitle: "STORESCU", Host: "::1"},
			{AETitle: "ORTHANC", Host: "10.1.0.0/16"},
			{AETitle: "V6NET", Host: "fd00:1234::/32"},
			{AETitle: "ANYWHERE", Host: AnyHost},
			{AETitle: "CT 1", Host: "192.168.7.7"},
		} {
			if _, err := c.AddPACS(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			ae     string
			remote net.IP
			want   bool
		}{
			{"STORESCU", net.ParseIP("127.0.0.1"), true}, // 16-byte form
			{"STORESCU", net.IPv4(127, 0, 0, 1).To4(), true},
			{"STORESCU", net.ParseIP("::ffff:127.0.0.1"), true}, // from a dual-stack listener
			{"STORESCU", net.IPv6loopback, true},
			{"STORESCU", net.ParseIP("127.0.0.2"), false},
			{"STORESCU", net.ParseIP("::2"), false},
			{"STORESCU  ", net.ParseIP("127.0.0.1"), true}, // trailing spaces are not significant
			{"storescu", net.ParseIP("127.0.0.1"), false},  // AE titles are case-sensitive
			{"STORESCU", nil, false},
			{"ORTHANC", net.ParseIP("10.1.200.3"), true},
			{"ORTHANC", net.ParseIP("10.2.0.1"), false},
			{"ORTHANC", net.ParseIP("127.0.0.1"), false},
			{"V6NET", net.ParseIP("fd00:1234:5::9"), true},
			{"V6NET", net.ParseIP("fd00:1235::9"), false},
			{"V6NET", net.IPv6loopback, false},
			{"ANYWHERE", net.ParseIP("203.0.113.9"), true},
			{"ANYWHERE", net.ParseIP("2001:db8::1"), true},
			{"ANYWHERE", nil, true},
			{"CT 1", net.ParseIP("192.168.7.7"), true},
			{"UNKNOWN", net.ParseIP("127.0.0.1"), false},
			{"", net.ParseIP("127.0.0.1"), false},
			{`STORE\SCU`, net.ParseIP("127.0.0.1"), false},
			{"STORESCU", net.IP{1, 2, 3}, false}, // not an address at all
		} {
			got, err := c.AllowPACS(ctx, tc.ae, tc.remote)
			if err != nil || got != tc.want {
				t.Errorf("AllowPACS(%q, %v) = %v, %v; want %v", tc.ae, tc.remote, got, err, tc.want)
			}
		}
		// A removal applies to the next association: there is no cache.
		if err := c.RemovePACS(ctx, "STORESCU", "::1"); err != nil {
			t.Fatal(err)
		}
		if ok, err := c.AllowPACS(ctx, "STORESCU", net.IPv6loopback); ok || err != nil {
			t.Errorf("after removal: %v, %v", ok, err)
		}
		if ok, err := c.AllowPACS(ctx, "STORESCU", net.ParseIP("127.0.0.1")); !ok || err != nil {
			t.Errorf("the other host of the AE title went with it: %v, %v", ok, err)
		}
	})
}

func TestAdminTokens(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		plain, tok, err := c.CreateToken(ctx, "orthanc-1", RolePACS)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(plain, TokenPrefix) || len(plain) != tokenLen || tokenLen != 47 {
			t.Errorf("token %d chars, want %s + 43", len(plain), TokenPrefix)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(plain, TokenPrefix)); err != nil || len(raw) != 32 {
			t.Errorf("token body: %d bytes, %v", len(raw), err)
		}
		if tok.Name != "orthanc-1" || tok.Role != RolePACS || tok.CreatedAt.IsZero() || !tok.LastUsedAt.IsZero() || tok.Revoked() {
			t.Errorf("CreateToken returned %+v", tok)
		}
		plain2, _, err := c.CreateToken(ctx, "admin.tool_2", RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		if plain2 == plain {
			t.Fatal("two tokens are equal")
		}

		name, role, err := c.VerifyToken(ctx, plain)
		if err != nil || name != "orthanc-1" || role != RolePACS {
			t.Fatalf("VerifyToken = %q, %q, %v", name, role, err)
		}
		if name, role, err := c.VerifyToken(ctx, plain2); err != nil || name != "admin.tool_2" || role != RoleAdmin {
			t.Errorf("VerifyToken(second) = %q, %q, %v", name, role, err)
		}

		// Names are unique, revoked or not.
		if _, _, err := c.CreateToken(ctx, "orthanc-1", RolePACS); !errors.Is(err, ErrDuplicate) ||
			!strings.Contains(err.Error(), "orthanc-1") {
			t.Errorf("duplicate name: %v", err)
		}
		for _, bad := range []struct{ name, role string }{
			{"", RolePACS}, {"has space", RolePACS}, {"semi;colon", RolePACS}, {strings.Repeat("n", 65), RolePACS},
			{"ok", ""}, {"ok", "PACS"}, {"ok", "root"},
		} {
			if _, _, err := c.CreateToken(ctx, bad.name, bad.role); !errors.Is(err, ErrInvalid) {
				t.Errorf("CreateToken(%q, %q): %v, want ErrInvalid", bad.name, bad.role, err)
			}
		}

		// Anything but the exact token is refused, and the error never
		// repeats what was sent.
		flipped := []byte(plain)
		if flipped[10] == 'A' {
			flipped[10] = 'B'
		} else {
			flipped[10] = 'A'
		}
		for _, bad := range []string{"", "lbx_", plain[:len(plain)-1], plain + "A", string(flipped),
			"xyz_" + plain[4:], strings.ToUpper(plain), plain[:20] + "!" + plain[21:], " " + plain} {
			_, _, err := c.VerifyToken(ctx, bad)
			if !errors.Is(err, ErrTokenInvalid) {
				t.Errorf("VerifyToken(%q): %v, want ErrTokenInvalid", bad, err)
			}
			if err != nil && len(bad) > 8 && strings.Contains(err.Error(), bad[4:]) {
				t.Errorf("error quotes the token: %v", err)
			}
		}

		list, err := c.ListTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Name != "admin.tool_2" || list[1].Name != "orthanc-1" {
			t.Fatalf("ListTokens = %+v", list)
		}
		if list[1].LastUsedAt.IsZero() || list[1].LastUsedAt.Before(list[1].CreatedAt) || list[1].Revoked() {
			t.Errorf("after use: %+v", list[1])
		}
		if s := fmt.Sprintf("%#v", list); strings.Contains(s, plain[4:]) || strings.Contains(s, plain2[4:]) {
			t.Errorf("ListTokens shows a secret: %s", s)
		}

		if err := c.RevokeToken(ctx, "orthanc-1"); err != nil {
			t.Fatal(err)
		}
		_, _, err = c.VerifyToken(ctx, plain)
		if !errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("revoked token: %v", err)
		}
		first, _ := c.ListTokens(ctx)
		if err := c.RevokeToken(ctx, "orthanc-1"); err != nil {
			t.Errorf("revoking twice: %v", err)
		}
		again, _ := c.ListTokens(ctx)
		if !first[1].Revoked() || !again[1].RevokedAt.Equal(first[1].RevokedAt) {
			t.Errorf("revocation time: %v then %v", first[1].RevokedAt, again[1].RevokedAt)
		}
		if err := c.RevokeToken(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking an unknown token: %v", err)
		}
		// The other token is untouched.
		if _, _, err := c.VerifyToken(ctx, plain2); err != nil {
			t.Errorf("other token after revocation: %v", err)
		}
	})
}

// TestAdminTokenLastUsed: last_used_at is written when it is a minute old
// or more, and left alone otherwise. The stored time is set by hand, so
// the test does not depend on how long it runs.
func TestAdminTokenLastUsed(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		sc := c.(*sqlCatalog)
		plain, _, err := c.CreateToken(ctx, "t", RolePACS)
		if err != nil {
			t.Fatal(err)
		}
		setUsed := func(at time.Time) {
			t.Helper()
			if err := sc.inTx(ctx, func(tx sqlTx) error {
				return tx.exec(ctx, "UPDATE api_tokens SET last_used_at = $1", sc.d.timeArg(at))
			}); err != nil {
				t.Fatal(err)
			}
		}
		lastUsed := func() time.Time {
			t.Helper()
			l, err := c.ListTokens(ctx)
			if err != nil || len(l) != 1 {
				t.Fatal(l, err)
			}
			return l[0].LastUsedAt
		}
		recent := time.Now().Add(-10 * time.Second).UTC().Truncate(time.Microsecond)
		setUsed(recent)
		if _, _, err := c.VerifyToken(ctx, plain); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); !got.Equal(recent) {
			t.Errorf("used 10 s ago: last_used_at moved to %v", got)
		}
		old := time.Now().Add(-2 * time.Minute).UTC().Truncate(time.Microsecond)
		setUsed(old)
		if _, _, err := c.VerifyToken(ctx, plain); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); !got.After(old.Add(time.Minute)) {
			t.Errorf("used 2 min ago: last_used_at = %v, not updated", got)
		}
	})
}

// TestAdminTokenHashOnly: the database holds the token's SHA-256 and
// nothing from which the token could be read back.
func TestAdminTokenHashOnly(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, c Catalog) {
		ctx := context.Background()
		plain, _, err := c.CreateToken(ctx, "pacs", RolePACS)
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		var name, role, created string
		var hash []byte
		var used, revoked *string
		err = c.(*sqlCatalog).db.queryRow(ctx, `SELECT id, name, role, token_hash, CAST(created_at AS TEXT),
			CAST(last_used_at AS TEXT), CAST(revoked_at AS TEXT) FROM api_tokens`).Scan(&id, &name, &role, &hash, &created, &used, &revoked)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256([]byte(plain))
		if !bytes.Equal(hash, want[:]) {
			t.Errorf("token_hash = %x, want SHA-256 of the token %x", hash, want)
		}
		body := plain[len(TokenPrefix):]
		for _, v := range []string{name, role, created} {
			if strings.Contains(v, body) {
				t.Errorf("a column holds the token: %q", v)
			}
		}
	})
}

// TestAdminTokenNotInSQLiteFile reads every file of the SQLite database
// (main file, write-ahead log, shared memory) and finds the hash there but
// neither the token nor its random bytes.
func TestAdminTokenNotInSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, err := OpenSQLite(ctx, filepath.Join(dir, SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := c.CreateToken(ctx, "pacs", RolePACS)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.VerifyToken(ctx, plain); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(plain[len(TokenPrefix):])
	sum := sha256.Sum256([]byte(plain))
	check := func(when string) {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(dir, SQLiteFile+"*"))
		var all []byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		if !bytes.Contains(all, sum[:]) {
			t.Fatalf("%s: the hash is not in %v: the test reads the wrong files", when, files)
		}
		for what, secret := range map[string][]byte{"token": []byte(plain), "token body": []byte(plain[len(TokenPrefix):]), "random bytes": raw} {
			if bytes.Contains(all, secret) {
				t.Errorf("%s: the %s is in the database files", when, what)
			}
		}
	}
	check("open")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
}

// TestAdminWhileServing: an admin command is a second process opening the
// same database as the running server. Two catalogs over one database
// (separate connection pools, as two processes have) work at once: one
// adds PACS nodes and tokens while the other ingests and answers queries,
// and each change is seen by the other at once.
func TestAdminWhileServing(t *testing.T) {
	for _, m := range catalogMakers {
		t.Run(m.name, func(t *testing.T) {
			open := m.new(t)
			server := mustOpen(t, open)
			admin := mustOpen(t, open)
			ctx := context.Background()
			const n = 30
			var wg sync.WaitGroup
			errs := make(chan error, 2*n+10)
			wg.Add(2)
			go func() { // the admin command
				defer wg.Done()
				for i := range n {
					if _, err := admin.AddPACS(ctx, PACSNode{AETitle: fmt.Sprintf("AE%d", i), Host: "127.0.0.1"}); err != nil {
						errs <- fmt.Errorf("admin: %w", err)
					}
					if i%10 == 0 {
						if _, _, err := admin.CreateToken(ctx, fmt.Sprintf("tok%d", i), RolePACS); err != nil {
							errs <- fmt.Errorf("admin: %w", err)
						}
					}
				}
			}()
			go func() { // the server
				defer wg.Done()
				for i := range n {
					if _, err := server.PutInstance(ctx, testInstance(1, 1, i), nil); err != nil {
						errs <- fmt.Errorf("server put: %w", err)
					}
					if _, err := server.Studies(ctx, Query{}); err != nil {
						errs <- fmt.Errorf("server query: %w", err)
					}
					if _, err := server.AllowPACS(ctx, fmt.Sprintf("AE%d", i), net.ParseIP("127.0.0.1")); err != nil {
						errs <- fmt.Errorf("server allow: %w", err)
					}
				}
			}()
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			for i := range n {
				if ok, err := server.AllowPACS(ctx, fmt.Sprintf("AE%d", i), net.ParseIP("127.0.0.1")); !ok || err != nil {
					t.Errorf("server does not see AE%d: %v, %v", i, ok, err)
				}
			}
			if got, err := admin.Instances(ctx, Query{}); err != nil || len(got) != n {
				t.Errorf("admin sees %d instances, %v", len(got), err)
			}
			if err := admin.RevokeToken(ctx, "tok0"); err != nil {
				t.Fatal(err)
			}
			l, err := server.ListTokens(ctx)
			if err != nil || len(l) != 3 || !l[0].Revoked() {
				t.Errorf("server's token list after revocation: %+v, %v", l, err)
			}
		})
	}
}

func BenchmarkAllowPACS(b *testing.B) {
	c, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), SQLiteFile))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := range 200 {
		if _, err := c.AddPACS(ctx, PACSNode{AETitle: fmt.Sprintf("AE%d", i), Host: fmt.Sprintf("10.%d.0.0/16", i)}); err != nil {
			b.Fatal(err)
		}
	}
	remote := net.ParseIP("10.150.3.4")
	b.ResetTimer()
	for b.Loop() {
		if ok, err := c.AllowPACS(ctx, "AE150", remote); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkVerifyToken(b *testing.B) {
	c, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), SQLiteFile))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	plain, _, err := c.CreateToken(ctx, "pacs", RolePACS)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := c.VerifyToken(ctx, plain); err != nil {
			b.Fatal(err)
		}
	}
}
