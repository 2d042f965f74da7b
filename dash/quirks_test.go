package dash

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Named tests for what real manifests do.

// Ad insertion: the content period, an ad period with its own encodings and
// ids (and audio tagged "und"), then the content again with one timeline
// shared by both content periods and presentationTimeOffset choosing the part.
func TestQuirkAdPeriodsSharedTimeline(t *testing.T) {
	content := func(id, start, dur, pto string) string {
		return `<Period id="` + id + `" start="` + start + `" duration="` + dur + `"><BaseURL>content/</BaseURL>` +
			`<AdaptationSet contentType="video" mimeType="video/mp4"><SegmentTemplate timescale="10" presentationTimeOffset="` + pto + `" media="$RepresentationID$/$Time$.m4s" initialization="$RepresentationID$/init.mp4">` +
			`<SegmentTimeline><S t="0" d="40" r="4"/></SegmentTimeline></SegmentTemplate>` +
			`<Representation id="hd" bandwidth="5000000" width="1280" height="720"/><Representation id="sd" bandwidth="1000000" width="640" height="360"/></AdaptationSet>` +
			`<AdaptationSet contentType="audio" mimeType="audio/mp4" lang="en"><SegmentTemplate timescale="10" presentationTimeOffset="` + pto + `" media="$RepresentationID$/$Time$.m4s" initialization="$RepresentationID$/init.mp4">` +
			`<SegmentTimeline><S t="0" d="40" r="4"/></SegmentTimeline></SegmentTemplate>` +
			`<Representation id="aac" bandwidth="128000"/></AdaptationSet></Period>`
	}
	ad := `<Period id="ad" start="PT8S" duration="PT4S"><BaseURL>https://ads.example/spot/</BaseURL>` +
		`<AdaptationSet contentType="video" mimeType="video/mp4"><SegmentTemplate duration="2" startNumber="0" media="$Bandwidth$-$Number$.m4s" initialization="$Bandwidth$-init.mp4"/>` +
		`<Representation id="7" bandwidth="4500000" width="1280" height="720"/><Representation id="8" bandwidth="6000000" width="1920" height="1080"/><Representation id="9" bandwidth="900000" width="640" height="360"/></AdaptationSet>` +
		`<AdaptationSet contentType="audio" mimeType="audio/mp4" lang="und"><SegmentTemplate duration="2" startNumber="0" media="a-$Number$.m4s" initialization="a-init.mp4"/>` +
		`<Representation id="10" bandwidth="96000"/></AdaptationSet></Period>`
	in := mpd(`mediaPresentationDuration="PT24S"`, content("c1", "PT0S", "PT8S", "0")+ad+content("c2", "PT12S", "PT12S", "80"))
	for _, tt := range []struct {
		sel  Selection
		want []string
	}{
		{sel: Selection{Video: "720p"}, want: []string{
			"video init https://h.example/d/content/hd/init.mp4",
			"video init https://ads.example/spot/4500000-init.mp4",
			"video init https://h.example/d/content/hd/init.mp4",
			"video 0 #1 https://h.example/d/content/hd/0.m4s 4.000",
			"video 0 #2 https://h.example/d/content/hd/40.m4s 4.000",
			"video 1 #0 https://ads.example/spot/4500000-0.m4s 2.000",
			"video 1 #1 https://ads.example/spot/4500000-1.m4s 2.000",
			"video 2 #3 https://h.example/d/content/hd/80.m4s 4.000",
			"video 2 #4 https://h.example/d/content/hd/120.m4s 4.000",
			"video 2 #5 https://h.example/d/content/hd/160.m4s 4.000",
			"audio-en init https://h.example/d/content/aac/init.mp4",
			"audio-en init https://ads.example/spot/a-init.mp4",
			"audio-en init https://h.example/d/content/aac/init.mp4",
			"audio-en 0 #1 https://h.example/d/content/aac/0.m4s 4.000",
			"audio-en 0 #2 https://h.example/d/content/aac/40.m4s 4.000",
			"audio-en 1 #0 https://ads.example/spot/a-0.m4s 2.000",
			"audio-en 1 #1 https://ads.example/spot/a-1.m4s 2.000",
			"audio-en 2 #3 https://h.example/d/content/aac/80.m4s 4.000",
			"audio-en 2 #4 https://h.example/d/content/aac/120.m4s 4.000",
			"audio-en 2 #5 https://h.example/d/content/aac/160.m4s 4.000",
		}},
		// The best in the content period is hd (5 Mbps, 720p): in the ad the
		// same height wins over a closer bandwidth at another height.
		{sel: Selection{}, want: []string{"video 1 #0 https://ads.example/spot/4500000-0.m4s 2.000"}},
		{sel: Selection{Video: "sd"}, want: []string{"video 1 #0 https://ads.example/spot/900000-0.m4s 2.000"}},
	} {
		p, err := planOf(t, in, tt.sel)
		if err != nil {
			t.Fatalf("Plan(%+v): %v", tt.sel, err)
		}
		got := render(p)
		if len(tt.want) == 1 {
			found := false
			for _, g := range got {
				found = found || g == tt.want[0]
			}
			if !found {
				t.Errorf("Plan(%+v): no %q in\n  %s", tt.sel, tt.want[0], strings.Join(got, "\n  "))
			}
			continue
		}
		diff(t, "Plan", got, tt.want)
	}
}

// A period with no audio (a silent slate) adds nothing to the audio track;
// its section number is skipped there.
func TestQuirkPeriodWithoutAudio(t *testing.T) {
	v := `<AdaptationSet contentType="video"><Representation id="v" bandwidth="1"><SegmentTemplate duration="2" media="v$Number$"/></Representation></AdaptationSet>`
	a := `<AdaptationSet contentType="audio"><Representation id="a" bandwidth="1"><SegmentTemplate duration="2" media="a$Number$"/></Representation></AdaptationSet>`
	p, err := planOf(t, mpd(`mediaPresentationDuration="PT6S"`, `<Period duration="PT2S">`+v+a+`</Period><Period duration="PT2S">`+v+`</Period><Period>`+v+a+`</Period>`), Selection{})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	diff(t, "Plan", render(p), []string{
		"video 0 #1 https://h.example/d/v1 2.000", "video 1 #1 https://h.example/d/v1 2.000", "video 2 #1 https://h.example/d/v1 2.000",
		"audio 0 #1 https://h.example/d/a1 2.000", "audio 2 #1 https://h.example/d/a1 2.000",
	})
}

// ffmpeg writes durations with one decimal and others round to the
// millisecond: a count a hair over a whole number is that number.
func TestQuirkNumberCountRounding(t *testing.T) {
	for dur, want := range map[string]int{"PT4.0S": 4, "PT3.9999999S": 4, "PT4.0000001S": 4, "PT4.001S": 5, "PT0.1S": 1} {
		p, err := planOf(t, mpd(`mediaPresentationDuration="`+dur+`"`, `<Period><AdaptationSet contentType="video"><Representation id="v" bandwidth="1">`+
			`<SegmentTemplate timescale="90000" duration="90000" media="$Number$"/></Representation></AdaptationSet></Period>`), Selection{})
		if err != nil {
			t.Fatalf("Plan(%s): %v", dur, err)
		}
		if got := len(p.Tracks[0].Segments); got != want {
			t.Errorf("Plan(%s): %d segments, want %d", dur, got, want)
		}
	}
}

// A byte order mark, a Latin-1 declaration, namespace prefixes on every
// element and leading whitespace all occur in the wild.
func TestQuirkEncodings(t *testing.T) {
	body := `<mpd:Period><mpd:AdaptationSet contentType="audio" lang="fr" label="Fran\xe7ais"><mpd:Representation id="a" bandwidth="1">` +
		`<mpd:SegmentTemplate duration="1" media="$Number$.m4s"/></mpd:Representation></mpd:AdaptationSet></mpd:Period>`
	in := "\ufeff\n  <?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<mpd:MPD xmlns:mpd=\"urn:mpeg:dash:schema:mpd:2011\" mediaPresentationDuration=\"PT1S\">" + body + "</mpd:MPD>"
	in = strings.Replace(in, `\xe7`, "\xe7", 1)
	p, err := planOf(t, in, Selection{})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if tr := p.Tracks[0]; tr.Name != "Français" || tr.ID != "audio-fr" {
		t.Errorf("Plan: track %q named %q, want audio-fr named Français", tr.ID, tr.Name)
	}
}

// An AdaptationSet that says only its codecs, and one of unknown content
// (an application/octet-stream side channel), which is never recorded.
func TestQuirkKindFromCodecs(t *testing.T) {
	p, err := planOf(t, mpd(`mediaPresentationDuration="PT1S"`, `<Period>`+
		`<AdaptationSet><Representation id="x" bandwidth="9" mimeType="application/octet-stream"><SegmentTemplate duration="1" media="x$Number$"/></Representation></AdaptationSet>`+
		`<AdaptationSet codecs="avc1.64001f"><Representation id="v" bandwidth="1"><SegmentTemplate duration="1" media="v$Number$"/></Representation></AdaptationSet>`+
		`<AdaptationSet><Representation id="a" bandwidth="1" codecs="mp4a.40.2"><SegmentTemplate duration="1" media="a$Number$"/></Representation></AdaptationSet>`+
		`</Period>`), Selection{})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	diff(t, "Plan", render(p), []string{"video 0 #1 https://h.example/d/v1 1.000", "audio 0 #1 https://h.example/d/a1 1.000"})
}

// Every manifest under testdata (the fuzz seeds) plans.
func TestTestdataManifestsPlan(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.mpd"))
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(b, mustURL(manifestURL))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, sel := range []Selection{{}, {AllAudio: true}} {
				refs, err := m.Indexes(sel)
				if err != nil {
					t.Fatalf("Indexes(%+v): %v", sel, err)
				}
				index := map[IndexRef][]byte{}
				for _, r := range refs {
					index[r] = sidxBox(0, 1000, 0, [2]int64{100, 1000})
				}
				p, err := m.PlanIndexed(sel, index)
				if err != nil {
					t.Fatalf("PlanIndexed(%+v): %v", sel, err)
				}
				if len(p.Tracks) < 2 {
					t.Errorf("PlanIndexed(%+v): %d tracks, want video and audio", sel, len(p.Tracks))
				}
			}
		})
	}
}

// The segment limit, at the boundary: limit segments plan, one more is
// refused, whether in one period or over two. (A small limit keeps the test
// fast; TestParseLimits refuses counts over the real plan.MaxSegments.)
func TestSegmentLimitBoundary(t *testing.T) {
	const limit = 100
	for _, tt := range []struct {
		name     string
		duration string // of each period
		periods  int
		ok       bool
	}{
		{name: "limit-1", duration: "PT99S", periods: 1, ok: true},
		{name: "limit", duration: "PT100S", periods: 1, ok: true},
		{name: "limit+1", duration: "PT101S", periods: 1},
		{name: "limit over two periods", duration: "PT50S", periods: 2, ok: true},
		{name: "limit+1 over two periods", duration: "PT50.5S", periods: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			period := `<Period duration="` + tt.duration + `"><AdaptationSet contentType="video"><Representation id="v" bandwidth="1">` +
				`<SegmentTemplate duration="1" media="$Number$.m4s"/></Representation></AdaptationSet></Period>`
			m, err := Parse([]byte(mpd(``, strings.Repeat(period, tt.periods))), mustURL(manifestURL))
			if err != nil {
				t.Fatal(err)
			}
			p, err := m.plan(Selection{}, nil, limit)
			if tt.ok != (err == nil) {
				t.Fatalf("plan(limit %d): got %v, want ok %v", limit, err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "more than") {
				t.Errorf("plan(limit %d): got %v, want a count error", limit, err)
			}
			if err == nil && len(p.Tracks[0].Segments) > limit {
				t.Errorf("plan(limit %d): %d segments", limit, len(p.Tracks[0].Segments))
			}
		})
	}
}
