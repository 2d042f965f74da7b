package recorder

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
)

// TestCaptureFollowsThePlayerUp plays, through the capture, ffmpeg's three-variant ladder (240p, 480p,
// 720p, audio muxed in each) the way players do: the master, then the media playlist of the variant the
// bandwidth estimate picks, a segment of it, and later another variant's playlist and a segment of it. The
// one recording has the best variant the player fetched before the recording was made, whole (every
// packet the origin serves of it), with its audio: a switch up replaces the video track, even while its
// run downloads the first variant (the run stops gently and goes on with the new one), and removes the old
// variant's files; a switch down is ignored; a switch up after the recording was made records nothing
// again. The variants not recorded never become recordings of their own.
func TestCaptureFollowsThePlayerUp(t *testing.T) {
	root := t.TempDir()
	testmedia.LadderHLS(t, root)
	tests := []struct {
		name    string
		fetched []string // after the master; "wait:STATE" waits until the recording is in STATE
		height  int      // of the recording
		log     string   // a line the capture logs
	}{
		{name: "up while the run downloads, then down",
			fetched: []string{"v0.m3u8", "v0_000.ts", "wait:" + StateDownloading, "v2.m3u8", "v2_003.ts", "v1.m3u8", "v1_004.ts"},
			height:  720, log: "the player switched down"},
		{name: "up before the run starts",
			fetched: []string{"v0.m3u8", "v1.m3u8", "v1_000.ts"}, height: 480},
		{name: "up twice while the run downloads",
			fetched: []string{"v0.m3u8", "wait:" + StateDownloading, "v1.m3u8", "v1_001.ts", "v2.m3u8", "v2_002.ts"},
			height:  720},
		{name: "best first, then down",
			fetched: []string{"v2.m3u8", "v2_000.ts", "v0.m3u8", "v0_001.ts"}, height: 720, log: "the player switched down"},
		{name: "up after the recording was made",
			fetched: []string{"v0.m3u8", "v0_000.ts", "wait:" + StateDone, "v2.m3u8", "v2_003.ts"},
			// The session is on disk as done a moment before its run has returned: the switch is dropped
			// then, or ignored.
			height: 240, log: "(after the recording was made|the recording was made before)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testorigin.Start(t, testorigin.Options{Dir: root, Prefix: "/hls/", TTFB: 400 * time.Millisecond})
			st, err := NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var logs lockedBuffer
			ro := fastOpts()
			ro.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: ro})
			t.Cleanup(func() { cancel(); c.Wait() })
			h := map[string]string{"Referer": testReferer}
			for _, name := range append([]string{"master.m3u8"}, tt.fetched...) {
				if state, ok := strings.CutPrefix(name, "wait:"); ok {
					waitState(t, st, onlySession(t, st).ID, state)
					continue
				}
				browse(t, c, o.URL+name, []byte(readText(t, filepath.Join(root, name))), h)
			}
			s := waitState(t, st, onlySession(t, st).ID, StateDone)
			if tt.log != "" && !regexp.MustCompile(tt.log).MatchString(logs.String()) {
				t.Errorf("the capture did not log %q:\n%s", tt.log, logs.String())
			}
			// The recording's video track and the files in its directory: the recorded variant's alone.
			var rung testmedia.Rung
			for _, r := range testmedia.Ladder {
				if r.Height == tt.height {
					rung = r
				}
			}
			if got := s.Main().Source; got != o.URL+rung.Playlist {
				t.Errorf("video track from %s, want %s", got, o.URL+rung.Playlist)
			}
			if n := len(s.Tracks); n != 1 {
				t.Errorf("%d tracks, want the video's alone (audio muxed)", n)
			}
			entries, _ := os.ReadDir(s.Dir())
			for _, e := range entries {
				if e.IsDir() && e.Name() != "tee" && filepath.Join(s.Dir(), e.Name()) != s.Main().TrackDir() {
					segs, _ := filepath.Glob(filepath.Join(s.Dir(), e.Name(), "segments", "*"))
					t.Errorf("the session keeps %s (%d segment files), not the recorded variant's", e.Name(), len(segs))
				}
			}
			segs, _ := filepath.Glob(filepath.Join(s.Main().SegmentDir(), "*.ts"))
			if len(segs) != testmedia.LadderSeconds {
				t.Errorf("%d segment files of the recorded variant, want %d", len(segs), testmedia.LadderSeconds)
			}
			c.Wait()

			ss, err := testmedia.StreamPackets(context.Background(), s.Output)
			if err != nil {
				t.Fatal(err)
			}
			v, a := ss.OfType("video"), ss.OfType("audio")
			if len(v) != 1 || len(a) != 1 {
				t.Fatalf("output streams %+v, want one video and one audio", ss)
			}
			want, err := testmedia.StreamPackets(context.Background(), filepath.Join(root, rung.Playlist))
			if err != nil {
				t.Fatal(err)
			}
			wv := want.OfType("video")[0]
			if v[0].Width != rung.Width || v[0].Height != rung.Height || v[0].Packets != wv.Packets {
				t.Errorf("output video %dx%d, %d packets; want %dx%d, the %d packets the origin serves",
					v[0].Width, v[0].Height, v[0].Packets, rung.Width, rung.Height, wv.Packets)
			}
			if wa := want.OfType("audio")[0]; a[0].Packets != wa.Packets {
				t.Errorf("output audio %d packets, want %d", a[0].Packets, wa.Packets)
			}
			// The recorded variant's segments: each from the origin once; one the player fetched is kept from
			// its copy, or, when the backfill got there first, the player is answered from the backfill's: once
			// at most either way.
			for k := range testmedia.LadderSeconds {
				name := fmt.Sprintf("%s_%03d.ts", strings.TrimSuffix(rung.Playlist, ".m3u8"), k)
				got := o.Completed(name)
				if fetched := slices.Contains(tt.fetched, name); fetched && got > 1 || !fetched && got != 1 {
					t.Errorf("the origin served %s %d times, want once (at most, when the player fetched it)", name, got)
				}
			}
		})
	}
}

// TestCaptureFollowsTheDASHPlayerUp: a DASH player starts on the small representation (160x90, stream1),
// and while the recording downloads it switches up to the big one (320x180, stream0), then fetches a
// segment of the small one again. The one recording has the big one's video, whole, with the audio; the
// small one's files are gone, and the big one's segment the player fetched was kept from its copy.
func TestCaptureFollowsTheDASHPlayerUp(t *testing.T) {
	dir := t.TempDir()
	muxDASHTwoVideos(t, dir)
	o := testorigin.Start(t, testorigin.Options{Dir: dir, Prefix: "/dash/abc/", RequireReferer: testReferer,
		RequireCookie: testCookie, TTFB: 400 * time.Millisecond})
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuffer
	ro := fastOpts()
	ro.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: ro})
	t.Cleanup(func() { cancel(); c.Wait() })
	h := map[string]string{"Referer": testReferer, "Cookie": testCookie}
	for _, name := range []string{"out.mpd", "init-stream1.m4s", "init-stream2.m4s", "chunk-stream1-00001.m4s", "wait:",
		"init-stream0.m4s", "chunk-stream0-00002.m4s", "chunk-stream1-00003.m4s"} {
		if name == "wait:" {
			waitState(t, st, onlySession(t, st).ID, StateDownloading)
			continue
		}
		browse(t, c, o.URL+name, readT(t, filepath.Join(dir, name)), h)
	}
	s := waitState(t, st, onlySession(t, st).ID, StateDone)
	if !strings.Contains(logs.String(), "the player switched up: the recording follows") {
		t.Errorf("the capture did not follow the player up:\n%s", logs.String())
	}
	var video *Track
	for _, tr := range s.Tracks {
		if tr.Kind == "video" {
			video = tr
		}
	}
	if video == nil || len(s.Tracks) != 2 || !strings.Contains(video.Segments[0].URL, "chunk-stream0-") {
		t.Fatalf("tracks %+v, want the audio and the 320x180 representation (stream0) the player switched up to", s.Tracks)
	}
	entries, _ := os.ReadDir(s.Dir())
	for _, e := range entries {
		p := filepath.Join(s.Dir(), e.Name())
		if e.IsDir() && e.Name() != "tee" && s.Track(e.Name()) == nil && p != video.TrackDir() {
			t.Errorf("the session keeps %s, not a track's", e.Name())
		}
	}
	c.Wait()
	ss, err := testmedia.StreamPackets(context.Background(), s.Output)
	if err != nil {
		t.Fatal(err)
	}
	v, a := ss.OfType("video"), ss.OfType("audio")
	if len(v) != 1 || len(a) != 1 || v[0].Width != 320 || v[0].Height != 180 || v[0].Packets != 100 {
		t.Fatalf("output streams %+v, want 320x180 video of 100 packets (4 s) and audio", ss)
	}
	for k := 1; k <= 4; k++ {
		name := fmt.Sprintf("chunk-stream0-%05d.m4s", k)
		want := 1
		if k == 2 {
			want = 0 // the player's copy was kept
		}
		if got := o.Hits(name); got != want {
			t.Errorf("%s: origin asked %d times, want %d", name, got, want)
		}
	}
}
