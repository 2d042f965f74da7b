package recorder

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
)

// TestCaptureRecordsSubtitlesThePlayerFetched plays, through the capture, ffmpeg's HLS output with WebVTT
// renditions (subtitleMedia's "plain": a variant with its audio muxed in, English and French subtitles)
// and checks that the subtitle playlists the player fetched, and only those, become subtitle tracks of the
// one recording, kept as get keeps them: a mov_text stream per language tagged with it and NAME.LANG.vtt
// beside the .mp4, with the source's cues where the source put them. The WebVTT segments the browser
// fetched are kept from its copy: the origin serves each of the others once, and those never.
func TestCaptureRecordsSubtitlesThePlayerFetched(t *testing.T) {
	root := subtitleMedia(t)
	tests := []struct {
		name    string
		fetched []string // what the player fetches after the master playlist, in order
		langs   []string // subtitle tracks expected, in order
		iso     []string
		// restart: the last playlist comes while the run downloads (the origin answers slowly), which
		// restarts it: what it had in flight lands first (Options.Yield), and is not fetched again.
		restart bool
		subs    string // MergeOptions.Subtitles, watch's --subs; "" is all
	}{
		{name: "no subtitles on", fetched: []string{"out_0.m3u8", "seg_0_000.ts"}},
		{name: "English on", fetched: []string{"out_0.m3u8", "out_0_vtt.m3u8", "seg_0_000.ts", "out_00.vtt", "out_01.vtt"},
			langs: []string{"en"}, iso: []string{"eng"}},
		{name: "French before the variant, then the default English",
			fetched: []string{"fr_vtt.m3u8", "out_0.m3u8", "fr_00.vtt", "seg_0_000.ts", "out_0_vtt.m3u8", "out_01.vtt"},
			langs:   []string{"fr", "en"}, iso: []string{"fra", "eng"}},
		{name: "English, then a switch to French while the run goes on",
			fetched: []string{"out_0.m3u8", "out_0_vtt.m3u8", "out_00.vtt", "fr_vtt.m3u8", "fr_01.vtt"},
			langs:   []string{"en", "fr"}, iso: []string{"eng", "fra"}, restart: true},
		{name: "English on, --subs none", fetched: []string{"out_0.m3u8", "out_0_vtt.m3u8", "seg_0_000.ts", "out_00.vtt"},
			subs: "none"},
		{name: "English and French on, --subs fr",
			fetched: []string{"out_0.m3u8", "out_0_vtt.m3u8", "seg_0_000.ts", "out_00.vtt", "fr_vtt.m3u8", "fr_00.vtt"},
			langs:   []string{"fr"}, iso: []string{"fra"}, subs: "fr", restart: true}, // the default English is not waited for
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, st, c, logs := loggedCapture(t, root, tt.restart, MergeOptions{Subtitles: tt.subs})
			h := map[string]string{"Referer": testReferer}
			dir := filepath.Join(root, "plain")
			for _, name := range append([]string{"master.m3u8"}, tt.fetched...) {
				if tt.restart && name == "fr_vtt.m3u8" {
					waitState(t, st, onlySession(t, st).ID, StateDownloading)
				}
				browse(t, c, o.URL+"plain/"+name, []byte(readText(t, filepath.Join(dir, name))), h)
			}
			s := waitState(t, st, onlySession(t, st).ID, StateDone)
			c.Wait()
			if restarted := strings.Contains(logs.String(), "the recording goes on with them"); restarted != tt.restart {
				t.Errorf("the run restarted for the subtitles: %v, want %v", restarted, tt.restart)
			}

			ss, err := testmedia.StreamPackets(context.Background(), s.Output)
			if err != nil {
				t.Fatal(err)
			}
			if v, a, subs := ss.OfType("video"), ss.OfType("audio"), ss.OfType("subtitle"); len(v) != 1 || len(a) != 1 || len(subs) != len(tt.langs) {
				t.Fatalf("output streams %+v, want one video, one audio and %d subtitle", ss, len(tt.langs))
			}
			subs := ss.OfType("subtitle")
			stem := strings.TrimSuffix(s.Output, ".mp4")
			for k, lang := range tt.langs {
				if subs[k].Language != tt.iso[k] || subs[k].Codec != "mov_text" {
					t.Errorf("subtitle stream %d: %s tagged %q, want mov_text tagged %q", k, subs[k].Codec, subs[k].Language, tt.iso[k])
				}
				muxed := filepath.Join(t.TempDir(), "muxed.vtt")
				if out, err := exec.Command("ffmpeg", "-v", "error", "-i", s.Output, "-map", fmt.Sprintf("0:s:%d", k), muxed).CombinedOutput(); err != nil {
					t.Fatalf("ffmpeg extracting subtitle stream %d: %v\n%s", k, err, out)
				}
				checkCues(t, "the .mp4's "+lang+" stream", muxed, lang, 1, 0)
				checkCues(t, "the file beside it", stem+"."+lang+".vtt", lang, 1, 0)
			}
			beside, _ := filepath.Glob(stem + ".*.vtt")
			if len(beside) != len(tt.langs) {
				t.Errorf("beside the output: %q, want %d .vtt files", beside, len(tt.langs))
			}
			// The segments of the renditions recorded: each from the origin once, restart or not, but for
			// those the browser fetched, kept from its copy (or, when the backfill was first, answered from
			// the backfill's).
			teed, most := 0, 1
			for _, lang := range tt.langs {
				prefix := map[string]string{"en": "out_0", "fr": "fr_0"}[lang]
				vtts, _ := filepath.Glob(filepath.Join(dir, prefix+"*.vtt"))
				for _, p := range vtts {
					name := filepath.Base(p)
					got := o.Completed("plain/" + name)
					switch {
					case slices.Contains(tt.fetched, name) && got > most, !slices.Contains(tt.fetched, name) && (got < 1 || got > most):
						t.Errorf("the origin served %s %d times, want once (none when the browser's copy was kept, %d at most)", name, got, most)
					case got == 0:
						teed++
					}
				}
			}
			t.Logf("%d subtitle segments kept from the browser's copy", teed)
			for _, seg := range []string{"seg_0_000.ts", "seg_0_001.ts", "seg_0_004.ts"} {
				if got := o.Completed("plain/" + seg); got > most || got == 0 && !slices.Contains(tt.fetched, seg) {
					t.Errorf("the origin served %s %d times, want once (%d at most)", seg, got, most)
				}
			}
			if len(tt.langs) == 0 {
				if n := o.Hits("plain/out_00.vtt") + o.Hits("plain/fr_00.vtt"); n != 0 {
					t.Errorf("subtitle segments fetched %d times with no subtitles on", n)
				}
			}
			if _, err := os.Stat(s.Output); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCaptureRecordsTheChosenAudio: watch --audio-lang fr with a player that plays the default English
// rendition records the French one with the video (the run reads its playlist itself), as get --audio-lang
// fr would.
func TestCaptureRecordsTheChosenAudio(t *testing.T) {
	m := testmedia.HLSMatrix(t)
	cs := m.Cases[testmedia.CaseSeparate]
	o := testorigin.Start(t, testorigin.Options{Dir: cs.Dir, Prefix: "/hls/"})
	// The player: the master, the video and the default (English) audio playlists in either order, a
	// segment of each.
	for _, order := range [][]string{{"stream_0.m3u8", "stream_1.m3u8"}, {"stream_1.m3u8", "stream_0.m3u8"}} {
		t.Run(order[0]+" first", func(t *testing.T) {
			st, err := NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts(), Merge: MergeOptions{Audio: "fr"}})
			t.Cleanup(func() { cancel(); c.Wait() })
			h := map[string]string{"Referer": testReferer}
			for _, name := range append(append([]string{cs.Entry}, order...), "stream_0_000.ts", "stream_1_000.ts") {
				browse(t, c, o.URL+name, []byte(readText(t, filepath.Join(cs.Dir, name))), h)
			}
			s := waitState(t, st, onlySession(t, st).ID, StateDone)
			checkMatrixOutput(t, cs, s.Output, []string{"fr"}, []string{"fra"})
		})
	}
}

// loggedCapture is a capture of the files under dir, served by a test origin at /hls/ (slowly, 300 ms to
// the first byte, when slow: a run then downloads long enough for a track to join it), whose log is kept.
// The capture stops with the test.
func loggedCapture(t *testing.T, dir string, slow bool, mo MergeOptions) (*testorigin.Origin, *Store, *Capture, *lockedBuffer) {
	t.Helper()
	oo := testorigin.Options{Dir: dir, Prefix: "/hls/"}
	if slow {
		oo.TTFB = 300 * time.Millisecond
	}
	o := testorigin.Start(t, oo)
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	ro := fastOpts()
	ro.Logger = slog.New(slog.NewTextHandler(logs, nil))
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: ro, Merge: mo})
	t.Cleanup(func() { cancel(); c.Wait() })
	return o, st, c, logs
}
