package recorder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrGuarded means a backfill started from a page tried to reach a host the
// page's own traffic did not use for that stream, or a private address when
// the page did not come from one: a page must not steer the recorder, with
// the user's cookies, at other hosts or at the local network.
var ErrGuarded = errors.New("refused by the page guard")

// A Guard limits where a backfill started from a page (the capture) may
// connect: only hosts the page's own traffic used for that stream, and no
// loopback, private or link-local address unless the page itself came from
// one. Addresses are checked at dial time, after name resolution, so DNS
// rebinding does not get around it. get and replay with an explicit URL run
// without a guard. A Guard is safe for concurrent use; hosts may be added
// while a run uses it.
type Guard struct {
	page         string // the page, for messages
	allowPrivate bool

	mu    sync.Mutex
	hosts map[string]bool // lower-case host names or IP literals, without port
}

// NewGuard returns a guard for a stream seen on page (a URL or ""), allowing
// the given hosts; allowPrivate says the page came from a private address.
func NewGuard(page string, allowPrivate bool, hosts ...string) *Guard {
	g := &Guard{page: page, allowPrivate: allowPrivate, hosts: map[string]bool{}}
	for _, h := range hosts {
		g.Allow(h)
	}
	return g
}

// Allow adds a host (a host, host:port or URL) the page's traffic used.
func (g *Guard) Allow(host string) {
	if h := hostOnly(host); h != "" {
		g.mu.Lock()
		g.hosts[h] = true
		g.mu.Unlock()
	}
}

// AllowsHost reports whether the page's traffic used host (host or host:port).
func (g *Guard) AllowsHost(host string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hosts[hostOnly(host)]
}

// CheckURL refuses a URL whose host the page did not use, or whose host is a
// private IP literal (or localhost) the page may not reach.
func (g *Guard) CheckURL(raw string) error {
	h := hostOnly(raw)
	if !g.AllowsHost(h) {
		return fmt.Errorf("%s: %w: the page %s did not fetch anything for this stream from %s", redactURL(raw), ErrGuarded, g.pageName(), h)
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return g.checkAddr(ip)
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return g.checkAddr(netip.IPv6Loopback())
	}
	return nil
}

func (g *Guard) pageName() string {
	if g.page == "" {
		return "(unknown)"
	}
	return redactURL(g.page)
}

// checkAddr refuses a private address unless the page came from one.
func (g *Guard) checkAddr(ip netip.Addr) error {
	if g.allowPrivate || !PrivateAddr(ip) {
		return nil
	}
	return fmt.Errorf("%w: %s is a loopback, private or link-local address and the page %s did not come from one (record it with 'streamsnatcher get URL' if you mean it)",
		ErrGuarded, ip, g.pageName())
}

// Control is a net.Dialer Control hook: it refuses a connection to a private
// address (after resolution, before connecting) unless the page came from one.
func (g *Guard) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check address %q", ErrGuarded, address)
	}
	return g.checkAddr(ap.Addr())
}

// PrivateAddr reports whether ip is loopback, private (RFC 1918, fc00::/7),
// link-local, unspecified, multicast or shared (100.64.0.0/10): nothing a
// page on the internet may make the recorder reach.
func PrivateAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || cgnat.Contains(ip)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// hostOnly returns the lower-case host of a URL, host:port or host.
func hostOnly(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
		if j := strings.IndexAny(s, "/?#"); j >= 0 {
			s = s[:j]
		}
		if at := strings.LastIndex(s, "@"); at >= 0 {
			s = s[at+1:]
		}
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	return strings.ToLower(strings.Trim(s, "[]"))
}

// client returns c with every request checked against the guard: its host
// (each redirect hop too) and, at dial time, the address it resolves to.
func (g *Guard) client(c *http.Client) *http.Client {
	cc := *c
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if tr, ok := base.(*http.Transport); ok {
		tr = tr.Clone()
		if dial := tr.DialContext; dial != nil {
			// A caller's dialer (tests map names to local servers): check the
			// address it actually connected to before anything is sent.
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				if err := g.Control(network, conn.RemoteAddr().String(), nil); err != nil {
					conn.Close()
					return nil, err
				}
				return conn, nil
			}
		} else {
			d := &net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second, Control: g.Control}
			tr.DialContext = d.DialContext
		}
		base = tr
	}
	cc.Transport = guardTransport{base: base, g: g}
	return &cc
}

type guardTransport struct {
	base http.RoundTripper
	g    *Guard
}

func (t guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.g.CheckURL(req.URL.String()); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(req)
}
