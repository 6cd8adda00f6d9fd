package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"lightbox/dicom"
)

// runInfo prints the metadata model of each file as JSON, for scripts and
// for a quick look at what Lightbox makes of a file.
func runInfo(args []string) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: lightbox info IN.dcm...\n\nPrints each file's metadata (patient, study, series, instance, image) as JSON.")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("no input file")
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	for _, path := range fs.Args() {
		f, err := dicom.Open(path)
		if err != nil {
			return err
		}
		if err := enc.Encode(f.Meta); err != nil {
			return err
		}
	}
	return nil
}
