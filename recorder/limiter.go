package recorder

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"time"
)

// A HostLimiter paces the backfill per host, additive increase and
// multiplicative decrease: each host starts at a modest number of requests at
// once, gains one for every few successes while the origin keeps up, and is
// halved when it shows strain (a connection error, a timeout, a stall, a 429
// or 503). A capture shares one between its recordings so that the browser's
// own requests still find the origin listening; get and replay run without
// one, at their full concurrency. Safe for concurrent use.
type HostLimiter struct {
	start, min int
	every      int           // successes per step up
	cool       time.Duration // a second cut within this is the same episode

	mu    sync.Mutex
	hosts map[string]*hostLimit
}

type hostLimit struct {
	limit int
	busy  int
	ok    int
	cut   time.Time
	wake  chan struct{} // closed and replaced when a slot frees or the limit grows
}

// LimiterOptions tune a HostLimiter; zero values take the defaults.
type LimiterOptions struct {
	Start int           // requests at once per host at first; 0: 4
	Min   int           // never fewer; 0: 1
	Every int           // successes per step up; 0: 4
	Cool  time.Duration // cuts closer than this count once; 0: 1s
}

// NewHostLimiter returns a limiter.
func NewHostLimiter(o LimiterOptions) *HostLimiter {
	if o.Start <= 0 {
		o.Start = 4
	}
	if o.Min <= 0 {
		o.Min = 1
	}
	if o.Every <= 0 {
		o.Every = 4
	}
	if o.Cool <= 0 {
		o.Cool = time.Second
	}
	return &HostLimiter{start: o.Start, min: o.Min, every: o.Every, cool: o.Cool, hosts: map[string]*hostLimit{}}
}

func (l *HostLimiter) hostLocked(host string, ceiling int) *hostLimit {
	h := l.hosts[host]
	if h == nil {
		h = &hostLimit{limit: min(l.start, ceiling), wake: make(chan struct{})}
		l.hosts[host] = h
	}
	return h
}

// acquire waits for a slot on rawURL's host, never more than ceiling at
// once. done reports how the request went and frees the slot.
func (l *HostLimiter) acquire(ctx context.Context, rawURL string, ceiling int) (done func(err error), err error) {
	host := rawURL
	if u, perr := url.Parse(rawURL); perr == nil {
		host = u.Host
	}
	ceiling = max(ceiling, 1)
	l.mu.Lock()
	for {
		h := l.hostLocked(host, ceiling)
		if h.busy < min(h.limit, ceiling) {
			h.busy++
			l.mu.Unlock()
			var once sync.Once
			return func(err error) { once.Do(func() { l.release(h, err, ceiling) }) }, nil
		}
		wake := h.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		l.mu.Lock()
	}
}

func (l *HostLimiter) release(h *hostLimit, err error, ceiling int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h.busy--
	switch {
	case err == nil:
		h.ok++
		if h.ok >= l.every && h.limit < ceiling {
			h.ok = 0
			h.limit++
		}
	case strained(err):
		h.ok = 0
		if now := time.Now(); now.Sub(h.cut) > l.cool {
			h.cut = now
			h.limit = max(l.min, h.limit/2)
		}
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

// Limit is the number of requests at once host may have now (for tests and
// the progress line).
func (l *HostLimiter) Limit(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.hosts[host]; h != nil {
		return h.limit
	}
	return l.start
}

// strained says whether err shows an origin that cannot keep up: it refused or
// dropped connections, timed out, stalled, or said so (429, 503).
func strained(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code == 429 || se.Code == 503
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrExpired) || errors.Is(err, ErrNotMedia) ||
		errors.Is(err, ErrTooLarge) || errors.Is(err, ErrDecrypt) || errors.Is(err, ErrUntrusted) || diskFull(err) {
		return false
	}
	switch reason(err) {
	case "reset", "network", "stalled", "truncated":
		return true
	}
	return errors.Is(err, ErrTooSlow)
}
