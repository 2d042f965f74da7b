package recorder

import (
	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// withTemplate gives s one video track numbered by tmpl from first.
func withTemplate(s *Session, tmpl *urltemplate.Template, first int64, probeStart bool) *Session {
	ext := segmentExt(tmpl.URL(first))
	s.AddTrack(&Track{Track: plan.Track{ID: "video", Kind: plan.Video, Template: tmpl, Ext: ext}, First: first, ProbeStart: probeStart})
	return s
}

// known sets the end of s's main track.
func known(s *Session, last int64) *Session {
	s.Main().Last, s.Main().EndKnown = last, true
	return s
}

// listed gives s one listed track.
func listed(s *Session, p *plan.Track) *Session {
	s.AddTrack(NewListTrack(p))
	return s
}

// listedURLs gives s one listed video track of these segment URLs.
func listedURLs(s *Session, urls ...string) *Session {
	p := &plan.Track{ID: "video", Kind: plan.Video, Ext: ".ts"}
	for i, u := range urls {
		p.Segments = append(p.Segments, plan.Segment{URL: u, Sequence: int64(i)})
	}
	return listed(s, p)
}
