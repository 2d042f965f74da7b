package merge

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteOut starts writing n bytes of f at off to disk, without waiting for it (sync_file_range(2)).
func startWriteOut(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
