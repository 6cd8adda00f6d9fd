//go:build !linux

package storage

import "os"

// startWriteback is a no-op where sync_file_range(2) does not exist: the
// final fsync writes everything.
func startWriteback(f *os.File, off, n int64) {}
