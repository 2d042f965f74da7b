package e2e

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamsnatcher/streamsnatcher/certs"
	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/proxy"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// The made-up site: the proxy maps it to the test origin through its dial hook.
// httptest's certificate names example.com, so upstream TLS is verified for real.
const site = "example.com"

const page = `<!doctype html><html><head><title>watch</title></head><body>
<video id="v" src="/v/abc/index.m3u8" autoplay muted playsinline></video>
</body></html>`

func chromium(t *testing.T) string {
	for _, c := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is needed for the end-to-end test: sudo apt-get update && sudo apt-get install chromium (./script/test installs it)")
	return ""
}

// TestChromiumCapture plays an HLS VOD over HTTPS in headless Chromium through
// the proxy; the site demands a Referer and a cookie the page sets.
// StreamSnatcher must produce the whole video, fetching from the origin only
// what the browser did not.
func TestChromiumCapture(t *testing.T) {
	bin := chromium(t)
	start := time.Now()
	media := testmedia.ForTest(t, testmedia.Spec{Seconds: 120, SegmentSeconds: 2, Width: 320, Height: 180, FPS: 25})
	origin := testorigin.Start(t, testorigin.Options{Dir: media.Dir, Prefix: "/v/abc/", TLS: true,
		RequireReferer: "https://" + site + "/watch", RequireCookie: "sess=ok", PagePath: "/watch", PageHTML: page})
	originAddr := must(url.Parse(origin.Root)).Host

	ca, err := certs.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := recorder.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outDir := t.TempDir()
	// The test-only dial hook: the made-up site is the local origin, for the proxy and the backfill alike.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); host == site {
			addr = originAddr
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	client := recorder.NewClient(&http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: origin.CertPool()}}, 8)
	capt := &browserCount{Capture: recorder.NewCapture(ctx, st, recorder.CaptureOptions{OutDir: outDir,
		Run: recorder.Options{Client: client, Concurrency: 8, Backoff: 10 * time.Millisecond}})}
	px, err := proxy.New(proxy.Options{Listen: "127.0.0.1:0", CA: ca, UpstreamCAs: origin.CertPool(), Observer: capt, DialContext: dial})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- px.Serve(ctx, ln) }()

	// A real headless Chromium with a fresh profile, trusting our CA by SPKI hash only.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.ProxyServer("http://" + ln.Addr().String()),
		chromedp.Flag("proxy-bypass-list", "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com"),
		chromedp.Flag("ignore-certificate-errors-spki-list", ca.SPKIHash()),
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, btimeout := context.WithTimeout(bctx, 90*time.Second)
	defer btimeout()

	var played float64
	if _, err := chromedp.Run(bctx, chromedp.Navigate("https://"+site+"/watch")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	// Playback must advance: a request left hanging by the proxy would stall it without an error.
	for played < 3 {
		played, err = chromedp.Run(bctx, chromedp.Evaluate[float64](`document.getElementById("v").currentTime`))
		if err != nil {
			t.Fatalf("video did not play through the proxy (currentTime %.1f): %v", played, err)
		}
		if played < 3 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	playedAt := time.Since(start)
	bcancel() // the person closes the tab; the rest happens on its own

	s := waitDone(t, st, 90*time.Second)
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
		if n := origin.Completed(filepath.Base(seg)); n != 1 {
			t.Errorf("origin served %s whole %d times, want exactly once", filepath.Base(seg), n)
		}
	}
	fromOrigin, fromDisk := capt.counts()
	if fromOrigin+fromDisk < 2 {
		t.Errorf("the browser fetched %d segments through the proxy, want at least 2", fromOrigin+fromDisk)
	}
	t.Logf("played 3 s after %.1fs; the browser got %d segments from the origin (kept) and %d from StreamSnatcher's disk; %d segments in all; whole video merged at %.1fs",
		playedAt.Seconds(), fromOrigin, fromDisk, len(media.Segments), doneAt.Seconds())
	cancel()
	capt.Wait()
	<-served
	if _, err := os.Stat(s.Output); err != nil {
		t.Fatal(err)
	}
}

func waitDone(t *testing.T, st *recorder.Store, d time.Duration) *recorder.Session {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		list, _ := st.List()
		for _, s := range list {
			if s.State == recorder.StateDone || s.State == recorder.StateFailed || s.State == recorder.StateIncomplete {
				return s
			}
		}
		if time.Now().After(deadline) {
			for _, s := range list {
				t.Logf("session %s: %s %s", s.ID, s.State, s.Error)
			}
			t.Fatalf("no session finished within %s (%d sessions)", d, len(list))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
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
