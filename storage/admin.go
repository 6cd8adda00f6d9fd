package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// The admin records decide who may send studies: the PACS nodes the DIMSE
// server accepts associations from, and the API tokens DICOMweb clients
// present. They live in the catalog's database, so an admin command run
// beside a running server (another process on the same SQLite file, or any
// node on the same PostgreSQL) changes what the server accepts at once:
// the server reads them on every association and request, without a cache.

// Errors of the admin records that callers must tell apart.
var (
	// ErrDuplicate means a PACS node (same AE title and host) or a token
	// name is already registered; the message names the existing record.
	ErrDuplicate = errors.New("storage: already registered")
	// ErrTokenInvalid means a token is malformed, unknown or revoked.
	// Callers answer all three the same way (401), so they share one error.
	ErrTokenInvalid = errors.New("storage: token not valid")
)

// Admin is the allow-list of PACS nodes and the API tokens. The SQL
// catalog implements it, so every Catalog is also an Admin.
type Admin interface {
	// AddPACS allows node.AETitle to associate from node.Host and returns
	// the stored record, with canonical AE title and host and CreatedAt
	// set. An invalid AE title or host gives ErrInvalid; a node with the
	// same AE title and host gives ErrDuplicate.
	AddPACS(ctx context.Context, node PACSNode) (PACSNode, error)
	// ListPACS returns every node, by AE title then host.
	ListPACS(ctx context.Context) ([]PACSNode, error)
	// RemovePACS removes the node with that AE title and host (compared in
	// canonical form, so "10.0.0.5/32" removes "10.0.0.5"), or returns
	// ErrNotFound.
	RemovePACS(ctx context.Context, aeTitle, host string) error
	// AllowPACS reports whether callingAE may associate from remote. It is
	// one indexed query, cheap enough for every association. A malformed
	// AE title is not allowed (false, nil).
	AllowPACS(ctx context.Context, callingAE string, remote net.IP) (bool, error)

	// CreateToken makes a token for name with role and returns its
	// plaintext, which exists nowhere else afterwards: only its SHA-256 is
	// stored. An invalid name or role gives ErrInvalid; a name in use (even
	// by a revoked token) gives ErrDuplicate.
	CreateToken(ctx context.Context, name, role string) (plaintext string, tok Token, err error)
	// VerifyToken returns the name and role of the token whose plaintext
	// this is, or an error matching ErrTokenInvalid if it is malformed,
	// unknown or revoked. It records the time of use, at most once a
	// minute per token, so a busy client costs a write a minute.
	VerifyToken(ctx context.Context, plaintext string) (name, role string, err error)
	// ListTokens returns every token, revoked ones too, by name. No
	// secret is in a Token.
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken revokes the named token for good; revoking a revoked
	// token keeps its first revocation time. An unknown name gives
	// ErrNotFound.
	RevokeToken(ctx context.Context, name string) error
}

// PACSNode is one entry of the DIMSE allow-list: a calling AE title and the
// address or network it may associate from.
type PACSNode struct {
	AETitle     string
	Host        string // an address, a CIDR prefix, or AnyHost
	Description string
	CreatedAt   time.Time
}

// AnyHost as a PACSNode.Host lets the AE title associate from any address.
// The command line asks for it explicitly (--any-host): an AE title is no
// secret, so this allows whoever can reach the port and guess the name.
const AnyHost = "any"

// Token roles. A role says what a token's holder may do; "pacs" may store
// and read studies over DICOMweb.
const (
	RolePACS  = "pacs"
	RoleAdmin = "admin"
)

// TokenRoles lists the roles a token may have.
var TokenRoles = []string{RolePACS, RoleAdmin}

// TokenPrefix starts every token, so that one pasted into the wrong place
// (a log, a chat, a repository) is recognisable and can be scanned for.
const TokenPrefix = "lbx_"

// tokenBytes of randomness: a token cannot be guessed, which is what makes
// looking it up by its unsalted hash safe.
const tokenBytes = 32

// tokenUseInterval is how stale LastUsedAt may be: VerifyToken writes it
// only when it is older than this.
const tokenUseInterval = time.Minute

// Token is what is stored about an API token: never the token itself.
type Token struct {
	Name       string
	Role       string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used
	RevokedAt  time.Time // zero: not revoked
}

// Revoked reports whether the token has been revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// maxTokenName keeps names short: they go into logs and ingest sources.
const maxTokenName = 64

// CanonicalAETitle checks an AE title against PS3.5 (VR AE: at most 16
// characters of the default repertoire, no backslash, no control
// characters, not only spaces) and returns it without the leading and
// trailing spaces, which are not significant.
func CanonicalAETitle(ae string) (string, error) {
	s := strings.Trim(ae, " ")
	if s == "" {
		return "", fmt.Errorf("%w: empty AE title", ErrInvalid)
	}
	if len(s) > 16 {
		return "", fmt.Errorf("%w: AE title %q is longer than 16 characters", ErrInvalid, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '\\' {
			return "", fmt.Errorf("%w: AE title %q: character %q is not allowed (printable ASCII except backslash)", ErrInvalid, s, rune(c))
		}
	}
	return s, nil
}

// CanonicalHost checks a PACS host and returns its canonical form, the one
// stored and compared: an IPv4 or IPv6 address ("10.0.0.5", "::1"; an
// IPv4-mapped IPv6 address becomes IPv4), a CIDR prefix with the host bits
// cleared ("10.0.0.0/24"; a full-length prefix becomes an address), or
// AnyHost. A /0 prefix is refused: allowing every address is said with
// AnyHost, so that it is never done by accident. Host names are refused
// too: the allow-list is checked against the peer's address, and a name
// would make every association wait for DNS.
func CanonicalHost(host string) (string, error) {
	h := strings.TrimSpace(host)
	switch {
	case h == "":
		return "", fmt.Errorf("%w: empty host", ErrInvalid)
	case h == AnyHost:
		return AnyHost, nil
	case strings.Contains(h, "%"):
		return "", fmt.Errorf("%w: host %q: an address with a zone is not allowed", ErrInvalid, h)
	case strings.Contains(h, "/"):
		p, err := netip.ParsePrefix(h)
		if err != nil {
			return "", fmt.Errorf("%w: host %q is not an IP address or CIDR prefix", ErrInvalid, h)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return "", fmt.Errorf("%w: host %q: prefix of an IPv4-mapped address is shorter than the mapping", ErrInvalid, h)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Bits() == 0 {
			return "", fmt.Errorf("%w: host %q matches every address; use %q to say so", ErrInvalid, h, AnyHost)
		}
		p = p.Masked()
		if p.IsSingleIP() {
			return p.Addr().String(), nil
		}
		return p.String(), nil
	default:
		a, err := netip.ParseAddr(h)
		if err != nil {
			return "", fmt.Errorf("%w: host %q is not an IP address or CIDR prefix", ErrInvalid, h)
		}
		return a.Unmap().String(), nil
	}
}

// hostMatches reports whether the stored canonical host admits addr.
func hostMatches(host string, addr netip.Addr, known bool) bool {
	if host == AnyHost {
		return true
	}
	if !known {
		return false
	}
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		return err == nil && p.Contains(addr)
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a == addr
}

func (c *sqlCatalog) AddPACS(ctx context.Context, node PACSNode) (PACSNode, error) {
	var err error
	if node.AETitle, err = CanonicalAETitle(node.AETitle); err != nil {
		return PACSNode{}, err
	}
	if node.Host, err = CanonicalHost(node.Host); err != nil {
		return PACSNode{}, err
	}
	node.Description = strings.TrimSpace(node.Description)
	node.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	inserted := false
	err = c.inTx(ctx, func(tx sqlTx) error {
		var id int64
		err := tx.queryRow(ctx, `INSERT INTO pacs_nodes (ae_title, host, description, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (ae_title, host) DO NOTHING RETURNING id`,
			node.AETitle, node.Host, node.Description, c.d.timeArg(node.CreatedAt)).Scan(&id)
		if errors.Is(err, errNoRows) {
			return nil
		}
		inserted = err == nil
		return err
	})
	if err != nil {
		return PACSNode{}, fmt.Errorf("add PACS node %s from %s: %w", node.AETitle, node.Host, err)
	}
	if !inserted {
		old, err := c.getPACS(ctx, node.AETitle, node.Host)
		if err != nil {
			return PACSNode{}, err
		}
		return PACSNode{}, fmt.Errorf("PACS node %s from %s is already allowed (added %s%s): %w",
			old.AETitle, old.Host, old.CreatedAt.Format(time.RFC3339), describe(old.Description), ErrDuplicate)
	}
	return node, nil
}

func describe(d string) string {
	if d == "" {
		return ""
	}
	return fmt.Sprintf(", %q", d)
}

const pacsCols = "ae_title, host, description, created_at"

func scanPACS(r row) (PACSNode, error) {
	var n PACSNode
	err := r.Scan(&n.AETitle, &n.Host, &n.Description, timeScanner{&n.CreatedAt})
	return n, err
}

func (c *sqlCatalog) getPACS(ctx context.Context, ae, host string) (PACSNode, error) {
	n, err := scanPACS(c.db.queryRow(ctx, "SELECT "+pacsCols+" FROM pacs_nodes WHERE ae_title = $1 AND host = $2", ae, host))
	if errors.Is(err, errNoRows) {
		return PACSNode{}, fmt.Errorf("PACS node %s from %s: %w", ae, host, ErrNotFound)
	}
	if err != nil {
		return PACSNode{}, fmt.Errorf("get PACS node %s from %s: %w", ae, host, err)
	}
	return n, nil
}

func (c *sqlCatalog) ListPACS(ctx context.Context) ([]PACSNode, error) {
	r, err := c.db.query(ctx, "SELECT "+pacsCols+" FROM pacs_nodes ORDER BY ae_title, host")
	if err != nil {
		return nil, fmt.Errorf("list PACS nodes: %w", err)
	}
	defer r.Close()
	var out []PACSNode
	for r.Next() {
		n, err := scanPACS(r)
		if err != nil {
			return nil, fmt.Errorf("list PACS nodes: %w", err)
		}
		out = append(out, n)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("list PACS nodes: %w", err)
	}
	return out, nil
}

func (c *sqlCatalog) RemovePACS(ctx context.Context, aeTitle, host string) error {
	ae, err := CanonicalAETitle(aeTitle)
	if err != nil {
		return err
	}
	h, err := CanonicalHost(host)
	if err != nil {
		return err
	}
	found := false
	err = c.inTx(ctx, func(tx sqlTx) error {
		var id int64
		err := tx.queryRow(ctx, "DELETE FROM pacs_nodes WHERE ae_title = $1 AND host = $2 RETURNING id", ae, h).Scan(&id)
		if errors.Is(err, errNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return fmt.Errorf("remove PACS node %s from %s: %w", ae, h, err)
	}
	if !found {
		return fmt.Errorf("PACS node %s from %s: %w", ae, h, ErrNotFound)
	}
	return nil
}

func (c *sqlCatalog) AllowPACS(ctx context.Context, callingAE string, remote net.IP) (bool, error) {
	ae, err := CanonicalAETitle(callingAE)
	if err != nil {
		return false, nil
	}
	addr, known := netip.AddrFromSlice(remote)
	addr = addr.Unmap()
	// The rows of one AE title are few (one per host it may use), found by
	// the (ae_title, host) index; prefixes are matched here, which keeps
	// the SQL the same on both databases.
	r, err := c.db.query(ctx, "SELECT host FROM pacs_nodes WHERE ae_title = $1", ae)
	if err != nil {
		return false, fmt.Errorf("allow PACS %s: %w", ae, err)
	}
	defer r.Close()
	for r.Next() {
		var host string
		if err := r.Scan(&host); err != nil {
			return false, fmt.Errorf("allow PACS %s: %w", ae, err)
		}
		if hostMatches(host, addr, known) {
			return true, nil
		}
	}
	if err := r.Err(); err != nil {
		return false, fmt.Errorf("allow PACS %s: %w", ae, err)
	}
	return false, nil
}

// validTokenName keeps names to what is safe in a log line, an ingest
// source ("stow:NAME") and a shell argument.
func validTokenName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty token name", ErrInvalid)
	}
	if len(name) > maxTokenName {
		return fmt.Errorf("%w: token name is longer than %d characters", ErrInvalid, maxTokenName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("%w: token name %q: use letters, digits, '-', '_' and '.'", ErrInvalid, name)
		}
	}
	return nil
}

func validRole(role string) error {
	for _, r := range TokenRoles {
		if role == r {
			return nil
		}
	}
	return fmt.Errorf("%w: role %q is not one of %s", ErrInvalid, role, strings.Join(TokenRoles, ", "))
}

// hashToken is what is stored and looked up: SHA-256 of the whole
// plaintext. A token is 256 random bits, so no salt or slow hash is
// needed: the hash cannot be reversed by guessing.
func hashToken(plaintext string) [32]byte { return sha256.Sum256([]byte(plaintext)) }

// tokenLen is the length of every token: the prefix and 32 bytes in
// unpadded base64url.
var tokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(tokenBytes)

func (c *sqlCatalog) CreateToken(ctx context.Context, name, role string) (string, Token, error) {
	if err := validTokenName(name); err != nil {
		return "", Token{}, err
	}
	if err := validRole(role); err != nil {
		return "", Token{}, err
	}
	var secret [tokenBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", Token{}, fmt.Errorf("create token %s: %w", name, err)
	}
	plaintext := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	sum := hashToken(plaintext)
	tok := Token{Name: name, Role: role, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	inserted := false
	err := c.inTx(ctx, func(tx sqlTx) error {
		var id int64
		err := tx.queryRow(ctx, `INSERT INTO api_tokens (name, role, token_hash, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING id`,
			name, role, sum[:], c.d.timeArg(tok.CreatedAt)).Scan(&id)
		if errors.Is(err, errNoRows) {
			return nil
		}
		inserted = err == nil
		return err
	})
	if err != nil {
		return "", Token{}, fmt.Errorf("create token %s: %w", name, err)
	}
	if !inserted {
		old, err := c.getToken(ctx, name)
		if err != nil {
			return "", Token{}, err
		}
		state := "active"
		if old.Revoked() {
			state = "revoked on " + old.RevokedAt.Format(time.RFC3339)
		}
		return "", Token{}, fmt.Errorf("token name %s is taken (role %s, created %s, %s); choose another name: %w",
			old.Name, old.Role, old.CreatedAt.Format(time.RFC3339), state, ErrDuplicate)
	}
	return plaintext, tok, nil
}

const tokenCols = "name, role, created_at, last_used_at, revoked_at"

func scanToken(r row) (Token, error) {
	var t Token
	err := r.Scan(&t.Name, &t.Role, timeScanner{&t.CreatedAt}, nullTimeScanner{&t.LastUsedAt}, nullTimeScanner{&t.RevokedAt})
	return t, err
}

// nullTimeScanner reads a nullable time column; NULL leaves the zero time.
type nullTimeScanner struct{ t *time.Time }

func (s nullTimeScanner) Scan(src any) error {
	if src == nil {
		*s.t = time.Time{}
		return nil
	}
	return timeScanner(s).Scan(src)
}

func (c *sqlCatalog) getToken(ctx context.Context, name string) (Token, error) {
	t, err := scanToken(c.db.queryRow(ctx, "SELECT "+tokenCols+" FROM api_tokens WHERE name = $1", name))
	if errors.Is(err, errNoRows) {
		return Token{}, fmt.Errorf("token %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("get token %s: %w", name, err)
	}
	return t, nil
}

func (c *sqlCatalog) VerifyToken(ctx context.Context, plaintext string) (string, string, error) {
	// Whatever cannot be a token is refused without a query. The error
	// never quotes the plaintext: it may be a real token sent to the wrong
	// place, and errors end up in logs.
	if len(plaintext) != tokenLen || !strings.HasPrefix(plaintext, TokenPrefix) {
		return "", "", fmt.Errorf("%w: not a Lightbox token", ErrTokenInvalid)
	}
	if _, err := base64.RawURLEncoding.DecodeString(plaintext[len(TokenPrefix):]); err != nil {
		return "", "", fmt.Errorf("%w: not a Lightbox token", ErrTokenInvalid)
	}
	sum := hashToken(plaintext)
	var (
		id     int64
		stored []byte
		t      Token
	)
	err := c.db.queryRow(ctx, "SELECT id, token_hash, "+tokenCols+" FROM api_tokens WHERE token_hash = $1", sum[:]).Scan(
		&id, &stored, &t.Name, &t.Role, timeScanner{&t.CreatedAt}, nullTimeScanner{&t.LastUsedAt}, nullTimeScanner{&t.RevokedAt})
	if errors.Is(err, errNoRows) {
		return "", "", fmt.Errorf("%w: unknown token", ErrTokenInvalid)
	}
	if err != nil {
		return "", "", fmt.Errorf("verify token: %w", err)
	}
	// The index found the row by hash; comparing again in constant time
	// costs nothing and does not rely on how the database compares.
	if subtle.ConstantTimeCompare(stored, sum[:]) != 1 {
		return "", "", fmt.Errorf("%w: unknown token", ErrTokenInvalid)
	}
	if t.Revoked() {
		return "", "", fmt.Errorf("%w: token %s was revoked on %s", ErrTokenInvalid, t.Name, t.RevokedAt.Format(time.RFC3339))
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if t.LastUsedAt.IsZero() || now.Sub(t.LastUsedAt) >= tokenUseInterval {
		// The guard makes concurrent verifications (other connections,
		// processes or nodes) write once between them.
		err := c.inTx(ctx, func(tx sqlTx) error {
			return tx.exec(ctx, `UPDATE api_tokens SET last_used_at = $1
				WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)`,
				c.d.timeArg(now), id, c.d.timeArg(now.Add(-tokenUseInterval)))
		})
		if err != nil {
			return "", "", fmt.Errorf("verify token %s: record use: %w", t.Name, err)
		}
	}
	return t.Name, t.Role, nil
}

func (c *sqlCatalog) ListTokens(ctx context.Context) ([]Token, error) {
	r, err := c.db.query(ctx, "SELECT "+tokenCols+" FROM api_tokens ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer r.Close()
	var out []Token
	for r.Next() {
		t, err := scanToken(r)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

func (c *sqlCatalog) RevokeToken(ctx context.Context, name string) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	found := false
	err := c.inTx(ctx, func(tx sqlTx) error {
		var id int64
		err := tx.queryRow(ctx, "SELECT id FROM api_tokens WHERE name = $1", name).Scan(&id)
		if errors.Is(err, errNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return tx.exec(ctx, "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
			c.d.timeArg(now), id)
	})
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", name, err)
	}
	if !found {
		return fmt.Errorf("token %s: %w", name, ErrNotFound)
	}
	return nil
}

// inTx runs f in a write transaction and commits it. On SQLite only a
// transaction reaches the writer connection; the read pool is read-only.
func (c *sqlCatalog) inTx(ctx context.Context, f func(tx sqlTx) error) error {
	tx, err := c.db.begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after commit this is a no-op
	if err := f(tx); err != nil {
		return err
	}
	if err := tx.commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
