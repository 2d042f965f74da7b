package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// connect opens a tunnel through p to host and returns the raw client connection after the 200.
func connect(t *testing.T, p *Proxy, host string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT %s: %v %v", host, resp, err)
	}
	if br.Buffered() > 0 {
		t.Fatalf("bytes after the CONNECT response")
	}
	return c
}

// closedWithin waits for the proxy to close c and returns how long it took, failing after limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	took := time.Since(start)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the proxy still held the tunnel after %s", limit)
	}
	return took
}

// A client that opens a CONNECT and never sends a ClientHello is dropped after the handshake timeout.
func TestConnectWithoutClientHelloDropped(t *testing.T) {
	p := startProxy(t, Options{CA: newTestCA(t), HandshakeTimeout: 300 * time.Millisecond})
	var wg sync.WaitGroup
	held := make([]time.Duration, 20)
	for i := range held {
		c := connect(t, p, "silent.example.com:443")
		wg.Add(1)
		go func() {
			defer wg.Done()
			held[i] = closedWithin(t, c, 5*time.Second)
		}()
	}
	wg.Wait()
	for i, d := range held {
		if d < 200*time.Millisecond || d > 2*time.Second {
			t.Errorf("tunnel %d held %s, want about the 300ms handshake timeout", i, d)
		}
	}
}

// A handshake that starts (a byte of a TLS record) but never finishes is bounded the same way.
func TestConnectHalfHandshakeDropped(t *testing.T) {
	p := startProxy(t, Options{CA: newTestCA(t), HandshakeTimeout: 300 * time.Millisecond})
	c := connect(t, p, "half.example.com:443")
	c.Write([]byte{0x16, 0x03, 0x01}) // the start of a record header, then silence
	if d := closedWithin(t, c, 5*time.Second); d > 2*time.Second {
		t.Errorf("half handshake held %s", d)
	}
}

// Once the handshake is done the handshake deadline no longer applies: a tunnel used for longer than it
// still works; a tunnel idle for longer than the idle timeout is closed.
func TestTunnelDeadlinesAfterHandshake(t *testing.T) {
	ca := newTestCA(t)
	origin := newTLSOrigin(t)
	p := startProxy(t, Options{CA: ca, UpstreamCAs: originPool(origin), HandshakeTimeout: 200 * time.Millisecond,
		TunnelIdleTimeout: 700 * time.Millisecond, DialContext: (&mapDialer{target: origin.Listener.Addr().String()}).DialContext})
	c := connect(t, p, "busy.example.com:443")
	tc := tls.Client(c, &tls.Config{ServerName: "busy.example.com", RootCAs: caPool(ca)})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(tc)
	get := func() {
		t.Helper()
		fmt.Fprintf(tc, "GET /bytes?n=1000 HTTP/1.1\r\nHost: busy.example.com\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request on a tunnel older than the handshake timeout: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	for range 4 { // 4 × 150ms: well past the 200ms handshake timeout, never idle for 700ms
		time.Sleep(150 * time.Millisecond)
		get()
	}
	if d := closedWithin(t, c, 5*time.Second); d < 500*time.Millisecond || d > 3*time.Second {
		t.Errorf("idle tunnel closed after %s, want about the 700ms idle timeout", d)
	}
}

// Plain HTTP inside a CONNECT (no TLS) gets the idle deadline, not the handshake one.
func TestPlainTunnelIdleDeadline(t *testing.T) {
	p := startProxy(t, Options{CA: newTestCA(t), HandshakeTimeout: 200 * time.Millisecond, TunnelIdleTimeout: 600 * time.Millisecond})
	c := connect(t, p, "plain.example.com:80")
	c.Write([]byte("G")) // the first byte of a request, not a TLS record
	if d := closedWithin(t, c, 5*time.Second); d < 400*time.Millisecond || d > 3*time.Second {
		t.Errorf("plain tunnel closed after %s, want about the 600ms idle timeout", d)
	}
}
