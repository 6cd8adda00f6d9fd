package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks Linux to start writing [off, off+n) of f to the
// disk now, without waiting (sync_file_range(2) SYNC_FILE_RANGE_WRITE).
// Called while an instance is still arriving, it leaves the final fsync
// little to write: that fsync is on the path to the sender's answer.
// It is only a hint; an error changes nothing, the fsync still decides.
func startWriteback(f *os.File, off, n int64) {
	unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
