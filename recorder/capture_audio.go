package recorder

import "strings"

// Audio in watch: a recording of a master records the variant the player plays with the audio renditions
// MergeOptions.Audio chooses (the DEFAULT=YES one, a language, or all; audioChoiceLocked). When the player
// fetches another audio rendition of that master (the person switched language in the player), the
// rendition joins the recording as another audio track, tagged with its language, as subtitles do
// (addPlayedLocked: a run under way restarts with it, what is on disk is kept, the browser's copies of its
// segments are tee'd and answered). Unless the person chose a language explicitly (--audio-lang): then it
// is what they asked for that is recorded, and the other rendition is left out.

// otherAudioLocked takes p, an audio rendition of l's master the player fetched that l does not record. It
// joins l unless the audio was chosen explicitly or l cannot take it (made already, live); then the
// player's fetches of its segments are let through untouched (leaveOutLocked), and said once.
func (c *Capture) otherAudioLocked(l *live, p *Track) {
	if c.leftOutLocked(p) {
		c.leaveOutLocked(l, p) // its playlist reloaded (live): the segments it lists now too
		return
	}
	if lang := c.mopts.Audio; lang != "" && !strings.EqualFold(strings.TrimSpace(lang), "all") {
		c.log.Info("the player plays audio --audio-lang leaves out: not recorded", "session", l.s.ID,
			"language", p.Language, "audio-lang", lang)
	} else if c.addPlayedLocked(l, p, "audio") {
		return
	}
	c.leaveOutLocked(l, p)
}

// leftOutLocked reports whether the segments of p were left out already (its playlist reloaded).
func (c *Capture) leftOutLocked(p *Track) bool {
	for _, sg := range p.Segments {
		if sg.URL != "" {
			_, ok := c.notRecorded.find(sg.URL)
			return ok
		}
	}
	return false
}
