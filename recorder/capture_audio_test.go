package recorder

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// TestCaptureAddsTheAudioThePlayerSwitchedTo plays, through the capture, the matrix's master with two audio
// renditions (stream_1: English, DEFAULT=YES, 440 Hz; stream_2: French, 1000 Hz) and checks which audio the
// one recording ends with: the default, plus the French the player switched to (a track of its own, tagged
// fra, with every packet and its tone), unless --audio-lang chose the audio; then the French is left out,
// said once, and never fetched by the backfill. A French segment the player fetched after the rendition
// joined is kept from its copy; one it fetched when the rendition was left out never makes a recording of
// its own.
func TestCaptureAddsTheAudioThePlayerSwitchedTo(t *testing.T) {
	m := testmedia.HLSMatrix(t)
	cs := m.Cases[testmedia.CaseSeparate]
	tests := []struct {
		name    string
		audio   string   // MergeOptions.Audio: watch's --audio-lang, or "all"
		before  []string // what the player fetches after the master playlist
		after   []string // what it fetches next: while the run downloads when restart, else once it is done
		restart bool     // the run restarts with the French: the origin answers slowly
		langs   []string // audio tracks expected, in order
		iso     []string
		leftOut int // times the log says the French is left out
	}{
		{name: "switch to French while the run goes on",
			before: []string{"stream_0.m3u8", "stream_1.m3u8", "stream_0_000.ts", "stream_1_000.ts"},
			after:  []string{"stream_2.m3u8", "stream_2_001.ts", "stream_2.m3u8"}, restart: true,
			langs: []string{"en", "fr"}, iso: []string{"eng", "fra"}},
		{name: "French before the variant",
			before: []string{"stream_2.m3u8", "stream_0.m3u8", "stream_1.m3u8", "stream_0_000.ts", "stream_2_000.ts"},
			langs:  []string{"en", "fr"}, iso: []string{"eng", "fra"}},
		{name: "switch to French with --audio-lang en",
			audio:  "en",
			before: []string{"stream_0.m3u8", "stream_1.m3u8", "stream_0_000.ts", "stream_1_000.ts"},
			after:  []string{"stream_2.m3u8", "stream_2_001.ts", "stream_2.m3u8", "stream_2_002.ts"}, restart: true,
			langs: []string{"en"}, iso: []string{"eng"}, leftOut: 1},
		{name: "switch to French with --audio all",
			audio:  "all",
			before: []string{"stream_0.m3u8", "stream_1.m3u8", "stream_0_000.ts", "stream_1_000.ts"},
			after:  []string{"stream_2.m3u8", "stream_2_001.ts"}, restart: true,
			langs: []string{"en", "fr"}, iso: []string{"eng", "fra"}},
		{name: "switch to French after the recording was made",
			before: []string{"stream_0.m3u8", "stream_1.m3u8", "stream_0_000.ts", "stream_1_000.ts"},
			after:  []string{"stream_2.m3u8", "stream_2_001.ts", "stream_2_002.ts"},
			langs:  []string{"en"}, iso: []string{"eng"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, st, c, logs := loggedCapture(t, cs.Dir, tt.restart, MergeOptions{Audio: tt.audio})
			h := map[string]string{"Referer": testReferer}
			for _, name := range append([]string{cs.Entry}, tt.before...) {
				browse(t, c, o.URL+name, []byte(readText(t, filepath.Join(cs.Dir, name))), h)
			}
			id := onlySession(t, st).ID
			if tt.restart {
				waitState(t, st, id, StateDownloading)
			} else {
				waitState(t, st, id, StateDone)
			}
			for _, name := range tt.after {
				browse(t, c, o.URL+name, []byte(readText(t, filepath.Join(cs.Dir, name))), h)
			}
			s := waitState(t, st, id, StateDone)
			c.Wait()
			onlySession(t, st) // no French segment made a recording of its own
			checkMatrixOutput(t, cs, s.Output, tt.langs, tt.iso)

			restarted := strings.Contains(logs.String(), "the player fetched audio: the recording goes on with them")
			if want := tt.restart && tt.audio == ""; restarted != want {
				t.Errorf("the run restarted for the French: %v, want %v", restarted, want)
			}
			if n := strings.Count(logs.String(), "leaves out: not recorded"); n != tt.leftOut {
				t.Errorf("the log says %d times that the French is left out, want %d:\n%s", n, tt.leftOut, logs.String())
			}
			// The French segments the player fetched were kept from its copy (or answered from the
			// backfill's); the backfill fetched the others once, and none when the French is not recorded.
			fr := len(tt.langs) == 2
			for k := range 6 {
				name := "stream_2_00" + string(rune('0'+k)) + ".ts"
				got, fetched := o.Completed(name), strings.Contains(strings.Join(slices.Concat(tt.before, tt.after), " "), name)
				switch {
				case !fr && got != 0:
					t.Errorf("the origin served %s %d times with the French left out, want never", name, got)
				case fr && fetched && got > 1, fr && !fetched && got != 1:
					t.Errorf("the origin served %s %d times, want once (none when the browser's copy was kept)", name, got)
				}
			}
		})
	}
}
