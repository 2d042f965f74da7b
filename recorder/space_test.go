package recorder

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

func tsPacket() []byte {
	p := make([]byte, 188)
	p[0] = 0x47
	return p
}

// An endless "segment" tee'd from the browser stops at the backfill's size cap
// and leaves nothing behind, neither in tee/ nor in segments/.
func TestTeeStopsAtTheCap(t *testing.T) {
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := listedURLs(&Session{Source: "watch"}, "https://x/a.ts")
	if err := st.Create(s); err != nil {
		t.Fatal(err)
	}
	const cap = 64 << 10
	var ok *bool
	tap := newFileTap(s, s.Main().SegmentPath(0), -1, cap, func(b bool) { ok = &b })
	var written int64
	var werr error
	for range 10_000 { // 1.9 MB offered, chunked: no Content-Length
		n, err := tap.Write(tsPacket())
		written += int64(n)
		if err != nil {
			werr = err
			break
		}
	}
	if !errors.Is(werr, ErrTooLarge) || written > cap {
		t.Fatalf("tee of an endless body: %d bytes written, err %v; want ErrTooLarge by %d bytes", written, werr, cap)
	}
	tap.Close(werr) // what proxy.tapBody does after a Write error
	if ok == nil || *ok {
		t.Fatalf("done(%v), want done(false)", ok)
	}
	for _, dir := range []string{filepath.Join(s.Dir(), "tee"), s.Main().SegmentDir()} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s after a body over the cap: %v, want empty", dir, entries)
		}
	}
}

// A browser segment whose Content-Length is over the cap is not tee'd at all.
func TestTeeRefusesContentLengthOverTheCap(t *testing.T) {
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := fastOpts()
	o.MaxSegmentBytes = 1 << 20
	c := NewCapture(ctx, st, CaptureOptions{Run: o})
	for _, tc := range []struct {
		name   string
		length int64
		tee    bool
	}{
		{"at the cap", 1 << 20, true},
		{"one over", 1<<20 + 1, false},
		{"300 MiB", 300 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "https://cdn.example/"+strings.ReplaceAll(tc.name, " ", "")+"/v/seg_0001.ts", nil)
			tap := c.Observe(&proxy.Exchange{Req: req, Status: http.StatusOK, ContentLength: tc.length,
				RespHeader: http.Header{"Content-Type": {"video/mp2t"}}, Received: time.Now()})
			if (tap != nil) != tc.tee {
				t.Errorf("Content-Length %d: tap %v, want a tap: %v", tc.length, tap, tc.tee)
			}
			if tap != nil {
				tap.Close(proxy.ErrBodyIncomplete)
			}
		})
	}
}

// Below the free-space floor a run pauses with a reason a person can act on,
// writes nothing, and resumes once there is room.
func TestRunPausesBelowTheFreeSpaceFloor(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	s := fx.session(t, true)
	free := uint64(100 << 20)
	old := freeSpace
	freeSpace = func(string) (uint64, error) { return free, nil }
	t.Cleanup(func() { freeSpace = old })

	_, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
	if !errors.Is(err, ErrLowDisk) || !strings.Contains(err.Error(), "paused: less than 512 MiB free on "+s.Main().SegmentDir()) {
		t.Fatalf("Run with 100 MiB free: %v, want ErrLowDisk saying the floor and the directory", err)
	}
	if s.State != StatePaused || s.Done() != 0 {
		t.Errorf("state %q with %d segments, want paused with none", s.State, s.Done())
	}
	free = 10 << 30
	res, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
	if err != nil {
		t.Fatalf("Run after space was freed: %v", err)
	}
	fx.checkOutput(t, res.Output)
}

// A segment trickling at under 200 B/s (one byte every 5 ms: the idle timer
// never fires) fails as too slow after one rate window, and leaves nothing.
func TestFetchTooSlowFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp2t")
		rc := http.NewResponseController(w)
		pkt := tsPacket()
		for i := 0; ; i++ {
			if _, err := w.Write(pkt[i%188 : i%188+1]); err != nil {
				return
			}
			rc.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	f := &fetcher{client: srv.Client(), idleTimeout: time.Second, maxBytes: 256 << 20,
		minRate: 16 << 10, rateWindow: 300 * time.Millisecond}
	start := time.Now()
	_, err := f.fetch(context.Background(), srv.URL+"/seg_1.ts", filepath.Join(dir, "1.ts"), true)
	took := time.Since(start)
	if !errors.Is(err, ErrTooSlow) || !errors.Is(err, ErrStalled) {
		t.Fatalf("fetch of a trickle: %v, want ErrTooSlow (an ErrStalled)", err)
	}
	if took > 3*time.Second {
		t.Errorf("the trickle was given %s, want about one 300ms window", took)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left after a stalled body: %v", entries)
	}
	t.Logf("a 200 B/s trickle failed after %s: %v", took.Round(time.Millisecond), err)
}

// The capture's free-space answer comes from memory and is refreshed in the
// background: a full disk is noticed within about a second, and no call on
// the request path waits for a statfs.
func TestSpaceCacheNoticesAFullDisk(t *testing.T) {
	var free atomic.Uint64
	free.Store(10 << 30)
	old := freeSpace
	freeSpace = func(string) (uint64, error) { return free.Load(), nil }
	t.Cleanup(func() { freeSpace = old })
	var c spaceCache
	dir := t.TempDir()
	if err := c.check(dir, DefaultMinFreeBytes); err != nil {
		t.Fatalf("first check: %v, want nil", err)
	}
	free.Store(1 << 20)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.check(dir, DefaultMinFreeBytes)
		if errors.Is(err, ErrLowDisk) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("check after the disk filled: %v, want ErrLowDisk within a few seconds", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
