package recorder

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
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
		seg := w.Segments[len(w.Segments)-1].URI
		browse(t, c, src.media[:len(src.media)-len("live.m3u8")]+seg, []byte{0x47}, h)
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
