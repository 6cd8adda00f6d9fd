//go:build !linux

package storage

import "os"

// startWriteback is Linux-only (sync_file_range); elsewhere the fsync
// writes the whole file.
func startWriteback(*os.File, int64, int64) {}

// dropCache is Linux-only (posix_fadvise); elsewhere the pages stay.
func dropCache(*os.File) {}
