package recorder

import (
	"os"
	"path/filepath"
	"time"
)

// A capture keeps a finished recording's segments while the page may still
// ask for them (a player seeks back, or buffers again after the merge), so the
// origin serves each segment once per capture. They go when the page has not
// asked for one for CaptureOptions.Linger, or when Wait returns.

// lingerLocked schedules the removal of l's segments once the page stops
// asking for them. Called when its run ends done.
func (c *Capture) lingerLocked(l *live) {
	if c.keep || l.swept {
		return
	}
	if now := time.Now(); l.asked.Before(now) {
		l.asked = now // the idle clock starts when the recording is done at the earliest
	}
	var check func()
	check = func() {
		c.mu.Lock()
		if l.swept || l.deleted || l.running || l.s.State != StateDone {
			c.unlock()
			return
		}
		if left := c.linger - time.Since(l.asked); left > 0 {
			time.AfterFunc(left, check)
			c.unlock()
			return
		}
		l.swept = true
		s := l.s
		c.unlock()
		c.sweep(s)
	}
	time.AfterFunc(c.linger, check)
}

// sweepAll removes the segments of every finished recording now.
func (c *Capture) sweepAll() {
	if c.keep {
		return
	}
	var done []*Session
	c.mu.Lock()
	for _, l := range c.streams {
		if !l.swept && !l.deleted && !l.running && l.s.State == StateDone {
			l.swept = true
			done = append(done, l.s)
		}
	}
	c.unlock()
	for _, s := range done {
		c.sweep(s)
	}
}

// sweep removes a finished recording's segments, under its lock.
func (c *Capture) sweep(s *Session) {
	unlock, err := s.Lock("watch")
	if err != nil {
		return // another process records it now: its files are its own
	}
	defer unlock()
	s.removeWork(s.Output, c.log.Warn)
	c.log.Info("segments removed: the page stopped asking for them", "session", s.ID)
}

// removeWork removes what a verified merge no longer needs: segment files,
// init sections, merged sections other than output, the tee's scratch.
func (s *Session) removeWork(output string, warn func(string, ...any)) {
	for _, t := range s.Tracks {
		if err := os.RemoveAll(t.SegmentDir()); err != nil {
			warn("could not remove segments", "err", err)
		}
		for n := range t.Inits {
			os.Remove(t.InitPath(n + 1))
		}
		units, _ := filepath.Glob(filepath.Join(t.TrackDir(), "unit-*.mp4"))
		for _, u := range units {
			if u != output {
				os.Remove(u)
			}
		}
	}
	os.RemoveAll(filepath.Join(s.dir, "tee"))
}
