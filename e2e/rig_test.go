package e2e

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamsnatcher/streamsnatcher/certs"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/proxy"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// The made-up site: the proxy maps it to the test origin through its dial hook.
// httptest's certificate names example.com (and *.example.com), so upstream TLS
// is verified for real.
const site = "example.com"

// rig is the wiring the end-to-end tests share: a TLS test origin reached under
// made-up host names through a test-only dial hook, a CA minted for the test, a
// session store, a Capture, and the proxy serving them on 127.0.0.1:0. It is
// torn down when the test ends.
type rig struct {
	origin *testorigin.Origin
	ca     *certs.CA
	store  *recorder.Store
	capt   *recorder.Capture
	px     *proxy.Proxy
	addr   string // the proxy's address
	outDir string
}

type rigOptions struct {
	origin      testorigin.Options                     // TLS is always on
	hosts       []string                               // more made-up names for the origin, besides site
	concurrency int                                    // backfill connections
	observer    func(*recorder.Capture) proxy.Observer // wraps the capture; nil uses it as is
	handler     func(*rig) http.Handler                // the proxy's own pages; nil: none
	merge       recorder.MergeOptions
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	o.origin.TLS = true
	r := &rig{origin: testorigin.Start(t, o.origin)}
	originAddr := must(url.Parse(r.origin.Root)).Host
	route := map[string]string{site: originAddr}
	for _, h := range o.hosts {
		route[h] = originAddr
	}
	r.start(t, route, r.origin.CertPool(), o)
	return r
}

// start runs the CA, store, Capture and proxy of a rig whose made-up host
// names reach the loopback addresses in route (host → host:port), upstream TLS
// verified against pool, for the proxy and the backfill alike.
func (r *rig) start(t testing.TB, route map[string]string, pool *x509.CertPool, o rigOptions) {
	t.Helper()
	r.outDir = t.TempDir()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); route[host] != "" {
			addr = route[host]
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	var err error
	if r.ca, err = certs.LoadOrCreate(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if r.store, err = recorder.NewStore(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The backfill trusts what the proxy trusts, as watch --upstream-ca sets it up.
	client := recorder.NewClient(&http.Transport{DialContext: dial, TLSClientConfig: proxy.UpstreamTLS(pool, false)}, o.concurrency)
	r.capt = recorder.NewCapture(ctx, r.store, recorder.CaptureOptions{OutDir: r.outDir,
		Run: recorder.Options{Client: client, Concurrency: o.concurrency, Backoff: 10 * time.Millisecond}, Merge: o.merge})
	var observer proxy.Observer = r.capt
	if o.observer != nil {
		observer = o.observer(r.capt)
	}
	var handler http.Handler
	if o.handler != nil {
		handler = o.handler(r)
	}
	if r.px, err = proxy.New(proxy.Options{Listen: "127.0.0.1:0", CA: r.ca, UpstreamCAs: pool,
		Observer: observer, DialContext: dial, Handler: handler}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- r.px.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-served
		r.capt.Wait()
	})
}

func chromium(t testing.TB) string {
	for _, c := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is needed for the end-to-end tests: sudo apt-get update && sudo apt-get install chromium (./script/test installs it)")
	return ""
}

// browser starts a headless Chromium with a fresh profile that uses the rig's
// proxy and trusts its CA by SPKI hash only. bypass is its --proxy-bypass-list.
// closeBrowser ends it early (the test's end does too).
func (r *rig) browser(t testing.TB, bypass string, extra ...chromedp.ExecAllocatorOption) (ctx context.Context, closeBrowser func()) {
	t.Helper()
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.ProxyServer("http://" + r.addr),
		chromedp.Flag("proxy-bypass-list", bypass),
		chromedp.Flag("ignore-certificate-errors-spki-list", r.ca.SPKIHash()),
	}, extra...)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	bctx, btimeout := context.WithTimeout(bctx, 2*time.Minute)
	t.Cleanup(btimeout)
	return bctx, bcancel
}

// waitSession polls the store until session id (with id "", any session)
// has stopped for good: done, failed or incomplete.
func waitSession(t *testing.T, st *recorder.Store, id string, d time.Duration) *recorder.Session {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		list, _ := st.List()
		for _, s := range list {
			if (id == "" || s.ID == id) &&
				(s.State == recorder.StateDone || s.State == recorder.StateFailed || s.State == recorder.StateIncomplete) {
				return s
			}
		}
		if time.Now().After(deadline) {
			for _, s := range list {
				t.Logf("session %s: %s %s", s.ID, s.State, s.Error)
			}
			t.Fatalf("session %q did not finish within %s (%d sessions)", id, d, len(list))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
