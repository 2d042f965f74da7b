package recorder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// browse feeds the capture what the proxy would report for the browser fetching url.
func browse(t *testing.T, c *Capture, url string, body []byte, h map[string]string) {
	t.Helper()
	if ref := h["Referer"]; ref != "" {
		// The proxy reports the page itself first; in tests it comes from loopback.
		seePage(c, ref, "127.0.0.1:443")
	}
	if resp := c.Respond(httptest.NewRequest(http.MethodGet, url, nil)); resp != nil {
		resp.Body.Close()
		return // answered from disk
	}
	req := httptest.NewRequest(http.MethodGet, url, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	ctype := "video/mp2t"
	switch filepath.Ext(req.URL.Path) {
	case ".m3u8":
		ctype = "application/vnd.apple.mpegurl"
	case ".mpd":
		ctype = "application/dash+xml"
	case ".m4s":
		ctype = "video/iso.segment"
	case ".vtt":
		ctype = "text/vtt"
	}
	ex := &proxy.Exchange{Req: req, Status: http.StatusOK, RespHeader: http.Header{"Content-Type": {ctype}},
		ContentLength: int64(len(body)), Received: time.Now()}
	tap := c.Observe(ex)
	if tap == nil {
		return
	}
	if _, err := tap.Write(body); err != nil {
		t.Fatalf("tap write: %v", err)
	}
	tap.Close(nil)
}

// seePage feeds the capture the page document at url as the proxy reports it, answered from remote.
func seePage(c *Capture, url, remote string) {
	ex := &proxy.Exchange{Req: httptest.NewRequest(http.MethodGet, url, nil), Status: http.StatusOK,
		RespHeader: http.Header{"Content-Type": {"text/html; charset=utf-8"}}, ContentLength: -1,
		Received: time.Now(), RemoteAddr: remote}
	if tap := c.Observe(ex); tap != nil {
		tap.Close(nil)
	}
}

func waitState(t *testing.T, st *Store, id string, want string) *Session {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := st.Load(id)
		if err == nil && s.State == want {
			return s
		}
		if time.Now().After(deadline) {
			state := ""
			if s != nil {
				state = s.State + " " + s.Error
			}
			t.Fatalf("session %s: state %q, want %q", id, state, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func onlySession(t *testing.T, st *Store) *Session {
	t.Helper()
	list, err := st.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions: %d (%v), want exactly 1", len(list), err)
	}
	return list[0]
}

// Two segments seen in the browser: the numbering is learned, their bytes are
// kept, and only the others are fetched from the origin.
func TestCaptureLearnsAndKeepsBrowserSegments(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts()})
	h := fx.headers()
	h["User-Agent"] = "TestBrowser/1"
	h["Connection"] = "keep-alive" // hop-by-hop: never kept
	for _, i := range []int{2, 3} {
		browse(t, c, fx.origin.URL+filepath.Base(fx.media.Segments[i]), fx.media.Bytes(i), h)
	}
	s := waitState(t, fx.store, onlySession(t, fx.store).ID, StateDone)
	c.Wait()
	fx.checkOutput(t, s.Output)
	for i, seg := range fx.media.Segments {
		name := filepath.Base(seg)
		want := 1
		if i == 2 || i == 3 {
			want = 0 // the browser's copies were kept
		}
		if got := fx.origin.Completed(name); got != want || (want == 0 && fx.origin.Hits(name) != 0) {
			t.Errorf("%s: origin served it %d times (%d hits), want %d", name, got, fx.origin.Hits(name), want)
		}
	}
	if s.Headers["User-Agent"] != "TestBrowser/1" || s.Headers["Cookie"] != testCookie {
		t.Errorf("kept headers %v: want the browser's User-Agent and Cookie", s.Headers)
	}
	if _, ok := s.Headers["Connection"]; ok {
		t.Errorf("a hop-by-hop header was kept: %v", s.Headers)
	}
}

// A playlist seen in the browser gives the exact list; a second, unrelated
// stream (an ad) gets its own session and is not mixed in.
func TestCaptureSeparatesStreams(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts()})
	pl, err := readFile(fx.media.Playlist)
	if err != nil {
		t.Fatal(err)
	}
	browse(t, c, fx.origin.URL+"index.m3u8", pl, fx.headers())
	// An "ad" with another shape, one segment only: it stays learning, apart.
	browse(t, c, "https://ads.example/creative/ad_0001.ts", fx.media.Bytes(0), nil)
	// A malformed playlist and a URL without a number change nothing.
	browse(t, c, fx.origin.URL+"broken.m3u8", []byte("#EXTM3U\n#EXTINF:abc,\nx.ts\n"), fx.headers())
	browse(t, c, "https://cdn.example/video/intro.ts", fx.media.Bytes(0), nil)

	list, _ := fx.store.List()
	if len(list) != 2 {
		t.Fatalf("%d sessions, want 2 (the video and the ad)", len(list))
	}
	var main *Session
	for _, s := range list {
		if s.Main() != nil && s.Main().Source != "" {
			main = s
		}
	}
	if main == nil {
		t.Fatal("no session from the playlist")
	}
	done := waitState(t, fx.store, main.ID, StateDone)
	cancel()
	c.Wait()
	fx.checkOutput(t, done.Output)
	fx.checkEachOnce(t)
}

// In watch, a token that expires mid-backfill pauses the stream; the person
// reloads the page, the browser's fresh URL carries a new token, and the
// backfill continues by itself.
func TestCaptureTakesFreshToken(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	fx.origin.SetRequiredQuery("token", "old")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := fastOpts()
	o.Concurrency = 1
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: o})
	fx.origin.ExpireAfter(2)
	for _, i := range []int{0, 1} {
		browse(t, c, fx.origin.URL+filepath.Base(fx.media.Segments[i])+"?token=old", fx.media.Bytes(i), fx.headers())
	}
	s := waitState(t, fx.store, onlySession(t, fx.store).ID, StatePaused)
	if s.Done() >= len(fx.media.Segments) {
		t.Fatal("nothing was left to fetch after the expiry: the test proves nothing")
	}
	fx.origin.SetRequiredQuery("token", "new")
	browse(t, c, fx.origin.URL+filepath.Base(fx.media.Segments[4])+"?token=new", fx.media.Bytes(4), fx.headers())
	s = waitState(t, fx.store, s.ID, StateDone)
	c.Wait()
	fx.checkOutput(t, s.Output)
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

// The same for a stream known by its playlist: the reloaded page's playlist
// carries segment URLs with a new token, which replace the expired ones.
func TestCaptureTakesReloadedPlaylist(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	fx.origin.SetRequiredQuery("token", "old")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := fastOpts()
	o.Concurrency = 1
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: o})
	pl, err := os.ReadFile(fx.media.Playlist)
	if err != nil {
		t.Fatal(err)
	}
	tokened := func(tok string) []byte {
		return regexp.MustCompile(`(?m)^(seg_\d+\.ts)$`).ReplaceAll(pl, []byte("${1}?token="+tok))
	}
	fx.origin.ExpireAfter(3)
	browse(t, c, fx.origin.URL+"index.m3u8?token=old", tokened("old"), fx.headers())
	s := waitState(t, fx.store, onlySession(t, fx.store).ID, StatePaused)
	if s.Done() >= len(fx.media.Segments) {
		t.Fatal("nothing was left to fetch after the expiry: the test proves nothing")
	}
	fx.origin.SetRequiredQuery("token", "new")
	browse(t, c, fx.origin.URL+"index.m3u8?token=new", tokened("new"), fx.headers())
	s = waitState(t, fx.store, s.ID, StateDone)
	c.Wait()
	fx.checkOutput(t, s.Output)
	fx.checkEachOnce(t)
}

// The browser is answered from disk for any single range of a segment the
// backfill already has: players ask for "bytes=0-", and for the rest after a pause.
func TestCaptureRespondsFromDisk(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts(), Merge: MergeOptions{KeepSegments: true}})
	for _, i := range []int{0, 1} {
		browse(t, c, fx.origin.URL+filepath.Base(fx.media.Segments[i]), fx.media.Bytes(i), fx.headers())
	}
	waitState(t, fx.store, onlySession(t, fx.store).ID, StateDone)
	seg := fx.media.Bytes(5)
	n := int64(len(seg))
	for _, tc := range []struct {
		rng        string
		status     int
		first, end int64 // the body is seg[first:end]
	}{
		{"", http.StatusOK, 0, n},
		{"bytes=0-", http.StatusPartialContent, 0, n},
		{"bytes=10-19", http.StatusPartialContent, 10, 20},
		{fmt.Sprintf("bytes=%d-", n-1), http.StatusPartialContent, n - 1, n},
		{fmt.Sprintf("bytes=100-%d", n+50), http.StatusPartialContent, 100, n},
		{fmt.Sprintf("bytes=%d-", n), 0, 0, 0}, // past the end: the origin answers
		{"bytes=5-2", 0, 0, 0},
		{"bytes=0-1,5-6", 0, 0, 0},
		{"bytes=-500", 0, 0, 0},
	} {
		req := httptest.NewRequest(http.MethodGet, fx.origin.URL+filepath.Base(fx.media.Segments[5]), nil)
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		resp := c.Respond(req)
		if tc.status == 0 {
			if resp != nil {
				resp.Body.Close()
				t.Errorf("Range %q: answered %d from disk, want it forwarded", tc.rng, resp.StatusCode)
			}
			continue
		}
		if resp == nil {
			t.Errorf("Range %q: not answered from disk", tc.rng)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !bytes.Equal(body, seg[tc.first:tc.end]) || resp.ContentLength != tc.end-tc.first {
			t.Errorf("Range %q: status %d, %d bytes (Content-Length %d), want %d and seg[%d:%d]", tc.rng, resp.StatusCode, len(body), resp.ContentLength, tc.status, tc.first, tc.end)
		}
		if tc.status == http.StatusPartialContent {
			if want := fmt.Sprintf("bytes %d-%d/%d", tc.first, tc.end-1, n); resp.Header.Get("Content-Range") != want {
				t.Errorf("Range %q: Content-Range %q, want %q", tc.rng, resp.Header.Get("Content-Range"), want)
			}
		}
	}
	cancel()
	c.Wait()
}

// A first segment from another rendition (the player switched quality) must
// not keep the stream from being learned: the latest observations decide.
func TestCaptureLearnsPastAnOddOneOut(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts()})
	odd := strings.Replace(fx.origin.URL, "/720p/", "/480p/", 1) + "seg_00007.ts"
	browse(t, c, odd, fx.media.Bytes(7), fx.headers())
	for _, i := range []int{2, 3} {
		browse(t, c, fx.origin.URL+filepath.Base(fx.media.Segments[i]), fx.media.Bytes(i), fx.headers())
	}
	s := waitState(t, fx.store, onlySession(t, fx.store).ID, StateDone)
	c.Wait()
	fx.checkOutput(t, s.Output)
	if m := s.Main(); m == nil || m.Template == nil || !strings.Contains(m.Template.URL(0), "/720p/") {
		t.Errorf("learned %+v, want the 720p numbering", m)
	}
}

// The dashboard's actions on a running stream: pause stops it (nothing lost,
// no automatic restart), resume finishes it, delete removes the session.
func TestCaptureActions(t *testing.T) {
	fx := newFixture(t, testorigin.Options{ConnRate: 200_000}) // a few seconds for the whole video
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := fastOpts()
	o.Concurrency = 1
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: o})
	for _, i := range []int{0, 1} {
		browse(t, c, fx.origin.URL+filepath.Base(fx.media.Segments[i]), fx.media.Bytes(i), fx.headers())
	}
	id := onlySession(t, fx.store).ID
	waitState(t, fx.store, id, StateDownloading)
	if err := c.Act(id, ActionPause); err != nil {
		t.Fatal(err)
	}
	s := waitState(t, fx.store, id, StatePaused)
	if st := c.Streams(); len(st) != 1 || st[0].Reason != "paused by you" {
		t.Errorf("streams after pause: %+v", st)
	}
	if err := c.Act(id, ActionResume); err != nil {
		t.Fatal(err)
	}
	s = waitState(t, fx.store, id, StateDone)
	fx.checkOutput(t, s.Output)
	if err := c.Act(id, "explode"); err == nil {
		t.Error("an unknown action was accepted")
	}
	if err := c.Act(id, ActionDelete); err != nil {
		t.Fatal(err)
	}
	if err := c.Act(id, ActionPause); !errors.Is(err, ErrUnknownStream) {
		t.Errorf("action on a deleted stream: %v, want ErrUnknownStream", err)
	}
	cancel()
	c.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(s.Dir()); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session dir %s still there after delete", s.Dir())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(c.Streams()) != 0 {
		t.Errorf("a deleted stream is still listed")
	}
}

// The second segment arrives while the browser's first copy is still being
// written: the numbering is learned before that copy is on disk. Once it
// lands it is the segment's file (the backfill waits for it rather than
// fetching it); a copy that fails is fetched again. Nothing is left aside in
// the session's directory either way.
func TestCaptureAdoptsAFirstCopyStillBeingWritten(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    error // how the first copy ends
		fetched int   // times the origin serves the first segment
	}{
		{name: "lands", fetched: 0},
		{name: "fails", fail: io.ErrUnexpectedEOF, fetched: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, testorigin.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts()})
			h := fx.headers()
			seePage(c, h["Referer"], "127.0.0.1:443")
			first := filepath.Base(fx.media.Segments[2])
			req := httptest.NewRequest(http.MethodGet, fx.origin.URL+first, nil)
			for k, v := range h {
				req.Header.Set(k, v)
			}
			body := fx.media.Bytes(2)
			tap := c.Observe(&proxy.Exchange{Req: req, Status: http.StatusOK, RespHeader: http.Header{"Content-Type": {"video/mp2t"}},
				ContentLength: int64(len(body)), Received: time.Now()})
			if tap == nil {
				t.Fatal("the first segment's copy is not kept aside")
			}
			if _, err := tap.Write(body[:len(body)/2]); err != nil {
				t.Fatal(err)
			}
			// The second segment, whole, while the first is half written: the numbering is learned.
			browse(t, c, fx.origin.URL+filepath.Base(fx.media.Segments[3]), fx.media.Bytes(3), h)
			if tc.fail == nil {
				if _, err := tap.Write(body[len(body)/2:]); err != nil {
					t.Fatal(err)
				}
			}
			tap.Close(tc.fail)

			s := waitState(t, fx.store, onlySession(t, fx.store).ID, StateDone)
			if n := fx.origin.Completed(first); n != tc.fetched {
				t.Errorf("%s fetched from the origin %d times, want %d", first, n, tc.fetched)
			}
			if got, err := os.ReadFile(s.Main().SegmentPath(2)); err != nil || !bytes.Equal(got, body) {
				t.Errorf("segment 2: %d bytes (%v), want the segment's %d", len(got), err, len(body))
			}
			var left []string
			filepath.WalkDir(s.Dir(), func(p string, d os.DirEntry, err error) error {
				if err == nil && (strings.HasPrefix(d.Name(), "observed-") || strings.HasSuffix(d.Name(), ".partial")) {
					left = append(left, p)
				}
				return nil
			})
			if len(left) > 0 {
				t.Errorf("copies left aside in the session: %q, want none", left)
			}
			c.Wait()
			fx.checkOutput(t, s.Output)
		})
	}
}
