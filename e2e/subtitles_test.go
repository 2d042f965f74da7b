package e2e

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/webvtt"
)

// subtitleCues are the subtitles subtitledStream is made with.
var subtitleCues = testmedia.SubtitleCues

// subtitledStream makes, with ffmpeg's hls muxer, a 5 s stream in 1 s segments whose master playlist offers
// English WebVTT subtitles with DEFAULT=YES (hls.js shows those unasked): out_0.m3u8 (video and audio in one
// MPEG-TS) and out_0_vtt.m3u8. It returns the directory and the files the CDN serves but the playlists.
func subtitledStream(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	testmedia.SubtitledHLS(t, dir)
	var files []string
	for _, pat := range []string{"*.ts", "*.vtt"} {
		names, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, n := range names {
			files = append(files, filepath.Base(n))
		}
	}
	return dir, files
}

// hls.js showing a master playlist's default subtitles: the recording has them as a subtitle track of the
// .mp4 and beside it as NAME.en.vtt, with the source's cues, and the CDN served each segment once (the
// WebVTT segments the player fetched were kept from its copy).
func TestPlayerSubtitles(t *testing.T) {
	start := time.Now()
	dir, files := subtitledStream(t)
	pr := newPlayerRig(t, dir)
	bctx, closeBrowser := pr.browser(t, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")
	playedAfter := pr.play(t, bctx, "hlsjs", "https://"+cdnHost+"/v/master.m3u8", 2)
	s := waitSession(t, pr.store, "", time.Minute)
	if errs := playerErrors(t, bctx); len(errs) > 0 {
		t.Errorf("hls.js reported errors:\n  %s", strings.Join(errs, "\n  "))
	}
	closeBrowser()
	pr.cdn.checkOnce(t, files)
	checkOneDone(t, pr.store, s)
	ss, err := testmedia.StreamPackets(context.Background(), s.Output)
	if err != nil {
		t.Fatal(err)
	}
	subs := ss.OfType("subtitle")
	if len(ss.OfType("video")) != 1 || len(ss.OfType("audio")) != 1 || len(subs) != 1 || subs[0].Language != "eng" || subs[0].Codec != "mov_text" {
		t.Fatalf("%s: streams %+v, want video, audio and one mov_text subtitle stream tagged eng", s.Output, ss)
	}
	beside := strings.TrimSuffix(s.Output, ".mp4") + ".en.vtt"
	data, err := os.ReadFile(beside)
	if err != nil {
		t.Fatal(err)
	}
	f, err := webvtt.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var cues []webvtt.Cue
	for _, c := range f.Cues {
		if strings.TrimSpace(c.Text) != "" {
			cues = append(cues, c)
		}
	}
	if len(cues) != len(subtitleCues) {
		t.Fatalf("%s: %d cues, want %d:\n%s", beside, len(cues), len(subtitleCues), data)
	}
	for k, c := range cues {
		want := subtitleCues[k]
		if math.Abs(c.Start.Seconds()-want.Start) > 0.1 || math.Abs(c.End.Seconds()-want.End) > 0.1 || c.Text != want.Text {
			t.Errorf("%s: cue %d %.3f–%.3f %q, want %.3f–%.3f %q ± 0.1 s", beside, k, c.Start.Seconds(), c.End.Seconds(), c.Text,
				want.Start, want.End, want.Text)
		}
	}
	t.Logf("played 2 s after %.1fs; recording done %.1fs after the start", playedAfter.Seconds(), time.Since(start).Seconds())
}
