package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/playlist"
)

// liveSpec is a live broadcast made by ffmpeg -re on loopback.
type liveSpec struct {
	seconds    int
	event      bool // an EVENT playlist (it only grows); else a 5-segment sliding window
	renditions bool // a master playlist with the audio as a separate rendition
}

// liveSource is a running ffmpeg -re broadcast served over HTTP.
type liveSource struct {
	*broadcaster
	url   string // the playlist to record (master or media)
	media string // the (video) media playlist, to watch the window
}

func startLive(t *testing.T, spec liveSpec) *liveSource {
	t.Helper()
	src := &liveSource{broadcaster: newBroadcaster(t)}
	dir := src.dir
	d := fmt.Sprint(spec.seconds)
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc=size=160x90:rate=25:duration=" + d,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=" + d,
		"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
		"-sc_threshold", "0", "-c:a", "aac", "-f", "hls", "-hls_time", "1"}
	if spec.event {
		args = append(args, "-hls_playlist_type", "event")
	} else {
		args = append(args, "-hls_list_size", "5", "-hls_flags", "delete_segments")
	}
	if spec.renditions {
		args = append(args, "-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,agroup:aud a:0,agroup:aud,default:yes",
			"-hls_segment_filename", filepath.Join(dir, "s%v_%03d.ts"), filepath.Join(dir, "live%v.m3u8"))
		src.url, src.media = src.base+"/master.m3u8", src.base+"/live0.m3u8"
	} else {
		args = append(args, "-hls_segment_filename", filepath.Join(dir, "s%03d.ts"), filepath.Join(dir, "live.m3u8"))
		src.url, src.media = src.base+"/live.m3u8", src.base+"/live.m3u8"
	}
	src.run(t, args...)
	return src
}

// window reads the media playlist as the origin has it now.
func (src *liveSource) window() *playlist.Media {
	data, err := os.ReadFile(filepath.Join(src.dir, filepath.Base(src.media)))
	if err != nil {
		return nil
	}
	pl, err := playlist.Parse(data, nil)
	if err != nil || pl.Media == nil {
		return nil
	}
	return pl.Media
}

// waitWindow waits until the window's first media sequence reaches seq and it lists at least n segments.
func (src *liveSource) waitWindow(t *testing.T, seq int64, n int) *playlist.Media {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if md := src.window(); md != nil && md.MediaSequence >= seq && len(md.Segments) >= n {
			return md
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the live window never reached sequence %d with %d segments", seq, n)
	return nil
}

// broadcast waits for ffmpeg to finish and returns the whole broadcast's length, from the segment durations.
func (src *liveSource) broadcast(t *testing.T, fromSeq int64) float64 {
	t.Helper()
	if err := <-src.done; err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	md := src.window()
	if md == nil || !md.EndList {
		t.Fatal("the broadcast ended without EXT-X-ENDLIST")
	}
	// Segments that left the window were one second each (-hls_time 1, a key frame every 25 frames).
	total := float64(md.MediaSequence - fromSeq)
	for _, s := range md.Segments {
		total += s.Duration
	}
	return total
}

func liveSession(t *testing.T, url string) (*Session, *Store) {
	t.Helper()
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{Source: "get", Playlist: url, Target: filepath.Join(t.TempDir(), "live.mp4")}
	if err := st.Create(s); err != nil {
		t.Fatal(err)
	}
	return s, st
}

// checkLive asserts the output has video and audio and lasts want seconds, within a segment.
func checkLive(t *testing.T, res *Result, want float64) {
	t.Helper()
	v, a, err := testmedia.CountPackets(context.Background(), res.Output)
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	if v == 0 || a == 0 {
		t.Errorf("output has %d video and %d audio packets: want both", v, a)
	}
	d, err := testmedia.Probe(context.Background(), res.Output)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(d-want) > 1.1 {
		t.Errorf("output lasts %.2fs, want %.2fs (the broadcast from where the recording started)", d, want)
	}
	if left := partials(t, filepath.Dir(res.Output)); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	t.Logf("output %.2fs (want %.2fs), %d video and %d audio packets", d, want, v, a)
}

func partials(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
		if strings.HasSuffix(p, ".partial") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestLive records live broadcasts started mid-way: all that is still in the
// window and everything after it, until EXT-X-ENDLIST, video and audio.
func TestLive(t *testing.T) {
	tests := []struct {
		name string
		spec liveSpec
		seq  int64 // start once the window's first segment is this one
	}{
		{name: "sliding window", spec: liveSpec{seconds: 9}, seq: 1},
		{name: "event", spec: liveSpec{seconds: 8, event: true}, seq: 0},
		{name: "separate audio rendition", spec: liveSpec{seconds: 9, renditions: true}, seq: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := startLive(t, tt.spec)
			md := src.waitWindow(t, tt.seq, 3)
			s, _ := liveSession(t, src.url)
			res, err := Run(context.Background(), s, Options{Logger: testLogger(t)}, MergeOptions{})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			want := src.broadcast(t, md.MediaSequence)
			if !res.Live || s.State != StateDone || res.Stopped {
				t.Errorf("Run: live %v state %q stopped %v, want live, done, not stopped", res.Live, s.State, res.Stopped)
			}
			if len(s.Main().Gaps) > 0 {
				t.Errorf("gaps %v, want none", s.Main().Gaps)
			}
			if tt.spec.renditions && len(s.Tracks) != 2 {
				t.Errorf("%d tracks, want video and audio", len(s.Tracks))
			}
			checkLive(t, res, want)
			sum := s.Summary()
			if !sum.Live || math.Abs(sum.RecordedSeconds-want) > 1.1 {
				t.Errorf("Summary: live %v recorded_seconds %.2f, want true and %.2f", sum.Live, sum.RecordedSeconds, want)
			}
		})
	}
}

// TestLiveReloadFailures: the playlist answers 500 for two seconds mid-way;
// the follower retries, and nothing still in the window is lost.
func TestLiveReloadFailures(t *testing.T) {
	t.Parallel()
	src := startLive(t, liveSpec{seconds: 9})
	md := src.waitWindow(t, 1, 3)
	var mu sync.Mutex
	var failUntil time.Time
	failed := 0
	src.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, ".m3u8") {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if failUntil.IsZero() {
			failUntil = time.Now().Add(500 * time.Millisecond).Add(2 * time.Second) // after the first reloads
		}
		if now := time.Now(); now.After(failUntil.Add(-2*time.Second)) && now.Before(failUntil) {
			failed++
			http.Error(w, "busy", http.StatusInternalServerError)
			return true
		}
		return false
	})
	s, _ := liveSession(t, src.url)
	res, err := Run(context.Background(), s, Options{Logger: testLogger(t)}, MergeOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := src.broadcast(t, md.MediaSequence)
	mu.Lock()
	if failed < 2 {
		t.Errorf("only %d reloads failed; the test did not test", failed)
	}
	mu.Unlock()
	if len(s.Main().Gaps) > 0 {
		t.Errorf("gaps %v after reload failures shorter than the window, want none", s.Main().Gaps)
	}
	checkLive(t, res, want)
}

// TestLiveStall: reloads fail for longer than the window lasts; the segments
// that left it unseen are gaps, and the recording goes on to the end.
func TestLiveStall(t *testing.T) {
	t.Parallel()
	src := startLive(t, liveSpec{seconds: 14})
	src.waitWindow(t, 0, 2)
	var mu sync.Mutex
	var start time.Time
	src.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if start.IsZero() {
			start = time.Now()
		}
		if since := time.Since(start); strings.HasSuffix(r.URL.Path, ".m3u8") && since > time.Second && since < 8*time.Second {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	s, _ := liveSession(t, src.url)
	res, err := Run(context.Background(), s, Options{Logger: testLogger(t)}, MergeOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	src.broadcast(t, 0)
	if len(s.Main().Gaps) == 0 || len(res.Holes) == 0 {
		t.Errorf("gaps %v holes %v after a stall longer than the window, want some", s.Main().Gaps, res.Holes)
	}
	if s.State != StateDone {
		t.Errorf("state %q, want done", s.State)
	}
	t.Logf("gaps: %v", s.Main().Gaps)
}

// TestLiveTokenExpires: mid-recording the origin starts refusing the old
// token; the recording pauses, and resumes with the new header to the end.
func TestLiveTokenExpires(t *testing.T) {
	t.Parallel()
	src := startLive(t, liveSpec{seconds: 10})
	md := src.waitWindow(t, 1, 3)
	var mu sync.Mutex
	var expiry time.Time
	src.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if expiry.IsZero() {
			expiry = time.Now().Add(2 * time.Second)
		}
		want := "Bearer old"
		if time.Now().After(expiry) {
			want = "Bearer new"
		}
		if r.Header.Get("Authorization") != want {
			http.Error(w, "token expired", http.StatusForbidden)
			return true
		}
		return false
	})
	s, st := liveSession(t, src.url)
	s.Headers = map[string]string{"Authorization": "Bearer old"}
	_, err := Run(context.Background(), s, Options{Logger: testLogger(t)}, MergeOptions{})
	if !errors.Is(err, ErrExpired) || s.State != StatePaused {
		t.Fatalf("Run: %v, state %q: want ErrExpired and paused", err, s.State)
	}
	// As replay does: load the session again and give it the new header.
	s, err = st.Load(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	s.Headers["Authorization"] = "Bearer new"
	res, err := Run(context.Background(), s, Options{Logger: testLogger(t)}, MergeOptions{})
	if err != nil {
		t.Fatalf("Run after new headers: %v", err)
	}
	want := src.broadcast(t, md.MediaSequence)
	if len(s.Main().Gaps) > 0 {
		t.Errorf("gaps %v, want none (the pause was shorter than the window)", s.Main().Gaps)
	}
	checkLive(t, res, want)
}

// TestLiveStop: the caller's context ends mid-broadcast (Ctrl-C); the output
// is finalised with what was recorded.
func TestLiveStop(t *testing.T) {
	t.Parallel()
	src := startLive(t, liveSpec{seconds: 12})
	src.waitWindow(t, 0, 2)
	s, _ := liveSession(t, src.url)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	res, err := Run(ctx, s, Options{Logger: testLogger(t)}, MergeOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !res.Stopped || s.State != StateDone {
		t.Errorf("stopped %v state %q, want stopped and done", res.Stopped, s.State)
	}
	d, err := testmedia.Probe(context.Background(), res.Output)
	if err != nil || d < 3 {
		t.Errorf("output lasts %.2fs (%v), want a few seconds", d, err)
	}
	if left := partials(t, filepath.Dir(res.Output)); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
