package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/proxy"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

const page = `<!doctype html><html><head><title>watch</title></head><body>
<video id="v" src="/v/abc/index.m3u8" autoplay muted playsinline></video>
</body></html>`

// TestChromiumCapture plays an HLS VOD over HTTPS in headless Chromium through
// the proxy; the site demands a Referer and a cookie the page sets.
// StreamSnatcher must produce the whole video, fetching from the origin only
// what the browser did not.
func TestChromiumCapture(t *testing.T) {
	start := time.Now()
	media := testmedia.ForTest(t, testmedia.Spec{Seconds: 120, SegmentSeconds: 2, Width: 320, Height: 180, FPS: 25})
	var count *browserCount
	r := newRig(t, rigOptions{concurrency: 8,
		origin: testorigin.Options{Dir: media.Dir, Prefix: "/v/abc/",
			RequireReferer: "https://" + site + "/watch", RequireCookie: "sess=ok", PagePath: "/watch", PageHTML: page},
		observer: func(c *recorder.Capture) proxy.Observer { count = &browserCount{Capture: c}; return count },
	})
	bctx, closeBrowser := r.browser(t, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")

	if _, err := chromedp.Run(bctx, chromedp.Navigate("https://"+site+"/watch")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	// Playback must advance: a request left hanging by the proxy would stall it without an error.
	var played float64
	for played < 3 {
		var err error
		played, err = chromedp.Run(bctx, chromedp.Evaluate[float64](`document.getElementById("v").currentTime`))
		if err != nil {
			t.Fatalf("video did not play through the proxy (currentTime %.1f): %v", played, err)
		}
		if played < 3 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	playedAt := time.Since(start)
	closeBrowser() // the person closes the tab; the rest happens on its own

	s := waitSession(t, r.store, "", 90*time.Second)
	doneAt := time.Since(start)
	if s.State != recorder.StateDone {
		t.Fatalf("session %s: state %q (%s), want done", s.ID, s.State, s.Error)
	}
	v, a, err := testmedia.CountPackets(context.Background(), s.Output)
	if err != nil {
		t.Fatal(err)
	}
	if v != media.VideoPackets || a != media.AudioPackets {
		t.Fatalf("output packets video %d audio %d, want %d %d", v, a, media.VideoPackets, media.AudioPackets)
	}
	for _, seg := range media.Segments {
		if n := r.origin.Completed(filepath.Base(seg)); n != 1 {
			t.Errorf("origin served %s whole %d times, want exactly once", filepath.Base(seg), n)
		}
	}
	fromOrigin, fromDisk := count.counts()
	if fromOrigin+fromDisk < 2 {
		t.Errorf("the browser fetched %d segments through the proxy, want at least 2", fromOrigin+fromDisk)
	}
	t.Logf("played 3 s after %.1fs; the browser got %d segments from the origin (kept) and %d from StreamSnatcher's disk; %d segments in all; whole video merged at %.1fs",
		playedAt.Seconds(), fromOrigin, fromDisk, len(media.Segments), doneAt.Seconds())
	if _, err := os.Stat(s.Output); err != nil {
		t.Fatal(err)
	}
}

// browserCount counts the browser's segment requests: those forwarded to the
// origin (and tee'd) and those answered from what the backfill already had.
type browserCount struct {
	*recorder.Capture
	mu               sync.Mutex
	forwarded, local int
}

func (b *browserCount) Observe(ex *proxy.Exchange) proxy.BodyTap {
	if strings.HasSuffix(ex.Req.URL.Path, ".ts") {
		b.mu.Lock()
		b.forwarded++
		b.mu.Unlock()
	}
	return b.Capture.Observe(ex)
}

func (b *browserCount) Respond(req *http.Request) *http.Response {
	resp := b.Capture.Respond(req)
	if resp != nil {
		b.mu.Lock()
		b.local++
		b.mu.Unlock()
	}
	return resp
}

func (b *browserCount) counts() (forwarded, local int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.forwarded, b.local
}
