package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/certs"
)

// payload is deterministic random data the origin serves slices of.
var payload = func() []byte {
	b := make([]byte, 8<<20)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = r.Read(b)
	return b
}()

// originHandler serves:
//
//	/bytes?n=N     N payload bytes with Content-Length
//	/chunked?n=N   N payload bytes, chunked (flushed in 64 KiB pieces, no Content-Length)
//	/stream?n=N    N bytes of repeated payload, Content-Length set, for very large bodies
//	/block         waits until the request is canceled
//	anything else  "ok"
func originHandler(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	w.Header().Set("X-Origin-Path", r.URL.Path)
	switch r.URL.Path {
	case "/bytes":
		w.Header().Set("Content-Type", "video/mp2t")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(payload[:n])
	case "/chunked":
		w.Header().Set("Content-Type", "video/mp2t")
		rc := http.NewResponseController(w)
		for off := 0; off < n; off += 64 << 10 {
			_, _ = w.Write(payload[off:min(n, off+64<<10)])
			_ = rc.Flush()
		}
	case "/stream":
		w.Header().Set("Content-Length", strconv.Itoa(n))
		for left := n; left > 0; {
			k := min(left, len(payload))
			if _, err := w.Write(payload[:k]); err != nil {
				return
			}
			left -= k
		}
	case "/block":
		<-r.Context().Done()
	default:
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}
}

// newTLSOrigin starts an HTTPS origin on 127.0.0.1:0 whose handshake-error logs are discarded (tests provoke them).
func newTLSOrigin(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(originHandler))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func newTestCA(t testing.TB) *certs.CA {
	t.Helper()
	ca, err := certs.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatalf("certs.LoadOrCreate: %v", err)
	}
	return ca
}

// mapDialer sends every upstream connection to target and counts dials per requested address.
type mapDialer struct {
	target string
	mu     sync.Mutex
	dials  map[string]int
}

func (d *mapDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	if d.dials == nil {
		d.dials = make(map[string]int)
	}
	d.dials[addr]++
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, d.target)
}

func (d *mapDialer) count(addr string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials[addr]
}

// startProxy serves a proxy on 127.0.0.1:0 until the test ends, and checks Serve returns nil on shutdown.
func startProxy(t testing.TB, opts Options) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listen = ln.Addr().String()
	p, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve after shutdown: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after shutdown")
		}
	})
	// Addr is set by Serve before it accepts; the listener is already bound, so clients may dial at once.
	for p.Addr() == "" {
		runtime.Gosched()
	}
	return p
}

// proxyClient returns a client that uses p and trusts only roots.
func proxyClient(p *Proxy, roots *x509.CertPool) *http.Client {
	pu := &url.URL{Scheme: "http", Host: p.Addr()}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               http.ProxyURL(pu),
			TLSClientConfig:     &tls.Config{RootCAs: roots},
			MaxIdleConnsPerHost: 64,
			DisableCompression:  true,
		},
	}
}

func caPool(ca *certs.CA) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert())
	return pool
}

func originPool(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

// tapRecorder is an Observer that keeps every exchange and its tapped body.
type tapRecorder struct {
	mu   sync.Mutex
	recs map[string]*tapRec
	// failAfter, when > 0, makes each tap's Write fail once it has received that many bytes.
	failAfter int
}

type tapRec struct {
	ex       *Exchange
	failAt   int
	body     bytes.Buffer
	closes   atomic.Int32
	closeErr error
	done     chan struct{}
}

func (r *tapRec) Write(p []byte) (int, error) {
	if r.failAt > 0 && r.body.Len()+len(p) > r.failAt {
		return 0, fmt.Errorf("disk full")
	}
	return r.body.Write(p)
}

func (r *tapRec) Close(err error) {
	if r.closes.Add(1) == 1 {
		r.closeErr = err
		close(r.done)
	}
}

func (tr *tapRecorder) Observe(ex *Exchange) BodyTap {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.recs == nil {
		tr.recs = make(map[string]*tapRec)
	}
	rec := &tapRec{ex: ex, failAt: tr.failAfter, done: make(chan struct{})}
	tr.recs[ex.Req.URL.String()] = rec
	return rec
}

// wait returns the record for url once its tap was closed.
func (tr *tapRecorder) wait(t *testing.T, u string) *tapRec {
	t.Helper()
	tr.mu.Lock()
	rec := tr.recs[u]
	var keys []string
	for k := range tr.recs {
		keys = append(keys, k)
	}
	tr.mu.Unlock()
	if rec == nil {
		t.Fatalf("observer never saw %s (saw %s)", u, strings.Join(keys, ", "))
	}
	select {
	case <-rec.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("tap for %s was never closed", u)
	}
	if n := rec.closes.Load(); n != 1 {
		t.Errorf("tap for %s closed %d times, want 1", u, n)
	}
	return rec
}

func (tr *tapRecorder) len() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.recs)
}
