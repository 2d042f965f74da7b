package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/recorder"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// TestLoad: many clients open their own CONNECT tunnels through the proxy to
// a few made-up hosts and fetch segments, while a Capture backfills and merges
// a stream from the same origin. Every answer must be byte-exact, the capture
// must finish with every packet, and the heap must stay bounded. Run it with
// -race: the point is also that the race detector stays quiet.
func TestLoad(t *testing.T) {
	clients, perClient := 50, 6
	if testing.Short() {
		clients, perClient = 16, 3
	}
	media := testmedia.ForTest(t, testmedia.Spec{Seconds: 40, SegmentSeconds: 1, Width: 160, Height: 90, FPS: 25, SampleRate: 22050})
	hosts := []string{"a.example.com", "b.example.com", "c.example.com"} // httptest's certificate covers *.example.com
	r := newRig(t, rigOptions{concurrency: 8, hosts: hosts,
		origin: testorigin.Options{Dir: media.Dir, Prefix: "/v/abc/", TTFB: 5 * time.Millisecond}})
	ca, st, capt, px := r.ca, r.store, r.capt, r.px

	// The heap, sampled while everything runs.
	var peak atomic.Uint64
	stopSample := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stopSample:
				return
			case <-tick.C:
			}
		}
	}()

	// The backfill: a session over the whole stream on its own host.
	tmpl, err := urltemplate.Placeholder("https://"+site+"/v/abc/seg_(*).ts", 5)
	if err != nil {
		t.Fatal(err)
	}
	s := &recorder.Session{Source: "get"}
	tr := recorder.NewTemplateTrack(tmpl, 0)
	tr.Last, tr.EndKnown = int64(len(media.Segments)-1), true
	s.AddTrack(tr)
	start := time.Now()
	if err := capt.Add(s); err != nil {
		t.Fatal(err)
	}

	// The clients: each its own transport, so its own CONNECT tunnel per host.
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert())
	proxyURL := &url.URL{Scheme: "http", Host: r.addr}
	var wg sync.WaitGroup
	var ok, bad atomic.Int64
	errs := make(chan error, clients*perClient)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: false}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
			for k := 0; k < perClient; k++ {
				i := (c*7 + k*3) % len(media.Segments)
				host := hosts[(c+k)%len(hosts)]
				u := fmt.Sprintf("https://%s/v/abc/%s", host, filepath.Base(media.Segments[i]))
				if err := fetchSame(hc, u, media.Bytes(i)); err != nil {
					bad.Add(1)
					errs <- fmt.Errorf("client %d: %s: %w", c, u, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	clientsDone := time.Since(start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	done := waitSession(t, st, s.ID, 90*time.Second)
	elapsed := time.Since(start)
	close(stopSample)
	<-sampled

	if done.State != recorder.StateDone {
		t.Fatalf("capture session %s: state %q (%s), want done", done.ID, done.State, done.Error)
	}
	v, a, err := testmedia.CountPackets(context.Background(), done.Output)
	if err != nil {
		t.Fatal(err)
	}
	if v != media.VideoPackets || a != media.AudioPackets {
		t.Errorf("capture output has video %d audio %d packets, source %d %d", v, a, media.VideoPackets, media.AudioPackets)
	}
	const heapBound = 200 << 20
	if p := peak.Load(); p > heapBound {
		t.Errorf("heap in use peaked at %d MB, want under %d MB", p>>20, heapBound>>20)
	}
	stats := px.Stats()
	t.Logf("%d clients x %d requests over %d hosts: %d byte-exact, %d bad, in %.1fs; proxy requests %d, upstream errors %d, leaf mints %d; capture done in %.1fs (video %d audio %d packets); peak heap in use %d MB",
		clients, perClient, len(hosts), ok.Load(), bad.Load(), clientsDone.Seconds(), stats.Requests, stats.UpstreamErrors, stats.LeafMints,
		elapsed.Seconds(), v, a, peak.Load()>>20)
}

// fetchSame GETs u and checks the body is exactly want.
func fetchSame(hc *http.Client, u string, want []byte) error {
	resp, err := hc.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("body of %d bytes differs from the segment's %d", len(got), len(want))
	}
	return nil
}
