package proxy

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// localHandler serves direct requests to the proxy's own address: /ca.pem, then Options.Handler or 404. It
// answers 403 to a Host header that is not the proxy's own address, so a web page whose DNS name was rebound to
// 127.0.0.1 cannot read the dashboard.
func (p *Proxy) localHandler() http.Handler {
	caPEM := p.opts.CA.CertPEM()
	next := p.opts.Handler
	if next == nil {
		next = http.NotFoundHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.allowedHost(r.Host) {
			p.log.Warn("refused a direct request with a foreign Host header", "host", r.Host, "remote", r.RemoteAddr)
			http.Error(w, "streamsnatcher: forbidden: Host "+r.Host+" is not this proxy's address", http.StatusForbidden)
			return
		}
		if r.URL.Path == "/ca.pem" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "application/x-pem-file")
			w.Header().Set("Content-Disposition", `attachment; filename="streamsnatcher-ca.pem"`)
			w.Header().Set("Cache-Control", "no-store")
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(caPEM))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowedHost reports whether a direct request's Host header names this proxy: localhost or any IP literal
// (which DNS rebinding cannot produce), with the proxy's port.
func (p *Proxy) allowedHost(hostport string) bool {
	self := p.addr.Load()
	if self == nil {
		return false
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, "80"
	}
	if port != self.port {
		return false
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	return net.ParseIP(host) != nil
}

// guardListener drops connections from non-loopback peers (unless AllowRemote) before any HTTP is read, and
// tracks accepted connections so a shutdown also closes hijacked, intercepted tunnels.
type guardListener struct {
	net.Listener
	p *Proxy
}

func (l *guardListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.p.opts.AllowRemote && !isLoopbackAddr(c.RemoteAddr()) {
			l.p.refusedPeers.Add(1)
			l.p.log.Warn("dropped a connection from a non-loopback peer; pass --allow-remote to accept it",
				"peer", c.RemoteAddr().String())
			_ = c.Close()
			continue
		}
		tc := &trackedConn{Conn: c, p: l.p}
		l.p.connsMu.Lock()
		l.p.conns[tc] = struct{}{}
		l.p.connsMu.Unlock()
		return tc, nil
	}
}

func isLoopbackAddr(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type trackedConn struct {
	net.Conn
	p    *Proxy
	once sync.Once
	t    tunnelState // deadlines once it carries an intercepted CONNECT (deadline.go)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.p.connsMu.Lock()
		delete(c.p.conns, c)
		c.p.connsMu.Unlock()
	})
	return c.Conn.Close()
}

func (p *Proxy) closeConns() {
	p.connsMu.Lock()
	conns := make([]*trackedConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.connsMu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}
