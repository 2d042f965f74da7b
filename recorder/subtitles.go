package recorder

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/streamsnatcher/streamsnatcher/merge"
	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/playlist"
	"github.com/streamsnatcher/streamsnatcher/webvtt"
)

// subtitleTrack makes the (not yet resolved) track of a subtitle rendition.
func subtitleTrack(r playlist.Rendition) *Track {
	id := "subs"
	if r.Language != "" {
		if l := "subs-" + SafeName(r.Language); plan.SafeID(l) {
			id = l
		}
	}
	name := r.Name
	if r.Forced {
		id += "-forced"
		if !strings.Contains(strings.ToLower(name), "forced") {
			name = strings.TrimSpace(name + " (forced)")
		}
	}
	// Not Default: a player would then show them unasked.
	return &Track{Track: plan.Track{ID: id, Kind: plan.Subtitles, Language: r.Language, Name: name, Source: r.URI}}
}

// buildSubtitles writes, for each merged unit of the video track, one WebVTT file of the cues of the
// subtitle segments of the unit's discontinuity section, timed from the unit's start as the video is muxed:
// a unit's merge puts its first segment's start time (merge.StartTime) at 0, and each segment's cues are
// moved onto that clock by its X-TIMESTAMP-MAP (webvtt.File.Offset). Cues outside the unit's listed span are
// dropped and those that straddle its ends cut to it (a credits cue past the video's end would otherwise make
// the subtitle stream outlast it), and so are repeats (segmenters write a cue that spans a boundary into both
// segments). The files become the subtitle run's outputs, one per video unit, for merge.Join.
func (r *trackRun) buildSubtitles(ctx context.Context, video *trackRun) error {
	vt, st := video.t, r.t
	type unit struct {
		section int
		start   time.Duration
	}
	var units []unit
	for _, i := range vt.Indices() {
		u := video.unit(i)
		if u < len(units) || !vt.Have(i) {
			continue
		}
		for len(units) < u {
			units = append(units, unit{section: -1}) // a unit with nothing on disk has no output either
		}
		seg := vt.Segment(i)
		init := ""
		if in := vt.InitOf(i); in != nil {
			init = vt.InitPath(seg.Init)
			if vt.Template != nil {
				init = vt.InitPath(vt.Init)
			}
		}
		start, err := merge.StartTime(ctx, r.mopts, init, vt.SegmentPath(i))
		if err != nil {
			return fmt.Errorf("%s track: placing cues: video segment %d: %w", st.ID, i, err)
		}
		units = append(units, unit{section: seg.Section, start: time.Duration(start * float64(time.Second))})
	}
	// The video's outputs are its units on disk, in order.
	var outputs []string
	var outExp []float64
	n := 0
	for u, un := range units {
		if un.section < 0 {
			continue
		}
		var cues []webvtt.Cue
		for _, i := range st.Indices() {
			if st.Segment(i).Section != un.section || !st.Have(i) {
				continue
			}
			data, err := os.ReadFile(st.SegmentPath(i))
			if err != nil {
				return fmt.Errorf("%s track: %w", st.ID, err)
			}
			f, err := webvtt.Parse(data)
			if err != nil {
				return fmt.Errorf("%s track: segment %d %s: %w", st.ID, i, redactURL(st.URL(i)), err)
			}
			if len(f.Skipped) > 0 {
				r.o.Logger.Warn("subtitle cues that cannot be read are left out", "track", st.ID, "segment", i, "lines", f.Skipped)
			}
			off := f.Offset(un.start)
			span := time.Duration(video.expected[u] * float64(time.Second)) // 0: unknown
			for _, c := range f.Cues {
				c.Start, c.End = c.Start+off, c.End+off
				if c.End <= 0 || span > 0 && c.Start >= span {
					continue
				}
				c.Start = max(c.Start, 0)
				if span > 0 {
					c.End = min(c.End, span)
				}
				cues = append(cues, c)
			}
		}
		slices.SortStableFunc(cues, func(a, b webvtt.Cue) int { return cmp.Compare(a.Start, b.Start) })
		cues = slices.CompactFunc(cues, func(a, b webvtt.Cue) bool {
			return a.Start == b.Start && a.End == b.End && a.Text == b.Text
		})
		path := filepath.Join(st.TrackDir(), fmt.Sprintf("unit-%03d.vtt", u))
		if err := writeFileAtomic(path, webvtt.Marshal(cues), 0o600); err != nil {
			return fmt.Errorf("%s track: %w", st.ID, err)
		}
		outputs = append(outputs, path)
		if n < len(video.outExp) {
			outExp = append(outExp, video.outExp[n])
		}
		n++
	}
	if len(outputs) != len(video.outputs) {
		return fmt.Errorf("%s track: %d subtitle sections for %d video sections", st.ID, len(outputs), len(video.outputs))
	}
	r.outputs, r.outExp = outputs, outExp
	return nil
}

// writeSubtitlesBeside extracts each subtitle track of the joined output into a WebVTT file next to it,
// named as players look for them: video.en.vtt, video.en.forced.vtt, video.und.vtt. It returns their paths.
func writeSubtitlesBeside(ctx context.Context, mopts merge.Options, output string, runs []*trackRun, joined []merge.JoinedTrack) ([]string, error) {
	stem := strings.TrimSuffix(output, filepath.Ext(output))
	var paths []string
	for k, tr := range runs {
		if tr.t.Kind != plan.Subtitles || k >= len(joined) {
			continue
		}
		name := SafeName(tr.t.Language)
		if tr.t.Language == "" {
			name = "und"
		}
		if strings.HasSuffix(tr.t.ID, "-forced") {
			name += ".forced"
		}
		p := stem + "." + name + ".vtt"
		for n := 2; slices.Contains(paths, p); n++ {
			p = fmt.Sprintf("%s.%s.%d.vtt", stem, name, n)
		}
		if err := merge.ExtractSubtitles(ctx, mopts, output, joined[k].FirstStream, p); err != nil {
			return paths, fmt.Errorf("%s track: %w", tr.t.ID, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
