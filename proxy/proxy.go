// Package proxy is the intercepting HTTP(S) proxy: it terminates TLS with leaf certificates signed by the
// install's CA, forwards requests upstream with verified TLS, streams responses back unchanged, reports every
// exchange to an Observer with a tee of the body, and serves the proxy's own pages (/ca.pem, a dashboard).
package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/streamsnatcher/streamsnatcher/certs"
	"github.com/streamsnatcher/streamsnatcher/internal/redact"
)

// DefaultListen is the address the proxy listens on when Options.Listen is empty.
const DefaultListen = "127.0.0.1:8080"

const defaultResponseHeaderTimeout = 60 * time.Second

var (
	// ErrRemoteListen means the listen address is not a loopback address and AllowRemote is off.
	ErrRemoteListen = errors.New("refusing to listen on a non-loopback address; pass --allow-remote to accept connections from other machines")
	// ErrNoCA means Options.CA is nil.
	ErrNoCA = errors.New("proxy needs a CA to sign intercepted connections")
)

// Options configure a Proxy.
type Options struct {
	// Listen is the address ListenAndServe binds; DefaultListen when empty.
	Listen string
	// AllowRemote permits a non-loopback listen address and connections from non-loopback peers.
	AllowRemote bool
	// CA signs the leaf certificates presented to clients. Required.
	CA *certs.CA
	// UpstreamCAs are roots trusted for upstream TLS in addition to the system roots; nil means system roots only.
	UpstreamCAs *x509.CertPool
	// InsecureUpstream disables verification of upstream certificates. Dangerous; logged loudly.
	InsecureUpstream bool
	// Observer is told about every forwarded exchange; nil observes nothing.
	Observer Observer
	// Logger receives the proxy's logs; nil discards them.
	Logger *slog.Logger
	// DialContext dials upstream connections; nil uses a net.Dialer. Tests use it to map made-up host names to
	// local servers.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Handler serves direct (non-proxy) requests to the proxy's own address, e.g. a dashboard. The proxy itself
	// answers GET /ca.pem. nil answers everything else with 404.
	Handler http.Handler
	// ResponseHeaderTimeout bounds the wait for upstream response headers; 0 means 60 seconds.
	ResponseHeaderTimeout time.Duration
	// HandshakeTimeout bounds an intercepted CONNECT from the moment it is accepted until the client's TLS
	// handshake is done (a client that never sends its ClientHello is dropped); 0 means 10 seconds.
	HandshakeTimeout time.Duration
	// TunnelIdleTimeout drops an intercepted tunnel (TLS or plain) whose client sends nothing for this long
	// while the proxy waits for its next request; 0 means 2 minutes.
	TunnelIdleTimeout time.Duration
}

// Stats are counters of what the proxy has done since it was created.
type Stats struct {
	Requests       int64 // requests forwarded or refused through the proxy (not local pages)
	UpstreamErrors int64 // requests answered 502 because the upstream failed
	TapErrors      int64 // body taps that failed on Write
	RefusedPeers   int64 // connections dropped because the peer was not loopback
	LeafMints      int64 // leaf certificates minted
}

// Proxy is an intercepting HTTP(S) proxy. Create it with New and run it with ListenAndServe or Serve.
type Proxy struct {
	opts      Options
	log       *slog.Logger
	observer  Observer
	local     http.Handler
	leaves    *certs.LeafCache
	transport *http.Transport
	gp        *goproxy.ProxyHttpServer

	addr atomic.Pointer[selfAddr]

	requests, upstreamErrors, tapErrors, refusedPeers atomic.Int64

	connsMu sync.Mutex
	conns   map[*trackedConn]struct{}
}

// selfAddr is the proxy's own listening address, used for loop detection and the Host check.
type selfAddr struct {
	addr string // host:port as bound
	ip   net.IP
	port string
	// localIPs are the machine's addresses when listening on an unspecified address.
	localIPs []net.IP
}

var _ goproxy.CertStorage = (*certs.LeafCache)(nil)

// New checks opts and builds a Proxy. It does not listen yet.
func New(opts Options) (*Proxy, error) {
	if opts.CA == nil {
		return nil, ErrNoCA
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if err := checkListen(opts.Listen, opts.AllowRemote); err != nil {
		return nil, err
	}
	if opts.ResponseHeaderTimeout <= 0 {
		opts.ResponseHeaderTimeout = defaultResponseHeaderTimeout
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = defaultHandshakeTimeout
	}
	if opts.TunnelIdleTimeout <= 0 {
		opts.TunnelIdleTimeout = defaultTunnelIdleTimeout
	}
	p := &Proxy{
		opts:     opts,
		log:      opts.Logger,
		observer: opts.Observer,
		leaves:   certs.NewLeafCache(opts.CA, 0),
		conns:    make(map[*trackedConn]struct{}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.observer == nil {
		p.observer = ObserverFunc(func(*Exchange) BodyTap { return nil })
	}
	p.local = p.localHandler()
	p.transport = p.newTransport()
	if opts.InsecureUpstream {
		p.log.Warn("UPSTREAM TLS CERTIFICATES ARE NOT VERIFIED: anyone on the network path can read and change " +
			"the traffic this proxy forwards; use this only for testing")
	}

	gp := goproxy.NewProxyHttpServer()
	gp.Logger = printfLogger{p.log}
	gp.Verbose = false
	gp.Tr = p.transport
	gp.ConnectDial = nil // NewProxyHttpServer reads HTTPS_PROXY; we never chain to another proxy.
	gp.ConnectDialWithReq = nil
	gp.CertStore = p.leaves
	gp.NonproxyHandler = p.local
	gp.KeepAcceptEncoding = true
	gp.OnRequest().HandleConnectFunc(p.handleConnect)
	gp.OnRequest().DoFunc(p.handleRequest)
	p.gp = gp
	return p, nil
}

// checkListen refuses a non-loopback listen address unless allowRemote.
func checkListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if allowRemote || isLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("listen address %s: %w", addr, ErrRemoteListen)
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// ListenAndServe listens on Options.Listen and serves until ctx is done.
func (p *Proxy) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", p.opts.Listen)
	if err != nil {
		return fmt.Errorf("proxy listen: %w", err)
	}
	return p.Serve(ctx, ln)
}

// Serve accepts proxy connections on ln until ctx is done, then closes ln and every connection, including
// intercepted tunnels. It returns nil after a shutdown through ctx.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	if err := checkListen(ln.Addr().String(), p.opts.AllowRemote); err != nil {
		_ = ln.Close()
		return err
	}
	p.addr.Store(newSelfAddr(ln.Addr()))
	srv := &http.Server{
		Handler:           http.HandlerFunc(p.serveHTTP),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       withConn,
	}
	// No TLS on the proxy port and no h2c: clients speak HTTP/1.1 to the proxy.
	srv.SetKeepAlivesEnabled(true)
	stop := context.AfterFunc(ctx, func() {
		_ = srv.Close()
		p.closeConns()
		p.transport.CloseIdleConnections()
	})
	defer stop()
	p.log.Info("proxy listening", "addr", ln.Addr().String())
	err := srv.Serve(&guardListener{Listener: ln, p: p})
	if ctx.Err() != nil {
		p.closeConns()
		return nil
	}
	return fmt.Errorf("proxy serve: %w", err)
}

// Addr returns the address the proxy is listening on, or "" before Serve has started.
func (p *Proxy) Addr() string {
	if a := p.addr.Load(); a != nil {
		return a.addr
	}
	return ""
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Requests:       p.requests.Load(),
		UpstreamErrors: p.upstreamErrors.Load(),
		TapErrors:      p.tapErrors.Load(),
		RefusedPeers:   p.refusedPeers.Load(),
		LeafMints:      p.leaves.Mints(),
	}
}

// CAPEM returns the PEM form of the CA certificate the proxy signs with.
func (p *Proxy) CAPEM() []byte { return p.opts.CA.CertPEM() }

func newSelfAddr(a net.Addr) *selfAddr {
	s := &selfAddr{addr: a.String()}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return s
	}
	s.port = port
	s.ip = net.ParseIP(host)
	if s.ip != nil && s.ip.IsUnspecified() {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, ad := range addrs {
				if n, ok := ad.(*net.IPNet); ok {
					s.localIPs = append(s.localIPs, n.IP)
				}
			}
		}
	}
	return s
}

// isSelf reports whether hostport (default port def) names the proxy's own listening address.
func (p *Proxy) isSelf(hostport, def string) bool {
	self := p.addr.Load()
	if self == nil || self.port == "" {
		return false
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, def
	}
	if port != self.port {
		return false
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() || ip.IsUnspecified() || ip.Equal(self.ip) {
		return true
	}
	for _, l := range self.localIPs {
		if ip.Equal(l) {
			return true
		}
	}
	return false
}

// serveHTTP routes a request that arrived on the proxy port: proxy requests (CONNECT or absolute-form) go to
// goproxy, direct requests to the local pages.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect && r.URL.IsAbs() && r.URL.Scheme == "http" && p.isSelf(r.URL.Host, "80") {
		// A browser that proxies everything asks the proxy for its own pages in absolute form:
		// serve them here rather than forward the request to ourselves. The local Host check still applies.
		r.Host = r.URL.Host
		r.URL = &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
		r.RequestURI = r.URL.RequestURI()
		p.local.ServeHTTP(w, r)
		return
	}
	if r.Method == http.MethodConnect || r.URL.IsAbs() {
		p.gp.ServeHTTP(w, r)
		return
	}
	p.local.ServeHTTP(w, r)
}

// handleConnect intercepts every CONNECT except one aimed at the proxy itself.
func (p *Proxy) handleConnect(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	if p.isSelf(host, "443") {
		p.requests.Add(1)
		p.log.Warn("refused CONNECT to the proxy itself", "host", host)
		ctx.Resp = textResponse(ctx.Req, http.StatusLoopDetected,
			fmt.Sprintf("streamsnatcher: refusing CONNECT to %s: that is this proxy (request loop)\n", host))
		return &goproxy.ConnectAction{Action: goproxy.ConnectReject}, host
	}
	if tc := connOf(ctx.Req); tc != nil {
		tc.armHandshake(p.opts.HandshakeTimeout, p.opts.TunnelIdleTimeout)
	}
	return &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: p.tlsConfigFor}, host
}

// tlsConfigFor is the client-facing TLS configuration for an intercepted CONNECT to host: leaves from our CA
// for the SNI name, or the CONNECT host when the client sends none (IP addresses).
func (p *Proxy) tlsConfigFor(host string, ctx *goproxy.ProxyCtx) (*tls.Config, error) {
	fallback := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		fallback = h
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := hello.ServerName
			if name == "" {
				name = fallback
			}
			return p.leaves.Get(name)
		},
		VerifyConnection: func(tls.ConnectionState) error {
			if tc := connOf(ctx.Req); tc != nil {
				tc.handshakeDone()
			}
			return nil
		},
	}, nil
}

// printfLogger adapts goproxy's Printf logging to slog at debug level.
type printfLogger struct{ l *slog.Logger }

func (g printfLogger) Printf(format string, v ...any) {
	g.l.Debug(redact.Text(strings.TrimSpace(fmt.Sprintf(format, v...))), "component", "goproxy")
}

func textResponse(req *http.Request, status int, body string) *http.Response {
	h := make(http.Header)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          readCloser{strings.NewReader(body)},
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }
