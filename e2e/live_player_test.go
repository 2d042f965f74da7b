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
)

// hls.js plays a live broadcast through the proxy while watch records it: the
// segments it plays are the recording's, so the CDN serves each segment once
// (to the browser, or to the follower for those the page did not play), and
// the recording holds the whole broadcast.
func TestPlayerLive(t *testing.T) {
	needPlayers(t)
	dir := t.TempDir()
	// An EVENT playlist: every segment stays listed, to count what the recording must hold.
	ff := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc=size=160x90:rate=25:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=10",
		"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
		"-sc_threshold", "0", "-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "event",
		"-hls_segment_filename", filepath.Join(dir, "s%03d.ts"), filepath.Join(dir, "live.m3u8"))
	var stderr strings.Builder
	ff.Stderr = &stderr
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ff.Process.Kill() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(dir, "live.m3u8")); strings.Count(string(b), "#EXTINF") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broadcast never listed two segments")
		}
	}
	pr := newPlayerRigWith(t, dir, cdnOptions{live: true})
	bctx, closeBrowser := pr.browser(t, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")
	pr.play(t, bctx, "hlsjs", "https://"+cdnHost+"/v/live.m3u8", 2)
	if err := ff.Wait(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.String())
	}
	s := waitSession(t, pr.store, "", time.Minute)
	if errs := playerErrors(t, bctx); len(errs) > 0 {
		t.Errorf("hls.js reported errors:\n  %s", strings.Join(errs, "\n  "))
	}
	closeBrowser()
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
	ff := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc=size=160x90:rate=25:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=10",
		"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
		"-sc_threshold", "0", "-c:a", "aac",
		"-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "0",
		"-remove_at_exit", "0", filepath.Join(dir, "out.mpd"))
	var stderr strings.Builder
	ff.Stderr = &stderr
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ff.Process.Kill() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(dir, "chunk-stream0-*.m4s")); len(m) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broadcast never wrote two segments")
		}
	}
	pr := newPlayerRigWith(t, dir, cdnOptions{live: true})
	bctx, closeBrowser := pr.browser(t, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")
	pr.play(t, bctx, "dashjs", "https://"+cdnHost+"/v/out.mpd", 2)
	if err := ff.Wait(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.String())
	}
	s := waitSession(t, pr.store, "", time.Minute)
	if errs := playerErrors(t, bctx); len(errs) > 0 {
		t.Errorf("dash.js reported errors:\n  %s", strings.Join(errs, "\n  "))
	}
	closeBrowser()
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
