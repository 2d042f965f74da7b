package recorder

import (
	"fmt"
	"os"
	"slices"

	"github.com/streamsnatcher/streamsnatcher/playlist"
)

// Quality in watch: players start an HLS master from a bandwidth estimate, usually on a low or middle
// variant, and switch up within seconds. The recording follows them up: when the player fetches the
// media playlist of a variant of the recorded master with a higher BANDWIDTH than the one recorded, and
// the recording is not made yet, its video track becomes that variant. The old variant's segments are
// removed; the new one's are tee'd from the player's copies and the backfill fetches the rest. A switch
// down is ignored: the best quality the player reached is kept. The audio renditions stay as chosen
// when the recording started, even if the new variant names another audio group (the player's fetches
// of that group's renditions are left out like those of any audio not recorded). A live broadcast is
// never switched: its follower goes on with the variant the player chose first. (--variant applies to
// DASH alone in watch, and does not stop the following.) A DASH manifest's recording follows the player's
// video representation up the same way (dashUpLocked), unless --variant chose its representation.

// A variantSwitch is a variant (an HLS variant, a DASH representation) whose track t replaces the
// recording's video track old once no run uses its session.
type variantSwitch struct {
	t, old *Track
	v      *playlist.Variant // an HLS variant; nil for a DASH representation
	// applied, when set, is called under c.mu once t is the recording's (the DASH recording's bookkeeping).
	applied func()
}

// bestVariantLocked is the variant l records, or will once its pending switch is applied.
func (l *live) bestVariantLocked() *playlist.Variant {
	if l.nextVariant != nil && l.nextVariant.v != nil {
		return l.nextVariant.v
	}
	return l.variant
}

// otherVariantLocked takes t, the media playlist at u of variant v of l's master that the player fetched
// while l records another variant: l's video follows it up, or t is left out.
func (c *Capture) otherVariantLocked(l *live, t *Track, v *playlist.Variant, u string) {
	cur := l.bestVariantLocked()
	main := l.s.Main()
	switch {
	case l.deleted || main == nil:
		return
	case main.Live || t.Live:
		// Set once, when the plan is made: no race with a run. Its segments are the follower's.
		c.log.Info("the player switched variants of a live broadcast; recording the first one it chose", "url", redactURL(u))
		return
	case cur == nil:
		return // not a master's variant: nothing to follow
	case v.Bandwidth <= cur.Bandwidth:
		c.log.Info("the player switched down; keeping the better variant", "session", l.s.ID,
			"recorded", variantName(cur), "played", variantName(v))
	case !l.running && l.s.State == StateDone: // a run owns State while it runs
		c.log.Info("the player switched up after the recording was made; not recorded again", "session", l.s.ID,
			"played", variantName(v))
	default:
		c.followUpLocked(l, t, v)
		return
	}
	c.leaveOutLocked(l, t) // never learned as a stream of its own
}

// followUpLocked makes t, the media playlist of variant v, l's video track: at once when no run uses l's
// session, else once the run under way has stopped, gently (its transfers under way land).
func (c *Capture) followUpLocked(l *live, t *Track, v *playlist.Variant) {
	// A track ID of its own, and so a directory of its own: a copy of the old variant still landing
	// never lands in the new one's place, and the old directory can be removed with c.mu released.
	t.ID = fmt.Sprintf("video-%d", v.Bandwidth)
	t.Dir = ""
	t.bind(l.s.Dir())
	if l.guard != nil {
		l.guard.Allow(t.Source) // the browser fetched the playlist from there
	}
	c.log.Info("the player switched up: the recording follows", "session", l.s.ID, "from", variantName(l.bestVariantLocked()),
		"to", variantName(v))
	c.switchLocked(l, &variantSwitch{t: t, old: l.s.Main(), v: v})
}

// switchLocked maps sw's track, so that its segments are tee'd and answered from now on, and makes it l's
// video track: at once when no run uses l's session, else once the run under way has stopped, gently.
func (c *Capture) switchLocked(l *live, sw *variantSwitch) {
	if prev := l.nextVariant; prev != nil {
		c.unmapVariantLocked(l, prev.t) // a step up that never ran: superseded
		sw.old = prev.old
	}
	c.mapTrackLocked(l, sw.t)
	l.nextVariant = sw
	if !l.running {
		c.applyVariantLocked(l)
		return
	}
	if l.yield != nil {
		l.again = true
		l.yield()
	}
}

// applyVariantLocked makes the pending variant l's video track; no run may be using l's session. The old
// variant's segments are removed once c.mu is released.
func (c *Capture) applyVariantLocked(l *live) {
	next := l.nextVariant
	if next == nil {
		return
	}
	l.nextVariant = nil
	k := slices.Index(l.s.Tracks, next.old)
	if k < 0 {
		c.unmapVariantLocked(l, next.t) // not l's any more: nothing to replace
		return
	}
	c.unmapVariantLocked(l, next.old)
	l.s.Tracks[k] = next.t
	if next.v != nil {
		l.variant = next.v
	}
	if next.applied != nil {
		next.applied()
	}
	c.saveLocked(l)
}

// dropVariantLocked forgets a pending switch that came too late: the recording was made.
func (c *Capture) dropVariantLocked(l *live) {
	if next := l.nextVariant; next != nil {
		l.nextVariant = nil
		c.unmapVariantLocked(l, next.t)
		c.log.Info("the recording was made before the better variant the player switched to could replace it", "session", l.s.ID,
			"variant", next.t.Source)
	}
}

// unmapVariantLocked forgets t, a variant l no longer records: the player's fetches of its playlist and
// segments are let through untouched, and its files are removed once c.mu is released.
func (c *Capture) unmapVariantLocked(l *live, t *Track) {
	c.bySegURL.drop(func(r segRef) bool { return r.t == t })
	if tr, ok := c.byList[stripQuery(t.Source)]; ok && tr.t == t {
		delete(c.byList, stripQuery(t.Source))
	}
	for k, v := range c.byKey {
		if v.t == t {
			delete(c.byKey, k)
		}
	}
	c.leaveOutLocked(l, t)
	if dir := t.TrackDir(); dir != "" && dir != l.s.Dir() {
		c.laterLocked(func() { os.RemoveAll(dir) })
	}
}

// dashUpLocked takes a request of the browser for representation id of rec's manifest, once the
// recording's representation is decided: a better one than the recording's (a higher bandwidth) becomes
// its video track, as an HLS variant does. Anything else, a switch down among them, is ignored: this is
// called for every segment the player fetches.
func (c *Capture) dashUpLocked(rec *dashRec, id string) {
	l := rec.l
	best := rec.chosen
	if rec.next != "" {
		best = rec.next
	}
	p := rec.byRep[id]
	switch {
	case p == nil || id == best || l.deleted || rec.bw[id] <= rec.bw[best]:
		return
	case !l.running && l.s.State == StateDone: // a run owns State while it runs
		c.log.Info("the player switched up after the recording was made; not recorded again", "session", l.s.ID,
			"representation", id)
		rec.next = id // said once
		return
	}
	t := NewListTrack(p)
	t.ID = "video-" + SafeName(id) // a directory of its own (see followUpLocked)
	t.Dir = ""
	t.bind(l.s.Dir())
	c.log.Info("the player switched up: the recording follows", "session", l.s.ID, "from", best, "to", id,
		"bandwidth", rec.bw[id])
	rec.next = id
	c.switchLocked(l, &variantSwitch{t: t, old: rec.video, applied: func() { rec.video, rec.chosen, rec.next = t, id, "" }})
}

// variantName names a variant in the log: its resolution and bandwidth.
func variantName(v *playlist.Variant) string {
	if v == nil {
		return ""
	}
	if v.Resolution != "" {
		return fmt.Sprintf("%s %d bps", v.Resolution, v.Bandwidth)
	}
	return fmt.Sprintf("%d bps", v.Bandwidth)
}
