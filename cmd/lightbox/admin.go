package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"lightbox/storage"
)

// The admin commands change the allow-list and the tokens in the catalog
// the server uses. They work while `lightbox serve` runs: they only open the
// database (SQLite takes turns with the server through its write lock and
// busy timeout; PostgreSQL is shared anyway), and the server reads these
// records on every association and request, so a change applies at once.

// adminCommand is one subcommand of `lightbox pacs` or `lightbox token`.
type adminCommand struct {
	name  string
	usage string // the arguments, after "lightbox GROUP NAME"
	about string
	// flags registers the subcommand's own flags and returns the function
	// that runs it once they are parsed.
	flags func(fs *flag.FlagSet) func(ctx context.Context, cat storage.Catalog, out io.Writer) error
}

func runPACS(args []string) error  { return runAdminMain("pacs", pacsCommands, args) }
func runToken(args []string) error { return runAdminMain("token", tokenCommands, args) }

func runAdminMain(group string, cmds []adminCommand, args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := runAdmin(ctx, group, cmds, args, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// runAdmin parses "SUBCOMMAND [flags]", opens the catalog and runs it.
func runAdmin(ctx context.Context, group string, cmds []adminCommand, args []string, out, errOut io.Writer) error {
	groupUsage := func() {
		fmt.Fprintf(errOut, "usage: lightbox %s COMMAND [flags]\n\ncommands:\n", group)
		for _, c := range cmds {
			fmt.Fprintf(errOut, "  %-8s %s\n", c.name, c.about)
		}
		fmt.Fprintf(errOut, "\n`lightbox %s COMMAND -h` shows a command's flags.\n", group)
	}
	if len(args) == 0 {
		groupUsage()
		return fmt.Errorf("%s: no command", group)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		groupUsage()
		return flag.ErrHelp
	}
	var cmd *adminCommand
	for i := range cmds {
		if cmds[i].name == args[0] {
			cmd = &cmds[i]
		}
	}
	if cmd == nil {
		groupUsage()
		return fmt.Errorf("%s: unknown command %q", group, args[0])
	}
	fs := flag.NewFlagSet(group+" "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	var sf storeFlags
	sf.register(fs)
	run := cmd.flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(errOut, "usage: lightbox %s %s %s\n\n%s. Works while the server runs.\n\nflags:\n", group, cmd.name, cmd.usage, cmd.about)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s %s: unexpected argument %q", group, cmd.name, fs.Arg(0))
	}
	cat, err := sf.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	if err := run(ctx, cat, out); err != nil {
		return fmt.Errorf("%s %s: %w", group, cmd.name, err)
	}
	return nil
}

// openCatalog opens only the catalog: the admin records need no blob
// store, so an admin command works even when S3 is out of reach. --blobs
// is accepted, so one set of flags serves every command in a script.
func (s *storeFlags) openCatalog(ctx context.Context) (storage.Catalog, error) {
	if s.db == "" {
		if err := os.MkdirAll(s.data, 0o700); err != nil {
			return nil, err
		}
	}
	cat, err := storage.OpenCatalog(ctx, s.db, s.data)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	return cat, nil
}

// required reports the first of the named flags left empty.
func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			return fmt.Errorf("--%s is required", n)
		}
	}
	return nil
}

// when formats a time for the lists: UTC, to the second; zero is "never".
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

var pacsCommands = []adminCommand{
	{
		name: "add", usage: "--ae NAME (--host IP|CIDR | --any-host) [--description TEXT]",
		about: "allow a PACS or modality to send studies by DICOM (C-STORE) from an address or network",
		flags: func(fs *flag.FlagSet) func(context.Context, storage.Catalog, io.Writer) error {
			ae := fs.String("ae", "", "calling AE title of the PACS (1-16 characters)")
			host := fs.String("host", "", "address (10.0.0.5, ::1) or network (10.0.0.0/24) it connects from")
			anyHost := fs.Bool("any-host", false, "allow the AE title from any address (instead of --host)")
			desc := fs.String("description", "", "what this node is, for the list")
			return func(ctx context.Context, cat storage.Catalog, out io.Writer) error {
				if err := required(fs, "ae"); err != nil {
					return err
				}
				switch {
				case *anyHost && *host != "":
					return errors.New("--host and --any-host exclude each other")
				case *anyHost:
					*host = storage.AnyHost
				case strings.TrimSpace(*host) == storage.AnyHost:
					return errors.New("to allow any address, say --any-host instead of --host any")
				case *host == "":
					return errors.New("--host is required (or --any-host to allow any address)")
				}
				n, err := cat.AddPACS(ctx, storage.PACSNode{AETitle: *ae, Host: *host, Description: *desc})
				if err != nil {
					return err
				}
				from := "from " + n.Host
				if n.Host == storage.AnyHost {
					from = "from any address"
				}
				fmt.Fprintf(out, "added PACS node %s %s\n", n.AETitle, from)
				return nil
			}
		},
	},
	{
		name: "list", about: "list the PACS nodes allowed to send studies by DICOM",
		flags: func(fs *flag.FlagSet) func(context.Context, storage.Catalog, io.Writer) error {
			return func(ctx context.Context, cat storage.Catalog, out io.Writer) error {
				nodes, err := cat.ListPACS(ctx)
				if err != nil {
					return err
				}
				if len(nodes) == 0 {
					fmt.Fprintln(out, "no PACS nodes: add one with `lightbox pacs add --ae NAME --host IP`")
					return nil
				}
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "AE TITLE\tHOST\tADDED\tDESCRIPTION")
				for _, n := range nodes {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.AETitle, n.Host, when(n.CreatedAt), n.Description)
				}
				return tw.Flush()
			}
		},
	},
	{
		name: "remove", usage: "--ae NAME (--host IP|CIDR | --any-host)",
		about: "stop accepting a PACS node (from the next association on)",
		flags: func(fs *flag.FlagSet) func(context.Context, storage.Catalog, io.Writer) error {
			ae := fs.String("ae", "", "calling AE title of the node")
			host := fs.String("host", "", "the address or network it was added with")
			anyHost := fs.Bool("any-host", false, "the node was added with --any-host")
			return func(ctx context.Context, cat storage.Catalog, out io.Writer) error {
				if err := required(fs, "ae"); err != nil {
					return err
				}
				switch {
				case *anyHost && *host != "":
					return errors.New("--host and --any-host exclude each other")
				case *anyHost:
					*host = storage.AnyHost
				case *host == "":
					return errors.New("--host is required (or --any-host)")
				}
				if err := cat.RemovePACS(ctx, *ae, *host); err != nil {
					return err
				}
				// Both were checked by RemovePACS; say them as they were stored.
				a, _ := storage.CanonicalAETitle(*ae)
				h, _ := storage.CanonicalHost(*host)
				fmt.Fprintf(out, "removed PACS node %s from %s\n", a, h)
				return nil
			}
		},
	},
}

var tokenCommands = []adminCommand{
	{
		name: "create", usage: "--name NAME --role ROLE",
		about: "create an API token for a DICOMweb client; it is printed once, as the last word",
		flags: func(fs *flag.FlagSet) func(context.Context, storage.Catalog, io.Writer) error {
			name := fs.String("name", "", "who holds the token (letters, digits, - _ .); shown in logs")
			role := fs.String("role", storage.RolePACS, "what it may do: "+strings.Join(storage.TokenRoles, ", "))
			return func(ctx context.Context, cat storage.Catalog, out io.Writer) error {
				if err := required(fs, "name", "role"); err != nil {
					return err
				}
				plain, tok, err := cat.CreateToken(ctx, *name, *role)
				if err != nil {
					return err
				}
				// The token goes last, alone on its line, so that a script
				// takes it with `tail -n 1` or awk's $NF.
				fmt.Fprintf(out, "created token %s (role %s). It is shown only now: only its hash is kept.\n", tok.Name, tok.Role)
				fmt.Fprintf(out, "DICOMweb clients send it in the header \"Authorization: Bearer TOKEN\".\n")
				fmt.Fprintln(out, plain)
				return nil
			}
		},
	},
	{
		name: "list", about: "list the API tokens (names, roles and use; never the tokens)",
		flags: func(fs *flag.FlagSet) func(context.Context, storage.Catalog, io.Writer) error {
			return func(ctx context.Context, cat storage.Catalog, out io.Writer) error {
				toks, err := cat.ListTokens(ctx)
				if err != nil {
					return err
				}
				if len(toks) == 0 {
					fmt.Fprintln(out, "no tokens: create one with `lightbox token create --name NAME --role pacs`")
					return nil
				}
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tLAST USED\tSTATE")
				for _, t := range toks {
					state := "active"
					if t.Revoked() {
						state = "revoked " + when(t.RevokedAt)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, when(t.CreatedAt), when(t.LastUsedAt), state)
				}
				return tw.Flush()
			}
		},
	},
	{
		name: "revoke", usage: "--name NAME",
		about: "revoke an API token for good (from the next request on)",
		flags: func(fs *flag.FlagSet) func(context.Context, storage.Catalog, io.Writer) error {
			name := fs.String("name", "", "the token's name")
			return func(ctx context.Context, cat storage.Catalog, out io.Writer) error {
				if err := required(fs, "name"); err != nil {
					return err
				}
				if err := cat.RevokeToken(ctx, *name); err != nil {
					return err
				}
				fmt.Fprintf(out, "revoked token %s\n", *name)
				return nil
			}
		},
	},
}
