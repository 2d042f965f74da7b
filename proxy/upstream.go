package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/streamsnatcher/streamsnatcher/internal/redact"
)

func (p *Proxy) newTransport() *http.Transport {
	dial := p.opts.DialContext
	if dial == nil {
		d := &net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	tlsCfg := UpstreamTLS(p.opts.UpstreamCAs, p.opts.InsecureUpstream)
	return &http.Transport{
		Proxy:                 nil, // never chain to another proxy (HTTP_PROXY could point back at us)
		DialContext:           dial,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: p.opts.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true, // pass bodies through exactly as the origin encoded them
		ForceAttemptHTTP2:     true,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}
}

// UpstreamTLS is the TLS client configuration for upstream connections:
// certificates verified against the system roots and then extra (nil: the
// system roots only), or not verified at all when insecure. The proxy uses it,
// and so does every other fetch, so that one trust setting covers them all.
func UpstreamTLS(extra *x509.CertPool, insecure bool) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case insecure:
		cfg.InsecureSkipVerify = true
	case extra != nil:
		// Verify against the system roots, then against the extra roots: a CertPool cannot be merged.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = verifySystemOr(extra)
	}
	return cfg
}

// verifySystemOr verifies the peer chain for the SNI name against the system roots, falling back to extra.
func verifySystemOr(extra *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("upstream sent no certificate")
		}
		opts := x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		leaf := cs.PeerCertificates[0]
		_, sysErr := leaf.Verify(opts)
		if sysErr == nil {
			return nil
		}
		opts.Roots = extra
		if _, err := leaf.Verify(opts); err == nil {
			return nil
		}
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: sysErr}
	}
}

// hopHeaders are hop-by-hop headers, removed when forwarding (RFC 9110 section 7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

func upgradeType(h http.Header) string {
	for _, f := range h.Values("Connection") {
		for _, tok := range strings.Split(f, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return ""
}

// handleRequest forwards one request upstream and answers it: always with a response, a 502 when the upstream
// failed, so goproxy never drops an intercepted connection without an answer.
func (p *Proxy) handleRequest(req *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	p.requests.Add(1)
	def := "80"
	if req.URL.Scheme == "https" {
		def = "443"
	}
	if p.isSelf(req.URL.Host, def) {
		p.log.Warn("refused a request to the proxy itself", "url", redact.URL(req.URL.String()))
		return req, textResponse(req, http.StatusLoopDetected,
			fmt.Sprintf("streamsnatcher: refusing to forward %s: %s is this proxy (request loop)\n", req.URL, req.URL.Host))
	}

	if r, ok := p.observer.(Responder); ok {
		if resp := r.Respond(req); resp != nil {
			return req, resp
		}
	}

	out := req.Clone(req.Context())
	out.RequestURI = ""
	out.Close = false
	if req.ContentLength == 0 {
		out.Body = nil
	}
	upgrade := upgradeType(req.Header)
	removeHopHeaders(out.Header)
	if upgrade != "" {
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", upgrade)
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // do not let the transport add Go's
	}

	remote := traceRemote(out)
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		p.upstreamErrors.Add(1)
		cause := classify(err)
		p.log.Warn("upstream request failed", "url", redact.URL(req.URL.String()), "cause", cause, "err", redact.Text(err.Error()))
		return req, textResponse(req, http.StatusBadGateway,
			fmt.Sprintf("streamsnatcher: %s: %s: %v\n", req.URL.Host, cause, err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		removeHopHeaders(resp.Header)
	}

	seen := out.Clone(context.Background())
	seen.Body = nil
	seen.GetBody = nil
	ex := &Exchange{
		Req:           seen,
		Status:        resp.StatusCode,
		RespHeader:    resp.Header.Clone(),
		ContentLength: resp.ContentLength,
		Received:      time.Now(),
		RemoteAddr:    remote.get(),
	}
	tap := p.observer.Observe(ex)
	if tap != nil {
		if !bodyAllowed(req.Method, resp.StatusCode) || resp.Body == nil || resp.Body == http.NoBody {
			tap.Close(nil)
		} else {
			resp.Body = &tapBody{
				rc:     resp.Body,
				tap:    tap,
				url:    redact.URL(req.URL.String()),
				log:    p.log,
				onFail: func() { p.tapErrors.Add(1) },
			}
		}
	}
	return req, resp
}

func bodyAllowed(method string, status int) bool {
	if method == http.MethodHead {
		return false
	}
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// remoteAddr keeps the address of the connection a request went out on.
type remoteAddr struct {
	mu   sync.Mutex
	addr string
}

func (r *remoteAddr) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// traceRemote makes req record the upstream address it is sent to: the address dialed after resolution,
// which is what a recorder needs to know whether a page came from a private address.
func traceRemote(req *http.Request) *remoteAddr {
	r := &remoteAddr{}
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if info.Conn == nil {
			return
		}
		r.mu.Lock()
		r.addr = info.Conn.RemoteAddr().String()
		r.mu.Unlock()
	}}
	*req = *req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	return r
}

// classify names the cause of an upstream failure in words a user can act on.
func classify(err error) string {
	var (
		certErr     *tls.CertificateVerificationError
		unknownAuth x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		dnsErr      *net.DNSError
		opErr       *net.OpError
		netErr      net.Error
	)
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return "bad upstream certificate"
	case errors.As(err, &dnsErr):
		return "cannot resolve host"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "upstream timeout"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "cannot connect"
	case errors.Is(err, context.Canceled):
		return "request canceled"
	}
	return "upstream error"
}
