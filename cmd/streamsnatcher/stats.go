package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile of this process to the file STREAMSNATCHER_CPUPROFILE names, if set, until
// the returned function is called. A profile that cannot be written is reported and skipped: it is a
// measuring aid (the benchmark's), never a reason to fail a recording.
func startProfile(stderr io.Writer) (stop func()) {
	path := os.Getenv("STREAMSNATCHER_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "streamsnatcher: cpu profile: %v\n", err)
		if f != nil {
			f.Close()
		}
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "streamsnatcher: cpu profile: %v\n", err)
		}
	}
}

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
