package e2e

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// count is how many times the CDN served name (a path under /v/).
func (c *cdn) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets["/v/"+name]
}

// TestPlayerAudioLanguages: hls.js plays the HLS matrix's master with two audio renditions, written by
// ffmpeg's own hls muxer (stream_0: video; stream_1: English, DEFAULT=YES, a 440 Hz tone; stream_2: French,
// 1000 Hz; 1 s fMP4 segments, 5 s). hls.js plays the English. The one recording has the video and the
// audio the choice names, each stream with every packet the CDN serves, tagged with its language, with its
// own tone: by default the English; with --audio-lang fr the French (which the player never fetched) and
// not the English; and when the person switches hls.js to French while the recording runs, both.
func TestPlayerAudioLanguages(t *testing.T) {
	cs := testmedia.HLSMatrix(t).Cases[testmedia.CaseSeparateFMP4]
	files := map[string][]string{} // init and media segment files by rendition: "" the video, then by language
	for k, lang := range []string{"", "en", "fr"} {
		names, _ := filepath.Glob(filepath.Join(cs.Dir, fmt.Sprintf("stream_%d_*.m4s", k)))
		if len(names) < 5 {
			t.Fatalf("%s: %d segments of stream %d, want 5 or more", cs.Dir, len(names), k)
		}
		files[lang] = append(files[lang], fmt.Sprintf("init_%d.mp4", k))
		for _, n := range names {
			files[lang] = append(files[lang], filepath.Base(n))
		}
	}
	for _, tc := range []struct {
		name     string
		audio    string   // the recording's choice: watch's --audio-lang
		switchTo bool     // switch hls.js to French once it plays, while the recording runs
		langs    []string // the audio expected, in order
		iso      []string
	}{
		{name: "default", langs: []string{"en"}, iso: []string{"eng"}},
		{name: "audio-lang fr", audio: "fr", langs: []string{"fr"}, iso: []string{"fra"}},
		{name: "switched to French", switchTo: true, langs: []string{"en", "fr"}, iso: []string{"eng", "fra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			o := cdnOptions{}
			last := files[""][len(files[""])-1]
			release := make(chan struct{})
			if tc.switchTo {
				// The video's last segment waits until hls.js has switched: the recording runs meanwhile,
				// whoever fetches it first.
				o.hold = map[string]chan struct{}{last: release}
			}
			pr := newPlayerRigMerge(t, cs.Dir, o, recorder.MergeOptions{Audio: tc.audio})
			var once sync.Once
			free := func() { once.Do(func() { close(release) }) }
			t.Cleanup(free) // before the CDN's Close, which waits for the held request
			bctx, closeBrowser := pr.browser(t, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")
			var switchedAfter time.Duration
			if tc.switchTo {
				pr.play(t, bctx, "hlsjs", "https://"+cdnHost+"/v/"+cs.Entry, 0.3)
				idx, err := chromedp.Run(bctx, chromedp.Evaluate[int](
					`(() => { const i = hls.audioTracks.findIndex(a => a.lang === "fr"); hls.audioTrack = i; return i; })()`))
				if err != nil || idx < 0 {
					t.Fatalf("switch hls.js to French: track %d, %v", idx, err)
				}
				switchedAfter = time.Since(start)
				// Released once hls.js fetched a French segment (whose copy is then kept).
				deadline := time.Now().Add(20 * time.Second)
				fetched := 0
				for ; fetched == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					for _, n := range files["fr"][1:] { // not the init segment
						fetched += pr.cdn.count(n)
					}
				}
				free()
				if fetched == 0 {
					t.Fatal("hls.js fetched no French segment within 20 s of the switch")
				}
				pr.playhead(t, bctx, "hlsjs", 2)
			} else {
				pr.play(t, bctx, "hlsjs", "https://"+cdnHost+"/v/"+cs.Entry, 2)
			}
			playedAfter := time.Since(start)
			s := waitSession(t, pr.store, "", time.Minute)
			if errs := playerErrors(t, bctx); len(errs) > 0 {
				t.Errorf("hls.js reported errors:\n  %s", strings.Join(errs, "\n  "))
			}
			closeBrowser()
			checkOneDone(t, pr.store, s)
			ss, err := testmedia.StreamPackets(context.Background(), s.Output)
			if err != nil {
				t.Fatal(err)
			}
			v, a := ss.OfType("video"), ss.OfType("audio")
			if len(v) != 1 || len(a) != len(tc.langs) || len(ss) != 1+len(tc.langs) {
				t.Fatalf("%s: streams %+v, want one video and %d audio", s.Output, ss, len(tc.langs))
			}
			if v[0].Packets != cs.Video {
				t.Errorf("video packets %d, want the %d the CDN serves", v[0].Packets, cs.Video)
			}
			for k, lang := range tc.langs {
				if a[k].Language != tc.iso[k] || a[k].Packets != cs.Audio[lang] {
					t.Errorf("audio stream %d: tagged %q, %d packets; want %q, the %d the CDN serves", k, a[k].Language, a[k].Packets,
						tc.iso[k], cs.Audio[lang])
				}
				if hz := testmedia.DominantHz(t, s.Output, k, 0.5, 1); math.Abs(hz-cs.Tone[lang]) > 0.02*cs.Tone[lang] {
					t.Errorf("audio stream %d (%s): tone at %.1f Hz, want %.0f Hz ± 2 %%", k, lang, hz, cs.Tone[lang])
				}
			}

			// What the CDN served: each file recorded once, and a rendition not recorded only as often as
			// hls.js asked for it. When the run restarts to take the French, the transfers under way land
			// first (the held one among them): nothing is fetched again.
			for _, lang := range []string{"", "en", "fr"} {
				recorded := lang == "" || strings.Contains(strings.Join(tc.langs, " "), lang)
				for _, n := range files[lang] {
					got := pr.cdn.count(n)
					switch {
					case recorded && got != 1:
						t.Errorf("the CDN served %s %d times, want once", n, got)
					case !recorded && lang == "fr" && got != 0:
						t.Errorf("the CDN served %s %d times with the French neither played nor recorded, want never", n, got)
					case !recorded && got > 1:
						t.Errorf("the CDN served %s %d times, want at most once (hls.js)", n, got)
					}
				}
			}
			if tc.switchTo {
				t.Logf("switched after %.1fs; the CDN served the held %s %d times", switchedAfter.Seconds(), last, pr.cdn.count(last))
			}
			t.Logf("played 2 s after %.1fs; recording done %.1fs after the start", playedAfter.Seconds(), time.Since(start).Seconds())
		})
	}
}
