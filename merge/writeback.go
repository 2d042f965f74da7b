package merge

import (
	"os"
	"time"
)

// Writeback pacing: how often the growing output is looked at, and how much new data starts a write-out.
const (
	writebackEvery = 100 * time.Millisecond
	writebackChunk = 16 << 20
)

// writeback has the kernel write the file at path to disk as ffmpeg writes it, until done is closed, so the
// fsync after ffmpeg exits waits for the last few megabytes instead of the whole output (on the 2-core
// benchmark, 60-90 ms for 190 MB, against about 10 ms). It only starts write-out; it does not wait for it, and
// durability still rests on that fsync. Best effort: a file that cannot be opened is tried again at the next
// tick, and any other failure ends it.
func writeback(path string, done <-chan struct{}) {
	t := time.NewTicker(writebackEvery)
	defer t.Stop()
	var (
		f      *os.File
		synced int64
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if f == nil {
			var err error
			if f, err = os.Open(path); err != nil {
				f = nil
				continue
			}
		}
		fi, err := f.Stat()
		if err != nil {
			return
		}
		if n := fi.Size() - synced; n >= writebackChunk {
			if startWriteOut(f, synced, n) != nil {
				return
			}
			synced += n
		}
	}
}
