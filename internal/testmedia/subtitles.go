package testmedia

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A Cue is one subtitle of SubtitledHLS's stream, in seconds.
type Cue struct {
	Start, End float64
	Text       string
}

// SubtitleCues are the English subtitles SubtitledHLS makes its stream with.
var SubtitleCues = []Cue{
	{0.5, 1.5, "first cue"},
	{2.2, 3.0, "second cue"},
	{3.6, 4.4, "third cue"},
}

// SubtitledHLS writes into dir, with ffmpeg's own hls muxer, a 5 s stream in 1 s segments with SubtitleCues as
// English WebVTT subtitles: master.m3u8, whose variant out_0.m3u8 (video and audio in one MPEG-TS,
// seg_0_NNN.ts) has the subtitle group "subs" with one rendition, LANGUAGE="en" and DEFAULT=YES,
// out_0_vtt.m3u8 (WebVTT segments out_0N.vtt).
func SubtitledHLS(tb testing.TB, dir string) {
	tb.Helper()
	var srt strings.Builder
	for i, c := range SubtitleCues {
		fmt.Fprintf(&srt, "%d\n%s --> %s\n%s\n\n", i+1, srtTime(c.Start), srtTime(c.End), c.Text)
	}
	in := filepath.Join(tb.TempDir(), "in.srt")
	if err := os.WriteFile(in, []byte(srt.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=5",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=5:sample_rate=48000",
		"-i", in, "-map", "0:v", "-map", "1:a", "-map", "2:s",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-c:s", "webvtt",
		"-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
		"-var_stream_map", "v:0,a:0,s:0,sgroup:subs,language:en", "-master_pl_name", "master.m3u8",
		"-hls_segment_filename", "seg_%v_%03d.ts", "out_%v.m3u8")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	master, err := os.ReadFile(filepath.Join(dir, "master.m3u8"))
	if err != nil || !strings.Contains(string(master), "TYPE=SUBTITLES") || !strings.Contains(string(master), "DEFAULT=YES") ||
		!strings.Contains(string(master), `SUBTITLES="subs"`) {
		tb.Fatalf("ffmpeg's master playlist offers no default subtitle group (%v):\n%s", err, master)
	}
}

// srtTime writes s seconds as SubRip does.
func srtTime(s float64) string {
	ms := int64(math.Round(s * 1000))
	return fmt.Sprintf("%02d:%02d:%02d,%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}
