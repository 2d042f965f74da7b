package recorder

// Every request of the browser takes the capture's lock (c.mu), so nothing
// under it touches the file system: one slow disk operation (a stalled
// fsync, a slow network share) would hold up every request of the page. What
// is decided under c.mu is done once it is released:
//
//   - a tee's file is made by its pendingTap, called after c.mu is released;
//     the segment is claimed (its flight) under c.mu first, so nothing else
//     fetches it meanwhile;
//   - a look at the disk made with c.mu released is checked against
//     live.landings, which counts the flights ended and files moved in;
//   - a session is saved by saveLocked: marked under c.mu, encoded (an
//     in-memory snapshot) and written by unlock, under c.saveMu, so that
//     writes land in the order of their snapshots and an older state never
//     overwrites a newer one; a run flushes them before it starts (runStream),
//     and the capture marks no session a run is using;
//   - other file work (moving a kept copy into place) is queued with
//     laterLocked and run by unlock.
//
// Left under c.mu, each at most once per recording: making a new recording's
// session directory and its first session.json (newLive: the recording must
// exist on disk before it is known), removing a DASH video track's directory
// when the player chose another representation (decideLocked), the session
// saved when a person pauses a run, and the session's lock file released
// when a run ends (runStream).

// saveLocked has l's session saved once c.mu is released (see unlock).
func (c *Capture) saveLocked(l *live) {
	if l.dirty || l.deleted {
		return
	}
	l.dirty = true
	c.dirty = append(c.dirty, l)
}

// laterLocked queues file work to run once c.mu is released (see unlock).
func (c *Capture) laterLocked(f func()) {
	c.later = append(c.later, f)
}

// unlock releases c.mu, then does the file work queued under it: files moved
// (laterLocked), then sessions saved (saveLocked).
func (c *Capture) unlock() {
	if len(c.later) == 0 && len(c.dirty) == 0 {
		c.mu.Unlock()
		return
	}
	later := c.later
	c.later = nil
	c.mu.Unlock()
	for _, f := range later {
		f()
	}
	c.flushSaves()
}

// flushSaves writes the sessions marked by saveLocked. It returns once every
// snapshot taken so far is on disk, its own or another caller's. c.mu must
// not be held.
func (c *Capture) flushSaves() {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	type snap struct {
		l    *live
		data []byte
	}
	var snaps []snap
	c.mu.Lock()
	for _, l := range c.dirty {
		l.dirty = false
		if l.deleted {
			continue
		}
		data, err := l.s.encode()
		if err != nil {
			c.log.Warn("could not save session", "session", l.s.ID, "err", err)
			continue
		}
		snaps = append(snaps, snap{l, data})
	}
	c.dirty = nil
	c.mu.Unlock()
	for _, sn := range snaps {
		if err := sn.l.s.write(sn.data); err != nil {
			c.log.Warn("could not save session", "session", sn.l.s.ID, "err", err)
		}
	}
}
