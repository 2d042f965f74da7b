package recorder

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/playlist"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// Subtitles in watch: each WebVTT subtitle playlist of a master that the page's player fetches becomes a
// subtitle track of that master's recording, kept as get keeps them (Run places the cues on the video's
// clock, muxes them and writes NAME.LANG.vtt beside the output), unless MergeOptions.Subtitles (--subs)
// leaves its language out. Only what the player fetched is recorded:
// no subtitle playlist fetched, no subtitles; a language switch adds the new language as its own track. The
// browser's copies of the segments are tee'd like the video's, and the backfill fetches the rest.

// onSubtitlesLocked takes a subtitle playlist the player fetched for the first time: a track of its
// master's recording, or kept aside until the player fetches the variant that makes that recording.
func (c *Capture) onSubtitlesLocked(u string, ref *masterRef, md *playlist.Media) {
	if !ref.rend.Selected(c.mopts.Subtitles) {
		c.log.Info("subtitles not chosen (--subs): not recorded", "language", ref.rend.Language, "subs", c.mopts.Subtitles)
		return
	}
	if !md.EndList {
		c.log.Info("live subtitles are not recorded", "url", redactURL(u))
		return
	}
	st := subtitleTrack(*ref.rend)
	p, err := plan.FromMedia(md, u, st.ID, plan.Subtitles) // a second plan: onPlaylist's was made as video
	if err != nil {
		c.log.Warn("subtitles not recorded", "url", redactURL(u), "err", err)
		return
	}
	p.Language, p.Name = st.Language, st.Name
	t := NewListTrack(p)
	l := c.byMaster[ref.master]
	if l == nil {
		if len(c.early) < maxEarly {
			c.early[stripQuery(u)] = t
		}
		return
	}
	c.addSubtitlesLocked(l, t)
}

// subtitleGroup lists the subtitle renditions of m that play with v.
func subtitleGroup(m *playlist.Master, v *playlist.Variant) []playlist.Rendition {
	rs, _ := m.SubtitlesFor(v, "all")
	return rs
}

// waitDefaultSubtitlesLocked makes the start of l, the new recording of ref's variant, wait for the
// playlist of the variant's default subtitles (DEFAULT=YES), as it waits for the audio's: players that
// show subtitles fetch it right after the variant's, and a track added before the run starts costs
// nothing, while one added later restarts it. When the player does not fetch it, the start waits no
// longer than for the audio.
func (c *Capture) waitDefaultSubtitlesLocked(l *live, ref *masterRef) {
	for _, r := range ref.subs {
		if !r.Default || !r.Selected(c.mopts.Subtitles) {
			continue // not the default, or not chosen: not waited for
		}
		for _, t := range l.s.Tracks {
			if stripQuery(t.Source) == stripQuery(r.URI) {
				return // fetched before the variant
			}
		}
		l.waitSub = stripQuery(r.URI)
		l.waiting++
		return
	}
}

// adoptEarlySubtitlesLocked adds to l, the new recording of master, the subtitle playlists of master the
// player fetched before its variant.
func (c *Capture) adoptEarlySubtitlesLocked(l *live, master string) {
	for key, t := range c.early {
		if ref := c.mediaOf[key]; ref != nil && ref.master == master && t.Kind == plan.Subtitles {
			delete(c.early, key)
			c.addSubtitlesLocked(l, t)
		}
	}
}

// addSubtitlesLocked adds subtitle track t to recording l (addPlayedLocked), whose start may wait for it.
func (c *Capture) addSubtitlesLocked(l *live, t *Track) {
	if !c.addPlayedLocked(l, t, "subtitles") || l.running {
		return
	}
	if stripQuery(t.Source) == l.waitSub && l.waiting > 0 {
		l.waitSub = ""
		l.waiting--
		if l.waiting == 0 {
			l.reason = ""
			c.startLocked(l)
		}
	}
}

// addPlayedLocked adds t, a track of l's master the player fetched (what: "subtitles", "audio"), to recording
// l; its segments are tee'd and answered from then on. A run in progress owns l's session: t waits in
// l.pendingTracks and the run is stopped gently and restarted with it (what is on disk stays; a merge under
// way is redone). A recording already made is not made again for it, nor is a live broadcast's: added is
// false, and nothing was changed.
func (c *Capture) addPlayedLocked(l *live, t *Track, what string) (added bool) {
	switch {
	case l.deleted || l.s.Main() == nil:
		return false
	case l.s.Main().Live: // set once, when the plan is made: no race with a run
		c.log.Info(what+" of a live broadcast: not recorded", "session", l.s.ID, "language", t.Language)
		return false
	case !l.running && l.s.State == StateDone: // a run owns State while it runs
		c.log.Info(what+" fetched after the recording was made: not added", "session", l.s.ID, "language", t.Language)
		return false
	}
	for _, x := range slices.Concat(l.s.Tracks, l.pendingTracks) {
		if x.Source == t.Source {
			return true
		}
	}
	if len(l.s.Tracks)+len(l.pendingTracks) >= maxMasterEntries {
		return false
	}
	t.ID = c.trackIDLocked(l, t.ID)
	t.bind(l.s.Dir())
	if l.guard != nil {
		l.guard.Allow(t.Source) // the browser fetched the playlist from there
	}
	c.mapTrackLocked(l, t) // its segments are tee'd and answered from now on
	if l.running {
		// runStream adds the track before its next Run: stop the one under way, if any, so that it
		// comes. Gently: a segment the browser reads as the backfill fetches it lands whole.
		l.pendingTracks = append(l.pendingTracks, t)
		if l.yield != nil {
			c.log.Info("the player fetched "+what+": the recording goes on with them", "session", l.s.ID, "language", t.Language)
			l.again = true
			l.yield()
		}
		return true
	}
	l.s.AddTrack(t)
	c.saveLocked(l)
	return true
}

// addPendingTracksLocked moves the tracks that waited for a run into l's session; no run may be using it.
func (c *Capture) addPendingTracksLocked(l *live) {
	for _, t := range l.pendingTracks {
		l.s.AddTrack(t)
	}
	l.pendingTracks = nil
}

// trackIDLocked makes id unique among l's tracks and those waiting to join it.
func (c *Capture) trackIDLocked(l *live, id string) string {
	taken := func(id string) bool {
		for _, x := range slices.Concat(l.s.Tracks, l.pendingTracks) {
			if x.ID == id {
				return true
			}
		}
		return false
	}
	base := id
	for n := 2; taken(id); n++ {
		id = fmt.Sprintf("%s-%d", base, n)
	}
	return id
}

// subtitleTap keeps the browser's copy of a WebVTT segment of a recorded subtitle track (the proxy does
// not report them as segments: nothing else is learned from them).
func (c *Capture) subtitleTap(ex *proxy.Exchange) proxy.BodyTap {
	if ex.Status == http.StatusUnauthorized || ex.Status == http.StatusForbidden || !fullBody(ex) {
		return nil
	}
	u := ex.Req.URL.String()
	var p pendingTap
	c.mu.Lock()
	if ref, ok := c.bySegURL.find(u); ok && ref.t.Kind == plan.Subtitles {
		p = c.teeMappedLocked(ref, u, keptHeaders(ex.Req.Header), ex)
	}
	c.unlock()
	return p.open()
}
