package recorder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/dash"
	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// dashLive is a live DASH broadcast made by ffmpeg -re (1-second segments, a
// 5-segment window) into a directory served on loopback.
type dashLive struct {
	*broadcaster
	url string // the manifest
}

// startDASHLive starts the broadcast: timeline writes a SegmentTimeline
// (-use_timeline 1), else a $Number$ template with @duration placed on the
// wall clock (-use_timeline 0).
func startDASHLive(t *testing.T, seconds int, timeline bool) *dashLive {
	t.Helper()
	src := &dashLive{broadcaster: newBroadcaster(t)}
	dir := src.dir
	src.url = src.base + "/out.mpd"
	d := fmt.Sprint(seconds)
	useTimeline := "0"
	if timeline {
		useTimeline = "1"
	}
	src.run(t, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc=size=160x90:rate=25:duration="+d,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration="+d,
		"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
		"-sc_threshold", "0", "-c:a", "aac",
		"-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", useTimeline,
		"-window_size", "5", "-extra_window_size", "0", "-remove_at_exit", "0", filepath.Join(dir, "out.mpd"))
	return src
}

// manifest reads the manifest as the origin has it now.
func (src *dashLive) manifest() *dash.MPD {
	data, err := os.ReadFile(filepath.Join(src.dir, "out.mpd"))
	if err != nil {
		return nil
	}
	m, err := dash.ParseDynamic(data, &url.URL{Scheme: "http", Host: "origin", Path: "/out.mpd"})
	if err != nil {
		return nil
	}
	return m
}

// waitWindow waits until the window has slid past its first segment, so a
// recording started now starts mid-broadcast, and returns the $Number$ of
// the first video segment the origin still lists.
func (src *dashLive) waitWindow(t *testing.T) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := src.manifest(); m != nil && m.Dynamic {
			p, _, err := m.PlanLive(dash.Selection{}, time.Now(), nil)
			if err == nil && len(p.Tracks[0].Segments) >= 4 && p.Tracks[0].Segments[0].Sequence >= 2 {
				return uint64(p.Tracks[0].Segments[0].Sequence)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the live window never slid")
	return 0
}

// broadcast waits for ffmpeg to finish and returns how long the broadcast
// lasts from segment number from on (1-second segments), by the static
// manifest it ends with.
func (src *dashLive) broadcast(t *testing.T, from uint64) float64 {
	t.Helper()
	if err := <-src.done; err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	m := src.manifest()
	if m == nil || m.Dynamic || m.Duration == 0 {
		t.Fatal("the broadcast did not end with a static manifest that gives its duration")
	}
	return m.Duration - float64(from-1)
}

// checkFrames asserts that the output holds every video frame of the
// broadcast from where the recording started (25 fps): a segment lost at
// either end, or in the middle, is 25 frames short.
func checkFrames(t *testing.T, res *Result, want float64) {
	t.Helper()
	v, _, err := testmedia.CountPackets(context.Background(), res.Output)
	if err != nil {
		t.Fatal(err)
	}
	if n := int(math.Round(want * 25)); v != n {
		t.Errorf("output has %d video frames, want %d (%.0f s at 25 fps)", v, n, want)
	}
}

// TestLiveDASH records live DASH broadcasts started mid-way, as ffmpeg's
// dash muxer publishes them: all that is still in the window and everything
// after it, until the manifest turns static; video and audio, clean decode.
func TestLiveDASH(t *testing.T) {
	for _, tt := range []struct {
		name     string
		timeline bool
	}{
		{name: "SegmentTimeline", timeline: true},
		{name: "$Number$ on the wall clock", timeline: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := startDASHLive(t, 9, tt.timeline)
			first := src.waitWindow(t)
			s, _ := liveSession(t, src.url)
			res, err := Run(context.Background(), s, Options{Logger: testLogger(t)}, MergeOptions{})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			want := src.broadcast(t, first)
			if !res.Live || s.State != StateDone || res.Stopped || res.Why != endStatic {
				t.Errorf("Run: live %v state %q stopped %v why %q, want live, done, not stopped, %q",
					res.Live, s.State, res.Stopped, res.Why, endStatic)
			}
			if len(s.Tracks) != 2 {
				t.Errorf("tracks %v, want video and audio", trackIDs(s))
			}
			for _, tr := range s.Tracks {
				if len(tr.Gaps) > 0 {
					t.Errorf("%s track: gaps %v, want none", tr.ID, tr.Gaps)
				}
			}
			checkLive(t, res, want)
			checkFrames(t, res, want)
			testmedia.CheckCleanDecode(t, res.Output)
			if sum := s.Summary(); !sum.Live || math.Abs(sum.RecordedSeconds-want) > 1.1 {
				t.Errorf("Summary: live %v recorded_seconds %.2f, want true and %.2f", sum.Live, sum.RecordedSeconds, want)
			}
		})
	}
}

// TestLiveDASHReloadFailures: the manifest answers 500 for two seconds
// mid-way, less than the window lasts; the followers retry, and nothing
// still in the window is lost.
func TestLiveDASHReloadFailures(t *testing.T) {
	t.Parallel()
	src := startDASHLive(t, 9, true)
	first := src.waitWindow(t)
	var mu sync.Mutex
	var failFrom time.Time
	failed := 0
	src.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, ".mpd") {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if failFrom.IsZero() {
			failFrom = time.Now().Add(500 * time.Millisecond) // after the first reloads
		}
		if since := time.Since(failFrom); since >= 0 && since < 2*time.Second {
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
	want := src.broadcast(t, first)
	mu.Lock()
	if failed < 2 {
		t.Errorf("only %d reloads failed; the test did not test", failed)
	}
	mu.Unlock()
	for _, tr := range s.Tracks {
		if len(tr.Gaps) > 0 {
			t.Errorf("%s track: gaps %v after reload failures shorter than the window, want none", tr.ID, tr.Gaps)
		}
	}
	checkLive(t, res, want)
	checkFrames(t, res, want)
	testmedia.CheckCleanDecode(t, res.Output)
}

// In watch, a live manifest the player fetches makes one recording that
// follows the broadcast until its manifest turns static.
func TestCaptureRecordsALiveManifest(t *testing.T) {
	src := startDASHLive(t, 7, true)
	from := src.waitWindow(t)
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: Options{Logger: testLogger(t)}})
	data, err := os.ReadFile(filepath.Join(src.dir, "out.mpd"))
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"Referer": "http://127.0.0.1/watch"}
	seePage(c, h["Referer"], "127.0.0.1:80")
	req := httptest.NewRequest(http.MethodGet, src.url, nil)
	req.Header.Set("Referer", h["Referer"])
	tap := c.Observe(&proxy.Exchange{Req: req, Status: http.StatusOK, ContentLength: int64(len(data)),
		RespHeader: http.Header{"Content-Type": {"application/dash+xml"}}, Received: time.Now()})
	if tap == nil {
		t.Fatal("the live manifest was not observed")
	}
	tap.Write(data)
	tap.Close(nil)
	want := src.broadcast(t, from)
	s := waitState(t, st, onlySession(t, st).ID, StateDone)
	c.Wait()
	sum := s.Summary()
	if !sum.Live || math.Abs(sum.RecordedSeconds-want) > 1.1 {
		t.Errorf("recording: live %v, %.2f s recorded, want the broadcast from the window on (%.2f s)", sum.Live, sum.RecordedSeconds, want)
	}
	if len(s.Tracks) != 2 {
		t.Errorf("%d tracks, want video and audio", len(s.Tracks))
	}
}

// In watch, the live DASH segments the page plays are the recording's, as a
// live playlist's are: each segment of the recorded representations that the
// browser fetches through the proxy is tee'd and used by the follower,
// whether the follower listed it first or the player did (it plays right
// after its first manifest; a $Number$ template on the wall clock names a
// segment before the follower's reload lists it), so the origin serves each
// media segment once in all. The segments the page did not play (the window
// before its live edge, one it paused over) are fetched by the follower, and
// the output holds every frame. The origin serves each init segment once
// too: the follower uses the player's copy, or the player reads the
// follower's.
func TestCaptureTeesALiveManifest(t *testing.T) {
	for _, tt := range []struct {
		name     string
		timeline bool
		reload   time.Duration // the player's
	}{
		// A lazy player: the follower lists most segments before it asks.
		{name: "SegmentTimeline, the follower first", timeline: true, reload: 1500 * time.Millisecond},
		{name: "$Number$ on the wall clock, the player first", timeline: false, reload: 100 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			teeALiveManifest(t, tt.timeline, tt.reload)
		})
	}
}

func teeALiveManifest(t *testing.T, timeline bool, reload time.Duration) {
	src := startDASHLive(t, 11, timeline)
	src.waitWindow(t)
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: Options{Logger: testLogger(t)}})
	h := map[string]string{"Referer": "http://127.0.0.1/watch"}
	seePage(c, h["Referer"], "127.0.0.1:80")
	// get is the browser's request through the proxy: answered by the
	// capture, or forwarded with its body shown to the capture's tap.
	get := func(u string) []byte {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, u, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		if resp := c.Respond(req); resp != nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return b
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		hdr := resp.Header.Clone()
		if strings.HasSuffix(u, ".m4s") {
			hdr.Set("Content-Type", "video/iso.segment")
		} else {
			hdr.Set("Content-Type", "application/dash+xml")
		}
		ex := &proxy.Exchange{Req: req, Status: resp.StatusCode, RespHeader: hdr, ContentLength: resp.ContentLength,
			Received: time.Now()}
		var b bytes.Buffer
		var w io.Writer = &b
		tap := c.Observe(ex)
		if tap != nil {
			w = io.MultiWriter(&b, tapWriter{tap})
		}
		_, err = io.Copy(w, resp.Body)
		if tap != nil {
			tap.Close(err)
		}
		return b.Bytes()
	}
	base, _ := url.Parse(src.url)
	// The player: reloads the manifest often and plays each track from its
	// init segment and three segments behind the live edge on, every new
	// segment but one it paused over.
	next := map[string]int64{}
	pause := map[string]int64{}
	var played, early []string
	for dynamic := true; dynamic; time.Sleep(reload) {
		m, err := dash.ParseDynamic(get(src.url), base)
		if err != nil {
			t.Fatalf("the broadcast's manifest: %v", err)
		}
		dynamic = m.Dynamic
		p, _, err := m.PlanLive(dash.Selection{}, time.Now(), nil)
		if err != nil {
			continue // not one segment yet
		}
		for _, tr := range p.Tracks {
			segs := tr.Segments
			if _, ok := next[tr.ID]; !ok && len(segs) > 0 {
				get(tr.Inits[0].URL)
				next[tr.ID] = segs[max(0, len(segs)-3)].Sequence
				pause[tr.ID] = next[tr.ID] + 3
			}
			for _, sg := range segs {
				if sg.Sequence < next[tr.ID] {
					continue
				}
				next[tr.ID] = sg.Sequence + 1
				if sg.Sequence == pause[tr.ID] {
					continue
				}
				c.mu.Lock()
				_, listed := c.bySegURL.find(sg.URL)
				c.mu.Unlock()
				name := path.Base(sg.URL)
				if !listed {
					early = append(early, name)
				}
				get(sg.URL)
				played = append(played, name)
			}
		}
	}
	s := waitState(t, st, onlySession(t, st).ID, StateDone)
	c.Wait()
	if err := <-src.done; err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	t.Logf("played %v; %v before the follower listed them", played, early)
	if len(played) < 8 || len(early) == 0 {
		t.Errorf("the player played %d segments, %d before the follower listed them: want 8 or more, and some early",
			len(played), len(early))
	}
	if reload > time.Second && len(early) == len(played) {
		t.Errorf("the lazy player played every segment before the follower listed it: the listed copies are not exercised")
	}
	src.mu.Lock()
	served := maps.Clone(src.served)
	src.mu.Unlock()
	video, inits := 0, 0
	for p, n := range served {
		switch {
		case strings.HasPrefix(p, "/init-"):
			// The player fetches each track's init before its first segment; the
			// follower uses that copy, or the player reads the follower's.
			if n != 1 {
				t.Errorf("init segment %s: served %d times by the origin, want once", p, n)
			}
			inits++
		case strings.HasSuffix(p, ".m4s"):
			if n != 1 {
				t.Errorf("segment %s: served %d times by the origin, want once", p, n)
			}
			if strings.HasPrefix(p, "/chunk-stream0-") {
				video++
			}
		}
	}
	if inits != 2 {
		t.Errorf("%d init segments served, want 2 (video and audio): %v", inits, served)
	}
	v, a, err := testmedia.CountPackets(context.Background(), s.Output)
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	if v != 25*video || a == 0 {
		t.Errorf("output %s: %d video and %d audio packets, want every frame of the %d video segments served (%d) and audio",
			s.Output, v, a, video, 25*video)
	}
	t.Logf("output: %d video packets from %d segments, %d audio packets", v, video, a)
	testmedia.CheckCleanDecode(t, s.Output)
}
