package certs

import (
	"container/list"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCacheSize is the number of hosts a LeafCache keeps when constructed with size 0.
const DefaultCacheSize = 1024

// renewBefore is how close to expiry a cached leaf may get before it is minted again.
const renewBefore = 24 * time.Hour

// LeafCache is a bounded, least-recently-used cache of leaf certificates keyed by host name. Concurrent requests
// for the same host share one mint. Its Fetch method has the shape of goproxy's CertStorage interface, so the
// proxy can hand it to goproxy without this package knowing about HTTP.
type LeafCache struct {
	// Now is the clock used to decide whether a cached leaf is close to expiry; nil means time.Now.
	// Set it before the cache is first used.
	Now func() time.Time

	ca    *CA
	size  int
	mints atomic.Int64

	mu      sync.Mutex
	entries map[string]*leafEntry
	lru     *list.List // of *leafEntry, most recently used at the front; ready entries only

	onWait func() // test hook: called when a caller starts waiting for another caller's mint
}

type leafEntry struct {
	host  string
	ready chan struct{} // closed when cert/err are set
	cert  *tls.Certificate
	exp   time.Time
	err   error
	elem  *list.Element
}

// NewLeafCache returns a cache that mints with ca and keeps at most size hosts (DefaultCacheSize when size <= 0).
func NewLeafCache(ca *CA, size int) *LeafCache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &LeafCache{ca: ca, size: size, entries: make(map[string]*leafEntry), lru: list.New()}
}

// Get returns a leaf certificate for host, minting it with the cache's CA when it is not cached or is within
// 24 hours of expiry.
func (c *LeafCache) Get(host string) (*tls.Certificate, error) {
	return c.Fetch(host, func() (*tls.Certificate, error) {
		if c.ca == nil {
			return nil, fmt.Errorf("leaf cache for %s: no CA to mint with", host)
		}
		return c.ca.mintAt(host, c.now())
	})
}

// Fetch returns the cached certificate for hostname or calls gen to create one. Concurrent calls for the same
// host while gen runs wait for its result; errors are returned to all of them and are not cached.
func (c *LeafCache) Fetch(hostname string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	key := normalizeHost(hostname)
	now := c.now()

	c.mu.Lock()
	e, ok := c.entries[key]
	if ok {
		select {
		case <-e.ready:
			if now.Add(renewBefore).Before(e.exp) {
				c.lru.MoveToFront(e.elem)
				c.mu.Unlock()
				return e.cert, nil
			}
			c.removeLocked(e) // near expiry: mint again below
		default:
			c.mu.Unlock()
			if c.onWait != nil {
				c.onWait()
			}
			<-e.ready
			return e.cert, e.err
		}
	}
	e = &leafEntry{host: key, ready: make(chan struct{})}
	c.entries[key] = e
	c.mu.Unlock()

	c.mints.Add(1)
	cert, err := gen()
	if err == nil {
		e.exp, err = expiry(cert)
	}
	if err != nil {
		err = fmt.Errorf("leaf certificate for %s: %w", key, err)
	}

	c.mu.Lock()
	e.cert, e.err = cert, err
	if err != nil {
		if c.entries[key] == e {
			delete(c.entries, key)
		}
	} else {
		e.elem = c.lru.PushFront(e)
		for c.lru.Len() > c.size {
			c.removeLocked(c.lru.Back().Value.(*leafEntry))
		}
	}
	close(e.ready)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return cert, nil
}

// removeLocked drops a ready entry; c.mu must be held.
func (c *LeafCache) removeLocked(e *leafEntry) {
	if e.elem != nil {
		c.lru.Remove(e.elem)
		e.elem = nil
	}
	if c.entries[e.host] == e {
		delete(c.entries, e.host)
	}
}

// Mints returns how many certificates the cache has minted (calls to a generator) since it was created.
func (c *LeafCache) Mints() int64 { return c.mints.Load() }

// Len returns the number of cached hosts.
func (c *LeafCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *LeafCache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func expiry(cert *tls.Certificate) (time.Time, error) {
	if cert == nil || len(cert.Certificate) == 0 {
		return time.Time{}, fmt.Errorf("generator returned no certificate")
	}
	if cert.Leaf != nil {
		return cert.Leaf.NotAfter, nil
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return time.Time{}, fmt.Errorf("parse generated certificate: %w", err)
	}
	return leaf.NotAfter, nil
}
