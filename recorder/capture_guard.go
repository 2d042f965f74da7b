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
