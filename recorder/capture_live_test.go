package recorder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// The browser's copies of a live recording's segments, in the orders a
// player and the follower meet: the follower waits for a copy on its way
// that the player asked for before the follower listed it, takes a copy that
// landed before it listed it, never takes a copy of another segment whose
// URL differs in its query alone, and does not wait long for a copy the
// browser asked for and never got.
func TestCaptureLiveBrowserCopies(t *testing.T) {
	const base = "https://cdn.example/live/"
	s := &Session{Source: "watch", Input: base + "live.m3u8"}
	tr := &Track{Track: plan.Track{ID: "video", Kind: plan.Video, Live: true, Source: base + "live.m3u8", Ext: ".ts"},
		Follower: &LiveState{}}
	ctx, c, l := followedLive(t, s, tr, func(c *Capture, _ *live) { c.liveDirs[base] = true })
	seg := func(n int) plan.Segment {
		return plan.Segment{URL: fmt.Sprintf("%sseg.ts?n=%d", base, n), Sequence: int64(n)}
	}
	body := func(n int) []byte {
		b := bytes.Repeat([]byte{0x47}, 3*188)
		b[1] = byte(n)
		return b
	}
	// ask is the browser's request: not answered by the capture, so forwarded;
	// the origin's answer then arrives through the tap once reply is called.
	ask := func(n int) (reply func()) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, seg(n).URL, nil)
		if resp := c.Respond(req); resp != nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			t.Fatalf("segment %d: answered by the capture, want it forwarded", n)
		}
		return func() {
			ex := &proxy.Exchange{Req: req, Status: http.StatusOK, RespHeader: http.Header{"Content-Type": {"video/mp2t"}},
				ContentLength: int64(len(body(n))), Received: time.Now()}
			tap := c.Observe(ex)
			if tap == nil {
				t.Fatalf("segment %d: the browser's copy is not kept", n)
			}
			if _, err := tap.Write(body(n)); err != nil {
				t.Fatal(err)
			}
			tap.Close(nil)
		}
	}
	kept := func(i int64, n int) bool {
		b, err := os.ReadFile(tr.SegmentPath(i))
		return err == nil && bytes.Equal(b, body(n))
	}
	// The browser's playlist, its first window mapped before the follower lists anything: the
	// directory is the recording's already.
	tr.Segments = []plan.Segment{seg(0)}
	c.mu.Lock()
	c.mapTrackLocked(l, tr)
	c.mu.Unlock()

	// The player asked for segment 1 before the follower listed it; its answer arrives after.
	reply := ask(1)
	c.listed(l, "video", 1, []plan.Segment{seg(1)})
	if h := c.claim(ctx, l, flightKey{"video", 1}, false); !h.Busy {
		t.Fatalf("segment 1 listed while the browser fetches it: claim %+v, want busy (wait for the browser's copy)", h)
	}
	done := make(chan Hold, 1)
	go func() { done <- c.claim(ctx, l, flightKey{"video", 1}, true) }()
	reply()
	// The waiting claim ends with the copy arrived (or, had it not started
	// waiting yet, claims a segment already on disk, which the backfill keeps).
	if h := <-done; h.Busy || !kept(1, 1) {
		t.Errorf("segment 1: claim %+v, kept %v; want the browser's copy arrived as its file", h, kept(1, 1))
	} else if h.Release != nil {
		h.Release()
	}

	// Segment 2 arrived in full before the follower listed it.
	ask(2)()
	c.listed(l, "video", 2, []plan.Segment{seg(2)})
	if !kept(2, 2) {
		t.Error("segment 2, fetched by the browser before it was listed: not its file once listed, want the browser's copy")
	}

	// The browser's seg.ts?n=4 is not seg.ts?n=3.
	ask(4)()
	c.listed(l, "video", 3, []plan.Segment{seg(3)})
	if tr.Have(3) {
		t.Error("segment 3: a file before anything fetched it, want none (the browser fetched seg.ts?n=4)")
	}
	if h := c.claim(ctx, l, flightKey{"video", 3}, false); h.Release == nil {
		t.Errorf("segment 3: claim %+v, want it the follower's to fetch", h)
	} else {
		h.Release()
	}
	c.listed(l, "video", 4, []plan.Segment{seg(4)})
	if !kept(4, 4) {
		t.Error("segment 4: not the browser's copy once listed")
	}
	// The player asked for segment 5 and gave up before any answer came (a
	// seek): the follower's wait for that copy ends after liveClaimLapse.
	defer func(d time.Duration) { liveClaimLapse = d }(liveClaimLapse)
	liveClaimLapse = 50 * time.Millisecond
	ask(5)
	c.listed(l, "video", 5, []plan.Segment{seg(5)})
	if h := c.claim(ctx, l, flightKey{"video", 5}, true); !h.Arrived || tr.Have(5) {
		t.Errorf("segment 5, asked for and never answered: claim %+v, want the wait to end with nothing there", h)
	}
	if h := c.claim(ctx, l, flightKey{"video", 5}, false); h.Release == nil {
		t.Errorf("segment 5 after the lapse: claim %+v, want it the follower's to fetch", h)
	} else {
		h.Release()
	}
	c.mu.Lock()
	left := len(c.aside.byURL)
	c.mu.Unlock()
	if left != 0 {
		t.Errorf("%d copies still kept aside, want none: each was listed", left)
	}
}

// A live DASH recording keeps aside the browser's copies of its own
// representations' segments only: ffmpeg writes every representation's
// segments into one directory, and the player's requests for another one (a
// quality switch the recording does not follow) are left alone.
func TestCaptureLiveDASHKeepsItsRepresentationsAside(t *testing.T) {
	const base = "https://cdn.example/live/"
	s := &Session{Source: "watch", Input: base + "out.mpd", Playlist: base + "out.mpd"}
	tr := &Track{Track: plan.Track{ID: "video", Kind: plan.Video, Live: true, Source: base + "out.mpd", Ext: ".m4s"},
		Follower: &LiveState{DASH: &DASHState{}}}
	_, c, l := followedLive(t, s, tr, func(c *Capture, _ *live) { c.dashDirs[base] = true })
	seg := func(rep, n int) plan.Segment {
		return plan.Segment{URL: fmt.Sprintf("%schunk-stream%d-%05d.m4s", base, rep, n), Sequence: int64(n)}
	}
	body := []byte("\x00\x00\x00\x08moof")
	// ask is the browser's request, forwarded to the origin; it reports
	// whether the capture keeps the answer's body.
	ask := func(sg plan.Segment) bool {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, sg.URL, nil)
		if resp := c.Respond(req); resp != nil {
			resp.Body.Close()
			t.Fatalf("%s: answered by the capture, want it forwarded", sg.URL)
		}
		ex := &proxy.Exchange{Req: req, Status: http.StatusOK, RespHeader: http.Header{"Content-Type": {"video/iso.segment"}},
			ContentLength: int64(len(body)), Received: time.Now()}
		tap := c.Observe(ex)
		if tap == nil {
			return false
		}
		tap.Write(body)
		tap.Close(nil)
		return true
	}
	c.listed(l, "video", 0, []plan.Segment{seg(0, 1), seg(0, 2)})
	if ask(seg(1, 3)) {
		t.Error("another representation's segment: kept, want it left alone")
	}
	if !ask(seg(0, 3)) {
		t.Fatal("the recorded representation's next segment, before the follower lists it: not kept aside")
	}
	c.listed(l, "video", 2, []plan.Segment{seg(0, 3)})
	if b, err := os.ReadFile(tr.SegmentPath(2)); err != nil || !bytes.Equal(b, body) {
		t.Errorf("segment 3 once listed: %q (%v), want the browser's copy", b, err)
	}
	c.mu.Lock()
	left := len(c.aside.byURL)
	c.mu.Unlock()
	if left != 0 {
		t.Errorf("%d copies still kept aside, want none", left)
	}
}

// A representation's URL pattern: its segments differ from one another in
// the digits of $Number$ or $Time$ alone.
func TestRepPattern(t *testing.T) {
	for _, tt := range []struct {
		name   string
		listed []string
		url    string
		want   bool
	}{
		{"next number", []string{"https://o/chunk-stream0-00001.m4s", "https://o/chunk-stream0-00002.m4s"}, "https://o/chunk-stream0-00003.m4s", true},
		{"another stream", []string{"https://o/chunk-stream0-00001.m4s", "https://o/chunk-stream0-00002.m4s"}, "https://o/chunk-stream1-00003.m4s", false},
		{"a number that grows a digit", []string{"https://o/v/1/9.m4s", "https://o/v/1/10.m4s"}, "https://o/v/1/100.m4s", true},
		{"another representation's directory", []string{"https://o/720p/seg-1.m4s", "https://o/720p/seg-2.m4s"}, "https://o/1080p/seg-3.m4s", false},
		{"$Time$ and $Bandwidth$", []string{"https://o/a/128000/t-0.m4s", "https://o/a/128000/t-44032.m4s"}, "https://o/a/128000/t-88064.m4s", true},
		{"another bandwidth", []string{"https://o/a/128000/t-0.m4s", "https://o/a/128000/t-44032.m4s"}, "https://o/a/64000/t-88064.m4s", false},
		{"an init segment", []string{"https://o/chunk-stream0-00001.m4s", "https://o/chunk-stream0-00002.m4s"}, "https://o/init-stream0.m4s", false},
		{"one URL: nothing learned", []string{"https://o/chunk-stream0-00001.m4s"}, "https://o/chunk-stream0-00002.m4s", false},
		{"the same URL twice: nothing learned", []string{"https://o/s-1.m4s", "https://o/s-1.m4s"}, "https://o/s-2.m4s", false},
		{"a new template keeps the old pattern", []string{"https://o/p0-1.m4s", "https://o/p0-2.m4s", "https://o/period1/x-3.m4s"}, "https://o/p0-4.m4s", true},
		{"the new template learned", []string{"https://o/p0-1.m4s", "https://o/p1/x-1.m4s", "https://o/p1/x-2.m4s"}, "https://o/p1/x-5.m4s", true},
		{"a query that changes", []string{"https://o/s-1.m4s?t=10", "https://o/s-2.m4s?t=20"}, "https://o/s-3.m4s?t=30", true},
		{"letters where the number was", []string{"https://o/s-1.m4s", "https://o/s-2.m4s"}, "https://o/s-x.m4s", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var p repPattern
			for _, u := range tt.listed {
				p.learn(u)
			}
			if got := p.match(tt.url); got != tt.want {
				t.Errorf("learn(%q).match(%q): got %v, want %v", tt.listed, tt.url, got, tt.want)
			}
		})
	}
}

// The init sections of a live DASH recording, in the orders a player and the
// follower meet: the follower takes the browser's copy that landed before it
// listed it, or waits for one on its way, and fetches its own when the
// browser's never comes, after the wait it is given; the browser reads the
// follower's copy of one the follower listed first. The origin serves each
// once, but for the copy the browser never got.
func TestCaptureLiveInitCopies(t *testing.T) {
	body := append([]byte("\x00\x00\x00\x18ftypiso5\x00\x00\x02\x00iso5iso6"), bytes.Repeat([]byte{0}, 512)...)
	hits := map[string]int{}
	var hmu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.Lock()
		hits[r.URL.Path]++
		hmu.Unlock()
		w.Header().Set("Content-Type", "video/iso.segment")
		w.Write(body)
	}))
	defer srv.Close()
	served := func(n int) int {
		hmu.Lock()
		defer hmu.Unlock()
		return hits[fmt.Sprintf("/live/init-stream%d.m4s", n)]
	}
	s := &Session{Source: "watch", Input: srv.URL + "/live/out.mpd"}
	tr := &Track{Track: plan.Track{ID: "video", Kind: plan.Video, Live: true, Ext: ".m4s"}, Follower: &LiveState{}}
	in := func(n int) plan.Init { return plan.Init{URL: fmt.Sprintf("%s/live/init-stream%d.m4s", srv.URL, n)} }
	ctx, c, l := followedLive(t, s, tr, func(c *Capture, l *live) {
		for n := 1; n <= 4; n++ {
			c.aside.inits[in(n).URL] = l // as the manifest the player read lists them
		}
	})
	o := Options{Claim: func(ctx context.Context, track string, i int64, wait bool) Hold {
		return c.claim(ctx, l, flightKey{track, i}, wait)
	}}
	f := &fetcher{client: srv.Client(), maxBytes: 1 << 20}
	// follow is the follower meeting init n: listed, then fetched unless a copy is there.
	follow := func(n int, wait time.Duration) {
		t.Helper()
		c.listedInit(l, "video", n, in(n).URL)
		if err := fetchInit(ctx, tr, n, in(n), f, &o, wait); err != nil {
			t.Fatalf("init %d: %v", n, err)
		}
	}
	// ask is the browser's request, forwarded; its answer arrives through the tap returned.
	ask := func(n int) proxy.BodyTap {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, in(n).URL, nil)
		if resp := c.Respond(req); resp != nil {
			resp.Body.Close()
			t.Fatalf("init %d: answered by the capture, want it forwarded", n)
		}
		tap := c.Observe(&proxy.Exchange{Req: req, Status: http.StatusOK,
			RespHeader: http.Header{"Content-Type": {"video/iso.segment"}}, ContentLength: int64(len(body)), Received: time.Now()})
		if tap == nil {
			t.Fatalf("init %d: the browser's copy is not kept", n)
		}
		return tap
	}
	kept := func(n int) bool {
		b, err := os.ReadFile(tr.InitPath(n))
		return err == nil && bytes.Equal(b, body)
	}

	// Init 1 landed before the follower listed it.
	tap := ask(1)
	tap.Write(body)
	tap.Close(nil)
	follow(1, time.Minute)
	if got := served(1); got != 0 || !kept(1) {
		t.Errorf("init 1, the browser's copy landed first: the follower fetched it %d times, kept %v; want 0 and the copy", got, kept(1))
	}

	// Init 2 is on its way when the follower lists it: the follower waits for it.
	tap = ask(2)
	tap.Write(body[:10])
	done := make(chan struct{})
	go func() {
		defer close(done)
		follow(2, time.Minute)
	}()
	tap.Write(body[10:])
	tap.Close(nil)
	<-done
	if got := served(2); got != 0 || !kept(2) {
		t.Errorf("init 2, the browser's copy on its way: the follower fetched it %d times, kept %v; want 0 and the copy", got, kept(2))
	}

	// Init 3: the browser asked and no answer came; the follower waits no longer than it is given.
	req := httptest.NewRequest(http.MethodGet, in(3).URL, nil)
	if resp := c.Respond(req); resp != nil {
		resp.Body.Close()
		t.Fatal("init 3: answered by the capture, want it forwarded")
	}
	start := time.Now()
	follow(3, 50*time.Millisecond)
	if got, took := served(3), time.Since(start); got != 1 || !kept(3) || took >= liveClaimLapse/2 {
		t.Errorf("init 3, asked for and never answered: the follower fetched it %d times in %v, kept %v; want once, well within %v (the claim's own lapse)",
			got, took, kept(3), liveClaimLapse)
	}

	// Init 4: the follower first; the browser then reads its copy.
	follow(4, time.Minute)
	resp := c.Respond(httptest.NewRequest(http.MethodGet, in(4).URL, nil))
	if resp == nil {
		t.Fatal("init 4, the follower's copy on disk: the browser's request forwarded, want it answered by the capture")
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := served(4); got != 1 || !bytes.Equal(b, body) {
		t.Errorf("init 4: the origin served it %d times, the browser got %d bytes; want once, and the follower's copy", got, len(b))
	}
	var left []string
	filepath.WalkDir(s.Dir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "aside-") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("copies left aside: %q, want none", left)
	}
}

// followedLive makes s, with its one live track tr, a recording of a new capture, as while its follower
// runs; mark notes, under c.mu, what makes the broadcast's requests the recording's. The capture stops
// with the test.
func followedLive(t *testing.T, s *Session, tr *Track, mark func(*Capture, *live)) (context.Context, *Capture, *live) {
	t.Helper()
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := NewCapture(ctx, st, CaptureOptions{Run: Options{Logger: testLogger(t)}})
	s.AddTrack(tr)
	c.mu.Lock()
	l, err := c.newLive(s, "")
	if err == nil {
		l.running = true // as while its follower runs
		mark(c, l)
		err = os.MkdirAll(tr.SegmentDir(), 0o700)
	}
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	return ctx, c, l
}
