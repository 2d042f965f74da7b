package main

import (
	"fmt"
	"io"
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
	return a.renderAll(func() []tracked { return []tracked{{"", prog}} })
}

// renderAll draws one line per tracked item (one bar per active stream on a
// terminal, redrawn in place; plain lines every few seconds otherwise).
func (a *app) renderAll(items func() []tracked) (stop func()) {
	if a.config().Quiet {
		return func() {}
	}
	tty := false
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		tty = true
	}
	every := 5 * time.Second
	if tty {
		every = 200 * time.Millisecond
	}
	drawn := 0
	draw := func() {
		list := items()
		var b strings.Builder
		if tty && drawn > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", drawn) // back to the first line of the last frame
		}
		for _, it := range list {
			line := progressLine(it.p, tty)
			if it.label != "" {
				line = it.label + " " + line
			}
			if tty {
				b.WriteString("\x1b[2K" + line + "\n")
			} else {
				b.WriteString("streamsnatcher: " + line + "\n")
			}
		}
		if tty {
			drawn = len(list)
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
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				draw()
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// progressLine: [#####.....] 45/150 segments  12.3 MB  5.1 MB/s  ETA 0:12
func progressLine(p *recorder.Progress, bar bool) string {
	total, done := p.Total.Load(), p.Done.Load()
	mb := float64(p.Bytes.Load()) / 1e6
	el := time.Since(p.Started()).Seconds()
	rate := 0.0
	if el > 0 {
		rate = mb / el
	}
	eta := "?"
	if fetched := p.Fetched.Load(); fetched > 0 && total > 0 && rate > 0 {
		per := el / float64(fetched)
		eta = fmtSeconds(per * float64(max(0, total-done)))
	}
	tot := "?"
	if total > 0 {
		tot = fmt.Sprint(total)
	}
	s := fmt.Sprintf("%d/%s segments  %.1f MB  %.1f MB/s  ETA %s  %s", done, tot, mb, rate, eta, p.State())
	if p.Live.Load() {
		s = fmt.Sprintf("LIVE %s recorded  %d segments  %.1f MB  %s  (Ctrl-C stops and keeps the file)",
			fmtSeconds(float64(p.Recorded.Load())/1000), done, mb, p.State())
		return s
	}
	if !bar {
		return s
	}
	const w = 24
	fill := 0
	if total > 0 {
		fill = int(float64(w) * float64(done) / float64(total))
	}
	fill = min(max(fill, 0), w)
	return "[" + strings.Repeat("#", fill) + strings.Repeat(".", w-fill) + "] " + s + "   "
}

func fmtSeconds(s float64) string {
	d := time.Duration(s) * time.Second
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
