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
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// writingFlight waits until the backfill of c's only recording has a segment
// on its way with some of its bytes on disk, and returns its index.
func writingFlight(t *testing.T, c *Capture) int64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, l := range c.streams {
			for k, f := range l.inflight {
				f.g.mu.Lock()
				ok := !f.browser && k.i >= 0 && f.g.state == growWriting && f.g.n > 0
				f.g.mu.Unlock()
				if ok {
					c.mu.Unlock()
					return k.i
				}
			}
		}
		c.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the backfill never had a segment on its way")
	return -1
}

// A player's request for a segment the backfill is fetching gets the bytes as
// they arrive, with the origin's headers, long before the copy is complete; a
// request for one not started goes to the origin at once and the backfill
// keeps that copy; a second request for it follows the browser's own copy.
// The origin serves each segment once.
func TestRespondFollowsTheBackfill(t *testing.T) {
	fx := newFixture(t, testorigin.Options{ConnRate: 48 << 10}) // about a second a segment
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := fastOpts()
	o.IdleTimeout, o.MinRate = 10*time.Second, -1
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: o})
	pl, err := os.ReadFile(fx.media.Playlist)
	if err != nil {
		t.Fatal(err)
	}
	last := len(fx.media.Segments) - 1
	lastURL := fx.origin.URL + filepath.Base(fx.media.Segments[last])
	browse(t, c, fx.origin.URL+"index.m3u8", pl, fx.headers())

	// The last segment, not started (the backfill begins with four at once): forwarded and claimed.
	req := httptest.NewRequest(http.MethodGet, lastURL, nil)
	if resp := c.Respond(req); resp != nil {
		resp.Body.Close()
		t.Fatalf("segment %d: answered %d before anything fetched it, want it forwarded", last, resp.StatusCode)
	}
	ex := &proxy.Exchange{Req: req, Status: http.StatusOK, RespHeader: http.Header{"Content-Type": {"video/mp2t"},
		"Access-Control-Allow-Origin": {"*"}}, ContentLength: int64(len(fx.media.Bytes(last))), Received: time.Now()}
	tap := c.Observe(ex)
	if tap == nil {
		t.Fatalf("segment %d: the browser's copy is not kept", last)
	}
	body := fx.media.Bytes(last)
	half := len(body) / 2
	if _, err := tap.Write(body[:half]); err != nil {
		t.Fatal(err)
	}
	// Another request of the browser for it (a second player, a retry) follows that copy.
	second := c.Respond(httptest.NewRequest(http.MethodGet, lastURL, nil))
	if second == nil {
		t.Fatalf("segment %d: a second request while the browser's copy arrives was forwarded, want it to follow the copy", last)
	}
	if second.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("following the browser's copy: headers %v, want the origin's", second.Header)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		tap.Write(body[half:])
		tap.Close(nil)
	}()
	got, err := io.ReadAll(second.Body)
	second.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("following the browser's copy: %d bytes, %v; want the segment's %d", len(got), err, len(body))
	}

	// A segment the backfill is fetching: its bytes as they arrive.
	i := writingFlight(t, c)
	name := filepath.Base(fx.media.Segments[i])
	start := time.Now()
	resp := c.Respond(httptest.NewRequest(http.MethodGet, fx.origin.URL+name, nil))
	if resp == nil {
		t.Fatalf("segment %d on its way: forwarded, want it to follow the backfill's copy", i)
	}
	if n := fx.origin.Completed(name); n != 0 {
		t.Errorf("segment %d: answered after the origin finished it (%d), want while it arrives", i, n)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp2t" ||
		resp.ContentLength != int64(len(fx.media.Bytes(int(i)))) {
		t.Errorf("segment %d on its way: status %d, Content-Type %q, Content-Length %d; want 200, the origin's type and length %d",
			i, resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength, len(fx.media.Bytes(int(i))))
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, fx.media.Bytes(int(i))) {
		t.Errorf("segment %d on its way: %d bytes, %v; want the segment", i, len(got), err)
	}
	t.Logf("segment %d: answered while on its way, read to the end in %s", i, time.Since(start).Round(time.Millisecond))

	s := waitState(t, fx.store, onlySession(t, fx.store).ID, StateDone)
	fx.checkOutput(t, s.Output)
	for n, seg := range fx.media.Segments {
		want := 1
		if n == last {
			want = 0 // the browser's copy was kept
		}
		if h := fx.origin.Hits(filepath.Base(seg)); h != want {
			t.Errorf("%s: %d requests at the origin, want %d", filepath.Base(seg), h, want)
		}
	}
	cancel()
	c.Wait()
}

// The pace per host: a modest start, one more for every few successes, half
// on strain, never over the run's concurrency.
func TestHostLimiter(t *testing.T) {
	l := NewHostLimiter(LimiterOptions{Start: 2, Every: 2, Cool: time.Nanosecond})
	const u = "https://cdn.example/v/1.ts"
	ctx := context.Background()
	take := func(n, ceiling int) []func(error) {
		var out []func(error)
		for range n {
			done, err := l.acquire(ctx, u, ceiling)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, done)
		}
		return out
	}
	full := func(ceiling int) bool {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		done, err := l.acquire(ctx, u, ceiling)
		if err == nil {
			done(errBusy)
		}
		return err != nil
	}
	slots := take(2, 8)
	if !full(8) {
		t.Fatal("a third request at once at the start: want two")
	}
	for _, d := range slots {
		d(nil)
	}
	if got := l.Limit("cdn.example"); got != 3 {
		t.Fatalf("after 2 successes: limit %d, want 3", got)
	}
	slots = take(3, 8)
	if !full(8) {
		t.Fatal("a fourth request at once: want three")
	}
	slots[0](&StatusError{URL: u, Code: http.StatusTooManyRequests})
	if got := l.Limit("cdn.example"); got != 1 {
		t.Errorf("after a 429: limit %d, want 1", got)
	}
	slots[1](fmt.Errorf("%s: %w", u, ErrNotFound)) // not strain
	slots[2](nil)
	if got := l.Limit("cdn.example"); got != 1 {
		t.Errorf("after a 404 and a success: limit %d, want 1", got)
	}
	if got := l.Limit("other.example"); got != 2 {
		t.Errorf("another host: limit %d, want the start, 2", got)
	}
	for _, err := range []error{ErrStalled, ErrTooSlow, &StatusError{Code: 503}, errors.New("read: connection reset by peer")} {
		if !strained(err) {
			t.Errorf("strained(%v) = false, want true", err)
		}
	}
	for _, err := range []error{ErrExpired, ErrNotMedia, context.Canceled, &StatusError{Code: 404}} {
		if strained(err) {
			t.Errorf("strained(%v) = true, want false", err)
		}
	}
}

// A token that expires while slow transfers are under way: they complete,
// no new request is made with it, the stream pauses, and the reloaded page's
// fresh playlist resumes it to a complete output, each segment fetched once.
func TestCaptureExpiryKeepsTransfersUnderWay(t *testing.T) {
	fx := newFixture(t, testorigin.Options{ConnRate: 64 << 10, TTFB: 50 * time.Millisecond})
	fx.origin.SetRequiredQuery("token", "old")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := fastOpts()
	o.IdleTimeout, o.MinRate = 10*time.Second, -1
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: o, Pace: LimiterOptions{Start: 4}})
	pl, err := os.ReadFile(fx.media.Playlist)
	if err != nil {
		t.Fatal(err)
	}
	tokened := func(tok string) []byte {
		return regexp.MustCompile(`(?m)^(seg_\d+\.ts)$`).ReplaceAll(pl, []byte("${1}?token="+tok))
	}
	// Three requests are served (slowly); the fourth, at once beside them, is refused.
	fx.origin.ExpireAfter(3)
	start := time.Now()
	browse(t, c, fx.origin.URL+"index.m3u8?token=old", tokened("old"), fx.headers())
	s := waitState(t, fx.store, onlySession(t, fx.store).ID, StatePaused)
	paused := time.Since(start)
	if got := s.Done(); got != 3 {
		t.Errorf("paused with %d segments, want the 3 that were under way when access was refused", got)
	}
	if got := fx.origin.Forbidden(); got != 1 {
		t.Errorf("%d requests refused, want 1: no new request after the first refusal", got)
	}
	fx.origin.SetRequiredQuery("token", "new")
	browse(t, c, fx.origin.URL+"index.m3u8?token=new", tokened("new"), fx.headers())
	s = waitState(t, fx.store, s.ID, StateDone)
	c.Wait()
	fx.checkOutput(t, s.Output)
	fx.checkEachOnce(t)
	t.Logf("paused after %s with 3 segments; done after %s", paused.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// A finished recording's segments answer the page for as long as it keeps
// asking (the origin serves each once), and go when it stops, or at Wait.
func TestCaptureLingers(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const linger = 300 * time.Millisecond
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts(), Linger: linger})
	pl, err := os.ReadFile(fx.media.Playlist)
	if err != nil {
		t.Fatal(err)
	}
	browse(t, c, fx.origin.URL+"index.m3u8", pl, fx.headers())
	s := waitState(t, fx.store, onlySession(t, fx.store).ID, StateDone)
	segs := s.Main().SegmentDir()
	ask := func(i int) bool {
		resp := c.Respond(httptest.NewRequest(http.MethodGet, fx.origin.URL+filepath.Base(fx.media.Segments[i]), nil))
		if resp == nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(b, fx.media.Bytes(i)) {
			t.Errorf("segment %d from disk: wrong bytes", i)
		}
		return true
	}
	// The page plays on for twice the linger time, asking now and then.
	for end := time.Now().Add(2 * linger); time.Now().Before(end); time.Sleep(linger / 4) {
		for i := range fx.media.Segments {
			if !ask(i) {
				t.Fatalf("segment %d: forwarded %s after the merge while the page asks, want it answered from disk", i, time.Since(end.Add(-2*linger)))
			}
		}
	}
	fx.checkEachOnce(t)
	// It stops asking: the segments go, the output stays.
	deadline := time.Now().Add(10 * linger)
	for fileExists(segs) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still there %s after the page stopped asking", segs, 10*linger)
		}
		time.Sleep(linger / 10)
	}
	if ask(0) {
		t.Error("segment 0 answered after its segments were removed")
	}
	if !fileExists(s.Output) {
		t.Errorf("output %s removed with the segments", s.Output)
	}

	// Wait removes them at once.
	fx2 := newFixture(t, testorigin.Options{})
	c2 := NewCapture(ctx, fx2.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts(), Linger: time.Hour})
	browse(t, c2, fx2.origin.URL+"index.m3u8", pl, fx2.headers())
	s2 := waitState(t, fx2.store, onlySession(t, fx2.store).ID, StateDone)
	c2.Wait()
	if fileExists(s2.Main().SegmentDir()) {
		t.Errorf("Wait: %s left behind", s2.Main().SegmentDir())
	}
	fx2.checkOutput(t, s2.Output)
}
