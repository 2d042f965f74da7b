package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// liveSpec is the live benchmark's broadcast: an hour of tiny 1 s segments (the
// figure that matters is the count of segments, not their bytes).
var liveSpec = testmedia.Spec{Seconds: 3600, SegmentSeconds: 1, Width: 64, Height: 36, FPS: 5, SampleRate: 8000}

const (
	liveSpeed  = 50  // segments the fast-forward origin publishes per second of wall time
	liveWindow = 300 // segments its sliding window lists: 6 s of wall time, many reloads
)

// fastLive is a live origin in fast-forward: its sliding window advances
// liveSpeed segments per second of wall time over pre-generated segments and
// ends with EXT-X-ENDLIST after the last.
type fastLive struct {
	m       *testmedia.Media
	start   time.Time
	edge    atomic.Int64 // segments published so far, as last served
	reloads atomic.Int64
}

func (o *fastLive) published() int {
	return min(len(o.m.Segments), int(time.Since(o.start).Seconds()*liveSpeed)+1)
}

func (o *fastLive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/live.m3u8" {
		http.ServeFile(w, r, filepath.Join(o.m.Dir, filepath.Base(r.URL.Path)))
		return
	}
	o.reloads.Add(1)
	n := o.published()
	o.edge.Store(int64(n))
	first := max(0, n-liveWindow)
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:%d\n", first)
	for i := first; i < n; i++ {
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%s\n", o.m.Durations[i], filepath.Base(o.m.Segments[i]))
	}
	if n == len(o.m.Segments) {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Write([]byte(b.String()))
}

var vmLine = regexp.MustCompile(`(?m)^(VmHWM|VmRSS):\s+(\d+) kB`)

// memory reads a process's peak and current RSS in kB from /proc.
func memory(pid int) (hwm, rss int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, -1
	}
	for _, m := range vmLine.FindAllSubmatch(data, -1) {
		v, _ := strconv.ParseInt(string(m[2]), 10, 64)
		if string(m[1]) == "VmHWM" {
			hwm = v
		} else {
			rss = v
		}
	}
	return hwm, rss
}

// BenchmarkLive records an hour-long live broadcast from a fast-forward origin
// with the real binary and reports its peak RSS (VmHWM, polled from /proc; it
// starts afresh at exec) when a quarter, half and all of the broadcast is
// published: flat in the recording's length, and within the 64 MB budget.
func BenchmarkLive(b *testing.B) {
	if testing.Short() {
		b.Skip("an hour of live media in fast-forward; not in -short")
	}
	bin := buildBinary(b, b.TempDir())
	start := time.Now()
	m, err := testmedia.Generate(liveSpec)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("%d s live source ready in %s: %d segments\n", liveSpec.Seconds, time.Since(start).Round(time.Millisecond), len(m.Segments))
	for range b.N {
		dir := b.TempDir()
		o := &fastLive{m: m, start: time.Now()}
		srv := httptest.NewServer(o)
		out := filepath.Join(dir, "live.mp4")
		cmd := exec.Command(bin, "get", srv.URL+"/live.m3u8", "-o", out, "-q", "--data-dir", filepath.Join(dir, "data"))
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var at [3]int64 // peak RSS when 1/4, 1/2 and all of the broadcast was published
		var rssAt [3]int64
		var peak int64
		tick := time.NewTicker(100 * time.Millisecond)
	poll:
		for {
			select {
			case err = <-exited:
				tick.Stop()
				break poll
			case <-tick.C:
			}
			hwm, rss := memory(cmd.Process.Pid)
			if hwm < 0 {
				continue
			}
			peak = max(peak, hwm)
			frac := float64(o.edge.Load()) / float64(len(m.Segments))
			for k, f := range []float64{0.25, 0.5, 1} {
				if frac >= f && at[k] == 0 {
					at[k], rssAt[k] = hwm, rss
				}
			}
		}
		elapsed := time.Since(t0)
		srv.Close()
		if err != nil {
			b.Fatalf("get: %v\n%s", err, stderr.String())
		}
		d, perr := testmedia.Probe(context.Background(), out)
		if perr != nil || math.Abs(d-m.TotalSeconds) > 2 {
			b.Fatalf("output lasts %.1fs (%v), want %.1fs\n%s", d, perr, m.TotalSeconds, stderr.String())
		}
		mb := func(kb int64) float64 { return float64(kb) * 1024 / 1e6 }
		fmt.Printf("live %d s (%d segments) at %d segments/s, window %d: recorded in %.1fs, %d reloads, output %.1fs\n",
			liveSpec.Seconds, len(m.Segments), liveSpeed, liveWindow, elapsed.Seconds(), o.reloads.Load(), d)
		fmt.Printf("peak RSS MB at 1/4: %.1f  1/2: %.1f  full: %.1f  (RSS then %.1f %.1f %.1f)  process peak %.1f\n",
			mb(at[0]), mb(at[1]), mb(at[2]), mb(rssAt[0]), mb(rssAt[1]), mb(rssAt[2]), mb(peak))
		b.ReportMetric(mb(at[0]), "rss_quarter_MB")
		b.ReportMetric(mb(at[1]), "rss_half_MB")
		b.ReportMetric(mb(peak), "rss_MB")
		b.ReportMetric(elapsed.Seconds(), "record_s")
		if mb(peak) > rssBudgetMB {
			b.Errorf("peak RSS %.1f MB, over the %d MB budget", mb(peak), rssBudgetMB)
		}
		os.RemoveAll(dir)
	}
}
