package main

import (
	"archive/zip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"lightbox/dicom"
	"lightbox/storage"
)

// importJob is one thing to ingest: a file on disk, or an entry of a zip.
type importJob struct {
	name string // shown to the user
	path string // file on disk
	zip  *zip.File
	size int64
}

// importTally counts what happened, for the progress line and summary.
type importTally struct {
	done, stored, dup, conflict, skipped, refused atomic.Int64
	bytes                                         atomic.Int64
	mu                                            sync.Mutex
	refusals                                      []string
}

// runImport is `lightbox import PATH...`: files, folders and zips, in
// parallel, through the same ingest as every other entrance. What is
// already stored is skipped by SOP Instance UID, so an interrupted import
// is resumed by running it again.
func runImport(args []string) error {
	fl := flag.NewFlagSet("import", flag.ContinueOnError)
	var sf storeFlags
	sf.register(fl)
	workers := fl.Int("j", 4, "instances ingested in parallel")
	quiet := fl.Bool("q", false, "no progress line")
	fl.Usage = func() {
		fmt.Fprintln(fl.Output(), "usage: lightbox import [flags] PATH...\n\nImports DICOM files, folders and .zip archives. Already stored instances\nare skipped, so running it again resumes an interrupted import.\n\nflags:")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		fl.Usage()
		return errors.New("nothing to import")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	store, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer store.Catalog.Close()
	jobs, closers, err := collect(fl.Args())
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	if err != nil {
		return err
	}
	t := importAll(ctx, store, jobs, max(1, *workers), !*quiet && term.IsTerminal(int(os.Stderr.Fd())), os.Stderr)
	fmt.Printf("imported %d instances: %d stored, %d already stored, %d skipped, %d conflicting copies kept out, %d refused\n",
		t.done.Load(), t.stored.Load(), t.dup.Load(), t.skipped.Load(), t.conflict.Load(), t.refused.Load())
	sort.Strings(t.refusals)
	for _, r := range t.refusals {
		fmt.Println("  refused:", r)
	}
	if ctx.Err() != nil {
		return errors.New("interrupted: run the same command again to resume")
	}
	return nil
}

// collect walks the arguments into jobs; zips stay open until the import
// ends (the returned closers).
func collect(paths []string) ([]importJob, []io.Closer, error) {
	var jobs []importJob
	var closers []io.Closer
	add := func(path string, size int64) error {
		if strings.EqualFold(filepath.Ext(path), ".zip") {
			zr, err := zip.OpenReader(path)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			closers = append(closers, zr)
			for _, zf := range zr.File {
				if !zf.FileInfo().IsDir() {
					jobs = append(jobs, importJob{name: path + ":" + zf.Name, zip: zf, size: int64(zf.UncompressedSize64)})
				}
			}
			return nil
		}
		jobs = append(jobs, importJob{name: path, path: path, size: size})
		return nil
	}
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") || !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return add(path, info.Size())
		})
		if err != nil {
			return nil, closers, err
		}
	}
	return jobs, closers, nil
}

func importAll(ctx context.Context, store *storage.Store, jobs []importJob, workers int, progress bool, w io.Writer) *importTally {
	var t importTally
	var total int64
	for _, j := range jobs {
		total += j.size
	}
	start := time.Now()
	ch := make(chan importJob)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				importOne(ctx, store, j, &t)
			}
		}()
	}
	stopBar := make(chan struct{})
	barDone := make(chan struct{})
	go func() {
		defer close(barDone)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopBar:
				if progress {
					drawBar(w, &t, len(jobs), total, start)
					fmt.Fprintln(w)
				}
				return
			case <-tick.C:
				if progress {
					drawBar(w, &t, len(jobs), total, start)
				}
			}
		}
	}()
	for _, j := range jobs {
		select {
		case ch <- j:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(ch)
	wg.Wait()
	close(stopBar)
	<-barDone
	return &t
}

func drawBar(w io.Writer, t *importTally, n int, total int64, start time.Time) {
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = float64(t.bytes.Load()) / float64(total)
	}
	full := int(frac * width)
	secs := time.Since(start).Seconds()
	fmt.Fprintf(w, "\r[%s%s] %3.0f%%  %d/%d files  %.1f MB/s  %d refused ",
		strings.Repeat("#", full), strings.Repeat(" ", width-full), 100*frac, t.done.Load(), n,
		float64(t.bytes.Load())/1e6/max(secs, 1e-3), t.refused.Load())
}

func importOne(ctx context.Context, store *storage.Store, j importJob, t *importTally) {
	defer t.done.Add(1)
	defer t.bytes.Add(j.size)
	refuse := func(err error) {
		t.refused.Add(1)
		t.mu.Lock()
		t.refusals = append(t.refusals, fmt.Sprintf("%s: %v", j.name, err))
		t.mu.Unlock()
	}
	var r io.Reader
	if j.zip != nil {
		zr, err := j.zip.Open()
		if err != nil {
			refuse(err)
			return
		}
		defer zr.Close()
		r = zr
	} else {
		// Resuming: a header-only read finds what is already stored
		// without copying the file.
		if f, err := dicom.Open(j.path); err == nil {
			if ok, err := store.Catalog.HasInstance(ctx, f.Meta.SOPInstanceUID); err == nil && ok {
				t.skipped.Add(1)
				return
			}
		}
		fh, err := os.Open(j.path)
		if err != nil {
			refuse(err)
			return
		}
		defer fh.Close()
		r = fh
	}
	res, err := store.Ingest(ctx, r, "import", storage.Expect{})
	if err != nil {
		refuse(err)
		return
	}
	switch res.Outcome {
	case storage.Stored:
		t.stored.Add(1)
	case storage.Duplicate:
		t.dup.Add(1)
	case storage.Conflict:
		t.conflict.Add(1)
	}
}
