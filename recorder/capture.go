package recorder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streamsnatcher/streamsnatcher/playlist"
	"github.com/streamsnatcher/streamsnatcher/proxy"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// Capture learns streams from a browser's traffic as the proxy reports it. It
// keeps the segments the browser fetched, learns the numbering or reads the
// playlist, and once a stream is certain it backfills and merges it in the
// background, each stream in its own session. It implements proxy.Observer.
type Capture struct {
	store  *Store
	outDir string
	opts   Options
	mopts  MergeOptions
	log    *slog.Logger
	ctx    context.Context

	mu       sync.Mutex
	streams  []*live
	byShape  map[string]*live
	bySegURL map[string]segRef // playlist streams: segment URL (no query) → stream and index
	byList   map[string]*live  // playlist URL (no query) → stream
	byKey    map[string]*live  // encrypted playlist streams: key URI → stream
	wg       sync.WaitGroup
	pages    pageBook // the pages seen and whether they came from a private address (capture_guard.go)
	limits   CaptureLimits
}

type segRef struct {
	l *live
	i int64
}

// live is one stream being captured.
type live struct {
	s        *Session
	prog     *Progress
	shape    string
	seen     []string // distinct observed segment URLs while the template is uncertain
	observed map[string]string
	inflight map[int64]*flight // segments on their way: the browser's (tee'd) or the backfill's
	running  bool
	again    bool // new credentials arrived while running or paused: run again
	reason   string
	// Credentials observed while a run uses the session, applied before the next run.
	pendingHeaders  map[string]string
	pendingURL      string
	pendingSegments []string           // a reloaded playlist's segment URLs (fresh tokens)
	allowGaps       bool               // the person allowed a merge with holes
	userPaused      bool               // the person paused it: no automatic restarts
	cancel          context.CancelFunc // stops the run in progress
	runDone         chan struct{}      // closed when the run in progress returns
	deleted         bool
	guard           *Guard // where its backfill may go: the hosts the page used for it
}

// CaptureOptions configure a Capture.
type CaptureOptions struct {
	OutDir string // where merged files go; "" keeps them in each session's directory
	Run    Options
	Merge  MergeOptions
	Limits CaptureLimits // what a page may make it record; zero: the defaults
}

// NewCapture returns a Capture that saves sessions in store. Background work
// stops when ctx ends; Wait waits for it.
func NewCapture(ctx context.Context, store *Store, o CaptureOptions) *Capture {
	log := o.Run.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Capture{store: store, outDir: o.OutDir, opts: o.Run, mopts: o.Merge, log: log, ctx: ctx,
		byShape: map[string]*live{}, bySegURL: map[string]segRef{}, byList: map[string]*live{},
		byKey: map[string]*live{}, limits: o.Limits}
}

// Wait blocks until every background backfill and merge has returned.
func (c *Capture) Wait() { c.wg.Wait() }

// A StreamStatus is a snapshot of one captured stream.
type StreamStatus struct {
	Session  Summary
	Template string
	Headers  map[string]string // values of secrets redacted
	Progress *Progress
	Reason   string // what it waits for, or why it cannot go on
}

// Streams returns a snapshot of every stream seen, oldest first.
func (c *Capture) Streams() []StreamStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]StreamStatus, 0, len(c.streams))
	for _, l := range c.streams {
		// A run may be writing the session: read the copy it last saved.
		s, err := c.store.Load(l.s.ID)
		if err != nil {
			continue
		}
		st := StreamStatus{Session: s.Summary(), Progress: l.prog, Reason: l.reason, Headers: map[string]string{}}
		if s.Template != nil {
			st.Template = redactURL(s.Template.String())
		} else {
			st.Template = "playlist " + redactURL(s.PlaylistURL)
		}
		for k, v := range s.Headers {
			st.Headers[k] = RedactHeader(k, v)
		}
		out = append(out, st)
	}
	return out
}

var _ proxy.Observer = (*Capture)(nil)

// keptHeaders are the request headers a site may demand and a replay must send.
func keptHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k, vs := range h {
		lk := strings.ToLower(k)
		switch {
		case lk == "referer", lk == "origin", lk == "cookie", lk == "user-agent", lk == "authorization",
			lk == "accept-language", strings.HasPrefix(lk, "x-"):
			out[http.CanonicalHeaderKey(k)] = strings.Join(vs, "; ")
		}
	}
	return out
}

func stripQuery(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i]
	}
	return raw
}

type kind int

const (
	kindOther kind = iota
	kindPlaylist
	kindSegment
)

func classify(ex *proxy.Exchange) kind {
	ext := strings.ToLower(path.Ext(ex.Req.URL.Path))
	mt, _, _ := mime.ParseMediaType(ex.RespHeader.Get("Content-Type"))
	mt = strings.ToLower(mt)
	switch {
	case ext == ".m3u8" || strings.Contains(mt, "mpegurl"):
		return kindPlaylist
	case ext == ".ts" || ext == ".m4s" || ext == ".aac" || ext == ".cmfv" || ext == ".cmfa" ||
		mt == "video/mp2t" || mt == "video/iso.segment" || mt == "audio/aac":
		return kindSegment
	}
	return kindOther
}

// fullBody reports whether a response carries the whole resource: a 200, or a
// 206 whose Content-Range starts at 0 and ends at the last byte.
var contentRange = regexp.MustCompile(`^bytes 0-(\d+)/(\d+)$`)

func fullBody(ex *proxy.Exchange) bool {
	switch ex.Status {
	case http.StatusOK:
		return true
	case http.StatusPartialContent:
		m := contentRange.FindStringSubmatch(strings.TrimSpace(ex.RespHeader.Get("Content-Range")))
		if m == nil {
			return false
		}
		var end, size int64
		fmt.Sscan(m[1], &end)
		fmt.Sscan(m[2], &size)
		return end+1 == size
	}
	return false
}

// Observe is called by the proxy for every exchange.
func (c *Capture) Observe(ex *proxy.Exchange) proxy.BodyTap {
	if ex.Req == nil || ex.Req.Method != http.MethodGet {
		return nil
	}
	c.pages.note(ex)
	k := classify(ex)
	if k == kindOther {
		return c.onKey(ex)
	}
	if ex.Status == http.StatusUnauthorized || ex.Status == http.StatusForbidden {
		c.log.Info("the origin refused the browser", "url", redactURL(ex.Req.URL.String()), "status", ex.Status)
		return nil
	}
	if !fullBody(ex) {
		return nil
	}
	switch k {
	case kindPlaylist:
		u := ex.Req.URL.String()
		h := keptHeaders(ex.Req.Header)
		return &bufTap{max: playlist.MaxSize, done: func(b []byte) { c.onPlaylist(u, h, b) }}
	default:
		return c.onSegment(ex)
	}
}

// bufTap collects a small body (a playlist) and hands it over when complete.
type bufTap struct {
	buf  bytes.Buffer
	max  int
	over bool
	done func([]byte)
}

func (t *bufTap) Write(p []byte) (int, error) {
	if t.buf.Len()+len(p) > t.max {
		t.over = true
		return 0, ErrTooLarge
	}
	return t.buf.Write(p)
}

func (t *bufTap) Close(err error) {
	if err == nil && !t.over {
		t.done(t.buf.Bytes())
	}
}

// fileTap writes a segment body to a private .partial and renames it when
// complete and valid.
type fileTap struct {
	f      *os.File
	path   string
	n      int64
	want   int64
	max    int64 // the size cap (Options.MaxSegmentBytes): past it the copy is dropped
	sniffd bool
	bad    error
	done   func(ok bool)
}

// newFileTap tees into a private file in the tee/ directory beside segments/
// (a run's start clears stray .partial files in segments/, which must not
// take a copy still being written), renamed to dst when complete.
func newFileTap(s *Session, dst string, want, max int64, done func(bool)) *fileTap {
	dir := filepath.Join(s.Dir(), "tee")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil
	}
	f, err := os.CreateTemp(dir, filepath.Base(dst)+".*.partial")
	if err != nil {
		return nil
	}
	return &fileTap{f: f, path: dst, want: want, max: max, done: done}
}

func (t *fileTap) Write(p []byte) (int, error) {
	if t.bad != nil {
		return 0, t.bad
	}
	if t.max > 0 && t.n+int64(len(p)) > t.max {
		t.bad = fmt.Errorf("%w: the browser's copy is over %d bytes: not kept", ErrTooLarge, t.max)
		return 0, t.bad
	}
	if !t.sniffd {
		t.sniffd = true
		if err := sniffMedia(p); err != nil {
			t.bad = err
			return 0, err
		}
	}
	n, err := t.f.Write(p)
	t.n += int64(n)
	if err != nil {
		t.bad = err
	}
	return n, err
}

func (t *fileTap) Close(err error) {
	cerr := t.f.Close()
	ok := err == nil && t.bad == nil && cerr == nil && t.n > 0 && (t.want < 0 || t.n == t.want)
	if ok {
		ok = os.Rename(t.f.Name(), t.path) == nil
	}
	if !ok {
		os.Remove(t.f.Name())
	}
	t.done(ok)
}

func (c *Capture) onPlaylist(u string, h map[string]string, data []byte) {
	base, err := url.Parse(u)
	if err != nil {
		return
	}
	pl, err := playlist.Parse(data, base)
	if err != nil {
		c.log.Warn("malformed playlist", "url", redactURL(u), "err", err)
		return
	}
	if pl.Media == nil {
		return // a master: the player will fetch the media playlist it chose
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := stripQuery(u)
	s := &Session{Source: "watch", Page: h["Referer"], Input: u, Headers: h}
	if err := s.useMedia(pl.Media, u); err != nil {
		c.log.Warn("playlist not usable", "url", redactURL(u), "err", err)
		return
	}
	if l, ok := c.byList[key]; ok {
		// The page was reloaded: the same list, perhaps with fresh tokens in its URLs.
		if len(s.Segments) == len(l.s.Segments) && !slices.Equal(s.Segments, l.s.Segments) {
			l.pendingSegments = s.Segments
		}
		c.refreshLocked(l, h, "")
		return
	}
	if !pl.Media.EndList {
		c.log.Info("live playlist: recording what it lists now", "url", redactURL(u))
	}
	g, err := c.guardFor(h, u)
	if err == nil {
		err = c.admitLocked(h["Referer"], len(s.Segments))
	}
	if err != nil {
		c.log.Warn("playlist not recorded", "url", redactURL(u), "err", err)
		return
	}
	l, err := c.newLive(s, "")
	if err != nil {
		c.log.Warn("could not save session", "err", err)
		return
	}
	l.guard = g
	c.byList[key] = l
	for i, su := range s.Segments {
		c.bySegURL[stripQuery(su)] = segRef{l, int64(i)}
	}
	if s.Key != nil {
		c.byKey[s.Key.URI] = l
	}
	l.reason = ""
	c.startLocked(l)
}

// onKey keeps the AES-128 key the browser fetched for an encrypted playlist
// stream, so the backfill need not fetch it again; its request's headers are
// fresh credentials like any other.
func (c *Capture) onKey(ex *proxy.Exchange) proxy.BodyTap {
	u := ex.Req.URL.String()
	c.mu.Lock()
	l := c.byKey[u]
	c.mu.Unlock()
	if l == nil || ex.Status != http.StatusOK {
		return nil
	}
	if l.guard != nil {
		l.guard.Allow(u) // the browser fetched the key from there
	}
	h := keptHeaders(ex.Req.Header)
	return &bufTap{max: keySize, done: func(b []byte) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if l.deleted || l.s.Key == nil || l.s.Key.URI != u {
			return
		}
		if len(b) == keySize && !fileExists(l.s.KeyPath()) {
			if err := l.s.saveKey(b); err != nil {
				c.log.Warn("could not keep the key", "session", l.s.ID, "err", err)
			}
		}
		c.refreshLocked(l, h, "")
	}}
}

func (c *Capture) newLive(s *Session, shape string) (*live, error) {
	if err := c.store.Create(s); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.SegmentDir(), 0o700); err != nil {
		return nil, err
	}
	if c.outDir != "" {
		name := "video"
		if u, err := url.Parse(s.Input); err == nil {
			name = SafeName(filepath.Base(path.Dir(u.Path)))
		}
		s.Target = filepath.Join(c.outDir, name+"-"+s.ID+".mp4")
	}
	l := &live{s: s, prog: NewProgress(), shape: shape, observed: map[string]string{}, inflight: map[int64]*flight{}}
	c.streams = append(c.streams, l)
	return l, s.Save()
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// SafeName makes a file name from anything: no separators, no "..", no
// leading dot, at most 80 bytes; "video" when nothing is left.
func SafeName(s string) string {
	s = unsafeChars.ReplaceAllString(s, "_")
	s = strings.Trim(strings.ReplaceAll(s, "..", "_"), "._-")
	if len(s) > 80 {
		s = s[:80]
	}
	if s == "" {
		s = "video"
	}
	return s
}

func (c *Capture) onSegment(ex *proxy.Exchange) proxy.BodyTap {
	u := ex.Req.URL.String()
	h := keptHeaders(ex.Req.Header)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ref, ok := c.bySegURL[stripQuery(u)]; ok {
		if ref.l.guard != nil {
			ref.l.guard.Allow(u) // the browser fetched this stream's segments from there
		}
		c.refreshLocked(ref.l, h, "")
		return c.teeLocked(ref.l, ref.i, ex.ContentLength)
	}
	shape := urltemplate.Shape(u)
	l := c.byShape[shape]
	if l == nil {
		t, err := urltemplate.Learn([]string{u})
		if err != nil {
			c.log.Warn("segment URL with no learnable number: not recorded", "url", redactURL(u), "err", err)
			return nil
		}
		s := &Session{Source: "watch", Page: h["Referer"], Input: u, Template: t, First: t.First, ProbeStart: true,
			Headers: h, Ext: segmentExt(u), State: StateLearning}
		g, err := c.guardFor(h, u)
		if err == nil {
			err = c.admitLocked(h["Referer"], 0)
		}
		if err != nil {
			c.log.Warn("segment not recorded", "url", redactURL(u), "err", err)
			return nil
		}
		if l, err = c.newLive(s, shape); err != nil {
			c.log.Warn("could not save session", "err", err)
			return nil
		}
		l.guard = g
		c.byShape[shape] = l
	}
	s := l.s
	if s.Template.Tentative {
		if _, dup := l.observed[u]; !dup {
			l.seen = append(l.seen, u)
		}
		if len(l.seen) >= 2 {
			t, err := urltemplate.Learn(l.seen)
			if err != nil && len(l.seen) > 2 {
				// An early odd one out (another rendition, a preview) must not block the
				// stream for good: the two latest observations decide.
				if t2, err2 := urltemplate.Learn(l.seen[len(l.seen)-2:]); err2 == nil {
					t, err = t2, nil
				}
			}
			if err != nil {
				l.reason = err.Error()
				s.Error = l.reason
				_ = s.Save()
				return nil
			}
			s.Template, s.First, s.Error, l.reason = t, t.First, "", ""
			c.adoptObservedLocked(l)
		} else {
			// One observation: keep the body aside until the numbering is certain.
			dst := filepath.Join(s.Dir(), fmt.Sprintf("observed-%d%s", len(l.observed), s.ext()))
			l.observed[u] = dst
			l.reason = "waiting for a second segment to learn the numbering"
			if !c.teeAllowed(s, ex.ContentLength) {
				return nil
			}
			return newFileTap(s, dst, ex.ContentLength, c.segmentCap(), func(bool) {})
		}
	}
	i, ok := s.Template.Match(u)
	if !ok {
		if _, loose := s.Template.MatchLoose(u); loose {
			c.refreshLocked(l, h, u) // a new token: no tee, the old template cannot name this URL yet
		}
		return nil
	}
	c.refreshLocked(l, h, "")
	tap := c.teeLocked(l, i, ex.ContentLength)
	c.startLocked(l)
	return tap
}

// adoptObservedLocked files the bodies kept aside under their learned indices.
func (c *Capture) adoptObservedLocked(l *live) {
	for u, p := range l.observed {
		if i, ok := l.s.Template.Match(u); ok && !l.s.Have(i) {
			os.Rename(p, l.s.SegmentPath(i))
		}
		os.Remove(p)
	}
	l.observed = map[string]string{}
}

// A flight is a segment on its way to disk; done closes when it landed or failed.
type flight struct {
	done    chan struct{}
	browser bool // the browser's request, to be tee'd
	teed    bool
	once    sync.Once
}

// landLocked ends the flight of segment i.
func (l *live) landLocked(i int64, f *flight) {
	f.once.Do(func() {
		if l.inflight[i] == f {
			delete(l.inflight, i)
		}
		close(f.done)
	})
}

func (c *Capture) land(l *live, i int64, f *flight) {
	c.mu.Lock()
	l.landLocked(i, f)
	c.mu.Unlock()
}

// teeLocked saves the browser's copy of segment i, unless it is already on
// disk or the backfill is fetching it. Encrypted streams are not tee'd: the
// backfill fetches and decrypts every segment itself.
func (c *Capture) teeLocked(l *live, i int64, want int64) proxy.BodyTap {
	if l.s.Key != nil || l.s.Have(i) {
		return nil
	}
	f := l.inflight[i]
	switch {
	case f == nil:
		f = &flight{done: make(chan struct{}), browser: true}
		l.inflight[i] = f
	case !f.browser || f.teed:
		return nil
	}
	f.teed = true
	var t *fileTap
	if c.teeAllowed(l.s, want) {
		t = newFileTap(l.s, l.s.SegmentPath(i), want, c.segmentCap(), func(bool) { c.land(l, i, f) })
	}
	if t == nil {
		l.landLocked(i, f)
		return nil
	}
	return t
}

// refreshLocked takes fresh credentials from a new observation: headers, and
// a new token when fresh is a URL of the same stream with a different query.
func (c *Capture) refreshLocked(l *live, h map[string]string, fresh string) {
	if fresh != "" && l.guard != nil {
		l.guard.Allow(fresh) // the browser fetched it
	}
	changed := fresh != "" || l.pendingSegments != nil
	for k, v := range h {
		if l.s.Headers[k] != v {
			changed = true
		}
	}
	if !changed {
		return
	}
	if l.pendingHeaders == nil {
		l.pendingHeaders = map[string]string{}
	}
	for k, v := range h {
		l.pendingHeaders[k] = v
	}
	if fresh != "" {
		l.pendingURL = fresh
	}
	if l.running {
		l.again = true // the run in progress owns the session; the next one takes these
		return
	}
	c.applyPendingLocked(l)
	if l.s.State == StatePaused {
		l.again = true
		c.startLocked(l)
	}
}

// applyPendingLocked moves stashed credentials into the session; no run may be using it.
func (c *Capture) applyPendingLocked(l *live) {
	if l.s.Headers == nil {
		l.s.Headers = map[string]string{}
	}
	for k, v := range l.pendingHeaders {
		l.s.Headers[k] = v
	}
	if l.pendingURL != "" {
		if err := l.s.Refresh(l.pendingURL); err == nil {
			c.log.Info("fresh token taken from the browser", "session", l.s.ID)
		}
	}
	if l.pendingSegments != nil && len(l.pendingSegments) == len(l.s.Segments) {
		l.s.Segments = l.pendingSegments
		c.log.Info("fresh segment URLs taken from the reloaded playlist", "session", l.s.ID)
	}
	l.pendingHeaders, l.pendingURL, l.pendingSegments = nil, "", nil
	_ = l.s.Save()
}

// startLocked starts the background backfill and merge of a certain stream.
func (c *Capture) startLocked(l *live) {
	if l.deleted || l.userPaused {
		return
	}
	if l.running || l.s.Template != nil && l.s.Template.Tentative {
		return
	}
	if l.s.State == StateDone {
		return
	}
	if l.s.State == StateIncomplete || l.s.State == StateFailed {
		if !l.again {
			return
		}
	}
	l.running, l.again = true, false
	l.runDone = make(chan struct{})
	c.wg.Add(1)
	go c.runStream(l)
}

func (c *Capture) runStream(l *live) {
	defer c.wg.Done()
	unlock, ok := c.lockRun(l)
	if !ok {
		return
	}
	for {
		o := c.opts
		o.Progress = l.prog
		o.Claim = func(ctx context.Context, i int64) (bool, func()) { return c.claim(ctx, l, i) }
		c.mu.Lock()
		o.Guard = l.guard
		s := l.s
		mo := c.mopts
		mo.AllowGaps = mo.AllowGaps || l.allowGaps
		ctx, cancel := context.WithCancel(c.ctx)
		l.cancel = cancel
		c.mu.Unlock()
		_, err := Run(ctx, s, o, mo)
		cancel()
		c.mu.Lock()
		l.cancel = nil
		switch {
		case l.userPaused:
			l.reason = "paused by you"
			if s.State == StateInterrupted {
				s.State = StatePaused
				_ = s.Save()
			}
		case err == nil:
			l.reason = ""
		case errors.Is(err, ErrExpired):
			l.reason = "paused: the origin refused access; reload the page in the browser to refresh the token"
		default:
			l.reason = err.Error()
		}
		if err != nil {
			c.log.Warn("stream stopped", "session", s.ID, "err", err)
		}
		if l.again && !l.userPaused && c.ctx.Err() == nil && s.State != StateDone {
			l.again = false
			c.applyPendingLocked(l)
			c.mu.Unlock()
			continue
		}
		unlock() // before runDone: whoever waits for the run may take the lock
		l.running = false
		close(l.runDone)
		c.mu.Unlock()
		return
	}
}

// claim lets the backfill fetch segment i unless the browser's copy is on its
// way; while the backfill fetches it, a browser request for it waits for that copy.
func (c *Capture) claim(ctx context.Context, l *live, i int64) (bool, func()) {
	c.mu.Lock()
	f := l.inflight[i]
	if f == nil {
		mine := &flight{done: make(chan struct{})}
		l.inflight[i] = mine
		c.mu.Unlock()
		return false, func() { c.land(l, i, mine) }
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return true, nil
	case <-ctx.Done():
		return false, nil
	}
}

// Respond answers the browser from disk when a segment it asks for is already
// complete (fetched by the backfill), so the origin serves each segment once.
// Segments of encrypted streams are kept decrypted, which is not what the
// browser expects: those requests always go to the origin.
// It implements proxy.Responder.
func (c *Capture) Respond(req *http.Request) *http.Response {
	if req.Method != http.MethodGet {
		return nil
	}
	rng := req.Header.Get("Range")
	first, last, ok := parseRange(rng)
	if rng != "" && !ok {
		return nil // several ranges, or a suffix: the origin answers those
	}
	whole := first == 0 && last < 0
	u := req.URL.String()
	c.mu.Lock()
	var l *live
	var i int64
	if ref, ok := c.bySegURL[stripQuery(u)]; ok {
		l, i = ref.l, ref.i
	} else if sl := c.byShape[urltemplate.Shape(u)]; sl != nil && !sl.s.Template.Tentative {
		if idx, ok := sl.s.Template.Match(u); ok {
			l, i = sl, idx
		}
	}
	if l == nil || l.s.Key != nil {
		c.mu.Unlock()
		return nil
	}
	path := l.s.SegmentPath(i)
	f := l.inflight[i]
	if f == nil && !l.s.Have(i) {
		if !whole {
			c.mu.Unlock()
			return nil // a part of it: forwarded, not tee'd
		}
		// Forwarded: claim it for the browser so the backfill waits for the tee'd copy.
		// If no usable answer comes back, the claim lapses.
		f = &flight{done: make(chan struct{}), browser: true}
		l.inflight[i] = f
		time.AfterFunc(30*time.Second, func() { c.land(l, i, f) })
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	if f != nil {
		select {
		case <-f.done:
		case <-req.Context().Done():
			return nil
		case <-time.After(time.Minute):
			return nil
		}
	}
	file, err := os.Open(path)
	if err != nil {
		return nil
	}
	fi, err := file.Stat()
	if err != nil || fi.Size() == 0 {
		file.Close()
		return nil
	}
	size := fi.Size()
	if last < 0 || last >= size {
		last = size - 1
	}
	if first > last {
		file.Close()
		return nil // unsatisfiable here: let the origin say so
	}
	resp := &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {mimeFor(path)}}, Body: file, ContentLength: size, Request: req,
	}
	if rng != "" {
		// Players ask for "bytes=0-", and after a pause for the rest from an offset.
		resp.StatusCode = http.StatusPartialContent
		resp.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, size))
		resp.ContentLength = last - first + 1
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.NewSectionReader(file, first, resp.ContentLength), file}
	}
	resp.Status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	resp.Header.Set("Content-Length", fmt.Sprint(resp.ContentLength))
	return resp
}

// parseRange reads a single "bytes=first-" or "bytes=first-last" range; last
// is -1 when open. An empty header is the whole body (0, -1, true).
func parseRange(h string) (first, last int64, ok bool) {
	if h == "" {
		return 0, -1, true
	}
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	a, b, dash := strings.Cut(spec, "-")
	if !found || !dash || strings.Contains(spec, ",") || a == "" {
		return 0, 0, false
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 {
		return 0, 0, false
	}
	if b == "" {
		return first, -1, true
	}
	last, err = strconv.ParseInt(b, 10, 64)
	if err != nil || last < first {
		return 0, 0, false
	}
	return first, last, true
}

func mimeFor(p string) string {
	switch filepath.Ext(p) {
	case ".m4s", ".mp4", ".cmfv":
		return "video/iso.segment"
	case ".aac":
		return "audio/aac"
	}
	return "video/mp2t"
}

// Actions a person can take on a stream (the dashboard's buttons).
const (
	ActionPause     = "pause"      // stop the backfill; nothing is lost
	ActionResume    = "resume"     // start or continue the backfill and merge
	ActionAllowGaps = "allow-gaps" // merge even with segments missing
	ActionMerge     = "merge"      // merge now, with what is there (allows gaps)
	ActionDelete    = "delete"     // stop and remove the session and its segments
)

// ErrUnknownStream means no captured stream has that session id.
var ErrUnknownStream = errors.New("no such stream")

// Act applies a person's action to the stream of session id.
func (c *Capture) Act(id, action string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var l *live
	for _, x := range c.streams {
		if x.s.ID == id && !x.deleted {
			l = x
		}
	}
	if l == nil {
		return fmt.Errorf("%q: %w", id, ErrUnknownStream)
	}
	switch action {
	case ActionPause:
		l.userPaused = true
		if l.cancel != nil {
			l.cancel()
		}
	case ActionResume:
		l.userPaused, l.again = false, true
		c.kickLocked(l)
	case ActionAllowGaps, ActionMerge:
		l.allowGaps, l.userPaused, l.again = true, false, true
		c.kickLocked(l)
	case ActionDelete:
		l.deleted = true
		if l.cancel != nil {
			l.cancel()
		}
		dir := l.s.Dir()
		go func() {
			c.waitRun(l)
			if unlock, err := l.s.Lock("watch"); err == nil { // not under another process
				os.RemoveAll(dir)
				unlock()
			}
		}()
		for k, v := range c.byShape {
			if v == l {
				delete(c.byShape, k)
			}
		}
		for k, v := range c.byList {
			if v == l {
				delete(c.byList, k)
			}
		}
		for k, v := range c.bySegURL {
			if v.l == l {
				delete(c.bySegURL, k)
			}
		}
		for k, v := range c.byKey {
			if v == l {
				delete(c.byKey, k)
			}
		}
		kept := c.streams[:0]
		for _, x := range c.streams {
			if x != l {
				kept = append(kept, x)
			}
		}
		c.streams = kept
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	return nil
}

// kickLocked (re)starts a stream's run, or makes the run in progress go again.
func (c *Capture) kickLocked(l *live) {
	if l.running {
		if l.cancel != nil && l.allowGaps {
			l.cancel() // restart with the new merge options
		}
		return
	}
	c.startLocked(l)
}

// waitRun waits until the stream has no run in progress.
func (c *Capture) waitRun(l *live) {
	c.mu.Lock()
	done := l.runDone
	c.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Add adopts a session made elsewhere (the dashboard's form, a replay) and runs it.
func (c *Capture) Add(s *Session) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.Dir() == "" {
		if err := c.store.Create(s); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(s.SegmentDir(), 0o700); err != nil {
		return err
	}
	l := &live{s: s, prog: NewProgress(), observed: map[string]string{}, inflight: map[int64]*flight{}}
	c.streams = append(c.streams, l)
	c.kickLocked(l)
	return nil
}
