package proxy

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// Deadlines on intercepted CONNECT tunnels. net/http's timeouts stop applying once goproxy hijacks a CONNECT,
// so without these a client that opens a tunnel and never sends a TLS ClientHello (or stops half-way through
// the handshake, or leaves a tunnel idle) holds a connection and a goroutine forever.
const (
	defaultHandshakeTimeout  = 10 * time.Second
	defaultTunnelIdleTimeout = 2 * time.Minute
)

// Tunnel modes of a trackedConn.
const (
	modePlain     = iota // served by net/http, which manages the deadlines
	modeArmed            // a CONNECT was accepted: the handshake deadline starts at the hijack
	modeHandshake        // hijacked: the TLS handshake must finish before handshakeAt
	modeIdle             // a tunnel in use: each read must start getting data within the idle timeout
)

// tunnelState is the deadline bookkeeping of one client connection.
type tunnelState struct {
	mu          sync.Mutex
	mode        int
	handshake   time.Duration
	idle        time.Duration
	handshakeAt time.Time
	first       bool // the first bytes after the hijack were seen
}

type connKey struct{}

// withConn stores the client connection in the context of every request read from it (http.Server.ConnContext),
// so the CONNECT handler can find the connection it is about to hijack.
func withConn(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*trackedConn); ok {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

func connOf(r *http.Request) *trackedConn {
	if r == nil {
		return nil
	}
	tc, _ := r.Context().Value(connKey{}).(*trackedConn)
	return tc
}

// armHandshake is called when a CONNECT is about to be intercepted: the handshake deadline starts when net/http
// hands the connection over (its Hijack clears every deadline with SetDeadline(time.Time{})).
func (c *trackedConn) armHandshake(handshake, idle time.Duration) {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	c.t.mode, c.t.handshake, c.t.idle = modeArmed, handshake, idle
}

// handshakeDone switches the tunnel to the idle deadline.
func (c *trackedConn) handshakeDone() {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	if c.t.mode == modeHandshake {
		c.t.mode = modeIdle
		_ = c.Conn.SetDeadline(time.Time{}) // reads renew their own idle deadline from now on
	}
}

// SetDeadline passes t on, except that the hijack of an armed CONNECT (which clears the deadlines) starts the
// handshake deadline instead.
func (c *trackedConn) SetDeadline(t time.Time) error {
	c.t.mu.Lock()
	if c.t.mode == modeArmed && t.IsZero() {
		c.t.mode = modeHandshake
		c.t.handshakeAt = time.Now().Add(c.t.handshake)
		t = c.t.handshakeAt
	}
	c.t.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

// Read applies the tunnel's deadline: the absolute handshake deadline until the handshake is done (or the
// first bytes show the tunnel carries no TLS), then an idle deadline renewed at each read.
func (c *trackedConn) Read(b []byte) (int, error) {
	c.t.mu.Lock()
	mode, idle := c.t.mode, c.t.idle
	c.t.mu.Unlock()
	if mode == modeIdle {
		_ = c.Conn.SetReadDeadline(time.Now().Add(idle))
	}
	n, err := c.Conn.Read(b)
	if mode == modeHandshake && n > 0 {
		c.t.mu.Lock()
		if c.t.mode == modeHandshake && !c.t.first {
			c.t.first = true
			if b[0] != tlsHandshakeRecord {
				// Plain HTTP inside the tunnel: no handshake to wait for, only idleness.
				c.t.mode = modeIdle
				_ = c.Conn.SetDeadline(time.Time{})
			}
		}
		c.t.mu.Unlock()
	}
	return n, err
}

const tlsHandshakeRecord = 0x16
