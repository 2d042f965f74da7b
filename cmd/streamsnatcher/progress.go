package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// A tracked is one line of progress: a label and its counters.
type tracked struct {
	label string
	p     *recorder.Progress
}

// renderProgress draws prog on stderr until the returned stop is called: a bar
// redrawn in place on a terminal, a plain line every few seconds otherwise,
// nothing with --quiet.
func (a *app) renderProgress(prog *recorder.Progress) (stop func()) {
	return a.renderAll(func() []tracked { return []tracked{{"", prog}} }, nil)
}

// renderAll draws one line per tracked item (one bar per active stream on a
// terminal, redrawn in place; plain lines every few seconds otherwise). notes,
// if set, gives lines to print once, above the bars: what finished or failed.
// Those are printed even with --quiet, which silences only progress.
func (a *app) renderAll(items func() []tracked, notes func() []string) (stop func()) {
	quiet := a.config().Quiet
	if quiet && notes == nil {
		return func() {}
	}
	tty := false
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		tty = true
	}
	tick, every := time.Second, 5*time.Second // plain lines: notes within a second, progress every 5 s
	if tty {
		tick, every = 200*time.Millisecond, 200*time.Millisecond
	}
	speeds := map[*recorder.Progress]*speedo{}
	drawn := 0
	var lastBars time.Time
	draw := func(final bool) {
		now := time.Now()
		var b strings.Builder
		if tty && drawn > 0 {
			fmt.Fprintf(&b, "\x1b[%dA\x1b[J", drawn) // back to the first line of the last frame, cleared: the list may shrink
			drawn = 0
		}
		if notes != nil {
			for _, n := range notes() {
				if tty {
					b.WriteString("\x1b[2K")
				}
				b.WriteString(n + "\n")
			}
		}
		list := items()
		seen := make(map[*recorder.Progress]*speedo, len(list))
		for _, it := range list {
			sp := speeds[it.p]
			if sp == nil {
				sp = &speedo{}
			}
			sp.update(now, it.p.Bytes.Load()+it.p.InFlight.Load())
			seen[it.p] = sp
		}
		speeds = seen
		if !quiet && (tty || final || now.Sub(lastBars) >= every) {
			lastBars = now
			for _, it := range list {
				line := progressLine(it.p, tty, speeds[it.p])
				if it.label != "" {
					line = it.label + " " + line
				}
				if tty {
					b.WriteString("\x1b[2K" + line + "\n")
					drawn++
				} else {
					b.WriteString("streamsnatcher: " + line + "\n")
				}
			}
		}
		if b.Len() > 0 {
			io.WriteString(a.stderr, b.String())
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		lastBars = time.Now()
		for {
			select {
			case <-done:
				draw(true)
				return
			case <-t.C:
				draw(false)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// speedTau is the time constant of the smoothed download rate: a burst or a
// pause of a second or two moves the ETA a little, not to 0:00 and back.
const speedTau = 5 * time.Second

// A speedo smooths one run's download rate exponentially.
type speedo struct {
	t      time.Time
	n      int64   // bytes received at t
	rate   float64 // bytes/s
	since  time.Time
	primed bool
}

// update takes the bytes received so far (finished and in-flight) at now.
func (sp *speedo) update(now time.Time, n int64) {
	if sp.t.IsZero() || n < sp.n { // first sight, or the counters started again
		sp.t, sp.n, sp.rate, sp.since, sp.primed = now, n, 0, now, false
		return
	}
	dt := now.Sub(sp.t).Seconds()
	if dt < 0.05 {
		return
	}
	inst := float64(n-sp.n) / dt
	if !sp.primed {
		sp.rate, sp.primed = inst, true
	} else {
		alpha := 1 - math.Exp(-dt/speedTau.Seconds())
		sp.rate += alpha * (inst - sp.rate)
	}
	sp.t, sp.n = now, n
}

// eta is the time left for the bytes left, once the rate has been seen for a
// couple of seconds; ok is false before.
func (sp *speedo) eta(left int64) (seconds float64, ok bool) {
	if sp == nil || !sp.primed || sp.t.Sub(sp.since) < 2*time.Second || sp.rate <= 0 || left < 0 {
		return 0, false
	}
	return float64(left) / sp.rate, true
}

// progressLine: [#####.....] 45/150 segments  12.3/41.0 MB  5.1 MB/s  ETA 0:12  downloading
// The bytes count what is downloaded, what is still arriving and what was
// already there (on disk, or the browser's copies).
func progressLine(p *recorder.Progress, bar bool, sp *speedo) string {
	total, done := p.Total.Load(), p.Done.Load()
	have, want := p.Estimate()
	rate := 0.0
	if sp != nil {
		rate = sp.rate
	}
	eta := "?"
	if want > 0 {
		if s, ok := sp.eta(want - have); ok {
			eta = fmtSeconds(s)
		}
	}
	tot := "?"
	if total > 0 {
		tot = fmt.Sprint(total)
	}
	size := fmt.Sprintf("%.1f MB", float64(have)/1e6)
	if want > 0 {
		size = fmt.Sprintf("%.1f/%.1f MB", float64(have)/1e6, float64(want)/1e6)
	}
	s := fmt.Sprintf("%d/%s segments  %s  %.1f MB/s  ETA %s  %s", done, tot, size, rate/1e6, eta, p.State())
	if p.Live.Load() {
		s = fmt.Sprintf("LIVE %s recorded  %d segments  %.1f MB  %s  (Ctrl-C stops and keeps the file)",
			fmtSeconds(float64(p.Recorded.Load())/1000), done, float64(have)/1e6, p.State())
		return s
	}
	if !bar {
		return s
	}
	const w = 24
	frac := 0.0
	switch {
	case want > 0:
		frac = float64(have) / float64(want)
	case total > 0:
		frac = float64(done) / float64(total)
	}
	fill := min(max(int(float64(w)*frac), 0), w)
	return "[" + strings.Repeat("#", fill) + strings.Repeat(".", w-fill) + "] " + s + "   "
}

func fmtSeconds(s float64) string {
	d := time.Duration(s) * time.Second
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
