//go:build !linux

package merge

import (
	"errors"
	"os"
)

// startWriteOut has no portable equivalent outside Linux: the final fsync does all the work there.
func startWriteOut(f *os.File, off, n int64) error { return errors.ErrUnsupported }
