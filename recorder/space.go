package recorder

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// ErrLowDisk means the disk holding a session has less free space than the
// floor: downloads pause (resumable) instead of filling it.
var ErrLowDisk = errors.New("low on disk space")

// ErrTooSlow means a body arrived slower than the minimum rate over a whole
// window: a segment trickling a few bytes a second is stalled too.
var ErrTooSlow = fmt.Errorf("%w: too slow", ErrStalled)

// Defaults of the disk and rate floors.
const (
	DefaultMinFreeBytes = 512 << 20
	DefaultMinRate      = 16 << 10 // bytes/s, averaged over DefaultRateWindow
	DefaultRateWindow   = 30 * time.Second
)

// freeSpace reports the bytes available to this user on the file system
// holding dir. Tests replace it.
var freeSpace = func(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// checkFree returns an ErrLowDisk error when dir's file system has less than
// min bytes free; min <= 0 checks nothing, nor does a Statfs that fails.
func checkFree(dir string, min int64) error {
	return checkFreeWith(freeSpace, dir, min)
}

// checkFreeWith is checkFree asking free (freeSpace, read by the caller's goroutine).
func checkFreeWith(free func(string) (uint64, error), dir string, min int64) error {
	if min <= 0 {
		return nil
	}
	n, err := free(dir)
	if err != nil || n >= uint64(min) {
		return nil
	}
	return fmt.Errorf("paused: less than %s free on %s: %w (free some space, then resume)", sizeString(min), dir, ErrLowDisk)
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
