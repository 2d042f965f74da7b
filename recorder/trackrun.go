package recorder

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/streamsnatcher/streamsnatcher/merge"
)

// units numbers the merge units of a listed track: a new unit starts where
// the discontinuity section or the init section changes. Template tracks are
// one unit. The result is indexed by segment position (nil for templates).
func (t *Track) unitIndex() []int {
	if t.Template != nil || len(t.Segments) == 0 {
		return nil
	}
	out := make([]int, len(t.Segments))
	u := 0
	for i := 1; i < len(t.Segments); i++ {
		a, b := t.Segments[i-1], t.Segments[i]
		if a.Section != b.Section || a.Init != b.Init {
			u++
		}
		out[i] = u
	}
	return out
}

// units counts the track's merge units.
func (t *Track) units() int {
	if u := t.unitIndex(); len(u) > 0 {
		return u[len(u)-1] + 1
	}
	return 1
}

// trackRun downloads one track and merges it, unit by unit, while it downloads.
type trackRun struct {
	s         *Session
	t         *Track
	o         Options
	f         *fetcher
	mopts     merge.Options
	merge     bool   // ffmpeg is there and merging was asked for
	direct    string // the final output, when this track alone makes it
	allowGaps bool
	halt      *halt // shared by the run's tracks: access refused stops new requests of all
	// mux and input, when set, mux every track live: the segments go into input
	// instead of a merger of the track's own (see liveMuxable).
	mux   *merge.Mux
	input *merge.MuxInput

	ctx      context.Context
	unitOf   []int     // by segment position; nil: everything is unit 0
	expected []float64 // listed seconds of each unit; 0 where unknown or holed

	mu       sync.Mutex
	gapUnits map[int]bool // units with a hole: the merge must accept a jump

	// Owned by the feed goroutine until it returns.
	cur     *merge.Merger
	curUnit int
	outputs []string  // merged units in order
	outExp  []float64 // their expected durations
	result  *merge.Result

	// Results.
	gaps   []int64
	failed []*SegmentError
	err    error
}

func (r *trackRun) unit(i int64) int {
	if r.unitOf == nil || i < 0 || i >= int64(len(r.unitOf)) {
		return 0
	}
	return r.unitOf[i]
}

func (r *trackRun) run(ctx context.Context) {
	t := r.t
	r.ctx = ctx
	r.unitOf = t.unitIndex()
	r.gapUnits = map[int]bool{}
	n := t.units()
	r.expected = make([]float64, n)
	known := make([]bool, n)
	for u := range known {
		known[u] = true
	}
	for i, s := range t.Segments {
		u := r.unit(int64(i))
		r.expected[u] += s.Duration
		known[u] = known[u] && s.Duration > 0
		if s.Gap {
			r.gaps = append(r.gaps, int64(i))
			r.gapUnits[u] = true
		}
	}
	for u := range known {
		if !known[u] || t.Template != nil {
			r.expected[u] = 0
		}
	}

	blocks, err := loadKeys(ctx, t, r.f)
	if err != nil {
		r.err = err
		return
	}
	r.f.blocks = blocks
	for n := range t.Inits {
		if err := fetchInit(ctx, t, n+1, t.Inits[n], r.f, &r.o, 0); err != nil {
			r.err = fmt.Errorf("%s track: init segment: %w", t.ID, err)
			return
		}
	}

	idx := t.Indices()
	if r.input != nil && len(idx) > 0 {
		// ffmpeg can start on the first bytes of the first segment, or at once on an init segment.
		if len(t.Inits) > 0 {
			r.input.Prepare(nil)
		} else {
			r.f.headPath, r.f.head = t.SegmentPath(idx[0]), r.input.Prepare // Prepare takes the first head only
		}
	}
	fd := newFeed(t.First, t.Step(), len(idx), r.sink)
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	feedDone := make(chan error, 1)
	go func() { feedDone <- fd.run(feedCtx) }()

	t0 := time.Now()
	failed, err := backfill(ctx, t, idx, r.f, &r.o, fd, r.halt)
	r.o.Logger.Debug("track downloaded", "track", t.ID, "segments", len(idx), "failed", len(failed),
		"concurrency", r.o.Concurrency, "seconds", time.Since(t0).Seconds(),
		"merged", (fd.delivered()-t.First)/t.Step()) // segments handed to the merge so far
	for _, fe := range failed {
		fe.Track = t.ID
	}
	stop := func() {
		stopFeed()
		<-feedDone
		r.abort()
	}
	if err != nil {
		stop()
		r.err = err
		return
	}
	if len(failed) > 0 && !r.allowGaps {
		stop()
		r.failed = failed
		return
	}
	for _, fe := range failed {
		r.mu.Lock()
		r.gapUnits[r.unit(fe.Index)] = true
		r.mu.Unlock()
		r.gaps = append(r.gaps, fe.Index)
		fd.mark(fe.Index, skipped)
	}
	sortInts(r.gaps)
	if ferr := <-feedDone; ferr != nil {
		r.abort()
		r.err = fmt.Errorf("%s track: merge: %w", t.ID, ferr)
		return
	}
	if r.input != nil {
		// The track's input ends here, not in finish: ffmpeg reads the other
		// tracks' inputs on to their ends.
		if len(r.gaps) > 0 {
			r.input.AllowGaps()
		}
		if err := r.input.Close(); err != nil {
			r.abort()
			r.err = fmt.Errorf("%s track: merge: %w", t.ID, err)
		}
	}
}

// finish finishes the last unit's merge, once every track has downloaded. A
// live-muxed track has nothing to finish: Run finishes the mux.
func (r *trackRun) finish() error {
	if err := r.finishUnit(); err != nil {
		return fmt.Errorf("%s track: %w", r.t.ID, err)
	}
	return nil
}

// sink hands segment i to the merger of its unit, finishing the previous unit
// when a new one starts. The feed calls it in index order.
func (r *trackRun) sink(i int64) error {
	if !r.merge {
		return nil
	}
	if r.input != nil {
		return r.input.Append(r.t.SegmentPath(i))
	}
	u := r.unit(i)
	if r.cur != nil && u != r.curUnit {
		if err := r.finishUnit(); err != nil {
			return err
		}
	}
	if r.cur == nil {
		o := r.mopts
		o.Output = r.direct
		if o.Output == "" {
			o.Output = filepath.Join(r.t.TrackDir(), fmt.Sprintf("unit-%03d.mp4", u))
		}
		if in := r.t.InitOf(i); in != nil {
			o.Init = r.t.InitPath(r.t.Segment(i).Init) // a template track's Segment carries its Init
		}
		r.mu.Lock()
		holed := r.gapUnits[u]
		r.mu.Unlock()
		if !holed {
			o.ExpectedDuration = r.expected[u]
		}
		m, err := merge.Start(r.ctx, o)
		if err != nil {
			return err
		}
		r.cur, r.curUnit = m, u
	}
	return r.cur.Append(r.t.SegmentPath(i))
}

// finishUnit finishes the merger in progress, if any, and keeps its output.
func (r *trackRun) finishUnit() error {
	if r.cur == nil {
		return nil
	}
	m := r.cur
	r.cur = nil
	r.mu.Lock()
	holed := r.gapUnits[r.curUnit]
	r.mu.Unlock()
	if holed {
		m.AllowGaps()
	}
	res, err := m.Finish()
	if err != nil {
		return err
	}
	r.result = res
	r.outputs = append(r.outputs, res.Output)
	exp := r.expected[r.curUnit]
	if holed {
		exp = 0
	}
	r.outExp = append(r.outExp, exp)
	return nil
}

func (r *trackRun) abort() {
	if r.mux != nil {
		r.mux.Abort() // the other tracks' inputs fail with merge.ErrAborted
	}
	if r.cur != nil {
		r.cur.Abort()
		r.cur = nil
	}
}

// joinTrack describes the track's merged units for merge.Join.
func (r *trackRun) joinTrack() merge.JoinTrack {
	return merge.JoinTrack{Kind: r.t.Kind, Language: r.t.Language, Name: r.t.Name, Default: r.t.Default,
		Sections: r.outputs, Expected: r.outExp}
}
