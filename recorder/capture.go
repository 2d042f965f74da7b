package recorder

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
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

	"github.com/streamsnatcher/streamsnatcher/media"
	"github.com/streamsnatcher/streamsnatcher/plan"
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
	bySegURL *segIndex[segRef]   // playlist streams: segment URL → recording, track and index (init: -n)
	byList   map[string]trackRef // media playlist URL (no query) → recording and track
	byKey    map[string]trackRef // encrypted playlist streams: key URI → recording and track
	// Master playlists seen: which media playlist is which variant or rendition.
	mediaOf  map[string]*masterRef // media playlist URL (no query) → its master
	byMaster map[string]*live      // master playlist URL (no query) → its recording
	early    map[string]*Track     // renditions seen before their recording existed
	inits    map[string]string     // fMP4 init segments seen, by directory URL and stream
	liveDirs map[string]bool       // directories of live playlists' segments
	aside    asideBook             // live segments the browser fetched before their follower listed them (capture_live.go)
	// DASH manifests seen (capture_dash.go).
	byManifest map[string]*dashRec // manifest URL (no query) → its recording
	dashReps   *segIndex[dashRep]  // segment and init URLs of every video representation
	dashDirs   map[string]bool     // directories of every representation: no learning under them
	wg         sync.WaitGroup
	pages      pageBook // the pages seen and whether they came from a private address (capture_guard.go)
	titles     titleBook
	space      spaceCache // the free-space floor, checked off the request path
	limits     CaptureLimits
	limiter    *HostLimiter  // paces every recording's backfill per host
	linger     time.Duration // how long a done recording's segments outlive the page's last request
	keep       bool          // the person keeps segments for good (MergeOptions.KeepSegments)

	// File work decided under mu, done once it is released (capture_io.go).
	dirty  []*live    // sessions to save
	later  []func()   // files to move
	saveMu sync.Mutex // held from a session's snapshot until it is on disk

	// notRecorded: the segments of a master's audio renditions its recording left out (--audio-lang; capture_audio.go):
	// the player's fetches of them are neither tee'd nor learned as a stream of their own.
	notRecorded *segIndex[*live]
}

type segRef struct {
	l     *live
	t     *Track
	i     int64
	plain bool // neither encrypted nor a byte range: the browser's copy is the file kept
	live  bool // a live track's: its follower may wait for the browser's copy (liveClaimLapse)
}

type trackRef struct {
	l *live
	t *Track
}

// A masterRef says which entry of which master playlist a media playlist is.
type masterRef struct {
	master  string // master URL (no query)
	variant *playlist.Variant
	audio   []playlist.Rendition // the variant's audio group (renditions with a URI)
	subs    []playlist.Rendition // the variant's subtitle group (renditions with a URI)
	rend    *playlist.Rendition  // set when the media playlist is this audio or subtitle rendition
}

// flightKey names one segment of one track.
type flightKey struct {
	track string
	i     int64
}

// live is one stream being captured.
type live struct {
	s        *Session
	prog     *Progress
	shape    string
	seen     []string                 // distinct observed segment URLs while the template is uncertain
	observed map[string]*observedCopy // the browser's copies of those segments, kept aside (adoptObservedLocked)
	inflight map[flightKey]*flight    // segments on their way: the browser's (tee'd) or the backfill's
	waiting  int                      // renditions whose playlists the browser has not fetched yet
	running  bool
	again    bool // new credentials arrived while running or paused: run again
	reason   string
	err      error // the last run's error
	// Credentials observed while a run uses the session, applied before the next run.
	pendingHeaders  map[string]string
	pendingURL      string
	pendingSegments map[string][]string // a reloaded playlist's segment URLs (fresh tokens), by track
	allowGaps       bool                // the person allowed a merge with holes
	userPaused      bool                // the person paused it: no automatic restarts
	cancel          context.CancelFunc  // stops the run in progress
	yield           func()              // stops it gently: the transfers under way land (Options.Yield)
	runDone         chan struct{}       // closed when the run in progress returns
	deleted         bool
	guard           *Guard    // where its backfill may go: the hosts the page used for it
	pendingTracks   []*Track  // tracks the player fetched while a run used the session (capture_subs.go)
	waitSub         string    // the default subtitle playlist (URL without query) the start waits for
	asked           time.Time // when the browser last asked for one of its segments
	swept           bool      // done, and its segments removed: the origin answers the browser again
	listed          []segURL  // the live follower's latest segments mapped, oldest first (capture_live.go)
	// landings counts the flights ended and the files moved in: a look at the
	// disk made after c.mu was released is current if it has not changed.
	landings uint64
	dirty    bool // to be saved once c.mu is released (saveLocked)

	// variant is the variant of the master it records, whose video follows the player's up; nextVariant
	// is the variant or representation to record once no run uses the session (capture_variant.go).
	variant     *playlist.Variant
	nextVariant *variantSwitch
}

// CaptureOptions configure a Capture.
type CaptureOptions struct {
	OutDir string // where merged files go; "" keeps them in each session's directory
	Run    Options
	Merge  MergeOptions
	Limits CaptureLimits // what a page may make it record; zero: the defaults
	// Linger is how long a finished recording's segments stay on disk, to
	// answer the page's requests, after the page last asked for one; 0:
	// DefaultLinger. Wait removes them too. Merge.KeepSegments keeps them for good.
	Linger time.Duration
	// Pace paces the backfill per host; zero: the defaults (see HostLimiter).
	Pace LimiterOptions
}

// DefaultLinger is how long a finished recording's segments answer the page.
const DefaultLinger = 5 * time.Minute

// NewCapture returns a Capture that saves sessions in store. Background work
// stops when ctx ends; Wait waits for it.
func NewCapture(ctx context.Context, store *Store, o CaptureOptions) *Capture {
	log := o.Run.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Capture{store: store, outDir: o.OutDir, opts: o.Run, mopts: o.Merge, log: log, ctx: ctx,
		byShape: map[string]*live{}, bySegURL: newSegIndex[segRef](), byList: map[string]trackRef{},
		byKey: map[string]trackRef{}, mediaOf: map[string]*masterRef{}, byMaster: map[string]*live{},
		early: map[string]*Track{}, inits: map[string]string{}, liveDirs: map[string]bool{}, limits: o.Limits,
		limiter: NewHostLimiter(o.Pace), linger: cmp.Or(o.Linger, DefaultLinger), keep: o.Merge.KeepSegments,
		byManifest: map[string]*dashRec{}, dashReps: newSegIndex[dashRep](), dashDirs: map[string]bool{},
		notRecorded: newSegIndex[*live](), aside: newAsideBook()}
}

// Wait blocks until every background backfill and merge has returned, then
// removes the segments of finished recordings (see CaptureOptions.Linger).
func (c *Capture) Wait() {
	c.wg.Wait()
	c.flushSaves()
	c.sweepAll()
}

// A StreamStatus is a snapshot of one captured stream.
type StreamStatus struct {
	Session  Summary
	Template string
	Headers  map[string]string // values of secrets redacted
	Progress *Progress
	Reason   string // what it waits for, or why it cannot go on
	Err      error  // why the last run stopped (nil: it ended well, or none has)
}

// Streams returns a snapshot of every stream seen, oldest first. It reads
// what each run last published and the progress counters; it never touches
// the disk, so the proxy's request path never waits for it.
func (c *Capture) Streams() []StreamStatus {
	c.mu.Lock()
	ls := slices.Clone(c.streams)
	c.unlock()
	out := make([]StreamStatus, 0, len(ls))
	for _, l := range ls {
		snap := l.s.Published()
		if snap == nil {
			continue
		}
		c.mu.Lock()
		reason, err := l.reason, l.err
		c.unlock()
		st := StreamStatus{Session: snap.Summary, Progress: l.prog, Reason: reason, Err: err, Template: snap.Template,
			Headers: snap.Headers}
		if d := l.prog.Done.Load(); st.Session.State != StateDone && int(d) > st.Session.SegmentsDone {
			st.Session.SegmentsDone = int(d)
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
	kindManifest
)

func classify(ex *proxy.Exchange) kind {
	ct := ex.RespHeader.Get("Content-Type")
	if ex.Status != http.StatusOK && ex.Status != http.StatusPartialContent {
		ct = "" // an error's Content-Type is its error page's; the name says what was asked for
	}
	switch media.Classify(ex.Req.URL.Path, ct) {
	case media.KindPlaylist:
		return kindPlaylist
	case media.KindSegment:
		return kindSegment
	case media.KindManifest:
		return kindManifest
	}
	return kindOther // init segments, keys (onKey), subtitles, pages
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
		if tap := c.subtitleTap(ex); tap != nil {
			return tap
		}
		if tap := c.titleTap(ex); tap != nil {
			return tap
		}
		if tap := c.onInit(ex); tap != nil {
			return tap
		}
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
		limit := c.limits.maxSegments()
		return &bufTap{max: playlist.MaxSize, done: func(b []byte) { c.onPlaylist(u, h, b) },
			entry: []byte("#EXTINF"), maxEntries: limit, onOver: func() {
				c.log.Warn("playlist not recorded", "url", redactURL(u), "err",
					fmt.Errorf("%w: the playlist lists more than the %d segments a captured stream may have (record it with 'streamsnatcher get URL' if you mean it)", ErrLimit, limit))
			}}
	case kindManifest:
		return c.manifestTap(ex)
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
	// A playlist is also dropped as it arrives once it lists more than
	// maxEntries entries (#EXTINF): a page's huge playlist is not kept whole
	// in memory only to be refused (onOver says so).
	entry      []byte
	maxEntries int
	entries    int
	onOver     func()
}

func (t *bufTap) Write(p []byte) (int, error) {
	if t.over {
		return 0, ErrTooLarge
	}
	if t.buf.Len()+len(p) > t.max {
		t.over = true
		return 0, ErrTooLarge
	}
	if t.maxEntries <= 0 {
		return t.buf.Write(p)
	}
	// The entries that end in p: one may have begun in the last write.
	from := max(0, t.buf.Len()-len(t.entry)+1)
	n, _ := t.buf.Write(p)
	if t.entries += bytes.Count(t.buf.Bytes()[from:], t.entry); t.entries > t.maxEntries {
		t.over = true
		t.buf = bytes.Buffer{} // let it go now
		t.onOver()
		return 0, ErrLimit
	}
	return n, nil
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
	vtt    bool // a subtitle segment: WebVTT, not media
	bad    error
	answer *answer  // the origin's headers, kept beside the file
	show   *growing // the browser's other requests for it read it as it arrives
	done   func(ok bool)
}

// newFileTap tees into a private file in the tee/ directory beside segments/
// (a run's start clears stray .partial files in segments/, which must not
// take a copy still being written), renamed to dst when complete. It works on
// the file system: never call it under c.mu (see pendingTap).
func newFileTap(s *Session, dst string, want, max int64, done func(bool)) *fileTap {
	dir := filepath.Join(s.Dir(), "tee")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return nil
	}
	f, err := createTee(dir, filepath.Base(dst)+".*.partial")
	if err != nil {
		return nil
	}
	return &fileTap{f: f, path: dst, want: want, max: max, done: done}
}

// createTee makes a tee's file; tests make it slow.
var createTee = os.CreateTemp

// A pendingTap is a tee decided under c.mu: calling it, once c.mu is
// released, makes its file and returns the tap (nil: none). Nothing that
// touches the file system runs under c.mu, which every request of the
// browser takes: one slow disk operation must not hold up the others.
type pendingTap func() proxy.BodyTap

// open makes p's tap; a nil p is no tap.
func (p pendingTap) open() proxy.BodyTap {
	if p == nil {
		return nil
	}
	return p()
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
		sniff := sniffMedia
		if t.vtt {
			sniff = sniffSubtitles
		}
		if err := sniff(p); err != nil {
			t.bad = err
			return 0, err
		}
	}
	n, err := t.f.Write(p)
	t.n += int64(n)
	t.show.wrote(n)
	if err != nil {
		t.bad = err
	}
	return n, err
}

// showTo lets g's readers follow the copy as it arrives.
func (t *fileTap) showTo(g *growing) {
	t.show = g
	g.start(t.f.Name(), t.answer, t.want)
}

func (t *fileTap) Close(err error) {
	cerr := t.f.Close()
	ok := err == nil && t.bad == nil && cerr == nil && t.n > 0 && (t.want < 0 || t.n == t.want)
	if ok && t.answer != nil {
		ok = t.answer.save(t.path) == nil
	}
	if ok {
		ok = os.Rename(t.f.Name(), t.path) == nil
	}
	if !ok {
		os.Remove(t.f.Name())
	}
	t.show.finish(ok)
	t.done(ok)
}

func (c *Capture) onPlaylist(u string, h map[string]string, data []byte) {
	base, err := url.Parse(u)
	if err != nil {
		return
	}
	// A playlist of more segments than a captured stream may have never
	// comes here: its tap counted them as it arrived, and dropped it.
	// Parsing and planning touch no shared state: done before taking c.mu.
	pl, err := playlist.Parse(data, base)
	if err != nil {
		c.log.Warn("malformed playlist", "url", redactURL(u), "err", err)
		return
	}
	var p *plan.Track
	if pl.Media != nil {
		if p, err = plan.FromMedia(pl.Media, u, "video", plan.Video); err != nil {
			c.log.Warn("playlist not usable", "url", redactURL(u), "err", err)
			return
		}
	}
	c.mu.Lock()
	defer c.unlock()
	if pl.Master != nil {
		c.onMasterLocked(u, pl.Master)
		return
	}
	key := stripQuery(u)
	ref := c.mediaOf[key]
	if _, seen := c.byList[key]; !seen && ref != nil && ref.rend != nil && ref.rend.Type == "SUBTITLES" {
		c.onSubtitlesLocked(u, ref, pl.Media)
		return
	}
	if ref != nil && ref.rend != nil {
		p.ID, p.Kind = audioTrackID(ref.rend.Language), plan.Audio
	}
	if ref != nil && ref.rend != nil {
		p.Language, p.Name, p.Default = ref.rend.Language, ref.rend.Name, ref.rend.Default
	}
	if tr, ok := c.byList[key]; ok {
		if tr.t.Live {
			// A live playlist reloaded by the player: the recording's follower
			// reloads it too; a changed list is the broadcast moving on, not a
			// fresh token.
			c.refreshLocked(tr.l, h, "")
			return
		}
		// The page was reloaded: the same list, perhaps with fresh tokens in its URLs.
		if len(p.Segments) == len(tr.t.Segments) && !sameURLs(p.Segments, tr.t.Segments) {
			if tr.l.pendingSegments == nil {
				tr.l.pendingSegments = map[string][]string{}
			}
			tr.l.pendingSegments[tr.t.ID] = urlsOf(p.Segments)
			for i, sg := range p.Segments {
				c.bySegURL.add(sg.URL, segRef{tr.l, tr.t, int64(i), plainSegment(sg), false})
			}
		}
		c.refreshLocked(tr.l, h, "")
		return
	}
	if !pl.Media.EndList {
		c.log.Info("live playlist: recording what it lists now", "url", redactURL(u))
	}
	t := mediaTrack(pl.Media, p) // a live one follows the playlist until it ends
	if t.Live {
		// The broadcast's later segments are the follower's: never a template to learn.
		for _, sg := range t.Segments {
			c.liveDirs[dirOf(sg.URL)] = true
		}
	}
	var g *Guard
	if ref == nil || ref.rend == nil && c.byMaster[ref.master] == nil {
		// A new recording: only from where the page may steer us, within the limits.
		g, err = c.guardFor(h, u)
		if err == nil {
			err = c.admitLocked(h["Referer"], len(p.Segments))
		}
		if err != nil {
			c.log.Warn("playlist not recorded", "url", redactURL(u), "err", err)
			return
		}
	}
	switch {
	case ref == nil:
		// A media playlist on its own: a recording of one track.
		s := &Session{Source: "watch", Page: h["Referer"], Input: u, Headers: h}
		s.AddTrack(t)
		l, err := c.newLive(s, "")
		if err != nil {
			c.log.Warn("could not save session", "err", err)
			return
		}
		l.guard = g
		c.mapTrackLocked(l, t)
		l.reason = ""
		c.startLocked(l)
	case ref.rend != nil:
		// An audio rendition: a track of its master's recording.
		l := c.byMaster[ref.master]
		if l == nil {
			if len(c.early) < maxEarly {
				c.early[key] = t
			}
			return
		}
		if !c.fillRenditionLocked(l, t) {
			c.otherAudioLocked(l, t) // the person switched language in the player (capture_audio.go)
		}
	default:
		// A variant: the player chose it. Its audio renditions join it.
		if l := c.byMaster[ref.master]; l != nil {
			c.otherVariantLocked(l, t, ref.variant, u) // the player switched: followed up (capture_variant.go)
			return
		}
		s := &Session{Source: "watch", Page: h["Referer"], Input: ref.master, Headers: h}
		s.AddTrack(t)
		audio := c.audioChoiceLocked(ref)
		for _, r := range audio {
			s.AddTrack(&Track{Track: plan.Track{ID: audioTrackID(r.Language), Kind: plan.Audio, Language: r.Language,
				Name: r.Name, Default: true, Source: r.URI}})
		}
		l, err := c.newLive(s, "")
		if err != nil {
			c.log.Warn("could not save session", "err", err)
			return
		}
		l.guard = g
		l.variant = ref.variant // the player's choice: followed up (capture_variant.go)
		c.byMaster[ref.master] = l
		c.mapTrackLocked(l, t)
		c.adoptEarlySubtitlesLocked(l, ref.master)
		for _, r := range audio {
			if et := c.early[stripQuery(r.URI)]; et != nil {
				delete(c.early, stripQuery(r.URI))
				c.fillRenditionLocked(l, et)
				continue
			}
			l.waiting++
		}
		for key, et := range c.early {
			if er := c.mediaOf[key]; er != nil && er.master == ref.master && et.Kind == plan.Audio {
				delete(c.early, key)
				c.otherAudioLocked(l, et) // fetched before the variant, and not among the audio chosen
			}
		}
		waitAudio := l.waiting > 0
		c.waitDefaultSubtitlesLocked(l, ref)
		c.saveLocked(l)
		if l.waiting == 0 {
			c.startLocked(l)
			return
		}
		// Players fetch the audio playlist (and the default subtitles') right
		// after the video's; if this one does not, the run reads the audio
		// itself, and records no subtitles.
		l.reason = "waiting for the audio playlist"
		if !waitAudio {
			l.reason = "waiting for the subtitle playlist"
		}
		time.AfterFunc(3*time.Second, func() {
			c.mu.Lock()
			defer c.unlock()
			if l.waiting > 0 {
				l.waiting = 0
				l.reason = ""
				c.startLocked(l)
			}
		})
	}
}

// maxEarly bounds the renditions kept while their variant is not played yet:
// a page cannot make the capture hold an unbounded number of plans.
const maxEarly = 16

// maxMasterEntries bounds the variants and renditions of one master playlist
// the capture follows (real ones list a few dozen).
const maxMasterEntries = 512

// onMasterLocked remembers which media playlist is which variant or rendition.
func (c *Capture) onMasterLocked(u string, m *playlist.Master) {
	if n := len(m.Variants) + len(m.Media); n > maxMasterEntries || len(c.mediaOf)+n > 16*maxMasterEntries {
		c.log.Warn("master playlist not followed", "url", redactURL(u), "err",
			fmt.Errorf("%w: %d variants and renditions (at most %d per master, %d in all)", ErrLimit, n, maxMasterEntries, 16*maxMasterEntries))
		return
	}
	key := stripQuery(u)
	for i := range m.Variants {
		v := &m.Variants[i]
		ref := &masterRef{master: key, variant: v}
		if v.Audio != "" {
			for _, r := range m.Media {
				if r.Type == "AUDIO" && r.GroupID == v.Audio && r.URI != "" {
					ref.audio = append(ref.audio, r)
				}
			}
		}
		ref.subs = subtitleGroup(m, v)
		c.mediaOf[stripQuery(v.URI)] = ref
	}
	for i := range m.Media {
		r := &m.Media[i]
		if (r.Type == "AUDIO" || r.Type == "SUBTITLES") && r.URI != "" {
			c.mediaOf[stripQuery(r.URI)] = &masterRef{master: key, rend: r}
		}
	}
}

// audioChoiceLocked picks the renditions to record with a variant: the
// configured choice (default rendition, a language, or all).
func (c *Capture) audioChoiceLocked(ref *masterRef) []playlist.Rendition {
	if len(ref.audio) == 0 {
		return nil
	}
	m := &playlist.Master{Media: ref.audio}
	v := &playlist.Variant{Audio: ref.audio[0].GroupID}
	rs, err := m.AudioFor(v, c.mopts.Audio)
	if err != nil {
		c.log.Warn("audio choice", "err", err)
		rs, _ = m.AudioFor(v, "")
	}
	return rs
}

// fillRenditionLocked gives a waiting audio track of l the plan the browser's
// playlist carries. chosen is false when l records no track of p's language:
// the rendition is not among the audio chosen. A chosen one that comes too
// late (the run under way reads its playlist itself) is left out: the
// player's fetches of its segments go to the origin, and are not learned as a
// stream of their own.
func (c *Capture) fillRenditionLocked(l *live, p *Track) (chosen bool) {
	var t *Track
	for _, x := range l.s.Tracks {
		if x.Kind == p.Kind && x.Language == p.Language {
			chosen = true
			if !l.running && len(x.Segments) == 0 && x.Template == nil { // a run owns its tracks' plans
				t = x
			}
		}
	}
	if t == nil {
		if chosen {
			c.leaveOutLocked(l, p)
		}
		return chosen
	}
	id, dir := t.ID, t.dir
	lang, name, def := t.Language, t.Name, t.Default
	*t = *p
	t.ID, t.dir, t.Language, t.Name, t.Default = id, dir, lang, name, def
	c.mapTrackLocked(l, t)
	c.saveLocked(l)
	if l.waiting > 0 {
		l.waiting--
		if l.waiting == 0 {
			l.reason = ""
			c.startLocked(l)
		}
	}
	return true
}

// leaveOutLocked notes the segments of p, a rendition of l's master that l does not record, so that the
// player's fetches of them are let through untouched.
func (c *Capture) leaveOutLocked(l *live, p *Track) {
	for _, sg := range p.Segments {
		if sg.URL != "" {
			c.notRecorded.add(sg.URL, l)
		}
	}
}

// mapTrackLocked maps a listed track's playlist, segment and key URLs to it.
func (c *Capture) mapTrackLocked(l *live, t *Track) {
	c.byList[stripQuery(t.Source)] = trackRef{l, t}
	for i, sg := range t.Segments {
		if sg.URL == "" || sg.Gap {
			continue
		}
		if ref := (segRef{l, t, int64(i), plainSegment(sg), t.Live}); t.Live {
			c.bySegURL.addExact(sg.URL, ref) // the next segment may differ in its query alone
			// The player fetches the next ones before the follower lists anything: kept aside.
			c.aside.dirs[dirOf(sg.URL)] = l
		} else {
			c.bySegURL.add(sg.URL, ref)
		}
	}
	for n, in := range t.Inits {
		if in.Range == nil {
			c.bySegURL.add(in.URL, segRef{l, t, initIndex(n + 1), true, false})
		}
	}
	for _, k := range t.Keys {
		c.byKey[k.URI] = trackRef{l, t}
	}
}

func sameURLs(a, b []plan.Segment) bool {
	for i := range a {
		if a[i].URL != b[i].URL {
			return false
		}
	}
	return true
}

func urlsOf(segs []plan.Segment) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.URL
	}
	return out
}

// onKey keeps the AES-128 key the browser fetched for an encrypted playlist
// stream, so the backfill need not fetch it again; its request's headers are
// fresh credentials like any other.
func (c *Capture) onKey(ex *proxy.Exchange) proxy.BodyTap {
	u := ex.Req.URL.String()
	c.mu.Lock()
	ref, ok := c.byKey[u]
	c.unlock()
	if !ok || ex.Status != http.StatusOK {
		return c.onInit(ex)
	}
	l, t := ref.l, ref.t
	if l.guard != nil {
		l.guard.Allow(u) // the browser fetched the key from there
	}
	h := keptHeaders(ex.Req.Header)
	return &bufTap{max: keySize, done: func(b []byte) {
		c.mu.Lock()
		if l.deleted {
			c.unlock()
			return
		}
		var keep []string // where the key goes: written with c.mu released
		for n := range t.Keys {
			if k := &t.Keys[n]; k.URI == u && len(b) == keySize {
				keep = append(keep, t.KeyPath(k))
			}
		}
		c.unlock()
		for _, p := range keep {
			if fileExists(p) {
				continue
			}
			if err := keepKey(p, b); err != nil {
				c.log.Warn("could not keep the key", "session", l.s.ID, "err", err)
			}
		}
		c.mu.Lock()
		if !l.deleted {
			c.refreshLocked(l, h, "") // after the key is kept: a run it starts finds it
		}
		c.unlock()
	}}
}

func (c *Capture) newLive(s *Session, shape string) (*live, error) {
	if s.Title == "" {
		s.Title = c.titles.get(s.Page)
	}
	if s.ID == "" {
		s.ID = NewID(time.Now())
	}
	if c.outDir != "" {
		name := "video"
		if u, err := url.Parse(s.Input); err == nil {
			name = SafeName(filepath.Base(path.Dir(u.Path)))
		}
		s.Target = filepath.Join(c.outDir, name+"-"+s.ID+".mp4")
	}
	// Under c.mu, once per recording: its directory and session.json exist
	// before anything of it is known (see capture_io.go).
	if err := c.store.Create(s); err != nil {
		return nil, err
	}
	l := &live{s: s, prog: NewProgress(), shape: shape, observed: map[string]*observedCopy{}, inflight: map[flightKey]*flight{}}
	c.streams = append(c.streams, l)
	return l, nil
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
	c.mu.Lock()
	p := c.onSegmentLocked(ex)
	c.unlock()
	return p.open()
}

func (c *Capture) onSegmentLocked(ex *proxy.Exchange) pendingTap {
	u := ex.Req.URL.String()
	h := keptHeaders(ex.Req.Header)
	c.dashSeenLocked(u)
	if ref, ok := c.bySegURL.find(u); ok {
		return c.teeMappedLocked(ref, u, h, ex)
	}
	if _, ok := c.notRecorded.find(u); ok {
		return nil // a rendition the recording leaves out
	}
	if c.liveDirs[dirOf(u)] || c.underManifestLocked(u) {
		// A live broadcast's segment its follower has not listed yet, kept
		// aside; else another representation of a manifest seen (the player
		// switched, or probes) or one of a live playlist: never learned.
		return c.asideLocked(u, ex)
	}
	shape := urltemplate.Shape(u)
	l := c.byShape[shape]
	if l == nil {
		tm, err := urltemplate.Learn([]string{u})
		if err != nil {
			c.log.Warn("segment URL with no learnable number: not recorded", "url", redactURL(u), "err", err)
			return nil
		}
		s := &Session{Source: "watch", Page: h["Referer"], Input: u, Headers: h, State: StateLearning}
		g, err := c.guardFor(h, u)
		if err == nil {
			err = c.admitLocked(h["Referer"], 0)
		}
		if err != nil {
			c.log.Warn("segment not recorded", "url", redactURL(u), "err", err)
			return nil
		}
		t := &Track{Track: plan.Track{ID: "video", Kind: plan.Video, Template: tm, Ext: segmentExt(u)},
			First: tm.First, ProbeStart: true}
		if in := c.initForLocked(u); in != "" {
			t.Inits, t.Init = []plan.Init{{URL: in}}, 1
		}
		s.AddTrack(t)
		if l, err = c.newLive(s, shape); err != nil {
			c.log.Warn("could not save session", "err", err)
			return nil
		}
		l.guard = g
		c.byShape[shape] = l
	}
	s := l.s
	t := s.Main()
	if t.Template.Tentative {
		oc, dup := l.observed[u]
		if !dup {
			l.seen = append(l.seen, u)
		}
		if len(l.seen) >= 2 {
			tm, err := urltemplate.Learn(l.seen)
			if err != nil && len(l.seen) > 2 {
				// An early odd one out (another rendition, a preview) must not block the
				// stream for good: the two latest observations decide.
				if t2, err2 := urltemplate.Learn(l.seen[len(l.seen)-2:]); err2 == nil {
					tm, err = t2, nil
				}
			}
			if err != nil {
				l.reason = err.Error()
				s.Error = l.reason
				c.saveLocked(l)
				return nil
			}
			t.Template, t.First, s.Error, l.reason = tm, tm.First, "", ""
			if t.Init == 0 {
				if in := c.initForLocked(u); in != "" {
					t.Inits, t.Init = []plan.Init{{URL: in}}, 1
				}
			}
			c.adoptObservedLocked(l)
		} else {
			// One observation: keep the body aside until the numbering is certain.
			l.reason = "waiting for a second segment to learn the numbering"
			if dup && (oc.writing || oc.ok) {
				return nil // its copy is on its way or kept already
			}
			oc = &observedCopy{path: filepath.Join(s.Dir(), "observed-0"+t.ext()), writing: true}
			l.observed[u] = oc
			answer := newAnswer(ex.Req.Header, ex.RespHeader)
			return func() proxy.BodyTap {
				var tap *fileTap
				if c.teeAllowed(s, ex.ContentLength) {
					tap = newFileTap(s, oc.path, ex.ContentLength, c.segmentCap(), func(ok bool) { c.observedLanded(oc, ok) })
				}
				if tap == nil {
					c.observedLanded(oc, false)
					return nil // not a typed nil in the interface
				}
				tap.answer = answer
				return tap
			}
		}
	}
	i, ok := t.Template.Match(u)
	if !ok {
		if _, loose := t.Template.MatchLoose(u); loose {
			c.refreshLocked(l, h, u) // a new token: no tee, the old template cannot name this URL yet
		}
		return nil
	}
	c.refreshLocked(l, h, "")
	p := c.teeLocked(segRef{l, t, i, true, false}, ex)
	c.startLocked(l)
	return p
}

// rememberInitLocked remembers an fMP4 init segment the browser fetched, so
// a stream learned from its segments' URLs (no playlist seen) can be merged.
func (c *Capture) rememberInitLocked(ex *proxy.Exchange) {
	if media.Classify(ex.Req.URL.Path, ex.RespHeader.Get("Content-Type")) != media.KindInit {
		return
	}
	u := ex.Req.URL.String()
	c.inits[initKey(u)] = u
}

// initKey files an init segment by its directory and the stream its name
// gives (ffmpeg's init-stream0.m4s goes with chunk-stream0-00001.m4s, not
// with chunk-stream1-…).
func initKey(u string) string {
	return dirOf(u) + "\x00" + urltemplate.StreamOf(u)
}

// dirOf is a URL without its last path element and query.
func dirOf(u string) string {
	u = stripQuery(u)
	if i := strings.LastIndexByte(u, '/'); i >= 0 {
		return u[:i+1]
	}
	return u
}

// initForLocked finds the init segment seen next to segment URL u.
func (c *Capture) initForLocked(u string) string {
	return c.inits[initKey(u)]
}

// An observedCopy is the browser's copy of a segment seen while the
// numbering was uncertain, kept aside at path until it is learned. Its fields
// are read and written under c.mu.
type observedCopy struct {
	path    string
	writing bool   // its tap is open (or about to be made): the file is not there yet
	ok      bool   // it landed at path
	adopt   func() // set once adopted while writing: files it, c.mu released, when it lands or fails
}

// observedLanded is called, c.mu released, when the tee of oc closed (ok:
// its file is at oc.path). A copy adopted meanwhile is filed now.
func (c *Capture) observedLanded(oc *observedCopy, ok bool) {
	c.mu.Lock()
	oc.writing, oc.ok = false, ok
	adopt := oc.adopt
	oc.adopt = nil
	c.unlock()
	if adopt != nil {
		adopt()
	}
}

// adoptObservedLocked files the bodies kept aside under their learned
// indices: each is claimed now and moved once c.mu is released, unless
// another copy of it is on its way or on disk already. A copy still being
// written is moved when its tee closes (observedLanded), its claim held till
// then: the backfill waits for it rather than fetching it again.
func (c *Capture) adoptObservedLocked(l *live) {
	t := l.s.Main()
	for u, oc := range l.observed {
		var f *flight
		i, ok := t.Template.Match(u)
		k := flightKey{t.ID, i}
		if ok && l.inflight[k] == nil {
			f = newFlight(false)
			l.inflight[k] = f
		}
		p, dst := oc.path, t.SegmentPath(i)
		file := func() {
			if f != nil && !fileComplete(dst) && os.MkdirAll(filepath.Dir(dst), 0o700) == nil {
				moveSegment(p, dst)
			}
			os.Remove(p)
			os.Remove(answerPath(p))
			if f != nil {
				c.land(l, k, f)
			}
		}
		if oc.writing {
			oc.adopt = file
		} else {
			c.laterLocked(file)
		}
	}
	l.observed = map[string]*observedCopy{}
}

// A flight is a segment on its way to disk; done closes when it landed or
// failed. Its bytes can be read as they arrive (g).
type flight struct {
	done    chan struct{}
	g       *growing
	browser bool // the browser's request, to be tee'd
	teed    bool
	once    sync.Once
}

func newFlight(browser bool) *flight {
	return &flight{done: make(chan struct{}), g: newGrowing(), browser: browser}
}

// landLocked ends the flight of segment k.
func (l *live) landLocked(k flightKey, f *flight) {
	f.once.Do(func() {
		l.landings++
		if l.inflight[k] == f {
			delete(l.inflight, k)
		}
		f.g.end()
		close(f.done)
	})
}

func (c *Capture) land(l *live, k flightKey, f *flight) {
	c.mu.Lock()
	l.landLocked(k, f)
	c.unlock()
}

// teeMappedLocked keeps the browser's copy of ref, a segment of a recording
// that the page fetched from u with request headers h: u's host is one the
// backfill may use, and h refreshes the recording's headers.
func (c *Capture) teeMappedLocked(ref segRef, u string, h map[string]string, ex *proxy.Exchange) pendingTap {
	if ref.l.guard != nil {
		ref.l.guard.Allow(u) // the browser fetched this stream's segments from there
	}
	c.refreshLocked(ref.l, h, "")
	return c.teeLocked(ref, ex)
}

// teeLocked saves the browser's copy of segment i, unless it is already on
// disk or the backfill is fetching it. Encrypted streams are not tee'd: the
// backfill fetches and decrypts every segment itself. The segment is claimed
// (its flight) under c.mu; the look at the disk and the file are made once
// c.mu is released, and a segment found on disk then ends its flight at once.
func (c *Capture) teeLocked(ref segRef, ex *proxy.Exchange) pendingTap {
	l, t, i := ref.l, ref.t, ref.i
	if i >= 0 && !ref.plain {
		return nil // encrypted (kept decrypted) or a byte range of a bigger file: the backfill fetches it
	}
	l.asked = time.Now()
	if l.swept {
		return nil
	}
	k := flightKey{t.ID, i}
	f := l.inflight[k]
	switch {
	case f == nil:
		f = newFlight(true)
		l.inflight[k] = f
	case !f.browser || f.teed:
		return nil
	}
	f.teed = true
	s, dst, vtt := l.s, t.file(i), t.Kind == plan.Subtitles
	answer := newAnswer(ex.Req.Header, ex.RespHeader)
	return func() proxy.BodyTap {
		var tap *fileTap
		if !fileComplete(dst) && c.teeAllowed(s, ex.ContentLength) {
			tap = newFileTap(s, dst, ex.ContentLength, c.segmentCap(), func(bool) { c.land(l, k, f) })
		}
		if tap == nil {
			c.land(l, k, f) // on disk already, or not kept
			return nil
		}
		tap.answer = answer
		tap.vtt = vtt
		tap.showTo(f.g)
		return tap
	}
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
	for id, urls := range l.pendingSegments {
		if t := l.s.Track(id); t != nil && len(urls) == len(t.Segments) {
			for i, u := range urls {
				t.Segments[i].URL = u
			}
			c.log.Info("fresh segment URLs taken from the reloaded playlist", "session", l.s.ID, "track", id)
		}
	}
	l.pendingHeaders, l.pendingURL, l.pendingSegments = nil, "", nil
	c.saveLocked(l)
}

// startLocked starts the background backfill and merge of a certain stream.
func (c *Capture) startLocked(l *live) {
	if l.deleted || l.userPaused {
		return
	}
	if l.running || l.waiting > 0 {
		return
	}
	if t := l.s.Main(); t == nil && l.s.Playlist == "" || t != nil && t.Template != nil && t.Template.Tentative {
		return // nothing to run yet (a playlist or manifest to read is something)
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
		o.Claim = func(ctx context.Context, track string, i int64, wait bool) Hold {
			return c.claim(ctx, l, flightKey{track, i}, wait)
		}
		o.Listed = func(track string, from int64, segs []plan.Segment) { c.listed(l, track, from, segs) }
		o.ListedInit = func(track string, n int, u string) { c.listedInit(l, track, n, u) }
		o.Limiter = c.limiter
		c.mu.Lock()
		o.Guard = l.guard
		c.addPendingTracksLocked(l) // no run uses the session yet
		c.applyVariantLocked(l)
		s := l.s
		mo := c.mopts
		mo.AllowGaps = mo.AllowGaps || l.allowGaps
		mo.KeepSegments = true // they answer the page until it stops asking (linger.go)
		ctx, cancel := context.WithCancel(c.ctx)
		l.cancel = cancel
		yield := make(chan struct{})
		o.Yield, l.yield = yield, sync.OnceFunc(func() { close(yield) })
		c.unlock()
		c.flushSaves() // the capture's saves of s, whoever writes them, land before the run's own
		_, err := Run(ctx, s, o, mo)
		cancel()
		c.mu.Lock()
		l.cancel, l.yield = nil, nil
		l.err = err
		switch {
		case l.userPaused && s.State == StateDone:
			l.reason = "stopped by you: the recording so far is finalised" // a live one
		case l.userPaused:
			l.reason = "paused by you"
			if s.State == StateInterrupted {
				s.State = StatePaused
				_ = s.Save() // under c.mu: once per pause, and before the session's lock is released below
			}
		case err == nil:
			l.reason = ""
		case errors.Is(err, ErrExpired):
			l.reason = "paused: the origin refused access; reload the page in the browser to refresh the token"
		default:
			l.reason = err.Error()
		}
		if err != nil && !(l.again && (errors.Is(err, ErrYielded) || errors.Is(err, context.Canceled))) { // stopped to go on with more (subtitles)
			c.log.Warn("stream stopped", "session", s.ID, "err", err)
		}
		if l.again && !l.userPaused && c.ctx.Err() == nil && s.State != StateDone {
			l.again = false
			c.applyPendingLocked(l)
			c.unlock()
			continue
		}
		if l.pendingHeaders != nil || l.pendingURL != "" || l.pendingSegments != nil {
			c.applyPendingLocked(l) // credentials that came as the run ended: the session is no run's now
		}
		if len(l.pendingTracks) > 0 {
			c.log.Info("the recording was made before the tracks the player fetched could join it", "session", s.ID, "tracks", len(l.pendingTracks))
			l.pendingTracks = nil
		}
		c.dropVariantLocked(l)
		unlock() // before runDone: whoever waits for the run may take the lock
		if s.State == StateDone {
			c.lingerLocked(l)
		}
		l.running = false
		close(l.runDone)
		c.unlock()
		return
	}
}

// claim lets the backfill fetch segment i unless another copy is on its way:
// then it waits for that copy when asked to, or says it is busy, so the
// backfill comes back to it after the rest. A claimed segment shows its
// bytes to the browser's requests for it as they arrive.
func (c *Capture) claim(ctx context.Context, l *live, k flightKey, wait bool) Hold {
	c.mu.Lock()
	f := l.inflight[k]
	if f == nil {
		mine := newFlight(false)
		l.inflight[k] = mine
		c.unlock()
		return Hold{Release: func() { c.land(l, k, mine) }, show: mine.g}
	}
	c.unlock()
	if !wait {
		return Hold{Busy: true}
	}
	select {
	case <-f.done:
		return Hold{Arrived: true}
	case <-ctx.Done():
		return Hold{}
	}
}

// Respond answers the browser's request for a segment of a recording so that
// the origin serves each segment once: from disk when it is complete; as its
// bytes arrive when the backfill (or another request of the browser) is
// fetching it; and when neither, it lets the request go to the origin at once
// and claims the segment for it, so the backfill keeps the browser's copy
// instead of fetching it again (a live segment its follower has not listed
// yet is claimed by its URL: capture_live.go). Segments of encrypted streams
// are kept decrypted, which is not what the browser expects: those requests
// always go to the origin. It implements proxy.Responder.
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
	var t *Track
	var i int64
	plain, lapse := true, browserClaimLapse
	if ref, ok := c.bySegURL.find(u); ok {
		l, t, i, plain = ref.l, ref.t, ref.i, ref.plain
		if ref.live {
			lapse = liveClaimLapse
		}
	} else if sl := c.byShape[urltemplate.Shape(u)]; sl != nil && !sl.s.Main().Template.Tentative {
		if idx, ok := sl.s.Main().Template.Match(u); ok {
			l, t, i = sl, sl.s.Main(), idx
		}
	}
	if l == nil {
		if k := media.Classify(req.URL.Path, ""); whole && (k == media.KindSegment || k == media.KindInit) {
			c.claimAsideLocked(u) // a live segment or init not listed yet: its follower waits for this copy
		}
		c.unlock()
		return nil
	}
	if i >= 0 && !plain {
		c.unlock()
		return nil // kept decrypted, or a range of a bigger file: the origin answers
	}
	path := t.file(i)
	k := flightKey{t.ID, i}
	f := l.inflight[k]
	l.asked = time.Now()
	if l.swept {
		c.unlock()
		return nil // the recording is done and its segments are gone: the origin answers
	}
	if f == nil {
		// Not on its way: on disk, or to be fetched. The disk is looked at
		// with c.mu released; what landed meanwhile is looked at again.
		landings := l.landings
		c.unlock()
		if fileComplete(path) {
			return serveFile(req, path, first, last)
		}
		if !whole {
			return nil // a part of it: forwarded, not tee'd
		}
		c.mu.Lock()
		f = l.inflight[k]
		switch {
		case l.swept:
			c.unlock()
			return nil
		case f == nil && l.landings != landings:
			c.unlock()
			return serveFile(req, path, first, last) // it may have landed: else forwarded
		case f == nil:
			// Forwarded at once, ahead of the backfill: claimed for the browser so
			// that the backfill skips it and keeps the tee'd copy. If no usable
			// answer comes back, the claim lapses.
			f = newFlight(true)
			l.inflight[k] = f
			time.AfterFunc(lapse, func() {
				c.mu.Lock()
				if !f.teed {
					l.landLocked(k, f)
				}
				c.unlock()
			})
			c.unlock()
			return nil
		}
	}
	c.unlock()
	if f != nil {
		// On its way: the bytes as they arrive, with the origin's headers.
		if resp := f.g.respond(req, first, last, time.Minute); resp != nil {
			return resp
		}
	}
	return serveFile(req, path, first, last) // landed; nil (forwarded) when it failed
}

// browserClaimLapse is how long a forwarded request's claim waits for its answer.
const browserClaimLapse = 30 * time.Second

// liveClaimLapse is browserClaimLapse for a live segment: a follower waiting
// for it holds the recording back, and a recording that records nothing for
// Options.LiveIdle (30 s at least, by default) stops.
var liveClaimLapse = 5 * time.Second

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
	if t := media.MIMEOf(filepath.Ext(p)); t != "" {
		return t
	}
	return media.FormatMPEGTS.MIME() // a session's segments are .ts unless their URLs said otherwise
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
	defer c.unlock()
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
			c.flushSaves()                                    // none of it is written into the directory after it is removed
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
			if v.l == l {
				delete(c.byList, k)
			}
		}
		for k, v := range c.byMaster {
			if v == l {
				delete(c.byMaster, k)
			}
		}
		for k, v := range c.byManifest {
			if v.l == l {
				delete(c.byManifest, k)
			}
		}
		c.dashReps.drop(func(v dashRep) bool { return v.rec.l == l })
		c.bySegURL.drop(func(v segRef) bool { return v.l == l })
		c.notRecorded.drop(func(v *live) bool { return v == l })
		for k, v := range c.byKey {
			if v.l == l {
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
	c.unlock()
	if done != nil {
		<-done
	}
}

// Add adopts a session made elsewhere (the dashboard's form, a replay) and runs it.
func (c *Capture) Add(s *Session) error {
	// s is not the capture's yet: its files are made before c.mu is taken.
	if s.Dir() == "" {
		if err := c.store.Create(s); err != nil {
			return err
		}
	}
	for _, t := range s.Tracks {
		if err := os.MkdirAll(t.SegmentDir(), 0o700); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.unlock()
	l := &live{s: s, prog: NewProgress(), observed: map[string]*observedCopy{}, inflight: map[flightKey]*flight{}}
	c.streams = append(c.streams, l)
	c.kickLocked(l)
	return nil
}

// plainSegment reports whether the browser's copy of sg is the file the
// recording keeps: neither encrypted (kept decrypted) nor a byte range.
func plainSegment(sg plan.Segment) bool {
	return sg.Key == 0 && sg.Range == nil
}
