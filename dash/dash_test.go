package dash

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/plan"
)

const manifestURL = "https://h.example/d/m.mpd"

// render lists a presentation one line per init and segment:
// "video init https://…/init.mp4 0-99" and "video 0 #1 https://…/1.m4s 2.000".
func render(p *plan.Presentation) []string {
	var out []string
	rng := func(r *plan.ByteRange) string {
		if r == nil {
			return ""
		}
		return fmt.Sprintf(" %d-%d", r.Offset, r.Offset+r.Length-1)
	}
	for _, t := range p.Tracks {
		for _, in := range t.Inits {
			out = append(out, fmt.Sprintf("%s init %s%s", t.ID, in.URL, rng(in.Range)))
		}
		for _, s := range t.Segments {
			out = append(out, fmt.Sprintf("%s %d #%d %s%s %.3f", t.ID, s.Section, s.Sequence, s.URL, rng(s.Range), s.Duration))
		}
	}
	return out
}

// mpd wraps periods in an MPD element with the given attributes.
func mpd(attrs, body string) string {
	return `<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" ` + attrs + `>` + body + `</MPD>`
}

func planOf(t *testing.T, manifest string, sel Selection) (*plan.Presentation, error) {
	t.Helper()
	m, err := Parse([]byte(manifest), mustURL(manifestURL))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, manifest)
	}
	return m.Plan(sel)
}

func diff(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

const (
	video1 = `<AdaptationSet contentType="video" mimeType="video/mp4">`
	audio1 = `<AdaptationSet contentType="audio" mimeType="audio/mp4" lang="en">`
)

func TestPlanAddressing(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		want     []string
	}{
		{
			name: "number template: count is ceil(period/duration), the last one cut",
			manifest: mpd(`mediaPresentationDuration="PT5S"`, `<Period>`+video1+
				`<Representation id="v1" bandwidth="1000"><SegmentTemplate timescale="10" duration="20" startNumber="5" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number%03d$.m4s"/></Representation>`+
				`</AdaptationSet></Period>`),
			want: []string{
				"video init https://h.example/d/v1/init.mp4",
				"video 0 #5 https://h.example/d/v1/005.m4s 2.000",
				"video 0 #6 https://h.example/d/v1/006.m4s 2.000",
				"video 0 #7 https://h.example/d/v1/007.m4s 1.000",
			},
		},
		{
			name: "number template: startNumber defaults to 1, endNumber bounds",
			manifest: mpd(`mediaPresentationDuration="PT10S"`, `<Period>`+video1+
				`<Representation id="v1" bandwidth="1000"><SegmentTemplate duration="2" endNumber="2" media="s$Number$.m4s"/></Representation>`+
				`</AdaptationSet></Period>`),
			want: []string{
				"video 0 #1 https://h.example/d/s1.m4s 2.000",
				"video 0 #2 https://h.example/d/s2.m4s 2.000",
			},
		},
		{
			name: "$Time$, $Bandwidth$, $$ and widths",
			manifest: mpd(`mediaPresentationDuration="PT7S"`, `<Period>`+video1+
				`<Representation id="v1" bandwidth="1500"><SegmentTemplate timescale="1000" media="$Bandwidth$/t$Time%08d$-$$x.m4s"><SegmentTimeline><S t="0" d="2000" r="2"/><S d="1000"/></SegmentTimeline></SegmentTemplate></Representation>`+
				`</AdaptationSet></Period>`),
			want: []string{
				"video 0 #1 https://h.example/d/1500/t00000000-$x.m4s 2.000",
				"video 0 #2 https://h.example/d/1500/t00002000-$x.m4s 2.000",
				"video 0 #3 https://h.example/d/1500/t00004000-$x.m4s 2.000",
				"video 0 #4 https://h.example/d/1500/t00006000-$x.m4s 1.000",
			},
		},
		{
			name: "timeline r=-1 repeats up to the period's end",
			manifest: mpd(`mediaPresentationDuration="PT7S"`, `<Period>`+video1+
				`<Representation id="v1" bandwidth="1"><SegmentTemplate media="$Time$.m4s"><SegmentTimeline><S t="0" d="2" r="-1"/></SegmentTimeline></SegmentTemplate></Representation>`+
				`</AdaptationSet></Period>`),
			want: []string{
				"video 0 #1 https://h.example/d/0.m4s 2.000",
				"video 0 #2 https://h.example/d/2.m4s 2.000",
				"video 0 #3 https://h.example/d/4.m4s 2.000",
				"video 0 #4 https://h.example/d/6.m4s 2.000",
			},
		},
		{
			name: "timeline r=-1 repeats up to the next S@t",
			manifest: mpd(`mediaPresentationDuration="PT100S"`, `<Period>`+video1+
				`<Representation id="v1" bandwidth="1"><SegmentTemplate media="$Time$.m4s"><SegmentTimeline><S t="10" d="3" r="-1"/><S t="16" d="1"/></SegmentTimeline></SegmentTemplate></Representation>`+
				`</AdaptationSet></Period>`),
			want: []string{
				"video 0 #1 https://h.example/d/10.m4s 3.000",
				"video 0 #2 https://h.example/d/13.m4s 3.000",
				"video 0 #3 https://h.example/d/16.m4s 1.000",
			},
		},
		{
			name: "presentationTimeOffset: the period plays media time 10 to 18",
			manifest: mpd(``, `<Period duration="PT8S">`+video1+
				`<Representation id="v1" bandwidth="1"><SegmentTemplate presentationTimeOffset="10" media="$Number$-$Time$.m4s"><SegmentTimeline><S t="0" d="4" r="5"/></SegmentTimeline></SegmentTemplate></Representation>`+
				`</AdaptationSet></Period>`),
			want: []string{
				"video 0 #3 https://h.example/d/3-8.m4s 4.000",
				"video 0 #4 https://h.example/d/4-12.m4s 4.000",
				"video 0 #5 https://h.example/d/5-16.m4s 4.000",
			},
		},
		{
			name: "template inherited from AdaptationSet and Period, Representation overrides",
			manifest: mpd(`mediaPresentationDuration="PT4S"`, `<Period><SegmentTemplate timescale="1000" duration="2000"/>`+
				`<AdaptationSet contentType="video"><SegmentTemplate initialization="i-$RepresentationID$.mp4" media="$RepresentationID$-$Number$.m4s"/>`+
				`<Representation id="v1" bandwidth="1"><SegmentTemplate startNumber="0"/></Representation>`+
				`</AdaptationSet></Period>`),
			want: []string{
				"video init https://h.example/d/i-v1.mp4",
				"video 0 #0 https://h.example/d/v1-0.m4s 2.000",
				"video 0 #1 https://h.example/d/v1-1.m4s 2.000",
			},
		},
		{
			name: "timeline inherited from the AdaptationSet",
			manifest: mpd(`mediaPresentationDuration="PT4S"`, `<Period>`+
				`<AdaptationSet contentType="video"><SegmentTemplate media="$RepresentationID$/$Time$"><SegmentTimeline><S d="2" r="1"/></SegmentTimeline></SegmentTemplate>`+
				`<Representation id="v1" bandwidth="1"><SegmentTemplate timescale="1"/></Representation>`+
				`</AdaptationSet></Period>`),
			want: []string{
				"video 0 #1 https://h.example/d/v1/0 2.000",
				"video 0 #2 https://h.example/d/v1/2 2.000",
			},
		},
		{
			name: "BaseURL at every level, relative to the one above",
			manifest: mpd(`mediaPresentationDuration="PT2S"`, `<BaseURL>https://cdn.example/x/</BaseURL><Period><BaseURL>p/</BaseURL>`+
				`<AdaptationSet contentType="video"><BaseURL>a/</BaseURL>`+
				`<Representation id="v1" bandwidth="1"><BaseURL>r/</BaseURL><SegmentTemplate duration="2" media="s$Number$.m4s"/></Representation>`+
				`</AdaptationSet>`+
				`<AdaptationSet contentType="audio" lang="en"><BaseURL>/root/</BaseURL><BaseURL>https://backup.example/</BaseURL>`+
				`<Representation id="a1" bandwidth="1"><SegmentTemplate duration="2" media="s$Number$.m4s"/></Representation>`+
				`</AdaptationSet></Period>`),
			want: []string{
				"video 0 #1 https://cdn.example/x/p/a/r/s1.m4s 2.000",
				"audio-en 0 #1 https://cdn.example/root/s1.m4s 2.000",
			},
		},
		{
			name: "SegmentList with media, ranges and an Initialization",
			manifest: mpd(`mediaPresentationDuration="PT5S"`, `<Period>`+video1+
				`<Representation id="v1" bandwidth="1"><BaseURL>v.mp4</BaseURL><SegmentList timescale="10" duration="20">`+
				`<Initialization sourceURL="init.mp4" range="0-99"/>`+
				`<SegmentURL mediaRange="100-199"/><SegmentURL media="other.mp4" mediaRange="0-49"/><SegmentURL media="last.mp4"/>`+
				`</SegmentList></Representation></AdaptationSet></Period>`),
			want: []string{
				"video init https://h.example/d/init.mp4 0-99",
				"video 0 #1 https://h.example/d/v.mp4 100-199 2.000",
				"video 0 #2 https://h.example/d/other.mp4 0-49 2.000",
				"video 0 #3 https://h.example/d/last.mp4 1.000",
			},
		},
		{
			name: "SegmentList with a SegmentTimeline",
			manifest: mpd(`mediaPresentationDuration="PT5S"`, `<Period>`+video1+
				`<Representation id="v1" bandwidth="1"><SegmentList><Initialization sourceURL="i.mp4"/>`+
				`<SegmentTimeline><S d="3"/><S d="2"/></SegmentTimeline><SegmentURL media="a.m4s"/><SegmentURL media="b.m4s"/>`+
				`</SegmentList></Representation></AdaptationSet></Period>`),
			want: []string{
				"video init https://h.example/d/i.mp4",
				"video 0 #1 https://h.example/d/a.m4s 3.000",
				"video 0 #2 https://h.example/d/b.m4s 2.000",
			},
		},
		{
			name: "SegmentBase without indexRange: the whole file is one segment",
			manifest: mpd(`mediaPresentationDuration="PT9.5S"`, `<Period>`+video1+
				`<Representation id="v1" bandwidth="1"><BaseURL>whole.mp4</BaseURL><SegmentBase/></Representation>`+
				`</AdaptationSet></Period>`),
			want: []string{"video 0 #1 https://h.example/d/whole.mp4 9.500"},
		},
		{
			name: "only a BaseURL: the whole file is one segment",
			manifest: mpd(`mediaPresentationDuration="PT3S"`, `<Period>`+video1+
				`<Representation id="v1" bandwidth="1"><BaseURL>https://o.example/v.mp4</BaseURL></Representation>`+
				`</AdaptationSet></Period>`),
			want: []string{"video 0 #1 https://o.example/v.mp4 3.000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := planOf(t, tt.manifest, Selection{})
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			diff(t, "Plan", render(p), tt.want)
		})
	}
}

// ladder is a video AdaptationSet of three heights and two audio languages.
func ladder(extraAudio string) string {
	tmpl := `<SegmentTemplate duration="2" media="$RepresentationID$/$Number$.m4s"/>`
	return `<Period>` + tmpl + `<AdaptationSet contentType="video" mimeType="video/mp4">` +
		`<Representation id="v360" bandwidth="800000" width="640" height="360"/>` +
		`<Representation id="v720" bandwidth="3000000" width="1280" height="720"/>` +
		`<Representation id="v720lo" bandwidth="2000000" width="1280" height="720"/>` +
		`<Representation id="v1080" bandwidth="6000000" width="1920" height="1080"/>` +
		`</AdaptationSet>` +
		`<AdaptationSet contentType="video" mimeType="video/mp4"><EssentialProperty schemeIdUri="http://dashif.org/guidelines/trickmode" value="1"/>` +
		`<Representation id="trick" bandwidth="9000000" width="1920" height="1080"/></AdaptationSet>` +
		`<AdaptationSet contentType="image" mimeType="image/jpeg"><Representation id="thumbs" bandwidth="99000000"/></AdaptationSet>` +
		`<AdaptationSet contentType="audio" lang="fr"><Representation id="fr" bandwidth="128000"/></AdaptationSet>` +
		`<AdaptationSet contentType="audio" lang="en-US"><Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>` +
		`<Representation id="en-lo" bandwidth="64000"/><Representation id="en" bandwidth="128000"/></AdaptationSet>` +
		extraAudio + `</Period>`
}

func TestPlanSelection(t *testing.T) {
	tests := []struct {
		name    string
		sel     Selection
		extra   string
		want    []string // "trackID id", one per track: the first segment's representation
		wantErr string
	}{
		{name: "best video, main audio over the first", sel: Selection{}, want: []string{"video v1080", "audio-en-US en"}},
		{name: "height with p", sel: Selection{Video: "720p"}, want: []string{"video v720", "audio-en-US en"}},
		{name: "height without p", sel: Selection{Video: "360"}, want: []string{"video v360", "audio-en-US en"}},
		{name: "representation id", sel: Selection{Video: "v720lo"}, want: []string{"video v720lo", "audio-en-US en"}},
		{name: "best is a synonym of empty", sel: Selection{Video: "best"}, want: []string{"video v1080", "audio-en-US en"}},
		{name: "unknown height lists the choices", sel: Selection{Video: "480p"}, wantErr: `no video representation matches "480p"; choices: "v360" 640x360 800000 bps`},
		{name: "unknown id", sel: Selection{Video: "v9"}, wantErr: `no video representation matches "v9"`},
		{name: "audio language", sel: Selection{AudioLang: "fr"}, want: []string{"video v1080", "audio-fr fr"}},
		{name: "primary language matches a region", sel: Selection{AudioLang: "en"}, want: []string{"video v1080", "audio-en-US en"}},
		{name: "missing language lists the languages", sel: Selection{AudioLang: "de"}, wantErr: `no audio in language "de"; the manifest has "fr", "en-US"`},
		{name: "every language", sel: Selection{AllAudio: true}, want: []string{"video v1080", "audio-fr fr", "audio-en-US en"}},
		{
			name:  "every language: one per language, the main one",
			sel:   Selection{AllAudio: true},
			extra: `<AdaptationSet contentType="audio" lang="fr"><Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/><Representation id="fr-main" bandwidth="1"/></AdaptationSet>`,
			want:  []string{"video v1080", "audio-fr fr-main", "audio-en-US en"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := planOf(t, mpd(`mediaPresentationDuration="PT4S"`, ladder(tt.extra)), tt.sel)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Plan(%+v): got error %v, want one containing %q", tt.sel, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Plan(%+v): %v", tt.sel, err)
			}
			var got []string
			for _, tr := range p.Tracks {
				id := strings.TrimPrefix(tr.Segments[0].URL, "https://h.example/d/")
				id, _, _ = strings.Cut(id, "/")
				got = append(got, tr.ID+" "+id)
			}
			diff(t, fmt.Sprintf("Plan(%+v)", tt.sel), got, tt.want)
		})
	}
}

func TestPlanAudioOnly(t *testing.T) {
	p, err := planOf(t, mpd(`mediaPresentationDuration="PT2S"`, `<Period><AdaptationSet mimeType="audio/mp4" codecs="mp4a.40.2">`+
		`<Representation id="a" bandwidth="1"><SegmentTemplate duration="2" media="a$Number$.m4s"/></Representation></AdaptationSet></Period>`), Selection{})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	diff(t, "Plan", render(p), []string{"audio 0 #1 https://h.example/d/a1.m4s 2.000"})
	if !p.Tracks[0].Default || p.Tracks[0].Ext != ".m4s" {
		t.Errorf("Plan: audio track %+v, want the default with .m4s", p.Tracks[0])
	}

	_, err = planOf(t, mpd(`mediaPresentationDuration="PT2S"`, `<Period><AdaptationSet mimeType="audio/mp4">`+
		`<Representation id="a" bandwidth="1"><SegmentTemplate duration="2" media="a$Number$.m4s"/></Representation></AdaptationSet></Period>`), Selection{Video: "720p"})
	if err == nil || !strings.Contains(err.Error(), "no video") {
		t.Errorf("Plan(720p) on audio only: got %v, want a no-video error", err)
	}
}

func TestPeriodTiming(t *testing.T) {
	tests := []struct {
		name     string
		attrs    string
		periods  string
		want     string // start+duration of each period
		wantSegs int
	}{
		{name: "duration from the MPD", attrs: `mediaPresentationDuration="PT1H2M3.5S"`, periods: `<Period/>`, want: "0+3723.5"},
		{name: "duration from the next start", attrs: `mediaPresentationDuration="PT10S"`, periods: `<Period start="PT0S"/><Period start="PT4S"/>`, want: "0+4 4+6"},
		{name: "start from the one before", attrs: ``, periods: `<Period duration="PT3S"/><Period duration="PT2S"/>`, want: "0+3 3+2"},
		{name: "unknown", attrs: ``, periods: `<Period/>`, want: "0+0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(mpd(tt.attrs, tt.periods)), nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got []string
			for _, p := range m.Periods {
				got = append(got, fmt.Sprintf("%g+%g", p.Start, p.Duration))
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("Parse: periods %s, want %s", g, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		bad  bool
	}{
		{in: "PT1H2M3.5S", want: 3723.5},
		{in: "PT0.5S", want: 0.5},
		{in: "PT4.0S", want: 4},
		{in: "P1DT1S", want: 86401},
		{in: "P1Y", want: 365 * 86400},
		{in: "P1M", want: 30 * 86400},
		{in: "PT1M", want: 60},
		{in: "P0D", want: 0},
		{in: " PT2S ", want: 2},
		{in: "", bad: true},
		{in: "P", bad: true},
		{in: "PT", bad: true},
		{in: "4S", bad: true},
		{in: "PT1H2H", bad: true},
		{in: "PT1M1H", bad: true},
		{in: "PTS", bad: true},
		{in: "P1S", bad: true},
		{in: "P1DT", bad: true},
		{in: "-PT1S", bad: true},
		{in: "PT1e3S", bad: true},
		{in: "PT1.2.3S", bad: true},
		{in: "PT99999999999999999999S", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if tt.bad != (err != nil) || got != tt.want {
				t.Errorf("parseDuration(%q): got %g, %v; want %g (error %v)", tt.in, got, err, tt.want, tt.bad)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	rep := func(inner string) string {
		return mpd(`mediaPresentationDuration="PT4S"`, `<Period><AdaptationSet contentType="video"><Representation id="v" bandwidth="1">`+inner+`</Representation></AdaptationSet></Period>`)
	}
	tests := []struct {
		name, in, want string
	}{
		{name: "HLS", in: "#EXTM3U\n", want: "dash: not an MPD: this is an HLS playlist"},
		{name: "not XML", in: "<MPD><Period></MPD>", want: "dash: not XML near line 1: XML syntax error"},
		{name: "empty", in: "", want: "dash: not XML: no element in the input"},
		{name: "another root", in: `<html><body/></html>`, want: "dash: not an MPD: the root element is <html>"},
		{name: "no period", in: mpd(``, ``), want: "dash: MPD: no Period"},
		{name: "bad type", in: mpd(`type="live"`, `<Period/>`), want: `dash: MPD@type="live": want static or dynamic`},
		{name: "bad duration", in: mpd(`mediaPresentationDuration="4 seconds"`, `<Period/>`), want: `dash: MPD@mediaPresentationDuration="4 seconds": want an ISO 8601 duration`},
		{name: "bad period start", in: mpd(``, `<Period start="PTxS"/>`), want: `dash: Period[0]@start="PTxS"`},
		{name: "periods out of order", in: mpd(``, `<Period start="PT5S"/><Period start="PT2S"/>`), want: `dash: Period[0]@start="PT5S": starts after the next period`},
		{name: "remote period", in: mpd(``, `<Period xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="https://ads.example/p.xml"/>`), want: `dash: Period[0]@xlink:href="https://ads.example/p.xml": remote periods are not supported`},
		{name: "bad bandwidth", in: mpd(``, `<Period><AdaptationSet><Representation bandwidth="fast"/></AdaptationSet></Period>`), want: `dash: Period[0]/AdaptationSet[0]/Representation[0]@bandwidth="fast": want a non-negative integer`},
		{name: "unknown identifier", in: rep(`<SegmentTemplate duration="1" media="$Num$.m4s"/>`), want: `Representation[0]/SegmentTemplate@media="$Num$.m4s": unknown identifier $Num$`},
		{name: "unterminated identifier", in: rep(`<SegmentTemplate duration="1" media="$Number.m4s"/>`), want: `@media="$Number.m4s": unterminated $ identifier`},
		{name: "bad format tag", in: rep(`<SegmentTemplate duration="1" media="$Number%05x$.m4s"/>`), want: `@media="$Number%05x$.m4s": bad format tag %05x`},
		{name: "width too large", in: rep(`<SegmentTemplate duration="1" media="$Number%099d$"/>`), want: `bad format tag %099d`},
		{name: "number in init", in: rep(`<SegmentTemplate duration="1" media="$Number$" initialization="i$Number$.mp4"/>`), want: `@initialization="i$Number$.mp4": $Number$ in an initialization template`},
		{name: "no media", in: rep(`<SegmentTemplate duration="1"/>`), want: `SegmentTemplate@media="": SegmentTemplate without a media template`},
		{name: "no duration nor timeline", in: rep(`<SegmentTemplate media="$Number$"/>`), want: `SegmentTemplate@duration="": a SegmentTemplate needs a duration or a SegmentTimeline`},
		{name: "zero timescale", in: rep(`<SegmentTemplate timescale="0" duration="1" media="$Number$"/>`), want: `@timescale="0": must be positive`},
		{name: "bad range", in: rep(`<SegmentList><SegmentURL mediaRange="9-1"/></SegmentList>`), want: `SegmentList/SegmentURL[0]@mediaRange="9-1": want a byte range "first-last"`},
		{name: "open range", in: rep(`<SegmentBase indexRange="100-"/>`), want: `SegmentBase@indexRange="100-"`},
		{name: "zero S@d", in: rep(`<SegmentTemplate media="$Time$"><SegmentTimeline><S d="0"/></SegmentTimeline></SegmentTemplate>`), want: `SegmentTimeline/S[0]@d="0": must be positive`},
		{name: "bad S@r", in: rep(`<SegmentTemplate media="$Time$"><SegmentTimeline><S d="1" r="-2"/></SegmentTimeline></SegmentTemplate>`), want: `S[0]@r="-2": want -1 or a non-negative integer`},
		{name: "hostile S@r", in: rep(`<SegmentTemplate media="$Time$"><SegmentTimeline><S d="1" r="1000000000"/></SegmentTimeline></SegmentTemplate>`), want: `S[0]@r="1000000000": the timeline lists more than 1048576 segments`},
		{name: "S@r adding up", in: rep(`<SegmentTemplate media="$Time$"><SegmentTimeline><S d="1" r="600000"/><S d="1" r="600000"/></SegmentTimeline></SegmentTemplate>`), want: `S[1]@r="600000": the timeline lists more than`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in), mustURL(manifestURL))
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: got %v, want a *ParseError containing %q", err, tt.want)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	big := make([]byte, MaxSize+1)
	if _, err := Parse(big, nil); err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Errorf("Parse(%d bytes): got %v, want a size error", len(big), err)
	}
	// Counts the manifest implies but does not list are refused before anything is allocated for them.
	tests := []struct {
		name, in, want string
	}{
		{
			name: "number template over a century",
			in: mpd(`mediaPresentationDuration="P36500D"`, `<Period><AdaptationSet contentType="video"><Representation id="v" bandwidth="1">`+
				`<SegmentTemplate timescale="1000" duration="1" media="$Number$"/></Representation></AdaptationSet></Period>`),
			want: "segments, more than 1048576",
		},
		{
			name: "r=-1 over a century",
			in: mpd(`mediaPresentationDuration="P36500D"`, `<Period><AdaptationSet contentType="video"><Representation id="v" bandwidth="1">`+
				`<SegmentTemplate media="$Time$"><SegmentTimeline><S d="1" r="-1"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period>`),
			want: "the SegmentTimeline lists more than 1048576 segments",
		},
		{
			name: "r=-1 with no end",
			in: mpd(``, `<Period><AdaptationSet contentType="video"><Representation id="v" bandwidth="1">`+
				`<SegmentTemplate media="$Time$"><SegmentTimeline><S d="1" r="-1"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period>`),
			want: `S@r="-1" with no period duration`,
		},
		{
			name: "number template with no end",
			in: mpd(``, `<Period><AdaptationSet contentType="video"><Representation id="v" bandwidth="1">`+
				`<SegmentTemplate duration="1" media="$Number$"/></Representation></AdaptationSet></Period>`),
			want: "no period duration",
		},
		{
			name: "times past the largest",
			in: mpd(`mediaPresentationDuration="PT1S"`, `<Period><AdaptationSet contentType="video"><Representation id="v" bandwidth="1">`+
				`<SegmentTemplate media="$Time$"><SegmentTimeline><S t="9223372036854775000" d="1000" r="5"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period>`),
			want: "runs past the largest time",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := planOf(t, tt.in, Selection{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Plan: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDRMRefused(t *testing.T) {
	in := mpd(`mediaPresentationDuration="PT4S"`, `<Period><AdaptationSet contentType="video">`+
		`<ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc"/>`+
		`<ContentProtection schemeIdUri="urn:uuid:EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED"/>`+
		`<Representation id="v" bandwidth="1"><ContentProtection schemeIdUri="urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95"/>`+
		`<SegmentTemplate duration="1" media="$Number$"/></Representation></AdaptationSet></Period>`)
	_, err := Parse([]byte(in), mustURL(manifestURL))
	if !errors.Is(err, ErrDRM) {
		t.Fatalf("Parse: got %v, want ErrDRM", err)
	}
	if want := "protected with DRM (cenc, Widevine, PlayReady): not recordable"; err.Error() != want {
		t.Errorf("Parse: got %q, want %q", err, want)
	}
}

func TestDynamic(t *testing.T) {
	timeline := `<Period start="PT0S"><AdaptationSet contentType="video"><Representation id="v" bandwidth="1">` +
		`<SegmentTemplate media="$Time$.m4s"><SegmentTimeline><S t="100" d="2" r="1"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period>`
	in := mpd(`type="dynamic" availabilityStartTime="2024-01-01T00:00:00Z" minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT30S"`, timeline)
	if _, err := Parse([]byte(in), mustURL(manifestURL)); !errors.Is(err, ErrDynamic) {
		t.Fatalf("Parse(dynamic): got %v, want ErrDynamic", err)
	}
	m, err := ParseDynamic([]byte(in), mustURL(manifestURL))
	if err != nil {
		t.Fatalf("ParseDynamic: %v", err)
	}
	if !m.Dynamic || m.AvailabilityStartTime != "2024-01-01T00:00:00Z" || m.MinimumUpdatePeriod != 2 || m.TimeShiftBufferDepth != 30 {
		t.Errorf("ParseDynamic: got %+v", m)
	}
	p, err := m.Plan(Selection{})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if !p.Tracks[0].Live {
		t.Errorf("Plan: track not live")
	}
	diff(t, "Plan", render(p), []string{"video 0 #1 https://h.example/d/100.m4s 2.000", "video 0 #2 https://h.example/d/102.m4s 2.000"})

	number := mpd(`type="dynamic"`, `<Period><AdaptationSet contentType="video"><Representation id="v" bandwidth="1">`+
		`<SegmentTemplate duration="2" media="$Number$.m4s"/></Representation></AdaptationSet></Period>`)
	m, err = ParseDynamic([]byte(number), mustURL(manifestURL))
	if err != nil {
		t.Fatalf("ParseDynamic: %v", err)
	}
	if _, err := m.Plan(Selection{}); !errors.Is(err, ErrDynamic) {
		t.Errorf("Plan(live $Number$ template): got %v, want ErrDynamic", err)
	}
}

func TestPlanRefusesOtherSchemes(t *testing.T) {
	for _, base := range []string{"file:///etc/", "javascript:alert(1)//", "ftp://h.example/"} {
		t.Run(base, func(t *testing.T) {
			_, err := planOf(t, mpd(`mediaPresentationDuration="PT1S"`, `<Period><BaseURL>`+base+`</BaseURL><AdaptationSet contentType="video">`+
				`<Representation id="v" bandwidth="1"><SegmentTemplate duration="1" media="s$Number$"/></Representation></AdaptationSet></Period>`), Selection{})
			if err == nil || !strings.Contains(err.Error(), "is not recorded") && !strings.Contains(err.Error(), "not absolute") {
				t.Errorf("Plan: got %v, want the scheme refused", err)
			}
		})
	}
	// With no manifest URL, relative segment URLs cannot be fetched.
	m, err := Parse([]byte(mpd(`mediaPresentationDuration="PT1S"`, `<Period><AdaptationSet contentType="video">`+
		`<Representation id="v" bandwidth="1"><SegmentTemplate duration="1" media="s$Number$"/></Representation></AdaptationSet></Period>`)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Plan(Selection{}); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Errorf("Plan with a nil base: got %v, want a not-absolute error", err)
	}
}
