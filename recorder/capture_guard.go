package recorder

// Checks the capture makes before it records or runs a stream: the session
// lock across processes, limits on what one page may start. They live here so
// capture.go only calls them.

// lockRun takes the session's lock for a run of the capture (the file I/O
// outside c.mu). When another process holds it, the stream waits with the
// reason shown and its run ends at once: nothing is written to a session
// someone else is recording.
func (c *Capture) lockRun(l *live) (unlock func(), ok bool) {
	unlock, err := l.s.Lock("watch")
	if err != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		l.reason = "paused: " + err.Error() + "; resume it here once that process has ended"
		c.log.Warn("stream not recorded", "session", l.s.ID, "err", err)
		l.running = false
		close(l.runDone)
		return nil, false
	}
	return unlock, true
}

// segmentCap is the size cap of one tee'd segment: the backfill's own.
func (c *Capture) segmentCap() int64 {
	if c.opts.MaxSegmentBytes > 0 {
		return c.opts.MaxSegmentBytes
	}
	return 256 << 20 // Options.fill's default
}

// teeAllowed says whether the browser's copy of a segment of s may be kept: not
// when its Content-Length is already over the cap, nor when the disk is below
// the free-space floor. The browser's stream is never affected.
func (c *Capture) teeAllowed(s *Session, contentLength int64) bool {
	if contentLength > c.segmentCap() {
		c.log.Warn("segment over the size cap: the browser's copy is not kept", "session", s.ID,
			"content_length", contentLength, "cap", c.segmentCap())
		return false
	}
	floor := c.opts.MinFreeBytes
	if floor == 0 {
		floor = DefaultMinFreeBytes
	}
	if err := checkFree(s.Dir(), floor); err != nil {
		c.log.Warn("the browser's copy is not kept", "session", s.ID, "err", err)
		return false
	}
	return true
}
