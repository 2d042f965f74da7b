package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"testing"
	"time"
)

// benchSetup starts an HTTPS origin, a proxy in front of it, a direct client and a proxied client.
func benchSetup(b *testing.B) (direct, proxied *http.Client, p *Proxy) {
	b.Helper()
	ca := newTestCA(b)
	origin := newTLSOrigin(b)
	d := &mapDialer{target: origin.Listener.Addr().String()}
	p = startProxy(b, Options{CA: ca, UpstreamCAs: originPool(origin), DialContext: d.DialContext})
	direct = &http.Client{Transport: &http.Transport{
		DialContext:        d.DialContext,
		TLSClientConfig:    &tls.Config{RootCAs: originPool(origin)},
		DisableCompression: true,
	}}
	proxied = proxyClient(p, caPool(ca))
	return direct, proxied, p
}

func fetch(b *testing.B, c *http.Client, u string) int64 {
	resp, err := c.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: status %d, %d bytes, %v", u, resp.StatusCode, n, err)
	}
	return n
}

// BenchmarkHTTPSThroughput fetches a 64 MiB body directly and through the proxy, alternately.
func BenchmarkHTTPSThroughput(b *testing.B) {
	direct, proxied, _ := benchSetup(b)
	const size = 64 << 20
	u := fmt.Sprintf("https://big.example.com/stream?n=%d", size)
	fetch(b, direct, u) // warm connections and the leaf cache
	fetch(b, proxied, u)
	var dDur, pDur time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		fetch(b, direct, u)
		t1 := time.Now()
		fetch(b, proxied, u)
		dDur += t1.Sub(t0)
		pDur += time.Since(t1)
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/dDur.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/pDur.Seconds(), "proxied-MB/s")
	b.ReportMetric(100*dDur.Seconds()/pDur.Seconds(), "proxied/direct-%")
}

func percentile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// BenchmarkAddedLatency measures small requests on warm connections with a warm leaf cache.
func BenchmarkAddedLatency(b *testing.B) {
	direct, proxied, _ := benchSetup(b)
	u := "https://small.example.com/small"
	fetch(b, direct, u)
	fetch(b, proxied, u)
	var ds, ps []time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		fetch(b, direct, u)
		t1 := time.Now()
		fetch(b, proxied, u)
		ds = append(ds, t1.Sub(t0))
		ps = append(ps, time.Since(t1))
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(percentile(ds, 0.5)), "direct-p50-µs")
	b.ReportMetric(us(percentile(ps, 0.5)), "proxied-p50-µs")
	b.ReportMetric(us(percentile(ps, 0.5)-percentile(ds, 0.5)), "added-p50-µs")
	b.ReportMetric(us(percentile(ps, 0.99)-percentile(ds, 0.99)), "added-p99-µs")
}

// BenchmarkFirstByteNewHost measures time to first byte on a new connection to a host never seen before, so
// each proxied request pays for CONNECT, a leaf mint and two TLS handshakes.
func BenchmarkFirstByteNewHost(b *testing.B) {
	direct, _, p := benchSetup(b)
	base := proxyClient(p, nil).Transport.(*http.Transport)
	var ttfb, directTTFB []time.Duration
	b.ResetTimer()
	for i := range b.N {
		dtr := direct.Transport.(*http.Transport).Clone()
		directTTFB = append(directTTFB, firstByte(b, &http.Client{Transport: dtr}, fmt.Sprintf("https://d%d-%d.example.com/small", b.N, i)))
		dtr.CloseIdleConnections()

		tr := base.Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: caPool(p.opts.CA)}
		ttfb = append(ttfb, firstByte(b, &http.Client{Transport: tr}, fmt.Sprintf("https://n%d-%d.example.com/small", b.N, i)))
		tr.CloseIdleConnections()
	}
	b.StopTimer()
	if got, want := p.Stats().LeafMints, int64(b.N); got < want {
		b.Fatalf("leaf mints %d < requests %d: hosts were not new", got, want)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(directTTFB, 0.5)), "direct-ttfb-p50-ms")
	b.ReportMetric(ms(percentile(ttfb, 0.5)), "ttfb-p50-ms")
	b.ReportMetric(ms(percentile(ttfb, 0.99)), "ttfb-p99-ms")
}

// firstByte returns the time from sending a GET on a fresh transport to its first response byte.
func firstByte(b *testing.B, c *http.Client, u string) time.Duration {
	var first time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, u, nil)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return first.Sub(start)
}
