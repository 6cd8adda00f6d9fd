// Command lightbox is the one Lightbox binary: the server and the tools
// an operator runs beside it.
package main

import (
	"fmt"
	"log/slog"
	"os"
)

// commands maps each subcommand to its function; each parses its own flags
// so that `lightbox CMD -h` documents exactly that command.
var commands = map[string]struct {
	run  func(args []string) error
	help string
}{
	"serve":  {runServe, "start the server (HTTPS, and DICOM when configured)"},
	"info":   {runInfo, "print a DICOM file's metadata as JSON"},
	"render": {runRender, "render one frame of a DICOM file to PNG or JPEG"},
	"import": {runImport, "import DICOM files, folders and zips into the store"},
	"pacs":   {runPACS, "allow PACS nodes to send by DICOM: add, list, remove"},
	"token":  {runToken, "API tokens for DICOMweb clients: create, list, revoke"},
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lightbox COMMAND [flags]\n\ncommands:")
	for _, name := range []string{"serve", "import", "pacs", "token", "info", "render"} {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", name, commands[name].help)
	}
	fmt.Fprintln(os.Stderr, "\n`lightbox COMMAND -h` shows a command's flags.")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		if os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
			usage()
			return
		}
		fmt.Fprintf(os.Stderr, "lightbox: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := cmd.run(os.Args[2:]); err != nil {
		slog.Error(os.Args[1]+" failed", "err", err)
		os.Exit(1)
	}
}
