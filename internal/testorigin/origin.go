// Package testorigin is an HTTP origin on loopback ("a CDN in a test"): it serves a directory of
// playlists and segments with ranges, referer/cookie/token checks, throttling, time to first byte
// and seeded fault injection, and counts what it served so tests can assert on it.
//
// It is test and benchmark infrastructure: a normal package so tests and benchmarks of other
// packages can import it, never used by the tool itself.
package testorigin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Options configures an Origin. The zero value serves nothing but the page at PagePath.
type Options struct {
	// Dir is served at URL path Prefix + path relative to Dir. Empty serves no files.
	Dir string
	// Prefix is the URL path under which Dir is served, e.g. "/v/abc/". Default "/".
	Prefix string

	// TLS serves HTTPS with httptest's certificate; Client and CertPool trust it.
	TLS bool
	// HTTP2 offers h2 (with http/1.1) over TLS. It requires TLS.
	HTTP2 bool

	// RequireReferer, when set, makes protected requests (segments, playlists, keys) without
	// exactly this Referer answer 403.
	RequireReferer string
	// RequireCookie is "name=value": protected requests without that cookie answer 403.
	// The page at PagePath sets it with Set-Cookie.
	RequireCookie string
	// PagePath is where the HTML page is served (outside Prefix). Default "/watch".
	PagePath string
	// PageHTML is the page's body; "{{URL}}" in it is replaced by the Origin's URL.
	// Default: a tiny page.
	PageHTML string

	// TTFB delays every response before its headers.
	TTFB time.Duration
	// ConnRate limits bytes/s per connection (0 = unlimited).
	ConnRate int64
	// TotalRate limits bytes/s across all connections (0 = unlimited).
	TotalRate int64

	Faults Faults

	// Logf, if set, receives one line per request (t.Logf fits).
	Logf func(format string, args ...any)
}

// Origin is a running test origin. Its methods are safe for concurrent use.
type Origin struct {
	// URL is the base URL including Prefix, ending in "/": URL + "720p/000001.ts".
	URL string
	// Root is the scheme and host without Prefix, e.g. "https://127.0.0.1:41234".
	Root string

	opts      Options
	prefix    string
	pagePath  string
	cookie    *http.Cookie // required cookie, nil if none
	srv       *httptest.Server
	root      *os.Root // nil when Dir is empty
	totalRate *bucket  // nil when unlimited
	done      chan struct{}
	closeOnce sync.Once
	bytesSent atomic.Int64

	mu          sync.Mutex
	hits        map[string]int
	completed   map[string]int
	attempts    map[string]int // fault-eligible attempts per path
	faulted     map[string]int // faults injected per path
	scripted    map[string][]Fault
	faultCounts map[Fault]int
	forbidden   int
	last        map[string]Request
	expired     bool
	expireLeft  int // segment requests left before expiring; -1 = no countdown
	queryKey    string
	queryValue  string
}

// Request is what the origin recorded of a request.
type Request struct {
	Method     string
	RequestURI string
	Proto      string
	Header     http.Header
}

type connBucketKey struct{}

// New starts an Origin on 127.0.0.1 with a free port.
func New(opts Options) (*Origin, error) {
	if opts.HTTP2 && !opts.TLS {
		return nil, errors.New("testorigin: HTTP2 requires TLS")
	}
	if err := opts.Faults.validate(); err != nil {
		return nil, fmt.Errorf("testorigin: %w", err)
	}
	o := &Origin{
		opts:        opts,
		prefix:      normalizePrefix(opts.Prefix),
		pagePath:    opts.PagePath,
		done:        make(chan struct{}),
		hits:        map[string]int{},
		completed:   map[string]int{},
		attempts:    map[string]int{},
		faulted:     map[string]int{},
		scripted:    map[string][]Fault{},
		faultCounts: map[Fault]int{},
		last:        map[string]Request{},
		expireLeft:  -1,
	}
	if o.pagePath == "" {
		o.pagePath = "/watch"
	}
	if opts.RequireCookie != "" {
		name, value, ok := strings.Cut(opts.RequireCookie, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("testorigin: RequireCookie %q: want name=value", opts.RequireCookie)
		}
		o.cookie = &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true}
	}
	if opts.TotalRate > 0 {
		o.totalRate = newBucket(opts.TotalRate)
	}
	if opts.Dir != "" {
		root, err := os.OpenRoot(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("testorigin: open dir: %w", err)
		}
		o.root = root
	}

	srv := httptest.NewUnstartedServer(http.HandlerFunc(o.serveHTTP))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if opts.Logf != nil {
		srv.Config.ErrorLog = log.New(logfWriter(opts.Logf), "testorigin: server: ", 0)
	}
	if opts.ConnRate > 0 {
		srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connBucketKey{}, newBucket(opts.ConnRate))
		}
	}
	// The handler reads o.URL: set it before the server starts serving (the
	// race detector sees no ordering through the socket otherwise).
	scheme := "http://"
	if opts.TLS {
		scheme = "https://"
	}
	o.Root = scheme + srv.Listener.Addr().String()
	o.URL = o.Root + o.prefix
	if opts.TLS {
		srv.EnableHTTP2 = opts.HTTP2
		srv.TLS = &tls.Config{NextProtos: []string{"http/1.1"}}
		if opts.HTTP2 {
			srv.TLS.NextProtos = []string{"h2", "http/1.1"}
		}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	o.srv = srv
	if srv.URL != o.Root {
		srv.Close()
		return nil, fmt.Errorf("testorigin: server URL %s, want %s", srv.URL, o.Root)
	}
	return o, nil
}

// Start is New for tests and benchmarks: it fails tb on error and closes the Origin in tb.Cleanup.
func Start(tb testing.TB, opts Options) *Origin {
	tb.Helper()
	o, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(o.Close)
	return o
}

// Close stops the server. Stalled and throttled responses are cut off rather than waited for.
func (o *Origin) Close() {
	o.closeOnce.Do(func() {
		close(o.done)
		o.srv.CloseClientConnections()
		o.srv.Close()
		if o.root != nil {
			o.root.Close()
		}
	})
}

// Client returns a client that trusts the Origin's certificate (and speaks h2 when HTTP2 is set).
func (o *Origin) Client() *http.Client { return o.srv.Client() }

// Certificate returns the TLS certificate, nil without TLS.
func (o *Origin) Certificate() *x509.Certificate { return o.srv.Certificate() }

// CertPool returns a pool holding the Origin's certificate (empty without TLS).
func (o *Origin) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	if c := o.srv.Certificate(); c != nil {
		pool.AddCert(c)
	}
	return pool
}

// PageURL is the URL of the HTML page that sets the required cookie.
func (o *Origin) PageURL() string { return o.Root + o.pagePath }

// Hits returns how many requests were received for p. p may be a full URL, an absolute URL path,
// or a path relative to Prefix; the query is ignored.
func (o *Origin) Hits(p string) int {
	k := o.key(p)
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[k]
}

// TotalHits returns how many requests were received in all.
func (o *Origin) TotalHits() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, h := range o.hits {
		n += h
	}
	return n
}

// Completed returns how many GET responses for p wrote the whole file successfully: a 200, or a
// 206 whose range covered the whole file. Faulted, partial-range and HEAD responses do not count.
func (o *Origin) Completed(p string) int {
	k := o.key(p)
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.completed[k]
}

// FaultCounts returns how many faults of each kind ("500", "429", "reset", "truncate", "html",
// "stall") were injected.
func (o *Origin) FaultCounts() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := make(map[string]int, len(o.faultCounts))
	for f, n := range o.faultCounts {
		m[string(f)] = n
	}
	return m
}

// Forbidden returns how many requests were answered 403 (referer, cookie, token or expiry).
func (o *Origin) Forbidden() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.forbidden
}

// BytesSent returns the body bytes written by all responses.
func (o *Origin) BytesSent() int64 { return o.bytesSent.Load() }

// LastRequest returns the most recent request for p (see Hits for the forms of p).
func (o *Origin) LastRequest(p string) (Request, bool) {
	k := o.key(p)
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.last[k]
	if ok {
		r.Header = r.Header.Clone()
	}
	return r, ok
}

// SetExpired makes every segment request answer 403 (true), as an expired token or cookie would,
// or restores normal service (false, which also cancels ExpireAfter).
func (o *Origin) SetExpired(expired bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.expired = expired
	o.expireLeft = -1
}

// ExpireAfter serves n more segment requests, then answers 403 to segment requests until
// SetExpired(false) or SetRequiredQuery.
func (o *Origin) ExpireAfter(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.expired = false
	o.expireLeft = max(n, 0)
}

// SetRequiredQuery makes segment requests without ?key=value answer 403; an empty key removes the
// requirement. It also ends an expiry, as a refreshed token would.
func (o *Origin) SetRequiredQuery(key, value string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.queryKey, o.queryValue = key, value
	o.expired = false
	o.expireLeft = -1
}

// Inject queues faults for the next requests of p (any existing file, not only segments), one per
// request, before and regardless of the random faults. They count towards MaxPerPath.
func (o *Origin) Inject(p string, faults ...Fault) {
	k := o.key(p)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.scripted[k] = append(o.scripted[k], faults...)
}

// key normalises the forms accepted by Hits to the request's URL path.
func (o *Origin) key(p string) string {
	if u, err := url.Parse(p); err == nil && u.Scheme != "" {
		return u.Path
	}
	p, _, _ = strings.Cut(p, "?")
	if strings.HasPrefix(p, "/") {
		return p
	}
	return o.prefix + p
}

func normalizePrefix(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

type kind int

const (
	kindOther kind = iota
	kindSegment
	kindPlaylist
	kindKey
)

func classify(name string) kind {
	switch strings.ToLower(path.Ext(name)) {
	case ".ts", ".m4s", ".aac", ".mp4", ".m4a":
		return kindSegment
	case ".m3u8", ".mpd":
		return kindPlaylist
	case ".key":
		return kindKey
	}
	return kindOther
}

var contentTypes = map[string]string{
	".ts":   "video/mp2t",
	".m3u8": "application/vnd.apple.mpegurl",
	".mpd":  "application/dash+xml",
	".m4s":  "video/iso.segment",
	".mp4":  "video/mp4",
	".aac":  "audio/aac",
	".m4a":  "audio/mp4",
	".key":  "application/octet-stream",
	".vtt":  "text/vtt",
	".html": "text/html; charset=utf-8",
	".json": "application/json",
}

func contentType(name string) string {
	if ct, ok := contentTypes[strings.ToLower(path.Ext(name))]; ok {
		return ct
	}
	return "application/octet-stream"
}

// sleep waits d, returning early with an error when the request ends or the Origin closes.
func (o *Origin) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-o.done:
		return errClosed
	}
}

var errClosed = errors.New("testorigin: closed")

func (o *Origin) logf(format string, args ...any) {
	if o.opts.Logf != nil {
		o.opts.Logf(format, args...)
	}
}

type logfWriter func(format string, args ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// WriteFiles writes files (slash-separated names relative to dir) under dir, creating directories.
func WriteFiles(dir string, files map[string][]byte) error {
	for name, data := range files {
		rel := filepath.FromSlash(name)
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("testorigin: write %q: not a local path", name)
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("testorigin: write %q: %w", name, err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("testorigin: write %q: %w", name, err)
		}
	}
	return nil
}
