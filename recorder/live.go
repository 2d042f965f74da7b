package recorder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamsnatcher/streamsnatcher/dash"
	"github.com/streamsnatcher/streamsnatcher/merge"
	"github.com/streamsnatcher/streamsnatcher/plan"
)

// A live recording: each track's follower reloads its media playlist, appends
// what is new to the plan by position (discontinuity and media sequence, never
// the place in a window that slides), downloads it and merges it in order into
// a fragmented MP4 that plays at any moment. The plan forgets what is merged,
// so memory does not grow with the recording's length.

const (
	// LiveEdgeSegments is where Options.LiveEdge starts: this many segments from the end.
	LiveEdgeSegments = 3
	maxLiveOutputs   = 1024
)

// Why a follower stopped.
const (
	endList    = "the playlist ended (EXT-X-ENDLIST)"
	endStatic  = "the manifest ended (type=\"static\")"
	endLiveFor = "the time asked for with --live-for is up"
	endIdle    = "nothing new was listed, or recorded, for too long"
	endStopped = "stopped"
)

// liveRun records one track of a live session.
type liveRun struct {
	s        *Session
	t        *Track
	o        Options
	f        *fetcher
	mopts    merge.Options
	mctx     context.Context // outlives a Ctrl-C: the merge must finish what it has
	merge    bool
	direct   string    // the session's output, when this track alone makes it and it is the first
	deadline time.Time // Options.LiveFor; zero for none
	follow   bool      // false for a track that has ended: its plan is downloaded, not reloaded
	stopAll  func()    // stops every track: one cannot go on

	fd         *feed
	inflight   sync.WaitGroup
	recordedAt atomic.Int64 // when a segment was last recorded (UnixNano)
	inits      int          // init sections fetched

	mu      sync.Mutex
	gaps    []int64
	expired error
	fatal   error

	// Owned by the feed goroutine.
	cur      *merge.Merger
	curKey   [2]int // section and init of the unit being merged
	curHoled bool
	outputs  []string // finished in this run, absolute paths
	outExp   []float64

	why string // why following stopped
}

func (r *liveRun) setErr(err error) {
	r.mu.Lock()
	switch {
	case errors.Is(err, ErrExpired):
		if r.expired == nil {
			r.expired = err
		}
	case r.fatal == nil:
		r.fatal = err
	}
	r.mu.Unlock()
	r.stopAll()
}

func (r *liveRun) errs() (expired, fatal error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.expired, r.fatal
}

// run records the track until its playlist ends, the deadline, ctx ends or an
// error stops every track; then it finishes the unit it was merging.
func (r *liveRun) run(ctx context.Context, dctx context.Context) {
	t := r.t
	r.s.mu.Lock()
	first, n := t.Offset, len(t.Segments)
	r.s.mu.Unlock()
	r.fd = newLiveFeed(first, r.sink, r.skip)
	feedDone := make(chan error, 1)
	go func() { feedDone <- r.fd.run(r.mctx) }()

	r.dispatch(dctx, first, n)
	if r.follow {
		r.why = r.followPlaylist(ctx, dctx)
	} else {
		r.why = endList
	}
	r.inflight.Wait()
	r.fd.end()
	if err := <-feedDone; err != nil {
		r.setErr(fmt.Errorf("%s track: merge: %w", t.ID, err))
	}
	if err := r.finishUnit(); err != nil {
		r.setErr(fmt.Errorf("%s track: %w", t.ID, err))
	}
}

// A liveFollower is what a live track follows: its HLS media playlist or its
// DASH manifest.
type liveFollower interface {
	// reload fetches the playlist or manifest once and appends to the track,
	// holding the session's lock only while it changes it, the segments
	// after the last one planned.
	reload(ctx context.Context) (plan.Update, error)
	// wait is how long to wait before the next reload, after one that
	// brought new segments (changed) or not.
	wait(changed bool) time.Duration
	// name says what is reloaded, for messages: "playlist" or "manifest".
	name() string
}

// source is what the track follows.
func (r *liveRun) source() liveFollower {
	if r.t.Follower != nil && r.t.Follower.DASH != nil {
		return &dashManifest{r: r}
	}
	return &hlsPlaylist{r: r}
}

// hlsPlaylist follows a media playlist, by discontinuity and media sequence.
type hlsPlaylist struct{ r *liveRun }

func (h *hlsPlaylist) name() string { return "playlist" }

// wait is the target duration, half of it when nothing changed (RFC 8216 6.3.4).
func (h *hlsPlaylist) wait(changed bool) time.Duration {
	target := time.Duration(max(1, h.r.t.TargetDuration) * float64(time.Second))
	if changed {
		return target
	}
	return target / 2
}

func (h *hlsPlaylist) reload(ctx context.Context) (plan.Update, error) {
	r, t := h.r, h.r.t
	pl, _, err := fetchPlaylist(ctx, r.f, t.Source)
	if err == nil && pl.Media == nil {
		err = fmt.Errorf("playlist %s: a master playlist where a media playlist was expected", redactURL(t.Source))
	}
	if err != nil {
		return plan.Update{}, err
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	up, err := t.Follow(pl.Media, t.Follower.Last)
	if err != nil {
		return up, fmt.Errorf("playlist %s: %w", redactURL(t.Source), wrapUnsupported(err))
	}
	if up.Added > 0 {
		t.Follower.Last = up.Last
		t.Last = t.Offset + int64(len(t.Segments)) - 1
	}
	return up, nil
}

// dashManifest follows a DASH manifest, by period and $Time$ or $Number$. Each
// track reloads the manifest for itself and takes its own representation.
type dashManifest struct {
	r *liveRun
	m *dash.MPD // the last manifest read
}

func (d *dashManifest) name() string { return "manifest" }

func (d *dashManifest) wait(changed bool) time.Duration {
	if d.m == nil {
		return time.Duration(max(1, d.r.t.TargetDuration) * float64(time.Second) / 2)
	}
	return dashReload(d.m, d.r.t.TargetDuration, changed)
}

func (d *dashManifest) reload(ctx context.Context) (plan.Update, error) {
	r, t := d.r, d.r.t
	data, final, date, err := r.f.getDated(ctx, t.Source, nil, dash.MaxSize, true)
	if err != nil {
		return plan.Update{}, fmt.Errorf("manifest: %w", err)
	}
	fetched := time.Now()
	m, err := parseMPD(data, final)
	if err != nil {
		return plan.Update{}, err
	}
	d.m = m
	r.s.mu.Lock()
	st := *t.Follower.DASH
	r.s.mu.Unlock()
	p, ids, err := planDASH(ctx, r.f, m, final, dashSelection(st.Video, st.Audio), liveNow(m, date, fetched))
	if err != nil {
		return plan.Update{}, err
	}
	up := plan.Update{Ended: !m.Dynamic}
	k := slices.IndexFunc(p.Tracks, func(pt *plan.Track) bool { return pt.ID == t.ID })
	if k < 0 || k >= len(ids) {
		r.o.Logger.Debug("live: the manifest lists nothing for the track now", "track", t.ID)
		return up, nil
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	up, cur := dash.Follow(&t.Track, p.Tracks[k], ids[k], st.Cursor)
	up.Ended = !m.Dynamic
	if up.Added > 0 {
		t.Follower.DASH.Cursor = cur
		t.Last = t.Offset + int64(len(t.Segments)) - 1
	}
	return up, nil
}

// followPlaylist reloads the playlist or manifest and dispatches what is new
// until it ends, the deadline, ctx ends (the user stopped) or dctx does (an
// error stopped every track). It returns why it stopped. It also stops when
// nothing new is listed, or nothing is recorded, for Options.LiveIdle: a
// manifest on the wall clock lists new segments even when the broadcast has
// died without saying so.
func (r *liveRun) followPlaylist(ctx, dctx context.Context) string {
	t, log := r.t, r.o.Logger
	src := r.source()
	target := time.Duration(max(1, t.TargetDuration) * float64(time.Second))
	idle := r.o.LiveIdle
	if idle <= 0 {
		idle = max(30*time.Second, 10*target)
	}
	var deadline <-chan time.Time
	if !r.deadline.IsZero() {
		tm := time.NewTimer(time.Until(r.deadline))
		defer tm.Stop()
		deadline = tm.C
	}
	lastNew := time.Now()
	r.recordedAt.Store(lastNew.UnixNano())
	stale := func() time.Duration {
		return max(time.Since(lastNew), time.Since(time.Unix(0, r.recordedAt.Load())))
	}
	wait := src.wait(false)
	failures := 0
	for {
		tm := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			tm.Stop()
			return endStopped
		case <-dctx.Done():
			tm.Stop()
			return endStopped
		case <-deadline:
			tm.Stop()
			log.Info("live: stopping", "track", t.ID, "why", endLiveFor)
			return endLiveFor
		case <-tm.C:
		}
		r.s.mu.Lock()
		from := t.Offset + int64(len(t.Segments))
		r.s.mu.Unlock()
		up, err := src.reload(dctx)
		if err != nil {
			if dctx.Err() != nil {
				continue // the select above says why
			}
			if errors.Is(err, ErrExpired) {
				log.Warn("live: the "+src.name()+" refuses access; pausing", "track", t.ID, "err", err)
				r.setErr(fmt.Errorf("%s track: reloading the %s: %w", t.ID, src.name(), err))
				continue
			}
			if errors.Is(err, ErrUnsupported) || errors.Is(err, ErrLiveDASH) || errors.Is(err, dash.ErrDRM) {
				r.setErr(fmt.Errorf("%s track: %w", t.ID, err))
				continue
			}
			failures++
			if stale() > idle {
				log.Warn("live: stopping: the "+src.name()+" has failed for too long; treating the broadcast as ended",
					"track", t.ID, "since", stale().Round(time.Second), "err", err)
				return endIdle
			}
			wait = min(backoff(&r.o, failures, err), max(target, 2*time.Second))
			log.Warn("live: reloading the "+src.name()+" failed; retrying", "track", t.ID, "attempt", failures, "in", wait.Round(time.Millisecond), "err", err)
			continue
		}
		failures = 0
		if up.Reset {
			log.Warn("live: the playlist went back to earlier sequence numbers (the server restarted?); waiting for new ones",
				"track", t.ID, "last", up.Last.Seq)
		}
		if up.Skipped > 0 {
			log.Warn("live: segments left the window before a reload saw them; they are gaps in the recording",
				"track", t.ID, "count", up.Skipped, "after_sequence", up.Last.Seq-int64(up.Added))
		}
		wait = src.wait(up.Added > 0)
		if up.Added > 0 {
			lastNew = time.Now()
			log.Debug("live: new segments", "track", t.ID, "count", up.Added, "last_sequence", up.Last.Seq)
			r.dispatch(dctx, from, up.Added)
			if err := r.s.Save(); err != nil {
				r.setErr(err)
				continue
			}
		}
		if up.Ended {
			log.Info("live: stopping", "track", t.ID, "why", endOf(src))
			return endOf(src)
		}
		if stale() > idle {
			log.Warn("live: stopping: "+endIdle+"; treating the broadcast as ended", "track", t.ID, "since", stale().Round(time.Second))
			return endIdle
		}
	}
}

// endOf is why a recording stopped when its source ended.
func endOf(src liveFollower) string {
	if _, ok := src.(*dashManifest); ok {
		return endStatic
	}
	return endList
}

// dispatch downloads the n plan segments from index from, in the background.
func (r *liveRun) dispatch(ctx context.Context, from int64, n int) {
	if n <= 0 {
		return
	}
	t := r.t
	// A copy of the track that holds only these segments: the downloads read
	// it while the follower goes on appending to the real one.
	r.s.mu.Lock()
	bt := *t
	bt.Segments = append([]plan.Segment(nil), t.Segments[from-t.Offset:from-t.Offset+int64(n)]...)
	bt.Offset = from
	bt.Keys = t.Keys[:len(t.Keys):len(t.Keys)]
	bt.Inits = t.Inits[:len(t.Inits):len(t.Inits)]
	r.s.mu.Unlock()
	if r.o.Listed != nil {
		r.o.Listed(t.ID, from, bt.Segments) // before the fetches: a copy the browser has is used
	}
	r.fd.grow(n)

	f := *r.f
	if len(bt.Keys) > 0 {
		blocks, err := loadKeys(ctx, &bt, r.f)
		if err != nil {
			r.setErr(fmt.Errorf("%s track: %w", t.ID, err))
			return
		}
		f.blocks = blocks
	}
	for ; r.inits < len(bt.Inits); r.inits++ {
		num, in := r.inits+1, bt.Inits[r.inits]
		if fileExists(t.InitPath(num)) {
			continue
		}
		if r.o.ListedInit != nil && in.Range == nil {
			r.o.ListedInit(t.ID, num, in.URL) // the browser's copy, if any, is used
		}
		// A copy of the browser's on its way is waited for liveClaimLapse at
		// most: the recording must not stall on one that never completes.
		if err := fetchInit(ctx, t, num, in, r.f, &r.o, liveClaimLapse); err != nil {
			r.setErr(fmt.Errorf("%s track: init segment: %w", t.ID, err))
			return
		}
	}
	idx := make([]int64, n)
	fetchable := 0
	for k := range idx {
		idx[k] = from + int64(k)
		if !bt.Segments[k].Gap {
			fetchable++
		}
	}
	r.o.Progress.Total.Add(int64(fetchable))
	r.inflight.Go(func() {
		failed, err := backfill(ctx, &bt, idx, &f, &r.o, r.fd, nil)
		if err != nil {
			if ctx.Err() == nil {
				r.setErr(fmt.Errorf("%s track: %w", t.ID, err))
			}
			return
		}
		for _, fe := range failed {
			fe.Track = t.ID
			r.o.Logger.Warn("live: a segment could not be fetched after every retry; it is a gap in the recording",
				"track", t.ID, "index", fe.Index, "err", fe.Err)
			r.fd.mark(fe.Index, skipped)
		}
	})
}

// sink merges segment i, starting a new unit where the section or the init
// section changes, then forgets it from the plan.
func (r *liveRun) sink(i int64) error {
	t := r.t
	r.s.mu.Lock()
	seg := t.Segment(i)
	r.s.mu.Unlock()
	if r.merge {
		key := [2]int{seg.Section, seg.Init}
		if r.cur != nil && key != r.curKey {
			if err := r.finishUnit(); err != nil {
				return err
			}
		}
		if r.cur == nil {
			if err := r.startUnit(seg, key); err != nil {
				return err
			}
		}
		if err := r.cur.Append(t.SegmentPath(i)); err != nil {
			return err
		}
	}
	r.recordedAt.Store(time.Now().UnixNano())
	r.forget(i, seg.Duration)
	return nil
}

// skip notes a gap: the unit being merged will have a hole.
func (r *liveRun) skip(i int64) {
	if r.cur != nil {
		r.curHoled = true
	}
	r.mu.Lock()
	r.gaps = append(r.gaps, i)
	r.mu.Unlock()
	r.forget(i, 0)
}

// forget drops the plan up to index i, merged or skipped.
func (r *liveRun) forget(i int64, seconds float64) {
	t := r.t
	r.s.mu.Lock()
	if n := i - t.Offset + 1; n > 0 && n <= int64(len(t.Segments)) {
		// The last segment stays: Follow numbers the next section from it, and a
		// plan emptied by forgetting would restart at section 0 and append a
		// discontinuity's segments to the unit being merged.
		n--
		t.Segments = t.Segments[n:]
		t.Offset += n
	}
	t.Follower.Recorded += seconds
	rec := t.Follower.Recorded
	r.s.mu.Unlock()
	if r.t == r.s.Tracks[0] {
		r.o.Progress.Recorded.Store(int64(rec * 1000))
	}
}

func (r *liveRun) startUnit(seg plan.Segment, key [2]int) error {
	t := r.t
	o := r.mopts
	o.Output = r.direct
	r.direct = "" // only the first unit
	if o.Output == "" {
		o.Output = filepath.Join(t.TrackDir(), fmt.Sprintf("live-%03d.mp4", len(t.Follower.Outputs)+len(r.outputs)))
	}
	keepInterrupted(o.Output+merge.PartialSuffix, r.o.Logger)
	if seg.Init > 0 {
		o.Init = t.InitPath(seg.Init)
	}
	m, err := merge.Start(r.mctx, o)
	if err != nil {
		return err
	}
	r.o.Logger.Info("live: recording; the file plays while it grows", "track", t.ID, "file", o.Output+merge.PartialSuffix)
	r.cur, r.curKey, r.curHoled = m, key, false
	return nil
}

// finishUnit finishes the merge in progress, if any.
func (r *liveRun) finishUnit() error {
	if r.cur == nil {
		return nil
	}
	m := r.cur
	r.cur = nil
	if r.curHoled {
		m.AllowGaps()
	}
	res, err := m.Finish()
	if err != nil {
		return err
	}
	r.outputs = append(r.outputs, res.Output)
	r.outExp = append(r.outExp, res.Duration)
	return nil
}

// keepInterrupted moves aside the partial output a killed run left (it plays,
// and may be the only copy of what it holds) so that a new merge does not
// overwrite it.
func keepInterrupted(partial string, log interface{ Warn(string, ...any) }) {
	if !fileExists(partial) {
		return
	}
	base := strings.TrimSuffix(strings.TrimSuffix(partial, merge.PartialSuffix), ".mp4")
	for n := 1; n < 1000; n++ {
		dst := fmt.Sprintf("%s-interrupted-%d.mp4", base, n)
		if fileExists(dst) {
			continue
		}
		if err := os.Rename(partial, dst); err == nil {
			log.Warn("live: kept the recording an earlier run left unfinished", "file", dst)
		}
		return
	}
}

// runLive records a session whose main track is live.
func runLive(ctx context.Context, s *Session, o Options, m MergeOptions, f *fetcher, target string, haveFFmpeg bool,
	res *Result, fail func(string, error) (*Result, error)) (*Result, error) {
	p := o.Progress
	if !haveFFmpeg && !m.NoMerge {
		return fail(StateFailed, fmt.Errorf("%w: a live recording is merged as it goes", merge.ErrNoFFmpeg))
	}
	main := s.Main()
	fresh := main.Offset == 0 && main.Follower != nil && len(main.Follower.Outputs) == 0 && main.Follower.Recorded == 0
	s.mu.Lock()
	for _, t := range s.Tracks {
		if fresh && o.LiveEdge {
			t.KeepLast(LiveEdgeSegments)
			t.Last = int64(len(t.Segments)) - 1
		}
		if t.Follower == nil {
			t.Follower = &LiveState{} // a track that has ended: recorded as listed
		}
	}
	s.State, s.Error = StateRecording, ""
	s.mu.Unlock()
	p.Live.Store(true)
	p.SetState(StateRecording)
	if err := s.Save(); err != nil {
		return nil, err
	}
	o.Logger.Info("live: recording until the playlist ends, Ctrl-C or --live-for", "tracks", len(s.Tracks),
		"from_sequence", firstSequence(main), "edge", o.LiveEdge)

	mctx := context.WithoutCancel(ctx)
	dctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var deadline time.Time
	if o.LiveFor > 0 {
		deadline = time.Now().Add(o.LiveFor)
	}
	runs := make([]*liveRun, len(s.Tracks))
	var wg sync.WaitGroup
	for n, t := range s.Tracks {
		r := &liveRun{s: s, t: t, o: o, mctx: mctx, merge: !m.NoMerge, deadline: deadline, stopAll: stopAll,
			follow: t.Live && t.Source != "",
			mopts:  merge.Options{FFmpeg: m.FFmpeg, FFprobe: m.FFprobe, Logger: o.Logger, Progressive: true}}
		r.o.Concurrency = trackConcurrency(o.Concurrency, t, len(s.Tracks))
		tf := *f // the same client, headers, limits and guard; its own keys
		r.f = &tf
		if len(s.Tracks) == 1 && len(t.Follower.Outputs) == 0 {
			r.direct = target
		}
		runs[n] = r
		wg.Go(func() { r.run(ctx, dctx) })
	}
	wg.Wait()

	var expired, fatal error
	for _, r := range runs {
		e, fe := r.errs()
		if expired == nil {
			expired = e
		}
		if fatal == nil {
			fatal = fe
		}
	}
	// What this run merged is kept whatever happens next. A unit merged
	// straight into the output stays there only when it is all there is.
	finishing := expired == nil && fatal == nil
	direct := false
	s.mu.Lock()
	for _, r := range runs {
		t := r.t
		for k, out := range r.outputs {
			if out == target {
				if finishing && len(r.outputs) == 1 {
					direct = true
					continue
				}
				dst := filepath.Join(t.TrackDir(), fmt.Sprintf("live-%03d.mp4", len(t.Follower.Outputs)))
				if err := os.Rename(out, dst); err != nil && fatal == nil {
					fatal = err
				}
				out = dst
			}
			t.Follower.Outputs = append(t.Follower.Outputs, filepath.Base(out))
			t.Follower.Expected = append(t.Follower.Expected, r.outExp[k])
		}
		t.Gaps = append(t.Gaps, r.gaps...)
		sortInts(t.Gaps)
	}
	s.mu.Unlock()
	res.Fetched, res.Bytes, res.Retries = p.Fetched.Load(), p.Bytes.Load(), p.RetrySummary()
	res.Live, res.Recorded = true, main.Follower.Recorded
	switch {
	case fatal != nil:
		if diskFull(fatal) {
			return fail(StateInterrupted, fatal)
		}
		return fail(StateFailed, fatal)
	case expired != nil:
		return fail(StatePaused, fmt.Errorf("paused: %w", expired))
	}
	stopped := ctx.Err() != nil
	o.Logger.Info("live: finishing", "why", runs[0].why, "recorded_seconds", main.Follower.Recorded)
	if m.NoMerge {
		s.State = StateDone
		return res, s.Save()
	}

	s.State = StateMerging
	p.SetState(StateMerging)
	_ = s.Save()
	if direct {
		res.Output, res.Duration = target, runs[0].outExp[0] // merged straight into the output
	} else {
		jo := merge.JoinOptions{FFmpeg: m.FFmpeg, FFprobe: m.FFprobe, Output: target, Logger: o.Logger}
		for _, t := range s.Tracks {
			if len(t.Follower.Outputs) == 0 {
				if t == main {
					return fail(StateFailed, errors.New("live: nothing was recorded"))
				}
				o.Logger.Warn("live: a track recorded nothing; it is left out", "track", t.ID)
				continue
			}
			jt := merge.JoinTrack{Kind: t.Kind, Language: t.Language, Name: t.Name, Default: t.Default}
			for _, name := range t.Follower.Outputs {
				jt.Sections = append(jt.Sections, filepath.Join(t.TrackDir(), name))
			}
			jo.Tracks = append(jo.Tracks, jt)
		}
		jres, err := merge.Join(mctx, jo)
		if err != nil {
			return fail(StateFailed, err)
		}
		res.Output, res.Duration = jres.Output, jres.Duration
	}
	res.Stopped, res.Why = stopped, runs[0].why
	for _, t := range s.Tracks {
		t.Missing = t.Gaps
		for _, i := range t.Gaps {
			res.Holes = append(res.Holes, Hole{Track: t.ID, Index: i})
		}
	}
	res.Gaps = main.Gaps
	s.State, s.Output, s.Error = StateDone, res.Output, ""
	p.SetState(StateDone)
	if err := s.Save(); err != nil {
		return res, err
	}
	if !m.KeepSegments {
		for _, t := range s.Tracks {
			if err := os.RemoveAll(t.SegmentDir()); err != nil {
				o.Logger.Warn("could not remove segments", "err", err)
			}
			for n := range t.Inits {
				os.Remove(t.InitPath(n + 1))
			}
			for _, name := range t.Follower.Outputs {
				if p := filepath.Join(t.TrackDir(), name); p != res.Output {
					os.Remove(p)
				}
			}
		}
	}
	return res, nil
}

func firstSequence(t *Track) int64 {
	if len(t.Segments) > 0 {
		return t.Segments[0].Sequence
	}
	return t.Follower.Last.Seq
}
