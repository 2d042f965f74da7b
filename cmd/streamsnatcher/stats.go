package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// printStats writes this process's own peak RSS (children such as ffmpeg
// excluded) when STREAMSNATCHER_STATS is set; the benchmark reads it.
// VmHWM, unlike getrusage's maxrss, starts afresh at exec: a parent's memory
// does not leak into the figure.
func printStats(w io.Writer) {
	if os.Getenv("STREAMSNATCHER_STATS") == "" {
		return
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			var kb int64
			if _, err := fmt.Sscanf(string(bytes.TrimSpace(v)), "%d kB", &kb); err == nil {
				fmt.Fprintf(w, "streamsnatcher: stats: maxrss_kb=%d\n", kb)
			}
		}
	}
}
