package recorder

import (
	"github.com/streamsnatcher/streamsnatcher/media"
	"github.com/streamsnatcher/streamsnatcher/merge"
	"github.com/streamsnatcher/streamsnatcher/plan"
)

// liveMuxable reports whether the tracks can be muxed live, by one ffmpeg reading every track's segments as
// they download (merge.Mux), instead of each track merged on its own and then joined (merge.Join), a second
// pass over the whole file. It takes several listed, finished (not live) video and audio tracks of one merge
// unit each (no discontinuity, no change of init section), each either MPEG-TS or fragmented MP4 with one init
// section: what the mux's scanners verify and ffmpeg can read from a pipe. Subtitles need the join.
func liveMuxable(tracks []*Track) bool {
	if len(tracks) < 2 {
		return false // one track merges straight into the target
	}
	for _, t := range tracks {
		switch {
		case t.Kind != plan.Video && t.Kind != plan.Audio,
			t.Template != nil, t.Live, len(t.Segments) == 0, t.units() != 1:
			return false
		}
		fmp4 := len(t.Inits) == 1 && t.Segments[0].Init == 1
		ts := len(t.Inits) == 0 && t.ext() == media.FormatMPEGTS.Ext()
		if !fmp4 && !ts {
			return false
		}
	}
	return true
}

// muxTrack describes t for merge.StartMux: its listed duration is what it must last (0 when a segment's is
// unknown); a track with holes is told so by its trackRun before it closes its input.
func muxTrack(t *Track) merge.MuxTrack {
	mt := merge.MuxTrack{Kind: t.Kind, Language: t.Language, Name: t.Name, Default: t.Default}
	if len(t.Inits) == 1 {
		mt.Init = t.InitPath(1)
	}
	for _, s := range t.Segments {
		if s.Duration <= 0 {
			mt.Expected = 0
			break
		}
		mt.Expected += s.Duration
	}
	return mt
}
