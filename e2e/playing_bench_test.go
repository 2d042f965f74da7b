package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// slowSegment is the CDN's time to first byte for each segment.
const slowSegment = 400 * time.Millisecond

// BenchmarkTimeToPlaying measures, on a CDN that takes 0.4 s to answer each
// segment, the time from page load (navigation start) to the video's
// `playing` event with hls.js, loaded directly and through watch while its
// backfill runs. Each iteration starts cold: new servers, new browser
// profiles, a new capture. It fails when watch is over 1.3× the direct time
// (the medians).
//
//	go test -bench TimeToPlaying -run '^$' -benchtime 5x ./e2e/
func BenchmarkTimeToPlaying(b *testing.B) {
	needPlayers(b)
	media := testmedia.ForTest(b, testmedia.Spec{Seconds: 30, SegmentSeconds: 1, Width: 320, Height: 180, FPS: 25})
	var direct, watch []float64
	left := 0
	for b.Loop() {
		page := pageOrigin(b)
		pagePort := must(url.Parse(page.URL)).Port()
		pageAt := fmt.Sprintf("https://%s:%s", pageHost, pagePort)
		c := newCDNWith(b, media.Dir, cdnOptions{page: pageAt, delay: slowSegment})
		src := fmt.Sprintf("https://%s:%s/v/index.m3u8", cdnHost, must(url.Parse(c.srv.URL)).Port())
		u := pageAt + "/hlsjs?src=" + url.QueryEscape(src)

		// Directly: the names resolve to loopback, httptest's certificate trusted by its hash.
		sum := sha256.Sum256(page.Certificate().RawSubjectPublicKeyInfo)
		bctx, closeDirect := directBrowser(b, fmt.Sprintf("MAP %s 127.0.0.1, MAP %s 127.0.0.1", pageHost, cdnHost),
			base64.StdEncoding.EncodeToString(sum[:]))
		direct = append(direct, timeToPlaying(b, bctx, u))
		closeDirect()

		// Through watch.
		r := &rig{}
		r.start(b, map[string]string{pageHost: must(url.Parse(page.URL)).Host, cdnHost: must(url.Parse(c.srv.URL)).Host},
			certPool(page.Certificate(), c.srv.Certificate()), rigOptions{concurrency: recorder.DefaultConcurrency})
		bctx, closeBrowser := r.browser(b, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")
		watch = append(watch, timeToPlaying(b, bctx, u))
		for _, st := range r.capt.Streams() {
			if st.Progress != nil && st.Session.State != recorder.StateDone {
				left += int(st.Progress.Total.Load() - st.Progress.Done.Load())
			}
		}
		closeBrowser()
	}
	d, w := median(direct), median(watch)
	b.ReportMetric(d, "direct-s")
	b.ReportMetric(w, "watch-s")
	b.ReportMetric(w/d, "ratio")
	b.ReportMetric(float64(left)/float64(len(watch)), "backfill-left")
	b.Logf("time to playing: direct %v s, through watch %v s (medians %.2f, %.2f; ratio %.2f); segments the backfill had left at playing: %d over %d runs",
		direct, watch, d, w, w/d, left, len(watch))
	if w > 1.3*d {
		b.Errorf("through watch %.2fs to playing, over 1.3× the direct %.2fs", w, d)
	}
}

// directBrowser starts a headless Chromium with no proxy, resolving by rules
// and trusting the certificate of SPKI hash spki.
func directBrowser(b testing.TB, rules, spki string) (context.Context, func()) {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(b)), chromedp.UserDataDir(b.TempDir()),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("host-resolver-rules", rules),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	bctx, btimeout := context.WithTimeout(bctx, 2*time.Minute)
	stop := func() { btimeout(); bcancel(); acancel() }
	b.Cleanup(stop)
	// Start the browser before the clock: its launch is not the page's.
	if _, err := chromedp.Run(bctx, chromedp.Navigate("about:blank")); err != nil {
		b.Fatal(err)
	}
	return bctx, stop
}

// timeToPlaying loads u and returns the seconds from navigation start to the
// video's first `playing` event.
func timeToPlaying(b testing.TB, bctx context.Context, u string) float64 {
	if _, err := chromedp.Run(bctx, chromedp.Navigate("about:blank")); err != nil { // the browser is up before the page loads
		b.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Navigate(u)); err != nil {
		b.Fatalf("navigate %s: %v", u, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := chromedp.Run(bctx, chromedp.Evaluate[playing](`({at: window.playingAt || 0, errs: window.playerErrors || []})`))
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Errs) > 0 {
			b.Fatalf("hls.js reported errors: %v", st.Errs)
		}
		if st.At > 0 {
			return st.At / 1000
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: no playing event within a minute", u)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type playing struct {
	At   float64  `json:"at"`
	Errs []string `json:"errs"`
}

func certPool(certs ...*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
