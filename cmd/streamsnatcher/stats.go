package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// printStats writes this process's own peak RSS (children such as ffmpeg
// excluded) when STREAMSNATCHER_STATS is set; the benchmark reads it.
func printStats(w io.Writer) {
	if os.Getenv("STREAMSNATCHER_STATS") == "" {
		return
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		fmt.Fprintf(w, "streamsnatcher: stats: maxrss_kb=%d\n", ru.Maxrss)
	}
}
