package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/dash"
	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// dashMedia writes ffmpeg's dash muxer output ($Number$ template, 1-second
// segments, 8 s of 320x180 H.264 4:2:0 and AAC) into a new directory and
// returns it with the files the manifest lists and their packets, counted
// by ffprobe in each track's init segment and listed segments joined. (Not
// ffmpeg's dash demuxer: on 8 s it also reads the one-packet audio chunk
// past the manifest's PT8.0S.)
func dashMedia(t *testing.T) (dir string, files []string, video, audio int) {
	t.Helper()
	dir = t.TempDir()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "8", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac",
		"-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "0",
		filepath.Join(dir, "out.mpd")).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	files, video, audio = dashFiles(t, dir)
	return dir, files, video, audio
}

// dashFiles returns the files the (static) manifest dir/out.mpd lists and
// their packets, counted in each track's init segment and listed segments
// joined.
func dashFiles(t *testing.T, dir string) (files []string, video, audio int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "out.mpd"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := dash.Parse(data, must(url.Parse("https://"+cdnHost+"/v/out.mpd")))
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Plan(dash.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	for k, tr := range p.Tracks {
		var joined []byte
		for _, in := range tr.Inits {
			files = append(files, path.Base(in.URL))
			joined = append(joined, readFile(t, filepath.Join(dir, path.Base(in.URL)))...)
		}
		for _, s := range tr.Segments {
			files = append(files, path.Base(s.URL))
			joined = append(joined, readFile(t, filepath.Join(dir, path.Base(s.URL)))...)
		}
		name := filepath.Join(t.TempDir(), fmt.Sprintf("track%d.mp4", k))
		if err := os.WriteFile(name, joined, 0o644); err != nil {
			t.Fatal(err)
		}
		v, a, err := testmedia.CountPackets(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		video, audio = video+v, audio+a
	}
	return files, video, audio
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dash.js and shaka playing a DASH manifest from a CDN on another origin
// through the proxy: playback advances with no player error, and the capture
// makes one recording of video and audio, each file from the CDN once.
func TestPlayersDASH(t *testing.T) {
	for _, player := range []string{"dashjs", "shaka"} {
		t.Run(player, func(t *testing.T) {
			start := time.Now()
			dir, files, video, audio := dashMedia(t)
			pr := newPlayerRig(t, dir)
			bctx, closeBrowser := pr.browser(t, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")
			playedAfter := pr.play(t, bctx, player, "https://"+cdnHost+"/v/out.mpd", 2)
			s := waitSession(t, pr.store, "", time.Minute)
			if errs := playerErrors(t, bctx); len(errs) > 0 {
				t.Errorf("%s reported errors:\n  %s", player, strings.Join(errs, "\n  "))
			}
			closeBrowser()
			checkRecording(t, pr.store, s, video, audio)
			pr.cdn.checkOnce(t, files)
			t.Logf("%s: played 2 s after %.1fs; recording done %.1fs after the start", player, playedAfter.Seconds(), time.Since(start).Seconds())
		})
	}
}
