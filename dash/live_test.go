package dash

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/plan"
)

// ast is the availabilityStartTime of the live manifests below.
var ast = time.Date(2026, 11, 30, 2, 40, 58, 435e6, time.UTC)

// ffmpegNumberLive is what ffmpeg 5.1's dash muxer writes with -use_timeline 0
// -streaming 0 -window_size 5 during a -re broadcast: a $Number$ template with
// @duration, to be placed on the wall clock (minimumUpdatePeriod is 500 s).
const ffmpegNumberLive = `<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic"
	minimumUpdatePeriod="PT500S" suggestedPresentationDelay="PT1S" availabilityStartTime="2026-11-30T02:40:58.435Z"
	publishTime="2026-11-30T02:41:01.436Z" timeShiftBufferDepth="PT5.0S" maxSegmentDuration="PT1.0S" minBufferTime="PT2.0S">
	<Period id="0" start="PT0.0S">
		<AdaptationSet id="0" contentType="video" segmentAlignment="true" frameRate="25/1">
			<Representation id="0" mimeType="video/mp4" codecs="avc1.f4000b" bandwidth="115016" width="160" height="90">
				<SegmentTemplate timescale="1000000" duration="1000000" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
				</SegmentTemplate>
			</Representation>
		</AdaptationSet>
	</Period>
</MPD>`

// numbers lists the $Number$ of each segment of the first track.
func numbers(p *plan.Presentation) []string {
	var out []string
	for _, s := range p.Tracks[0].Segments {
		out = append(out, fmt.Sprint(s.Sequence))
	}
	return out
}

// TestPlanLiveClock places a live $Number$ template on the wall clock: the
// segments that have ended by now, back to the start of the time-shift
// buffer (5 s), a quarter of a segment kept off its start.
func TestPlanLiveClock(t *testing.T) {
	m, err := ParseDynamic([]byte(ffmpegNumberLive), mustURL(manifestURL))
	if err != nil {
		t.Fatal(err)
	}
	if !m.AvailabilityStart.Equal(ast) || m.PublishTime.Sub(ast) != 3001*time.Millisecond {
		t.Fatalf("availabilityStartTime %v publishTime %v", m.AvailabilityStart, m.PublishTime)
	}
	tests := []struct {
		name  string
		after time.Duration // since availabilityStartTime
		want  string
	}{
		{name: "before the first ends", after: 999 * time.Millisecond, want: ""},
		{name: "as the first ends", after: time.Second, want: "1"},
		{name: "as ffmpeg published", after: 3001 * time.Millisecond, want: "1 2 3"},
		{name: "window full", after: 5 * time.Second, want: "1 2 3 4 5"},
		{name: "sliding, just after a segment", after: 7 * time.Second, want: "3 4 5 6 7"},
		{name: "sliding, mid-segment", after: 7200 * time.Millisecond, want: "3 4 5 6 7"},
		{name: "sliding, first about to leave", after: 7800 * time.Millisecond, want: "4 5 6 7"},
		{name: "before availabilityStartTime", after: -time.Minute, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ids, err := m.PlanLive(Selection{}, ast.Add(tt.after), nil)
			if err != nil {
				t.Fatalf("PlanLive: %v", err)
			}
			if got := strings.Join(numbers(p), " "); got != tt.want {
				t.Errorf("PlanLive(+%v): got numbers %q, want %q", tt.after, got, tt.want)
			}
			for k, id := range ids[0] {
				if id.ByTime || id.Key != uint64(p.Tracks[0].Segments[k].Sequence) || id.Period != "0" || !p.Tracks[0].Live {
					t.Errorf("cursor %d: %+v, want keyed by its number in period 0", k, id)
				}
			}
		})
	}
	// Without the clock the manifest cannot be planned, and says why.
	if _, err := m.Plan(Selection{}); err == nil || !strings.Contains(err.Error(), "wall clock") {
		t.Errorf("Plan: %v, want an error naming the wall clock", err)
	}
}

// TestPlanLiveRepeatToEdge: a trailing S@r="-1" in a live manifest repeats up
// to the live edge: the segments that have ended.
func TestPlanLiveRepeatToEdge(t *testing.T) {
	man := mpd(`type="dynamic" availabilityStartTime="2026-11-30T02:40:58.435Z"`, `<Period id="p" start="PT10S">`+video1+
		`<SegmentTemplate timescale="1000" presentationTimeOffset="5000" media="$Time$.m4s"><SegmentTimeline><S t="5000" d="2000" r="-1"/></SegmentTimeline></SegmentTemplate>
		<Representation id="v" bandwidth="1"/></AdaptationSet></Period>`)
	m, err := ParseDynamic([]byte(man), mustURL(manifestURL))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		after time.Duration
		want  int
	}{{11 * time.Second, 0}, {12 * time.Second, 1}, {15900 * time.Millisecond, 2}, {16 * time.Second, 3}} {
		p, ids, err := m.PlanLive(Selection{}, ast.Add(tt.after), nil)
		if err != nil {
			t.Fatalf("PlanLive(+%v): %v", tt.after, err)
		}
		if got := len(p.Tracks[0].Segments); got != tt.want {
			t.Errorf("PlanLive(+%v): %d segments, want %d", tt.after, got, tt.want)
		}
		for k, id := range ids[0] {
			if want := uint64(5000 + 2000*k); !id.ByTime || id.Key != want || id.End != want+2000 {
				t.Errorf("PlanLive(+%v): cursor %d %+v, want time %d", tt.after, k, id, want)
			}
		}
	}
}

// timelineLive is a live manifest as ffmpeg's dash muxer writes it with
// -use_timeline 1: a sliding SegmentTimeline of 1-second segments in period
// "0", startNumber moving with it; extra is more periods.
func timelineLive(typ string, startNumber, first, count int, extra string) string {
	return mpd(`type="`+typ+`" availabilityStartTime="2026-11-30T02:40:58.435Z" minimumUpdatePeriod="PT1S"`,
		fmt.Sprintf(`<Period id="0" start="PT0S">`+video1+
			`<Representation id="0" bandwidth="1"><SegmentTemplate timescale="12800" initialization="init-$RepresentationID$.m4s" media="c-$Number%%05d$.m4s" startNumber="%d">
			<SegmentTimeline><S t="%d" d="12800" r="%d"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period>`,
			startNumber, first*12800, count-1)+extra)
}

// TestFollow follows a sliding live manifest reload by reload: segments are
// taken by (period, $Time$), never by place; what left the window unseen is
// a gap; a new period is a new section with its own init.
func TestFollow(t *testing.T) {
	period2 := `<Period id="ad" start="PT20S">` + video1 + `<Representation id="1" bandwidth="1"><SegmentTemplate timescale="1000" initialization="ad-init.m4s" media="ad-$Number$.m4s" startNumber="1" duration="2000"/></Representation></AdaptationSet></Period>`
	reloads := []struct {
		name     string
		manifest string
		want     string // the track's segments after the reload: section, number, gap or URL
		skipped  int64
	}{
		{name: "first", manifest: timelineLive("dynamic", 1, 0, 3, ""), want: "0:1 0:2 0:3"},
		{name: "unchanged", manifest: timelineLive("dynamic", 1, 0, 3, ""), want: "0:1 0:2 0:3"},
		{name: "slid by two", manifest: timelineLive("dynamic", 3, 2, 3, ""), want: "0:1 0:2 0:3 0:4 0:5"},
		{name: "a stall: 6 and 7 left unseen", manifest: timelineLive("dynamic", 8, 7, 2, ""), want: "0:1 0:2 0:3 0:4 0:5 0:6gap 0:7gap 0:8 0:9", skipped: 2},
		{name: "went back", manifest: timelineLive("dynamic", 5, 4, 3, ""), want: "0:1 0:2 0:3 0:4 0:5 0:6gap 0:7gap 0:8 0:9"},
		{name: "a new period", manifest: timelineLive("static", 9, 8, 2, period2), want: "0:1 0:2 0:3 0:4 0:5 0:6gap 0:7gap 0:8 0:9 0:10 1:1 1:2 1:3 1:4 1:5"},
	}
	var tr plan.Track
	var last Cursor
	for _, r := range reloads {
		m, err := ParseDynamic([]byte(r.manifest), mustURL(manifestURL))
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if !m.Dynamic {
			m.Duration = 30 // the static manifest's end
			m.Periods[1].Duration = 10
		}
		p, ids, err := m.PlanLive(Selection{}, ast.Add(time.Hour), nil)
		if err != nil {
			t.Fatalf("%s: PlanLive: %v", r.name, err)
		}
		var up plan.Update
		up, last = Follow(&tr, p.Tracks[0], ids[0], last)
		var got []string
		for _, s := range tr.Segments {
			g := fmt.Sprintf("%d:%d", s.Section, s.Sequence)
			if s.Gap {
				g += "gap"
			}
			got = append(got, g)
		}
		if strings.Join(got, " ") != r.want || up.Skipped != r.skipped {
			t.Errorf("%s: Follow: got %q skipped %d, want %q skipped %d", r.name, strings.Join(got, " "), up.Skipped, r.want, r.skipped)
		}
	}
	if len(tr.Inits) != 2 || tr.Segments[len(tr.Segments)-1].Init != 2 || tr.Segments[0].Init != 1 {
		t.Errorf("inits %v, want one per period, shared across reloads", tr.Inits)
	}
	if last.Period != "ad" || last.Number != 5 || last.Section != 1 {
		t.Errorf("last cursor %+v, want period ad, number 5, section 1", last)
	}
}
