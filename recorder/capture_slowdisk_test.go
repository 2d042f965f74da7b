package recorder

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// promptly fails t when f does not return within a second (what the
// browser's other requests may wait for the capture while one of them meets
// a slow disk), or returns an error.
func promptly(t *testing.T, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }() // f never touches t: it may return after the test
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	case <-time.After(time.Second):
		t.Errorf("%s: still waiting after a second while another request met the slow disk", what)
	}
}

// blockOn makes *hook block for a name containing match until the returned
// release is called; entered closes when the first such call blocks.
func blockOn[F any](t *testing.T, hook *F, wrap func(orig F, block func(name string)) F, match string) (entered <-chan struct{}, release func()) {
	t.Helper()
	in, out := make(chan struct{}), make(chan struct{})
	var once, rel sync.Once
	orig := *hook
	*hook = wrap(orig, func(name string) {
		if strings.Contains(name, match) {
			once.Do(func() { close(in) })
			<-out
		}
	})
	release = func() { rel.Do(func() { close(out) }) }
	t.Cleanup(func() {
		release()
		*hook = orig
	})
	return in, release
}

// A segment whose tee file takes long to make (a slow or stalled disk) holds
// up its own request only: the browser's other requests — another segment,
// a playlist reload — and the dashboard's snapshot go on meanwhile.
func TestCaptureSlowTeeDoesNotStallTheBrowser(t *testing.T) {
	fx := newFixture(t, testorigin.Options{ConnRate: 256 << 10}) // the backfill does not reach the last segment at once
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts()})
	pl, err := os.ReadFile(fx.media.Playlist)
	if err != nil {
		t.Fatal(err)
	}
	last := len(fx.media.Segments) - 1
	slow := filepath.Base(fx.media.Segments[last])
	entered, release := blockOn(t, &createTee, func(orig func(string, string) (*os.File, error), block func(string)) func(string, string) (*os.File, error) {
		return func(dir, pattern string) (*os.File, error) {
			block(pattern)
			return orig(dir, pattern)
		}
	}, fmt.Sprintf("%06d.ts", last)) // the name the tee's file takes after its segment's index
	browse(t, c, fx.origin.URL+"index.m3u8", pl, fx.headers())

	// The browser fetches the last segment first (a seek), ahead of the backfill:
	// forwarded and claimed for it. Its tee's file is slow to make.
	req := httptest.NewRequest(http.MethodGet, fx.origin.URL+slow, nil)
	for k, v := range fx.headers() {
		req.Header.Set(k, v)
	}
	if resp := c.Respond(req); resp != nil {
		resp.Body.Close()
		t.Fatalf("%s: answered before anything fetched it, want it forwarded", slow)
	}
	body := fx.media.Bytes(last)
	ex := &proxy.Exchange{Req: req, Status: http.StatusOK, RespHeader: http.Header{"Content-Type": {"video/mp2t"}},
		ContentLength: int64(len(body)), Received: time.Now()}
	teed := make(chan proxy.BodyTap, 1)
	go func() { teed <- c.Observe(ex) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the browser's copy of the last segment was never tee'd")
	}

	other := strings.Replace(fx.origin.URL, "/720p/", "/480p/", 1) + "seg_00001.ts"
	promptly(t, "Respond for another stream's segment", func() error {
		if resp := c.Respond(httptest.NewRequest(http.MethodGet, other, nil)); resp != nil {
			resp.Body.Close()
			return fmt.Errorf("answered %d, want it forwarded", resp.StatusCode)
		}
		return nil
	})
	promptly(t, "Observe of the playlist reloaded", func() error {
		if tap := c.Observe(&proxy.Exchange{Req: httptest.NewRequest(http.MethodGet, fx.origin.URL+"index.m3u8", nil),
			Status: http.StatusOK, RespHeader: http.Header{"Content-Type": {"application/vnd.apple.mpegurl"}},
			ContentLength: int64(len(pl)), Received: time.Now()}); tap != nil {
			tap.Write(pl)
			tap.Close(nil)
		}
		return nil
	})
	promptly(t, "Streams", func() error {
		if n := len(c.Streams()); n != 1 {
			return fmt.Errorf("%d streams, want 1", n)
		}
		return nil
	})

	release()
	var tap proxy.BodyTap
	select {
	case tap = <-teed:
	case <-time.After(10 * time.Second):
		t.Fatal("Observe of the slow segment never returned once its file was made")
	}
	if tap == nil {
		t.Fatal("the slow segment's copy is not kept once its file was made")
	}
	if _, err := tap.Write(body); err != nil {
		t.Fatal(err)
	}
	tap.Close(nil)
	s := waitState(t, fx.store, onlySession(t, fx.store).ID, StateDone)
	fx.checkOutput(t, s.Output)
	if h := fx.origin.Hits(slow); h != 0 {
		t.Errorf("%s: %d requests at the origin, want 0: the browser's slow copy is the one kept", slow, h)
	}
	cancel()
	c.Wait()
}

// A segment whose look-up on disk is slow (Respond asks whether it landed)
// holds up its own request only.
func TestCaptureSlowStatDoesNotStallTheBrowser(t *testing.T) {
	fx, c, _, _ := madeRecording(t)

	entered, release := blockOn(t, &statFile, func(orig func(string) (os.FileInfo, error), block func(string)) func(string) (os.FileInfo, error) {
		return func(name string) (os.FileInfo, error) {
			block(name)
			return orig(name)
		}
	}, "000002.ts")
	answered := make(chan *http.Response, 1)
	go func() { answered <- c.Respond(httptest.NewRequest(http.MethodGet, fx.origin.URL+"seg_00002.ts", nil)) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("Respond never looked for segment 2 on disk")
	}
	othersAnswerPromptly(t, fx, c)
	release()
	select {
	case resp := <-answered:
		if resp == nil {
			t.Fatal("segment 2: forwarded once its look-up returned, want it answered from disk")
		}
		resp.Body.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("Respond for segment 2 never returned")
	}
}

// A session.json slow to write (fresh credentials taken from the browser for
// a recording already made) holds up no other request, and is not lost.
func TestCaptureSlowSaveDoesNotStallTheBrowser(t *testing.T) {
	fx, c, pl, s := madeRecording(t)

	entered, release := blockOn(t, &writeSession, func(orig func(string, []byte, os.FileMode) error, block func(string)) func(string, []byte, os.FileMode) error {
		return func(name string, data []byte, perm os.FileMode) error {
			block(filepath.Join(filepath.Base(filepath.Dir(name)), filepath.Base(name)))
			return orig(name, data, perm)
		}
	}, filepath.Join(s.ID, "session.json"))
	// The page is reloaded with a new cookie: the recording takes it, and saves.
	h := fx.headers()
	h["Cookie"] = testCookie + "; fresh=1"
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		tap := c.Observe(&proxy.Exchange{Req: func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, fx.origin.URL+"index.m3u8", nil)
			for k, v := range h {
				r.Header.Set(k, v)
			}
			return r
		}(), Status: http.StatusOK, RespHeader: http.Header{"Content-Type": {"application/vnd.apple.mpegurl"}},
			ContentLength: int64(len(pl)), Received: time.Now()})
		tap.Write(pl)
		tap.Close(nil)
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the fresh cookie was never saved")
	}
	othersAnswerPromptly(t, fx, c)
	release()
	<-reloaded
	got, err := fx.store.Load(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Headers["Cookie"] != h["Cookie"] {
		t.Errorf("session.json: Cookie %q, want the fresh %q", got.Headers["Cookie"], h["Cookie"])
	}
}

// madeRecording is a capture that recorded the fixture's playlist, keeping its segments to answer from
// disk; it returns the playlist and the session, done. The capture stops with the test.
func madeRecording(t *testing.T) (*fixture, *Capture, []byte, *Session) {
	t.Helper()
	fx := newFixture(t, testorigin.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts(), Merge: MergeOptions{KeepSegments: true}})
	t.Cleanup(func() { cancel(); c.Wait() })
	pl, err := os.ReadFile(fx.media.Playlist)
	if err != nil {
		t.Fatal(err)
	}
	browse(t, c, fx.origin.URL+"index.m3u8", pl, fx.headers())
	return fx, c, pl, waitState(t, fx.store, onlySession(t, fx.store).ID, StateDone)
}

// othersAnswerPromptly checks that, while one file operation of the capture is held up, another
// segment of madeRecording's is answered from disk and the dashboard's Streams returns, promptly.
func othersAnswerPromptly(t *testing.T, fx *fixture, c *Capture) {
	t.Helper()
	promptly(t, "Respond for another segment", func() error {
		resp := c.Respond(httptest.NewRequest(http.MethodGet, fx.origin.URL+"seg_00003.ts", nil))
		if resp == nil {
			return errors.New("segment 3: forwarded, want it answered from disk")
		}
		resp.Body.Close()
		return nil
	})
	promptly(t, "Streams", func() error {
		if n := len(c.Streams()); n != 1 {
			return fmt.Errorf("%d streams, want 1", n)
		}
		return nil
	})
}

// Fresh credentials the browser brings while a run writes its last state (done) are not lost: the run owns
// the session then, so they wait, and its end moves them into the session and saves it.
func TestCaptureKeepsCredentialsThatCameAsTheRunEnded(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts(), Merge: MergeOptions{KeepSegments: true}})
	t.Cleanup(func() { cancel(); c.Wait() })
	done := regexp.MustCompile(`"state":\s*"done"`)
	in, out := make(chan struct{}), make(chan struct{})
	var once sync.Once
	orig := writeSession
	writeSession = func(name string, data []byte, perm os.FileMode) error {
		if done.Match(data) {
			once.Do(func() { close(in); <-out })
		}
		return orig(name, data, perm)
	}
	t.Cleanup(func() { writeSession = orig })
	pl, err := os.ReadFile(fx.media.Playlist)
	if err != nil {
		t.Fatal(err)
	}
	browse(t, c, fx.origin.URL+"index.m3u8", pl, fx.headers())
	select {
	case <-in: // the run saves its end, and waits
	case <-time.After(30 * time.Second):
		t.Fatal("the run never finished")
	}
	h := fx.headers()
	h["Cookie"] = testCookie + "; fresh=1"
	browse(t, c, fx.origin.URL+"index.m3u8", pl, h) // the page reloaded with a new cookie
	close(out)
	id := onlySession(t, fx.store).ID
	c.mu.Lock()
	var l *live
	for _, x := range c.streams {
		if x.s.ID == id {
			l = x
		}
	}
	c.mu.Unlock()
	c.waitRun(l)
	c.flushSaves() // the saves the run's end asked for are on disk
	got, err := fx.store.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateDone || got.Headers["Cookie"] != h["Cookie"] {
		t.Errorf("session.json: %s, Cookie %q; want done with the fresh %q", got.State, got.Headers["Cookie"], h["Cookie"])
	}
}
