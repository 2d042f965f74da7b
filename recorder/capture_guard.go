package recorder

import (
	"errors"
	"fmt"
	"mime"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// Checks the capture makes before it records or runs a stream: the session
// lock across processes, limits on what one page may start. They live here so
// capture.go only calls them.

// lockRun takes the session's lock for a run of the capture (the file I/O
// outside c.mu). When another process holds it, the stream waits with the
// reason shown and its run ends at once: nothing is written to a session
// someone else is recording.
func (c *Capture) lockRun(l *live) (unlock func(), ok bool) {
	unlock, err := l.s.Lock("watch")
	if err != nil {
		c.mu.Lock()
		defer c.unlock()
		l.reason = "paused: " + err.Error() + "; resume it here once that process has ended"
		c.log.Warn("stream not recorded", "session", l.s.ID, "err", err)
		l.running = false
		close(l.runDone)
		return nil, false
	}
	return unlock, true
}

// segmentCap is the size cap of one tee'd segment: the backfill's own.
func (c *Capture) segmentCap() int64 {
	if c.opts.MaxSegmentBytes > 0 {
		return c.opts.MaxSegmentBytes
	}
	return 256 << 20 // Options.fill's default
}

// teeAllowed says whether the browser's copy of a segment of s may be kept: not
// when its Content-Length is already over the cap, nor when the disk is below
// the free-space floor. The browser's stream is never affected.
func (c *Capture) teeAllowed(s *Session, contentLength int64) bool {
	if contentLength > c.segmentCap() {
		c.log.Warn("segment over the size cap: the browser's copy is not kept", "session", s.ID,
			"content_length", contentLength, "cap", c.segmentCap())
		return false
	}
	floor := c.opts.MinFreeBytes
	if floor == 0 {
		floor = DefaultMinFreeBytes
	}
	if err := c.space.check(s.Dir(), floor); err != nil {
		c.log.Warn("the browser's copy is not kept", "session", s.ID, "err", err)
		return false
	}
	return true
}

// spaceCache answers the free-space question from memory: the statfs runs in
// the background at most once a second, never under the capture's lock on
// the proxy's request path. A disk that just filled is noticed within a
// second; the backfill checks every segment itself.
type spaceCache struct {
	mu      sync.Mutex
	err     error
	at      time.Time
	running bool
}

func (c *spaceCache) check(dir string, floor int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running && time.Since(c.at) > time.Second {
		c.running = true
		free := freeSpace // read here: tests swap it between runs
		go func() {
			err := checkFreeWith(free, dir, floor)
			c.mu.Lock()
			c.err, c.at, c.running = err, time.Now(), false
			c.mu.Unlock()
		}()
	}
	return c.err
}

// pageBook remembers, per origin (scheme://host:port), whether the pages the
// browser loaded from it came from a private address, as the proxy dialed it.
type pageBook struct {
	mu      sync.Mutex
	private map[string]bool
}

const maxPages = 4096

// note records an HTML document's origin and address.
func (b *pageBook) note(ex *proxy.Exchange) {
	mt, _, _ := mime.ParseMediaType(ex.RespHeader.Get("Content-Type"))
	if mt != "text/html" && mt != "application/xhtml+xml" {
		return
	}
	ap, err := netip.ParseAddrPort(ex.RemoteAddr)
	if err != nil {
		return
	}
	origin := originOf(ex.Req.URL.String())
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.private == nil || len(b.private) >= maxPages {
		b.private = map[string]bool{}
	}
	b.private[origin] = PrivateAddr(ap.Addr())
}

// privatePage reports whether page (a Referer) came from a private address: as
// the proxy saw it load, or, never seen, when its host is a private IP
// literal or localhost.
func (b *pageBook) privatePage(page string) bool {
	if page == "" {
		return false
	}
	b.mu.Lock()
	p, seen := b.private[originOf(page)]
	b.mu.Unlock()
	if seen {
		return p
	}
	h := hostOnly(page)
	if ip, err := netip.ParseAddr(h); err == nil {
		return PrivateAddr(ip)
	}
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

func originOf(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return strings.ToLower(scheme + "://" + rest)
}

// guardFor builds the guard of a stream the browser fetched u of, on the page
// its headers name (Referer, else Origin). It refuses at once a URL whose host
// is a private IP literal when the page did not come from a private address.
func (c *Capture) guardFor(h map[string]string, u string) (*Guard, error) {
	page := h["Referer"]
	if page == "" {
		page = h["Origin"]
	}
	g := NewGuard(page, c.pages.privatePage(page), u)
	if err := g.CheckURL(u); err != nil {
		return nil, err
	}
	return g, nil
}

// Limits on what pages may make the capture record.
const (
	DefaultMaxCaptureSegments = 100_000 // segments in one captured playlist
	DefaultMaxPerPage         = 8       // active recordings started from one page (origin)
	DefaultMaxActive          = 32      // active recordings in all
)

// ErrLimit means a page asked the capture for more than its limits allow.
var ErrLimit = errors.New("over the capture's limits")

// admitLocked refuses a new stream from page with nsegs segments (0 when not
// known yet) when it would break a limit. c.mu is held; no I/O.
func (c *Capture) admitLocked(page string, nsegs int) error {
	maxSegs, perPage, all := c.limits.maxSegments(), c.limits.MaxPerPage, c.limits.MaxActive
	if perPage <= 0 {
		perPage = DefaultMaxPerPage
	}
	if all <= 0 {
		all = DefaultMaxActive
	}
	if nsegs > maxSegs {
		return fmt.Errorf("%w: the playlist lists %d segments, over the %d a captured stream may have (record it with 'streamsnatcher get URL' if you mean it)", ErrLimit, nsegs, maxSegs)
	}
	origin := originOf(page)
	active, fromPage := 0, 0
	for _, l := range c.streams {
		if l.deleted {
			continue
		}
		if !l.running { // a run owns l.s while it runs
			switch l.s.State {
			case StateDone, StateFailed, StateIncomplete:
				continue
			}
		}
		active++
		if originOf(l.s.Page) == origin {
			fromPage++
		}
	}
	switch {
	case fromPage >= perPage:
		return fmt.Errorf("%w: %d recordings from %s are active already (at most %d per page)", ErrLimit, fromPage, redactURL(origin), perPage)
	case active >= all:
		return fmt.Errorf("%w: %d recordings are active already (at most %d)", ErrLimit, active, all)
	}
	return nil
}

// CaptureLimits bound what pages can make the capture record; zero values
// take the defaults above.
type CaptureLimits struct {
	MaxSegments int // segments in one captured playlist
	MaxPerPage  int // active recordings started from one page
	MaxActive   int // active recordings in all
}

func (l CaptureLimits) maxSegments() int {
	if l.MaxSegments <= 0 {
		return DefaultMaxCaptureSegments
	}
	return l.MaxSegments
}
