package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"lightbox/storage"
)

// adminCmd runs `lightbox GROUP ARGS...` in this process and returns stdout.
func adminCmd(t *testing.T, group string, args ...string) (string, error) {
	t.Helper()
	cmds := map[string][]adminCommand{"pacs": pacsCommands, "token": tokenCommands}[group]
	var out, errOut bytes.Buffer
	err := runAdmin(context.Background(), group, cmds, args, &out, &errOut)
	return out.String(), err
}

func mustAdminCmd(t *testing.T, group string, args ...string) string {
	t.Helper()
	out, err := adminCmd(t, group, args...)
	if err != nil {
		t.Fatalf("lightbox %s %s: %v", group, strings.Join(args, " "), err)
	}
	return out
}

// openCatalogAt opens the catalog of a data folder as the server would.
func openCatalogAt(t *testing.T, data string) storage.Catalog {
	t.Helper()
	sf := storeFlags{data: data}
	c, err := sf.openCatalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPACSCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	out := mustAdminCmd(t, "pacs", "list", "--data", data)
	if !strings.Contains(out, "no PACS nodes") {
		t.Errorf("empty list: %q", out)
	}
	out = mustAdminCmd(t, "pacs", "add", "--data", data, "--ae", "ORTHANC", "--host", "10.0.0.7/24", "--description", "main archive")
	if out != "added PACS node ORTHANC from 10.0.0.0/24\n" {
		t.Errorf("add: %q", out)
	}
	mustAdminCmd(t, "pacs", "add", "--data", data, "--ae", "STORESCU", "--host", "::1")
	out = mustAdminCmd(t, "pacs", "add", "--data", data, "--ae", "MODALITY", "--any-host")
	if out != "added PACS node MODALITY from any address\n" {
		t.Errorf("add --any-host: %q", out)
	}

	_, err := adminCmd(t, "pacs", "add", "--data", data, "--ae", "ORTHANC", "--host", "10.0.0.0/24")
	if !errors.Is(err, storage.ErrDuplicate) || !strings.Contains(err.Error(), "main archive") {
		t.Errorf("adding twice: %v", err)
	}
	for _, bad := range [][]string{
		{"add", "--ae", "X", "--host", "any"},
		{"add", "--ae", "X", "--host", "10.0.0.1", "--any-host"},
		{"add", "--ae", "X"},
		{"add", "--host", "10.0.0.1"},
		{"add", "--ae", "MUCH_TOO_LONG_AE_TITLE", "--host", "10.0.0.1"},
		{"add", "--ae", "X", "--host", "pacs.example.org"},
		{"add", "--ae", "X", "--host", "0.0.0.0/0"},
		{"add", "--ae", "X", "--host", "10.0.0.1", "extra"},
		{"remove", "--ae", "X"},
		{"remove", "--ae", "NOPE", "--host", "10.0.0.1"},
		{"frobnicate"},
		{},
	} {
		if _, err := adminCmd(t, "pacs", append(bad, "--data", data)...); err == nil {
			t.Errorf("lightbox pacs %v succeeded", bad)
		}
	}
	if _, err := adminCmd(t, "pacs", "add", "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("add -h: %v", err)
	}

	out = mustAdminCmd(t, "pacs", "list", "--data", data)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "AE TITLE") {
		t.Fatalf("list:\n%s", out)
	}
	for i, want := range [][]string{{"MODALITY", "any"}, {"ORTHANC", "10.0.0.0/24", "main archive"}, {"STORESCU", "::1"}} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("list line %d %q lacks %q", i+1, lines[i+1], w)
			}
		}
	}

	out = mustAdminCmd(t, "pacs", "remove", "--data", data, "--ae", "ORTHANC", "--host", "10.0.0.99/24")
	if out != "removed PACS node ORTHANC from 10.0.0.0/24\n" {
		t.Errorf("remove: %q", out)
	}
	mustAdminCmd(t, "pacs", "remove", "--data", data, "--ae", "MODALITY", "--any-host")
	c := openCatalogAt(t, data)
	nodes, err := c.ListPACS(context.Background())
	if err != nil || len(nodes) != 1 || nodes[0].AETitle != "STORESCU" {
		t.Errorf("after removals: %+v, %v", nodes, err)
	}
}

func TestTokenCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	out := mustAdminCmd(t, "token", "create", "--data", data, "--name", "orthanc", "--role", "pacs")
	words := strings.Fields(out)
	token := words[len(words)-1]
	if !strings.HasPrefix(token, storage.TokenPrefix) || !strings.HasSuffix(out, token+"\n") {
		t.Fatalf("the token is not the last word:\n%s", out)
	}
	if !strings.Contains(out, "Authorization: Bearer") {
		t.Errorf("no hint how to use it:\n%s", out)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("create printed %d lines, want a hint and the token:\n%s", n, out)
	}
	c := openCatalogAt(t, data)
	ctx := context.Background()
	if name, role, err := c.VerifyToken(ctx, token); err != nil || name != "orthanc" || role != storage.RolePACS {
		t.Fatalf("printed token does not verify: %q %q %v", name, role, err)
	}

	for _, bad := range [][]string{
		{"create", "--name", "orthanc"}, // taken
		{"create", "--name", "x", "--role", "superuser"},
		{"create", "--name", "two words"},
		{"create"},
		{"revoke"},
		{"revoke", "--name", "nobody"},
		{"rotate"},
	} {
		if out, err := adminCmd(t, "token", append(bad, "--data", data)...); err == nil {
			t.Errorf("lightbox token %v succeeded: %q", bad, out)
		}
	}
	// --role defaults to pacs.
	mustAdminCmd(t, "token", "create", "--data", data, "--name", "viewer-2")

	out = mustAdminCmd(t, "token", "list", "--data", data)
	if strings.Contains(out, token[len(storage.TokenPrefix):]) {
		t.Fatalf("list shows the token:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(lines[1], "orthanc ") || !strings.Contains(lines[1], "active") ||
		!strings.HasPrefix(lines[2], "viewer-2 ") || !strings.Contains(lines[2], "never") {
		t.Errorf("list:\n%s", out)
	}

	if out := mustAdminCmd(t, "token", "revoke", "--data", data, "--name", "orthanc"); out != "revoked token orthanc\n" {
		t.Errorf("revoke: %q", out)
	}
	if _, _, err := c.VerifyToken(ctx, token); !errors.Is(err, storage.ErrTokenInvalid) {
		t.Errorf("revoked token still verifies: %v", err)
	}
	if out := mustAdminCmd(t, "token", "list", "--data", data); !strings.Contains(out, "revoked 20") {
		t.Errorf("list after revoke:\n%s", out)
	}
}

// helperEnv carries the arguments of an admin command for the child
// process TestAdminHelperProcess runs.
const helperEnv = "LIGHTBOX_ADMIN_HELPER_ARGS"

// TestAdminHelperProcess is not a test: run by TestAdminWhileServing as a
// second process, it runs one admin command and exits with its status.
func TestAdminHelperProcess(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("only run as a child of TestAdminWhileServing")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		os.Exit(3)
	}
	cmds := map[string][]adminCommand{"pacs": pacsCommands, "token": tokenCommands}[args[0]]
	if err := runAdmin(context.Background(), args[0], cmds, args[1:], os.Stdout, os.Stderr); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// childAdmin runs an admin command in a separate process, as an operator
// would beside a running server.
func childAdmin(t *testing.T, args ...string) string {
	t.Helper()
	raw, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestAdminHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(raw))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("lightbox %s (child process): %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// TestAdminWhileServing: admin commands run as other processes while this
// one holds the store open and ingests, as `lightbox serve` does; the
// server sees each change on its next check.
func TestAdminWhileServing(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	sf := storeFlags{data: data}
	ctx := context.Background()
	store, err := sf.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Catalog.Close()
	files, _ := filepath.Glob("../../testdata/*.dcm")
	if len(files) == 0 {
		t.Fatal("no files in testdata")
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var serveErr error
	wg.Add(1)
	go func() { // the server's work: ingest and queries, writing all along
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f, err := os.Open(files[i%len(files)])
			if err != nil {
				serveErr = err
				return
			}
			_, err = store.Ingest(ctx, f, "import", storage.Expect{})
			f.Close()
			if err != nil && !errors.Is(err, storage.ErrSOPClass) && !errors.Is(err, storage.ErrBadInstance) &&
				!errors.Is(err, storage.ErrNotDICOM) && !errors.Is(err, storage.ErrMismatch) {
				serveErr = err
				return
			}
			if _, err := store.Catalog.Studies(ctx, storage.Query{}); err != nil {
				serveErr = err
				return
			}
		}
	}()

	for _, ae := range []string{"CT1", "CT2", "CT3"} {
		childAdmin(t, "pacs", "add", "--data", data, "--ae", ae, "--host", "127.0.0.1")
		if ok, err := store.Catalog.AllowPACS(ctx, ae, net.ParseIP("127.0.0.1")); !ok || err != nil {
			t.Errorf("server does not allow %s just added: %v, %v", ae, ok, err)
		}
	}
	out := childAdmin(t, "token", "create", "--data", data, "--name", "stow", "--role", "pacs")
	words := strings.Fields(out)
	token := words[len(words)-1]
	if name, _, err := store.Catalog.VerifyToken(ctx, token); err != nil || name != "stow" {
		t.Errorf("server does not accept the new token: %q, %v", name, err)
	}
	childAdmin(t, "pacs", "remove", "--data", data, "--ae", "CT2", "--host", "127.0.0.1")
	if ok, err := store.Catalog.AllowPACS(ctx, "CT2", net.ParseIP("127.0.0.1")); ok || err != nil {
		t.Errorf("server still allows CT2 after removal: %v, %v", ok, err)
	}
	childAdmin(t, "token", "revoke", "--data", data, "--name", "stow")
	if _, _, err := store.Catalog.VerifyToken(ctx, token); !errors.Is(err, storage.ErrTokenInvalid) {
		t.Errorf("server still accepts the revoked token: %v", err)
	}
	close(stop)
	wg.Wait()
	if serveErr != nil {
		t.Errorf("the server's work failed while admin commands ran: %v", serveErr)
	}
	got, err := store.Catalog.Instances(ctx, storage.Query{})
	if err != nil || len(got) == 0 {
		t.Errorf("nothing ingested meanwhile: %d, %v", len(got), err)
	}
	t.Logf("%d instances stored while the admin commands ran", len(got))
}
