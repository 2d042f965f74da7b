package recorder

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// A live HLS recording's follower (live.go) fetches the segments its playlist
// adds while the page plays the same segments through the proxy. So that the
// origin serves each of them once, the follower tells the capture what it
// lists before it fetches it (Options.Listed): the capture maps those URLs,
// query included, as it maps a VOD's, so that the browser's copies are tee'd
// (onSegment) and the follower's claim waits for a copy on its way. A segment
// the browser fetches before the follower lists it (the player reloaded the
// playlist first) is tee'd aside under its URL and becomes the segment's
// file, or its flight while it arrives, when the follower lists that URL. The
// browser's requests never wait for the recorder: they go to the origin as
// they would, only their bodies are kept.
//
// A live DASH recording is the same, but its representations' segments
// usually share a directory (ffmpeg's chunk-stream0-… and chunk-stream1-…):
// a copy is kept aside only when its URL is one of a recorded
// representation's, which differ in the digits of $Number$ or $Time$ alone
// (repPattern). Another representation's segments (the player switched
// quality, which the recording does not follow) are left alone.
//
// Init sections go the same way: the init URLs of the representations a live
// DASH recording records are known from the manifest the player read
// (asideBook.inits), so the browser's copy is kept aside under its URL, and
// the follower tells the capture of each init section before it fetches it
// (Options.ListedInit): the copy becomes its file, or the flight it waits for,
// no longer than liveClaimLapse (fetchInit). The browser never waits for the
// follower, and the follower never waits long for the browser.

// An asideCopy is the browser's copy of a live segment not listed yet.
type asideCopy struct {
	l      *live
	path   string    // where the copy lands
	f      *flight   // the copy's flight: the segment's once listed
	at     time.Time // when the browser fetched it
	landed bool      // the tee ended: ok says whether path holds a complete copy
	ok     bool
	listed bool // the follower listed it: t, k say which segment it is (drop: not to be used)
	drop   bool
	t      *Track
	k      flightKey
}

// An asideBook holds the copies kept aside, at most maxAside, each for at
// most asideAge, and which live recording lists segments under which directory.
type asideBook struct {
	byURL map[string]*asideCopy
	dirs  map[string]*live      // HLS: every segment under a directory is the recording's
	reps  map[repOf]*repPattern // DASH: only the segments of the representations recorded
	inits map[string]*live      // DASH: the init URLs of the representations recorded, until listed
	n     int                   // copies made, to name their files
}

// repOf names a live DASH recording's track.
type repOf struct {
	l     *live
	track string
}

func newAsideBook() asideBook {
	return asideBook{byURL: map[string]*asideCopy{}, dirs: map[string]*live{}, reps: map[repOf]*repPattern{},
		inits: map[string]*live{}}
}

// ownerOf returns the live recording whose follower lists the segment at u
// when it has not listed it yet, or nil. It forgets deleted recordings'
// representations.
func (b *asideBook) ownerOf(u string) *live {
	if l := b.dirs[dirOf(u)]; l != nil {
		return l
	}
	if l := b.inits[u]; l != nil {
		if !l.deleted {
			return l
		}
		delete(b.inits, u)
	}
	var owner *live
	for k, p := range b.reps {
		switch {
		case k.l.deleted:
			delete(b.reps, k)
		case k.l.running && p.match(u):
			owner = k.l
		}
	}
	return owner
}

// A repPattern is what the segment URLs of one DASH representation share:
// its SegmentTemplate's media URL with $Number$ or $Time$ filled in, so they
// differ from one another in runs of digits alone. It is learned from two
// URLs its follower lists; "" in runs marks a run that varies.
type repPattern struct {
	last string   // the last URL listed
	runs []string // nil until learned
}

// learn notes URL u, listed after the last one: the runs of digits in which
// they differ are where the numbers go. A pair that differs otherwise (a
// new period with another template) keeps the pattern learned before.
func (p *repPattern) learn(u string) {
	a, b := digitRuns(p.last), digitRuns(u)
	p.last = u
	if len(a) != len(b) {
		return
	}
	runs := make([]string, len(b))
	varies := false
	for i := range b {
		switch {
		case a[i] == b[i]:
			runs[i] = b[i]
		case isDigits(a[i]) && isDigits(b[i]):
			varies = true
		default:
			return
		}
	}
	if varies {
		p.runs = runs
	}
}

// match reports whether u is a segment URL of the representation.
func (p *repPattern) match(u string) bool {
	if p.runs == nil {
		return false
	}
	r := digitRuns(u)
	if len(r) != len(p.runs) {
		return false
	}
	for i, want := range p.runs {
		if want == "" && !isDigits(r[i]) || want != "" && want != r[i] {
			return false
		}
	}
	return true
}

// digitRuns splits s into its maximal runs of digits and of other bytes.
func digitRuns(s string) []string {
	var runs []string
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && isDigit(s[j]) == isDigit(s[i]) {
			j++
		}
		runs = append(runs, s[i:j])
		i = j
	}
	return runs
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isDigits(s string) bool { return s != "" && isDigit(s[0]) }

const (
	// maxAside bounds the copies kept aside: a player buffers a few segments
	// ahead of the follower's next reload, not dozens.
	maxAside = 32
	// asideAge is how long a copy waits to be listed: the follower reloads
	// every target duration; one never listed (another variant's segment in
	// the same directory) is removed after it.
	asideAge = time.Minute
	// maxListed bounds the listed URLs of a live recording kept mapped (many
	// windows' worth): the map does not grow with the broadcast's length.
	maxListed = 1024
)

// A segURL is a URL mapped to a segment of a live recording.
type segURL struct {
	url string
	ref segRef
}

// claimAsideLocked claims URL u, a segment under a live recording's
// directory that its follower has not listed, for the browser's request about
// to go to the origin: if the follower lists it meanwhile, it waits for this
// copy instead of fetching its own. It returns nil when u is not such a
// segment or is claimed already. The claim lapses if no answer is tee'd.
func (c *Capture) claimAsideLocked(u string) *asideCopy {
	l := c.aside.ownerOf(u)
	if l == nil || !l.running || l.userPaused || l.deleted || l.swept {
		return nil
	}
	if c.aside.byURL[u] != nil || len(c.aside.byURL) >= maxAside {
		return nil
	}
	e := &asideCopy{l: l, f: newFlight(true), at: time.Now()}
	c.aside.byURL[u] = e
	time.AfterFunc(liveClaimLapse, func() {
		c.mu.Lock()
		if !e.f.teed {
			c.asideFailedLocked(u, e)
		}
		c.unlock()
	})
	return e
}

// asideLocked tees the browser's copy of a segment under a live recording's
// directory that its follower has not listed yet.
func (c *Capture) asideLocked(u string, ex *proxy.Exchange) pendingTap {
	e := c.aside.byURL[u]
	if e == nil {
		if e = c.claimAsideLocked(u); e == nil {
			return nil
		}
	}
	if e.f.teed || e.landed {
		return nil // another request of the browser is fetching it
	}
	e.f.teed = true
	l := e.l
	l.asked = time.Now()
	c.aside.n++
	e.path = filepath.Join(l.s.Dir(), "tee", fmt.Sprintf("aside-%d", c.aside.n))
	s, dst := l.s, e.path
	answer := newAnswer(ex.Req.Header, ex.RespHeader)
	return func() proxy.BodyTap { // the file is made once c.mu is released
		var tap *fileTap
		if c.teeAllowed(s, ex.ContentLength) {
			tap = newFileTap(s, dst, ex.ContentLength, c.segmentCap(), func(ok bool) { c.asideLanded(u, e, ok) })
		}
		if tap == nil {
			c.asideLanded(u, e, false)
			return nil // not a typed nil in the interface
		}
		tap.answer = answer
		tap.showTo(e.f.g)
		return tap
	}
}

// asideFailedLocked ends a copy kept aside that did not arrive: the follower,
// if it listed it and waits for it, fetches the segment itself.
func (c *Capture) asideFailedLocked(u string, e *asideCopy) {
	if e.landed {
		return
	}
	e.landed = true
	if c.aside.byURL[u] == e {
		delete(c.aside.byURL, u)
	}
	if e.listed && !e.drop {
		e.l.landLocked(e.k, e.f)
	}
}

// asideLanded ends the tee of a copy kept aside: a listed one becomes its
// segment's file; one not listed yet waits for the follower.
func (c *Capture) asideLanded(u string, e *asideCopy, ok bool) {
	c.mu.Lock()
	if !ok {
		c.asideFailedLocked(u, e)
		c.unlock()
		return
	}
	e.landed, e.ok = true, true
	listed := e.listed
	c.unlock()
	if listed {
		c.adopt(e)
	}
}

// asideCandidatesLocked lists the files, by index, of the segments of segs
// (from index from of l's track t) that a copy kept aside may become.
func asideCandidatesLocked(c *Capture, l *live, t *Track, from int64, segs []plan.Segment) map[int64]string {
	var out map[int64]string
	for n, sg := range segs {
		if e := c.aside.byURL[sg.URL]; e != nil && e.l == l && sg.URL != "" && !sg.Gap && plainSegment(sg) {
			if out == nil {
				out = map[int64]string{}
			}
			out[from+int64(n)] = t.SegmentPath(from + int64(n))
		}
	}
	return out
}

// adopt makes a landed copy the file of the segment it was listed as, and
// ends its flight: the follower, if it waits for it, finds the file there.
func (c *Capture) adopt(e *asideCopy) {
	if e.ok {
		if e.drop {
			os.Remove(e.path)
			os.Remove(answerPath(e.path))
		} else if err := moveSegment(e.path, e.t.file(e.k.i)); err != nil {
			c.log.Warn("could not keep the browser's copy of a live segment", "session", e.l.s.ID, "err", err)
		}
	}
	if !e.drop {
		c.land(e.l, e.k, e.f)
	}
}

// listedInit maps init section n of l's track, at URL u, before its
// follower fetches it: a copy the browser fetched of it is its file, or its
// flight while it arrives; else the browser's requests for it read the
// follower's copy. The follower looked at the disk before (dispatch).
func (c *Capture) listedInit(l *live, track string, n int, u string) {
	c.mu.Lock()
	t := l.s.Track(track)
	if t == nil || l.deleted {
		c.unlock()
		return
	}
	k := flightKey{t.ID, initIndex(n)}
	if _, ok := c.bySegURL.find(u); !ok {
		c.bySegURL.addExact(u, segRef{l, t, k.i, true, true})
	}
	if c.aside.inits[u] == l {
		delete(c.aside.inits, u)
	}
	e := c.aside.byURL[u]
	if e == nil || e.l != l {
		c.unlock()
		return
	}
	delete(c.aside.byURL, u)
	e.listed, e.t, e.k = true, t, k
	if l.inflight[k] != nil {
		e.drop = true // another copy is on its way: not this one
	} else {
		l.inflight[k] = e.f
	}
	landed := e.landed
	c.unlock()
	if landed {
		c.adopt(e)
	}
}

// listed maps the segments the follower of l's track adds to its plan, from
// index from, before it fetches them. A copy the browser fetched of one of
// them is its file, or its flight while it arrives. It also forgets the
// oldest mappings and the copies that waited too long.
func (c *Capture) listed(l *live, track string, from int64, segs []plan.Segment) {
	var adopt []*asideCopy
	var stale []string
	now := time.Now()
	c.mu.Lock()
	t := l.s.Track(track)
	if t == nil || l.deleted {
		c.unlock()
		return
	}
	// A copy kept aside is not taken for a segment on disk already: the disk
	// is looked at with c.mu released. A copy that came aside meanwhile, not
	// looked for, is not taken either (the follower fetches the segment).
	var onDisk map[int64]bool
	if paths := asideCandidatesLocked(c, l, t, from, segs); len(paths) > 0 {
		c.unlock()
		onDisk = map[int64]bool{}
		for i, p := range paths {
			onDisk[i] = fileComplete(p)
		}
		c.mu.Lock()
		if l.deleted || l.s.Track(track) != t {
			c.unlock()
			return
		}
	}
	// Only the follower changes t.Follower.DASH's fields, and it is the caller.
	var rep *repPattern
	if t.Follower != nil && t.Follower.DASH != nil {
		if rep = c.aside.reps[repOf{l, track}]; rep == nil {
			rep = &repPattern{}
			c.aside.reps[repOf{l, track}] = rep
		}
	}
	for n, sg := range segs {
		if sg.URL == "" || sg.Gap {
			continue
		}
		ref := segRef{l, t, from + int64(n), plainSegment(sg), true}
		c.bySegURL.addExact(sg.URL, ref)
		l.listed = append(l.listed, segURL{sg.URL, ref})
		if rep != nil {
			rep.learn(sg.URL)
		} else {
			c.aside.dirs[dirOf(sg.URL)] = l
		}
		e := c.aside.byURL[sg.URL]
		if e == nil || e.l != l {
			continue
		}
		delete(c.aside.byURL, sg.URL)
		k := flightKey{t.ID, ref.i}
		e.listed, e.t, e.k = true, t, k
		if have, looked := onDisk[ref.i]; !ref.plain || l.inflight[k] != nil || have || !looked {
			e.drop = true // encrypted, a range, or another copy is there: not this one
		} else {
			l.inflight[k] = e.f
		}
		if e.landed {
			adopt = append(adopt, e) // landed well: failed ones are not kept
		}
	}
	if n := len(l.listed) - maxListed; n > 0 {
		for _, m := range l.listed[:n] {
			c.bySegURL.remove(m.url, m.ref)
		}
		l.listed = slices.Delete(l.listed, 0, n)
	}
	for u, e := range c.aside.byURL {
		if e.landed && e.ok && now.Sub(e.at) > asideAge {
			delete(c.aside.byURL, u)
			stale = append(stale, e.path)
		}
	}
	c.unlock()
	for _, e := range adopt {
		c.adopt(e)
	}
	for _, p := range stale {
		os.Remove(p)
		os.Remove(answerPath(p))
	}
}
