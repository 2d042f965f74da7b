package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMITMStreamsBodiesAndObserves(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	obs := &tapRecorder{}
	p := startProxy(t, Options{
		CA:          ca,
		UpstreamCAs: originPool(origin),
		Observer:    obs,
		DialContext: (&mapDialer{target: origin.Listener.Addr().String()}).DialContext,
	})
	client := proxyClient(p, caPool(ca))

	tests := []struct {
		name    string
		path    string
		want    []byte
		wantLen int64
	}{
		{"content-length 3 MiB", "/bytes?n=3145728", payload[:3<<20], 3 << 20},
		{"content-length odd size", "/bytes?n=100003", payload[:100003], 100003},
		{"chunked 1 MiB", "/chunked?n=1048576", payload[:1<<20], -1},
		{"empty", "/bytes?n=0", nil, 0},
		{"small", "/small", []byte("ok"), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := "https://video.example.com" + tt.path
			resp, err := client.Get(u)
			if err != nil {
				t.Fatalf("GET %s: %v", u, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("read %s: %v", u, err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d: %s", u, resp.StatusCode, body)
			}
			if resp.ContentLength != tt.wantLen {
				t.Errorf("GET %s: ContentLength got %d, want %d", u, resp.ContentLength, tt.wantLen)
			}
			if !bytes.Equal(body, tt.want) {
				t.Errorf("GET %s: body of %d bytes differs from the origin's %d", u, len(body), len(tt.want))
			}
			// The leaf is ours, for the requested name.
			chain := resp.TLS.PeerCertificates
			if len(chain) != 2 || !bytes.Equal(chain[1].Raw, ca.Cert().Raw) {
				t.Fatalf("chain of %d certificates does not end with our CA", len(chain))
			}
			if err := chain[0].CheckSignatureFrom(ca.Cert()); err != nil {
				t.Errorf("leaf not signed by our CA: %v", err)
			}
			if len(chain[0].DNSNames) != 1 || chain[0].DNSNames[0] != "video.example.com" {
				t.Errorf("leaf SANs: got %v, want [video.example.com]", chain[0].DNSNames)
			}

			rec := obs.wait(t, u)
			if rec.closeErr != nil {
				t.Errorf("tap closed with %v, want nil", rec.closeErr)
			}
			if !bytes.Equal(rec.body.Bytes(), tt.want) {
				t.Errorf("tap got %d bytes, client got %d; want identical", rec.body.Len(), len(tt.want))
			}
			if rec.ex.Status != http.StatusOK || rec.ex.RespHeader.Get("X-Origin-Path") == "" {
				t.Errorf("exchange: status %d headers %v", rec.ex.Status, rec.ex.RespHeader)
			}
			if rec.ex.Req.URL.Scheme != "https" || rec.ex.Req.URL.Host != "video.example.com" || rec.ex.ContentLength != tt.wantLen {
				t.Errorf("exchange URL %s ContentLength %d", rec.ex.Req.URL, rec.ex.ContentLength)
			}
		})
	}
}

func TestObserverSeesRequestHeaders(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	obs := &tapRecorder{}
	p := startProxy(t, Options{CA: ca, UpstreamCAs: originPool(origin), Observer: obs,
		DialContext: (&mapDialer{target: origin.Listener.Addr().String()}).DialContext})
	req, _ := http.NewRequest(http.MethodGet, "https://cdn.example.com/seg/000012.ts?token=T", nil)
	req.Header.Set("Cookie", "session=abc")
	req.Header.Set("Referer", "https://site.example.com/watch")
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	resp, err := proxyClient(p, caPool(ca)).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rec := obs.wait(t, "https://cdn.example.com/seg/000012.ts?token=T")
	h := rec.ex.Req.Header
	if h.Get("Cookie") != "session=abc" || h.Get("Referer") != "https://site.example.com/watch" {
		t.Errorf("observed request headers lack cookie/referer: %v", h)
	}
	if h.Get("Proxy-Authorization") != "" {
		t.Errorf("hop-by-hop Proxy-Authorization forwarded: %v", h)
	}
	if rec.ex.Req.Body != nil {
		t.Error("observed request has a body")
	}
	// The name was mapped to the origin: the exchange says where it really went.
	if got, want := rec.ex.RemoteAddr, origin.Listener.Addr().String(); got != want {
		t.Errorf("Exchange.RemoteAddr %q, want the dialed address %q", got, want)
	}
}

func TestPlainHTTPProxying(t *testing.T) {
	ca := newTestCA(t)
	origin := httptest.NewServer(http.HandlerFunc(originHandler))
	defer origin.Close()
	obs := &tapRecorder{}
	d := &mapDialer{target: origin.Listener.Addr().String()}
	p := startProxy(t, Options{CA: ca, Observer: obs, DialContext: d.DialContext})
	client := proxyClient(p, caPool(ca))
	u := "http://plain.example.com/bytes?n=2000000"
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ContentLength != 2000000 || !bytes.Equal(body, payload[:2000000]) {
		t.Errorf("GET %s: ContentLength %d, %d bytes (equal=%v)", u, resp.ContentLength, len(body), bytes.Equal(body, payload[:2000000]))
	}
	rec := obs.wait(t, u)
	if rec.closeErr != nil || !bytes.Equal(rec.body.Bytes(), body) {
		t.Errorf("tap: %d bytes, close %v", rec.body.Len(), rec.closeErr)
	}
	if d.count("plain.example.com:80") != 1 {
		t.Errorf("dials to plain.example.com:80: %d", d.count("plain.example.com:80"))
	}
}

func TestConcurrentHostsMintOncePerHost(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	obs := &tapRecorder{}
	p := startProxy(t, Options{CA: ca, UpstreamCAs: originPool(origin), Observer: obs,
		DialContext: (&mapDialer{target: origin.Listener.Addr().String()}).DialContext})
	client := proxyClient(p, caPool(ca))

	const hosts, total = 10, 50
	var wg sync.WaitGroup
	errs := make([]error, total)
	start := make(chan struct{})
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			u := fmt.Sprintf("https://h%d.example.com/bytes?n=%d", i%hosts, 10000+i)
			resp, err := client.Get(u)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(body, payload[:10000+i]) {
				errs[i] = fmt.Errorf("GET %s: %d bytes, %v", u, len(body), err)
			}
			if got := resp.TLS.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != fmt.Sprintf("h%d.example.com", i%hosts) {
				errs[i] = fmt.Errorf("GET %s: leaf SANs %v", u, got)
			}
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().LeafMints; got != hosts {
		t.Errorf("leaf mints for %d hosts: got %d, want %d", hosts, got, hosts)
	}
	if got := obs.len(); got != total {
		t.Errorf("observed %d exchanges, want %d", got, total)
	}
}

func TestKeepAlive(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	d := &mapDialer{target: origin.Listener.Addr().String()}
	p := startProxy(t, Options{CA: ca, UpstreamCAs: originPool(origin), DialContext: d.DialContext})
	client := proxyClient(p, caPool(ca))
	for i, wantReused := range []bool{false, true, true} {
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
			http.MethodGet, "https://keep.example.com/bytes?n=5000", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if reused != wantReused {
			t.Errorf("request %d: client connection reused=%v, want %v", i, reused, wantReused)
		}
	}
	if got := d.count("keep.example.com:443"); got != 1 {
		t.Errorf("upstream dials: got %d, want 1 (upstream keep-alive)", got)
	}
}

func TestUntrustingClientFailsWithoutHang(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	p := startProxy(t, Options{CA: ca, UpstreamCAs: originPool(origin),
		DialContext: (&mapDialer{target: origin.Listener.Addr().String()}).DialContext})
	_, err := proxyClient(p, x509.NewCertPool()).Get("https://video.example.com/small")
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("client not trusting our CA: got %v, want a certificate verification error", err)
	}
	// The proxy still answers a trusting client afterwards.
	resp, err := proxyClient(p, caPool(ca)).Get("https://video.example.com/small")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestUpstreamFailuresAnswer502(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name      string
		target    string
		upstream  *x509.CertPool
		url       string
		wantCause string
	}{
		{"closed port", closedAddr, originPool(origin), "https://gone.example.com/small", "cannot connect"},
		{"untrusted upstream certificate", origin.Listener.Addr().String(), nil, "https://selfsigned.example.com/small", "bad upstream certificate"},
		{"upstream certificate for another name", origin.Listener.Addr().String(), originPool(origin), "https://wrong.test/small", "bad upstream certificate"},
		{"plain http closed port", closedAddr, nil, "http://gone.example.com/small", "cannot connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &tapRecorder{}
			p := startProxy(t, Options{CA: ca, UpstreamCAs: tt.upstream, Observer: obs,
				DialContext: (&mapDialer{target: tt.target}).DialContext})
			client := proxyClient(p, caPool(ca))
			for i := range 2 { // twice: the client connection survives a 502
				resp, err := client.Get(tt.url)
				if err != nil {
					t.Fatalf("GET %s (%d): %v", tt.url, i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadGateway {
					t.Fatalf("GET %s: status %d, want 502", tt.url, resp.StatusCode)
				}
				host := strings.TrimPrefix(strings.TrimPrefix(tt.url, "https://"), "http://")
				host = host[:strings.Index(host, "/")]
				if !strings.Contains(string(body), host) || !strings.Contains(string(body), tt.wantCause) {
					t.Errorf("502 body %q does not name host %s and cause %q", body, host, tt.wantCause)
				}
			}
			if got := p.Stats().UpstreamErrors; got != 2 {
				t.Errorf("UpstreamErrors: got %d, want 2", got)
			}
			if obs.len() != 0 {
				t.Errorf("observer saw %d exchanges for failed requests", obs.len())
			}
		})
	}
}

func TestUpstreamTimeout502(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	p := startProxy(t, Options{CA: ca, UpstreamCAs: originPool(origin), ResponseHeaderTimeout: 200 * time.Millisecond,
		DialContext: (&mapDialer{target: origin.Listener.Addr().String()}).DialContext})
	resp, err := proxyClient(p, caPool(ca)).Get("https://slow.example.com/block")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "timeout") {
		t.Errorf("status %d body %q, want 502 naming a timeout", resp.StatusCode, body)
	}
}

func TestInsecureUpstream(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	p := startProxy(t, Options{CA: ca, InsecureUpstream: true,
		DialContext: (&mapDialer{target: origin.Listener.Addr().String()}).DialContext})
	resp, err := proxyClient(p, caPool(ca)).Get("https://anything.test/small")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("InsecureUpstream: status %d, want 200", resp.StatusCode)
	}
}

func TestListenAddressChecks(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name        string
		listen      string
		allowRemote bool
		wantErr     error
	}{
		{"loopback v4", "127.0.0.1:0", false, nil},
		{"loopback v6", "[::1]:0", false, nil},
		{"localhost", "localhost:8080", false, nil},
		{"default", "", false, nil},
		{"all interfaces", "0.0.0.0:8080", false, ErrRemoteListen},
		{"empty host", ":8080", false, ErrRemoteListen},
		{"lan address", "192.0.2.10:8080", false, ErrRemoteListen},
		{"all interfaces allowed", "0.0.0.0:8080", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{CA: ca, Listen: tt.listen, AllowRemote: tt.allowRemote})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New(Listen %q): got %v, want %v", tt.listen, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "--allow-remote") {
				t.Errorf("error %q does not mention --allow-remote", err)
			}
		})
	}
	if _, err := New(Options{}); !errors.Is(err, ErrNoCA) {
		t.Errorf("New without CA: got %v, want ErrNoCA", err)
	}
}

func TestLocalPages(t *testing.T) {
	ca := newTestCA(t)
	dash := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "dashboard") })
	p := startProxy(t, Options{CA: ca, Handler: dash})
	_, port, _ := net.SplitHostPort(p.Addr())
	tests := []struct {
		name     string
		host     string
		path     string
		status   int
		body     string
		ctype    string
		noTarget bool
	}{
		{"ca.pem by IP", p.Addr(), "/ca.pem", 200, string(ca.CertPEM()), "application/x-pem-file", false},
		{"ca.pem by localhost", "localhost:" + port, "/ca.pem", 200, string(ca.CertPEM()), "application/x-pem-file", false},
		{"dashboard", p.Addr(), "/", 200, "dashboard", "", false},
		{"rebound DNS name", "evil.example.com:" + port, "/ca.pem", 403, "", "", false},
		{"rebound DNS name dashboard", "evil.example.com:" + port, "/", 403, "", "", false},
		{"wrong port", "127.0.0.1:1", "/", 403, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+p.Addr()+tt.path, nil)
			req.Host = tt.host
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("GET %s Host %s: status %d, want %d (%s)", tt.path, tt.host, resp.StatusCode, tt.status, body)
			}
			if tt.body != "" && string(body) != tt.body {
				t.Errorf("GET %s: body %q, want %q", tt.path, body, tt.body)
			}
			if tt.ctype != "" && resp.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("GET %s: Content-Type %q, want %q", tt.path, resp.Header.Get("Content-Type"), tt.ctype)
			}
		})
	}
	t.Run("no handler 404", func(t *testing.T) {
		p := startProxy(t, Options{CA: ca})
		resp, err := http.Get("http://" + p.Addr() + "/dashboard")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
}

// A browser that sends everything through the proxy (Chromium with
// --proxy-bypass-list=<-loopback>, as watch --browser starts it) still reaches
// the proxy's own pages: a plain-HTTP request for the proxy itself is served
// locally, not forwarded to itself. A CONNECT to itself is a loop: refused.
func TestSelfRequestsServedLocallyAndLoopRefused(t *testing.T) {
	ca := newTestCA(t)
	p := startProxy(t, Options{CA: ca, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "dashboard "+r.URL.Path)
	})})
	_, port, _ := net.SplitHostPort(p.Addr())
	client := proxyClient(p, caPool(ca))
	for u, want := range map[string]string{
		"http://" + p.Addr() + "/ca.pem":      "-----BEGIN CERTIFICATE-----",
		"http://localhost:" + port + "/x?y=1": "dashboard /x",
	} {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("GET %s through the proxy: %v", u, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), want) {
			t.Errorf("GET %s through the proxy: status %d body %.40q, want 200 %q", u, resp.StatusCode, body, want)
		}
	}
	if got := p.Stats().Requests; got != 0 {
		t.Errorf("%d requests forwarded, want 0: the proxy's own pages must not be proxied", got)
	}
	_, err := client.Get("https://localhost:" + port + "/")
	if err == nil || !strings.Contains(err.Error(), "Loop Detected") {
		t.Errorf("CONNECT to the proxy itself: got %v, want a 508 Loop Detected refusal", err)
	}
}

// fakeConn and fakeListener let the guard be tested with a non-loopback peer.
type fakeConn struct {
	net.Conn
	remote net.Addr
	closed bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error         { c.closed = true; return nil }

type fakeListener struct {
	net.Listener
	conns []*fakeConn
}

func (l *fakeListener) Accept() (net.Conn, error) {
	if len(l.conns) == 0 {
		return nil, net.ErrClosed
	}
	c := l.conns[0]
	l.conns = l.conns[1:]
	return c, nil
}

func TestGuardListenerDropsRemotePeers(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name        string
		allowRemote bool
		peer        string
		accepted    bool
	}{
		{"loopback v4", false, "127.0.0.1:5555", true},
		{"loopback v6", false, "[::1]:5555", true},
		{"remote refused", false, "192.0.2.1:5555", false},
		{"remote allowed", true, "192.0.2.1:5555", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(Options{CA: ca, AllowRemote: tt.allowRemote})
			if err != nil {
				t.Fatal(err)
			}
			addr, _ := net.ResolveTCPAddr("tcp", tt.peer)
			c := &fakeConn{remote: addr}
			g := &guardListener{Listener: &fakeListener{conns: []*fakeConn{c}}, p: p}
			got, err := g.Accept()
			if tt.accepted {
				if err != nil || got == nil {
					t.Fatalf("Accept from %s: %v, want accepted", tt.peer, err)
				}
			} else {
				if !errors.Is(err, net.ErrClosed) || !c.closed {
					t.Fatalf("Accept from %s: conn=%v err=%v closed=%v, want dropped", tt.peer, got, err, c.closed)
				}
				if p.Stats().RefusedPeers != 1 {
					t.Errorf("RefusedPeers: %d", p.Stats().RefusedPeers)
				}
			}
		})
	}
}

func TestTapWriteErrorKeepsClientStream(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	obs := &tapRecorder{failAfter: 100000}
	p := startProxy(t, Options{CA: ca, UpstreamCAs: originPool(origin), Observer: obs,
		DialContext: (&mapDialer{target: origin.Listener.Addr().String()}).DialContext})
	u := "https://video.example.com/bytes?n=2000000"
	resp, err := proxyClient(p, caPool(ca)).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(body, payload[:2000000]) {
		t.Fatalf("client stream broken by a failing tap: %d bytes, %v", len(body), err)
	}
	rec := obs.wait(t, u)
	if !errors.Is(rec.closeErr, ErrTapWrite) {
		t.Errorf("tap closed with %v, want ErrTapWrite", rec.closeErr)
	}
	if got := p.Stats().TapErrors; got != 1 {
		t.Errorf("TapErrors: got %d, want 1", got)
	}
}

func TestTapClosedWhenClientLeaves(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	obs := &tapRecorder{}
	p := startProxy(t, Options{CA: ca, UpstreamCAs: originPool(origin), Observer: obs,
		DialContext: (&mapDialer{target: origin.Listener.Addr().String()}).DialContext})
	u := "https://video.example.com/stream?n=1073741824" // 1 GiB: never fully buffered anywhere
	client := proxyClient(p, caPool(ca))
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // abandons the connection mid-body
	rec := obs.wait(t, u)
	if rec.closeErr == nil {
		t.Error("tap closed with nil for a body the client abandoned")
	}
	if rec.body.Len() >= 1<<30 {
		t.Errorf("tap received the whole body (%d bytes)", rec.body.Len())
	}
}

func TestShutdownClosesTunnels(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{CA: ca, Listen: ln.Addr().String(), UpstreamCAs: originPool(origin),
		DialContext: (&mapDialer{target: origin.Listener.Addr().String()}).DialContext})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	client := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(mustURL("http://" + ln.Addr().String())),
		TLSClientConfig: &tls.Config{RootCAs: caPool(ca)},
	}}
	resp, err := client.Get("https://video.example.com/stream?n=1073741824")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<16); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	// The intercepted tunnel was hijacked from net/http; shutdown must still cut it.
	_, err = io.Copy(io.Discard, resp.Body)
	if err == nil {
		t.Error("body of an open tunnel completed after shutdown; want it cut")
	}
	resp.Body.Close()
}

func TestListenAndServe(t *testing.T) {
	ca := newTestCA(t)
	p, err := New(Options{CA: ca, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.ListenAndServe(ctx) }()
	for p.Addr() == "" {
		runtime.Gosched()
	}
	if strings.HasSuffix(p.Addr(), ":0") {
		t.Fatalf("Addr %s is not the bound address", p.Addr())
	}
	resp, err := http.Get("http://" + p.Addr() + "/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, ca.CertPEM()) {
		t.Errorf("/ca.pem: got %q", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ListenAndServe after cancel: %v", err)
	}
}
