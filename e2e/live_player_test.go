package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// hls.js plays a live broadcast through the proxy while watch records it: the
// segments it plays are the recording's, so the CDN serves each segment once
// (to the browser, or to the follower for those the page did not play), and
// the recording holds the whole broadcast.
func TestPlayerLive(t *testing.T) {
	needPlayers(t)
	dir := t.TempDir()
	// An EVENT playlist: every segment stays listed, to count what the recording must hold.
	pr, s := watchBroadcast(t, dir, "hlsjs", "live.m3u8", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "live.m3u8"))
		return strings.Count(string(b), "#EXTINF") >= 2
	}, "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "event",
		"-hls_segment_filename", filepath.Join(dir, "s%03d.ts"), filepath.Join(dir, "live.m3u8"))
	names, err := filepath.Glob(filepath.Join(dir, "*.ts"))
	if err != nil || len(names) < 9 {
		t.Fatalf("the broadcast's segments: %v (%v)", names, err)
	}
	var video, audio int
	for n, p := range names {
		v, a, err := testmedia.CountPackets(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		video, audio = video+v, audio+a
		names[n] = filepath.Base(p)
	}
	checkRecording(t, pr.store, s, video, audio)
	pr.cdn.checkOnce(t, names)
	pr.cdn.mu.Lock()
	t.Logf("CDN requests: %v", pr.cdn.gets)
	pr.cdn.mu.Unlock()
}

// dash.js plays a live DASH broadcast (ffmpeg's dash muxer, a $Number$
// template on the wall clock) through the proxy while watch records it: the
// media segments it plays are the recording's, so the CDN serves each once
// (to the browser, or to the follower for those the page did not play), and
// the recording holds the whole broadcast. So are the init segments: the
// follower uses the player's copy, or the player reads the follower's.
func TestPlayerLiveDASH(t *testing.T) {
	needPlayers(t)
	dir := t.TempDir()
	// No window: every segment stays listed, to count what the recording must hold.
	pr, s := watchBroadcast(t, dir, "dashjs", "out.mpd", func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "chunk-stream0-*.m4s"))
		return len(m) >= 2
	}, "-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "0",
		"-remove_at_exit", "0", filepath.Join(dir, "out.mpd"))
	// The manifest, static now, lists every segment from the first: all are
	// the recording's.
	var segs, inits []string
	files, video, audio := dashFiles(t, dir)
	for _, f := range files {
		switch {
		case strings.HasPrefix(f, "chunk-"):
			segs = append(segs, f)
		case strings.HasPrefix(f, "init-"):
			inits = append(inits, f)
		}
	}
	if len(segs) < 18 || len(inits) != 2 {
		t.Fatalf("the broadcast's segments and init segments: %v", files)
	}
	pr.cdn.mu.Lock()
	t.Logf("CDN requests: %v", pr.cdn.gets)
	pr.cdn.mu.Unlock()
	checkRecording(t, pr.store, s, video, audio)
	pr.cdn.checkOnce(t, append(segs, inits...))
}

// watchBroadcast runs ffmpeg's live muxer (output: its arguments after the codecs) in real time over 10 s
// of a test picture and a 440 Hz tone in 1 s GOPs, into dir; once ready says it has begun, the player plays
// name from the CDN through the proxy while watch records it. It returns when the broadcast is over and
// the recording made, the player having reported no error.
func watchBroadcast(t *testing.T, dir, player, name string, ready func() bool, output ...string) (*playerRig, *recorder.Session) {
	t.Helper()
	ff := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc=size=160x90:rate=25:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=10",
		"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
		"-sc_threshold", "0", "-c:a", "aac"}, output...)...)
	var stderr strings.Builder
	ff.Stderr = &stderr
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ff.Process.Kill() })
	for deadline := time.Now().Add(30 * time.Second); !ready(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the broadcast never began: %s", stderr.String())
		}
	}
	pr := newPlayerRigWith(t, dir, cdnOptions{live: true})
	bctx, closeBrowser := pr.browser(t, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")
	defer closeBrowser()
	pr.play(t, bctx, player, "https://"+cdnHost+"/v/"+name, 2)
	if err := ff.Wait(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.String())
	}
	s := waitSession(t, pr.store, "", time.Minute)
	if errs := playerErrors(t, bctx); len(errs) > 0 {
		t.Errorf("%s reported errors:\n  %s", player, strings.Join(errs, "\n  "))
	}
	return pr, s
}
