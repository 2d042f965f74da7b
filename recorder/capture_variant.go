package recorder

import (
	"fmt"
	"os"

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
// never switched: its follower goes on with the variant the player chose first. With an explicit
// --variant (MergeOptions.Variant) nothing is followed.

// A variantSwitch is a variant the recording moves to once no run uses its session.
type variantSwitch struct {
	t *Track
	v *playlist.Variant
}

// bestVariantLocked is the variant l records, or will once its pending switch is applied.
func (l *live) bestVariantLocked() *playlist.Variant {
	if l.nextVariant != nil {
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
		c.log.Info("the player switched variants; recording the one --variant chose", "url", redactURL(u))
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
	if old := l.nextVariant; old != nil {
		c.unmapVariantLocked(l, old.t) // a step up that never ran: superseded
	}
	c.mapTrackLocked(l, t) // its segments are tee'd and answered from now on
	c.log.Info("the player switched up: the recording follows", "session", l.s.ID, "from", variantName(l.bestVariantLocked()),
		"to", variantName(v))
	l.nextVariant = &variantSwitch{t, v}
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
	old := l.s.Main()
	c.unmapVariantLocked(l, old)
	l.s.Tracks[0] = next.t
	l.variant = next.v
	c.saveLocked(l)
}

// dropVariantLocked forgets a pending switch that came too late: the recording was made.
func (c *Capture) dropVariantLocked(l *live) {
	if next := l.nextVariant; next != nil {
		l.nextVariant = nil
		c.unmapVariantLocked(l, next.t)
		c.log.Info("the recording was made before the better variant the player switched to could replace it", "session", l.s.ID,
			"variant", variantName(next.v))
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
