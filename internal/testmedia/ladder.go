package testmedia

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A Rung is one variant of LadderHLS's master playlist.
type Rung struct {
	Playlist      string // vN.m3u8, relative to the directory
	Width, Height int
	Bitrate       string // the video's target bit rate, as ffmpeg's -b:v takes it
}

// Ladder lists LadderHLS's variants, lowest first (the master lists them in this order).
var Ladder = []Rung{
	{"v0.m3u8", 426, 240, "300k"},
	{"v1.m3u8", 854, 480, "1000k"},
	{"v2.m3u8", 1280, 720, "3000k"},
}

// LadderSeconds is how long LadderHLS's stream is: one segment a second.
const LadderSeconds = 8

// LadderHLS writes into dir, with ffmpeg's own hls muxer, an adaptive-bit-rate ladder as sites serve it:
// master.m3u8 with the Ladder's three variants of clearly different RESOLUTION and BANDWIDTH, each with
// its audio muxed in one MPEG-TS (vN.m3u8, segments vN_NNN.ts), LadderSeconds long in 1 s segments that
// each start on a key frame at the same time in every variant, so that a player switches between them
// at any segment.
func LadderHLS(tb testing.TB, dir string) {
	tb.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=1280x720:rate=25:duration=%d", LadderSeconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=48000:duration=%d", LadderSeconds)}
	var vsm []string
	for k := range Ladder {
		args = append(args, "-map", "0:v")
		vsm = append(vsm, fmt.Sprintf("v:%d,a:%d", k, k))
	}
	for range Ladder {
		args = append(args, "-map", "1:a")
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
		"-keyint_min", "25", "-sc_threshold", "0")
	for k, r := range Ladder {
		args = append(args, fmt.Sprintf("-s:v:%d", k), fmt.Sprintf("%dx%d", r.Width, r.Height),
			fmt.Sprintf("-b:v:%d", k), r.Bitrate)
	}
	args = append(args, "-c:a", "aac", "-b:a", "64k", "-ac", "2",
		"-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
		"-var_stream_map", strings.Join(vsm, " "), "-master_pl_name", "master.m3u8",
		"-hls_segment_filename", "v%v_%03d.ts", "v%v.m3u8")
	cmd := exec.Command("ffmpeg", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	master, err := os.ReadFile(filepath.Join(dir, "master.m3u8"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range Ladder {
		if !strings.Contains(string(master), fmt.Sprintf("RESOLUTION=%dx%d", r.Width, r.Height)) {
			tb.Fatalf("ffmpeg's master playlist lacks the %dx%d variant:\n%s", r.Width, r.Height, master)
		}
	}
}
