package recorder

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/playlist"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// In watch, a live playlist the player plays is followed until the broadcast
// ends, though the page stops asking: the player's reloads are the broadcast
// moving on (not a fresh token), and its segments never start a learned
// recording of their own.
func TestCaptureFollowsALivePlaylist(t *testing.T) {
	src := startLive(t, liveSpec{seconds: 7})
	md := src.waitWindow(t, 0, 2)
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: Options{Logger: testLogger(t)}})
	h := map[string]string{"Referer": "http://127.0.0.1/watch"}
	play := func() {
		t.Helper()
		resp, err := http.Get(src.media)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		browse(t, c, src.media, body, h)
	}
	play()
	// The player reloads the playlist and fetches a segment, as hls.js does.
	src.waitWindow(t, 0, 3)
	play()
	if w := src.window(); w != nil && len(w.Segments) > 0 {
		u := src.media[:len(src.media)-len("live.m3u8")] + w.Segments[len(w.Segments)-1].URI
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		browse(t, c, u, body, h) // the browser's copy is the recording's: the real bytes
	}
	want := src.broadcast(t, md.MediaSequence)
	s := waitState(t, st, onlySession(t, st).ID, StateDone)
	c.Wait()
	sum := s.Summary()
	if !sum.Live || sum.RecordedSeconds < want-1.1 {
		t.Errorf("recording: live %v, %.2f s recorded, want the whole broadcast (%.2f s)", sum.Live, sum.RecordedSeconds, want)
	}
	if list, _ := st.List(); len(list) != 1 {
		t.Errorf("%d recordings, want one", len(list))
	}
}

// The dashboard's Stop (the pause action) on a live recording ends it with a
// finalised file of what was recorded so far; the broadcast goes on without it.
func TestCaptureStopsALiveRecording(t *testing.T) {
	src := startLive(t, liveSpec{seconds: 30})
	src.waitWindow(t, 0, 2)
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: Options{Logger: testLogger(t)}})
	resp, err := http.Get(src.media)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	browse(t, c, src.media, body, map[string]string{"Referer": "http://127.0.0.1/watch"})
	id := onlySession(t, st).ID
	for deadline := time.Now().Add(20 * time.Second); ; {
		sts := c.Streams()
		if len(sts) == 1 && sts[0].Progress.Recorded.Load() >= 3000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the live recording never recorded 3 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Act(id, ActionPause); err != nil {
		t.Fatal(err)
	}
	s := waitState(t, st, id, StateDone)
	c.Wait()
	d, err := testmedia.Probe(context.Background(), s.Output)
	if err != nil || d < 3 || d > 20 {
		t.Errorf("stopped recording %s: %.2f s (%v), want the 3 s or more recorded before Stop, well short of the 30 s broadcast", s.Output, d, err)
	}
	if sts := c.Streams(); len(sts) != 1 || !strings.HasPrefix(sts[0].Reason, "stopped by you") {
		t.Errorf("reason %q, want it to say the person stopped it", sts[0].Reason)
	}
}

// In watch, the live segments the page plays are the recording's: each
// segment the browser fetches through the proxy is tee'd and used by the
// follower, whether the follower listed it first or the player did (its
// playlist reload came first), so the origin serves it once in all. The
// segments the page did not play (it started late, it paused) are fetched by
// the follower, and the output holds every segment.
func TestCaptureTeesALiveBroadcast(t *testing.T) {
	src := startLive(t, liveSpec{seconds: 7, event: true}) // an event playlist: every segment stays, to count its packets
	src.waitWindow(t, 0, 1)
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: Options{Logger: testLogger(t)}})
	h := map[string]string{"Referer": "http://127.0.0.1/watch"}
	skip := map[int64]bool{0: true, 3: true} // started late; paused over the fourth
	var played, early []int64
	get := func(u string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, u, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		if resp := c.Respond(req); resp != nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		hdr := resp.Header.Clone()
		hdr.Set("Content-Type", "video/mp2t")
		ex := &proxy.Exchange{Req: req, Status: resp.StatusCode, RespHeader: hdr, ContentLength: resp.ContentLength,
			Received: time.Now()}
		// The tee sees the body as the browser receives it.
		var w io.Writer = io.Discard
		tap := c.Observe(ex)
		if tap != nil {
			w = tapWriter{tap}
		}
		_, err = io.Copy(w, resp.Body)
		if tap != nil {
			tap.Close(err)
		}
	}
	// The player: reloads the playlist often, plays each new segment but those skipped.
	var md *playlist.Media
	for next := int64(0); md == nil || !md.EndList; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(src.media)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pl, err := playlist.Parse(body, nil)
		if err != nil || pl.Media == nil {
			t.Fatalf("the broadcast's playlist: %v", err)
		}
		md = pl.Media
		browse(t, c, src.media, body, h)
		for ; next < md.MediaSequence+int64(len(md.Segments)); next++ {
			if skip[next] {
				continue
			}
			u := src.base + "/" + md.Segments[next-md.MediaSequence].URI
			c.mu.Lock()
			_, listed := c.bySegURL.find(u)
			c.mu.Unlock()
			if !listed {
				early = append(early, next)
			}
			get(u)
			played = append(played, next)
		}
	}
	s := waitState(t, st, onlySession(t, st).ID, StateDone)
	c.Wait()
	if err := <-src.done; err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	t.Logf("played %v; %v before the follower listed them; skipped %v", played, early, skip)
	if len(early) == 0 {
		t.Error("the player fetched no segment before the follower listed it: the copy kept aside is not exercised")
	}
	var wantV, wantA int
	for n, sg := range md.Segments {
		seq := md.MediaSequence + int64(n)
		if got := src.servedCount("/" + sg.URI); got != 1 {
			t.Errorf("segment %d (%s, played %v): served %d times by the origin, want once", seq, sg.URI, !skip[seq], got)
		}
		v, a, err := testmedia.CountPackets(context.Background(), filepath.Join(src.dir, sg.URI))
		if err != nil {
			t.Fatal(err)
		}
		wantV, wantA = wantV+v, wantA+a
	}
	v, a, err := testmedia.CountPackets(context.Background(), s.Output)
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	if v != wantV || a != wantA {
		t.Errorf("output %s: %d video and %d audio packets, want the broadcast's %d and %d", s.Output, v, a, wantV, wantA)
	}
	t.Logf("output: %d video and %d audio packets (the broadcast's %d and %d)", v, a, wantV, wantA)
}

// tapWriter writes to a proxy.BodyTap as the proxy does: a failed tee stops
// the copy, never the body.
type tapWriter struct{ tap proxy.BodyTap }

func (w tapWriter) Write(p []byte) (int, error) {
	w.tap.Write(p)
	return len(p), nil
}
