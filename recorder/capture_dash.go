package recorder

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/streamsnatcher/streamsnatcher/dash"
	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// DASH in the traffic. A manifest the browser fetches makes one recording for
// its page: the video representation the player plays (or, until it is known,
// the best one) and the audio the run is set to record. Every segment and
// init URL of every representation of the manifest is known, so none of them
// starts a recording of its own (see onSegment).

// Limits on what a manifest seen in the traffic makes the capture remember.
const (
	maxDASHReps = 16      // video representations mapped to tell which one the player plays
	maxDASHURLs = 1 << 18 // segment URLs mapped for that, in all
	// dashChoiceWait is how long a recording waits for the player's first
	// video request, which says which representation it plays.
	dashChoiceWait = 3 * time.Second
)

// A dashRec is a manifest seen in the traffic and the recording it made.
type dashRec struct {
	l      *live
	video  *Track                 // the recording's video track; nil when the manifest has none
	byRep  map[string]*plan.Track // video Representation@id → its planned track
	chosen string                 // the representation the video track records
	bw     map[string]int64       // video Representation@id → its bandwidth
	next   string                 // the better representation the player switched to, recorded next (capture_variant.go)
	// decided: the player's choice is known, or the wait for it is over.
	decided bool
}

// A dashRep is one video representation of a seen manifest.
type dashRep struct {
	rec *dashRec
	id  string
}

// manifestTap buffers a manifest's body (bounded, like a playlist's).
func (c *Capture) manifestTap(ex *proxy.Exchange) proxy.BodyTap {
	u := ex.Req.URL.String()
	h := keptHeaders(ex.Req.Header)
	return &bufTap{max: dash.MaxSize, done: func(b []byte) { c.onManifest(u, h, b) }}
}

// onManifest makes the recording of a DASH manifest, or takes fresh
// credentials from a manifest seen again.
func (c *Capture) onManifest(u string, h map[string]string, data []byte) {
	base, err := url.Parse(u)
	if err != nil {
		return
	}
	m, perr := dash.Parse(data, base)
	var reps map[string]*repPattern
	var inits []string
	if errors.Is(perr, dash.ErrDynamic) {
		reps, inits = liveReps(data, base, dashSelection(c.mopts.Variant, c.mopts.Audio))
	}
	c.mu.Lock()
	defer c.unlock()
	key := stripQuery(u)
	if rec := c.byManifest[key]; rec != nil {
		c.refreshLocked(rec.l, h, "")
		return
	}
	// Whatever becomes of it, the segments under the manifest and under each
	// representation's BaseURL are its own: never learned as streams.
	c.dashDirs[dirOf(u)] = true
	if errors.Is(perr, dash.ErrDynamic) {
		// A live manifest: the run follows it (reloading it as the player
		// does) until it turns static or the recording is stopped.
		c.liveManifestLocked(key, u, h, reps, inits)
		return
	}
	if perr != nil {
		c.log.Warn("DASH manifest not recorded", "url", redactURL(u), "err", perr)
		return
	}
	for _, p := range m.Periods {
		for _, a := range p.AdaptationSets {
			for _, r := range a.Representations {
				c.dashDirs[dirOf(r.BaseURL)] = true
			}
		}
	}
	sel := dashSelection(c.mopts.Variant, c.mopts.Audio)
	pres, err := m.Plan(sel)
	s := &Session{Source: "watch", Page: h["Referer"], Input: u, Headers: h}
	nsegs := 0
	switch {
	case errors.Is(err, dash.ErrNeedsIndex):
		// SegmentBase: its segment index is fetched by the run (no I/O here),
		// which reads the manifest again. The browser's byte ranges are not
		// kept: a range of a bigger file is fetched by the backfill anyway.
		s.Playlist, s.Variant, s.Audio = u, c.mopts.Variant, c.mopts.Audio
	case err != nil:
		c.log.Warn("DASH manifest not recorded", "url", redactURL(u), "err", err)
		return
	default:
		for _, t := range pres.Tracks {
			s.AddTrack(NewListTrack(t))
			nsegs = max(nsegs, len(t.Segments))
		}
	}
	rec := c.newDASHRecLocked(key, u, h, s, nsegs)
	if rec == nil {
		return
	}
	l := rec.l
	for _, t := range s.Tracks {
		c.mapTrackLocked(l, t)
		if t.Kind == plan.Video && rec.video == nil {
			rec.video = t
		}
	}
	if rec.video != nil && sel.Video == "" {
		c.mapRepsLocked(rec, m, sel)
	}
	c.saveLocked(l)
	if rec.decided {
		c.startLocked(l)
		return
	}
	// Players fetch the init segment of the representation they chose right
	// after the manifest; if this one does not, the best one is recorded.
	l.waiting++
	l.reason = "waiting for the player to choose a video representation"
	time.AfterFunc(dashChoiceWait, func() {
		c.mu.Lock()
		defer c.unlock()
		c.decideLocked(rec, "")
	})
}

// mapRepsLocked plans every video representation of the manifest, so that
// the player's first video request says which one it plays. With one
// representation there is nothing to choose.
func (c *Capture) mapRepsLocked(rec *dashRec, m *dash.MPD, sel dash.Selection) {
	var ids []string
	for _, a := range m.Periods[0].AdaptationSets {
		if a.Kind != plan.Video || a.TrickMode {
			continue
		}
		for _, r := range a.Representations {
			ids = append(ids, r.ID)
			if rec.bw == nil {
				rec.bw = map[string]int64{}
			}
			rec.bw[r.ID] = r.Bandwidth
		}
	}
	if len(ids) < 2 || len(ids) > maxDASHReps {
		return
	}
	rec.byRep = map[string]*plan.Track{}
	urls := 0
	for _, id := range ids {
		sel.Video = id
		p, err := m.Plan(sel)
		if err != nil {
			continue
		}
		for _, t := range p.Tracks {
			if t.Kind != plan.Video {
				continue
			}
			if urls += len(t.Segments) + len(t.Inits); urls > maxDASHURLs {
				rec.byRep = nil
				return
			}
			rec.byRep[id] = t
			if sameTrackURLs(t, &rec.video.Track) {
				rec.chosen = id
			}
			break
		}
	}
	if rec.chosen == "" || len(rec.byRep) < 2 {
		rec.byRep = nil
		return
	}
	for id, t := range rec.byRep {
		ref := dashRep{rec, id}
		for _, sg := range t.Segments {
			c.dashReps.add(sg.URL, ref)
		}
		for _, in := range t.Inits {
			c.dashReps.add(in.URL, ref)
		}
	}
	rec.decided = false
}

func sameTrackURLs(a, b *plan.Track) bool {
	if len(a.Segments) != len(b.Segments) || len(a.Segments) == 0 {
		return false
	}
	return a.Segments[0].URL == b.Segments[0].URL && a.Segments[len(a.Segments)-1].URL == b.Segments[len(b.Segments)-1].URL
}

// dashSeenLocked notes a request of the browser: the first one for a video
// representation of a manifest whose recording waits says which one the
// player plays; a later one for a better representation than the one
// recorded switches the recording up to it (capture_variant.go).
func (c *Capture) dashSeenLocked(u string) {
	ref, ok := c.dashReps.find(u)
	switch {
	case !ok:
	case !ref.rec.decided:
		c.decideLocked(ref.rec, ref.id)
	default:
		c.dashUpLocked(ref.rec, ref.id)
	}
}

// decideLocked records representation id ("" keeps the best one) and starts
// the recording. Nothing of the video track is on disk yet: the player's
// first video request is what decides.
func (c *Capture) decideLocked(rec *dashRec, id string) {
	if rec.decided {
		return
	}
	rec.decided = true
	l := rec.l
	if nt := rec.byRep[id]; nt != nil && id != rec.chosen && !l.running && !l.deleted {
		t := rec.video
		c.bySegURL.drop(func(v segRef) bool { return v.t == t })
		os.RemoveAll(t.TrackDir())
		tid, dir, tdir := t.ID, t.Dir, t.dir
		*t = *NewListTrack(nt)
		t.ID, t.Dir, t.dir = tid, dir, tdir
		c.mapTrackLocked(l, t)
		rec.chosen = id
		c.log.Info("recording the representation the player chose", "session", l.s.ID, "representation", id)
		c.saveLocked(l)
	}
	if l.waiting > 0 {
		l.waiting--
	}
	l.reason = ""
	c.startLocked(l)
}

// underManifestLocked reports whether u is a segment of a seen manifest, of
// any of its representations: such a URL never starts a learned stream.
func (c *Capture) underManifestLocked(u string) bool {
	if _, ok := c.dashReps.find(u); ok {
		return true
	}
	u = stripQuery(u)
	for d := range c.dashDirs {
		if strings.HasPrefix(u, d) {
			return true
		}
	}
	return false
}

// liveManifestLocked makes the recording of a live (dynamic) manifest: the run
// reads it, plans it on the clock and follows it (recorder/live.go). reps
// are the URL patterns of the representations it records, by track, and
// inits their init URLs: the player's requests for them, which follow the
// manifest at once, are kept aside until the follower lists them
// (capture_live.go).
func (c *Capture) liveManifestLocked(key, u string, h map[string]string, reps map[string]*repPattern, inits []string) {
	s := &Session{Source: "watch", Page: h["Referer"], Input: u, Headers: h,
		Playlist: u, Variant: c.mopts.Variant, Audio: c.mopts.Audio}
	rec := c.newDASHRecLocked(key, u, h, s, 0)
	if rec == nil {
		return
	}
	for id, p := range reps {
		c.aside.reps[repOf{rec.l, id}] = p
	}
	for _, in := range inits {
		c.aside.inits[in] = rec.l
	}
	c.log.Info("live DASH manifest: recording until it ends or is stopped", "url", redactURL(u))
	c.startLocked(rec.l)
}

// newDASHRecLocked makes s, the recording of the manifest at u (key: without its query) that the page
// fetched with headers h, listing nsegs segments at most per track: within the page's hosts and the
// limits, saved, and known by its key. It logs why and returns nil when it cannot.
func (c *Capture) newDASHRecLocked(key, u string, h map[string]string, s *Session, nsegs int) *dashRec {
	g, err := c.guardFor(h, u)
	if err == nil {
		err = c.admitLocked(h["Referer"], nsegs)
	}
	if err != nil {
		c.log.Warn("DASH manifest not recorded", "url", redactURL(u), "err", err)
		return nil
	}
	l, err := c.newLive(s, "")
	if err != nil {
		c.log.Warn("could not save session", "err", err)
		return nil
	}
	l.guard = g
	rec := &dashRec{l: l, decided: true}
	c.byManifest[key] = rec
	return rec
}

// liveReps learns, from a live manifest as the player reads it, the URL
// patterns of the representations a recording of sel records, by track ID
// (the follower plans the same tracks), and their init URLs (whole files,
// not ranges). A track that lists fewer than two segments yet, or a manifest
// that cannot be planned here (a segment index to fetch), gives no pattern:
// the follower's listings teach them later.
func liveReps(data []byte, base *url.URL, sel dash.Selection) (reps map[string]*repPattern, inits []string) {
	m, err := dash.ParseDynamic(data, base)
	if err != nil || !m.Dynamic {
		return nil, nil
	}
	p, _, err := m.PlanLive(sel, time.Now(), nil)
	if err != nil {
		return nil, nil
	}
	reps = map[string]*repPattern{}
	for _, t := range p.Tracks {
		for _, in := range t.Inits {
			if in.Range == nil && in.URL != "" {
				inits = append(inits, in.URL)
			}
		}
		rp := &repPattern{}
		for _, sg := range t.Segments[max(0, len(t.Segments)-2):] {
			if sg.URL != "" {
				rp.learn(sg.URL)
			}
		}
		if rp.runs != nil {
			reps[t.ID] = rp
		}
	}
	return reps, inits
}
