package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/streamsnatcher/streamsnatcher/plan"
)

// Options tune a run. The zero value is usable.
type Options struct {
	Client          *http.Client  // nil: a client built by NewClient
	Concurrency     int           // parallel segment downloads; 0: DefaultConcurrency
	Attempts        int           // tries per segment in the main pass; 0: 6
	Backoff         time.Duration // first retry delay; 0: 200ms, doubling with jitter
	MaxBackoff      time.Duration // longest retry delay; 0: 8s
	IdleTimeout     time.Duration // a body silent this long is stalled; 0: 20s
	MaxSegmentBytes int64         // size cap per segment; 0: 256 MiB
	MaxProbes       int           // requests spent looking for the end; 0: 64
	// MinFreeBytes is the free-space floor of the session's disk: below it
	// downloads (and the capture's tee) pause with ErrLowDisk instead of
	// filling the disk; 0: DefaultMinFreeBytes, < 0: no floor.
	MinFreeBytes int64
	// MinRate and RateWindow: a segment body averaging under MinRate bytes/s
	// over a RateWindow fails with ErrTooSlow; 0: DefaultMinRate over
	// DefaultRateWindow, MinRate < 0: no floor.
	MinRate    int64
	RateWindow time.Duration
	// Live playlists: LiveFor stops following after that long (0: until the
	// playlist ends or ctx does); LiveEdge starts LiveEdgeSegments from the end
	// instead of at the earliest segment still listed; LiveIdle ends a
	// recording whose playlist brings nothing new (or fails) that long (0:
	// max(30 s, 10 target durations)).
	LiveFor  time.Duration
	LiveEdge bool
	LiveIdle time.Duration
	Logger   *slog.Logger
	Progress *Progress // counters the caller renders; nil: private
	// Claim, if set, is asked before segment i is fetched: the capture uses it
	// so that the browser and the backfill never fetch the same segment, and
	// the browser can read what the backfill fetches while it arrives. See Hold.
	Claim func(ctx context.Context, track string, i int64, wait bool) Hold
	// Listed, if set, is told of the segments a live follower (HLS or DASH)
	// adds to a track's plan (from index from), before it fetches them: the
	// capture maps their URLs so that the browser's copies are kept and
	// claimed as a VOD's.
	Listed func(track string, from int64, segs []plan.Segment)
	// ListedInit, if set, is told of init section n of a track that a live
	// follower is about to fetch from url (a whole file, not a range): the
	// capture makes the browser's copy of it, if any, the file or the claim
	// the follower waits for (briefly) instead of fetching it again.
	ListedInit func(track string, n int, url string)
	// Limiter, if set, paces the segment requests per host (see HostLimiter):
	// Concurrency is then the most it lets through, not where it starts.
	Limiter *HostLimiter
	// Guard, if set, limits the hosts and addresses the run may contact (the
	// capture sets one per stream; get and replay run without).
	Guard *Guard
	// Yield, when closed, stops a VOD run gently: no new request starts, the
	// transfers under way land (a browser may be reading them: see Hold),
	// no merge is made, and Run returns ErrYielded. The capture closes it to
	// go on with a track the player added. A live run ignores it.
	Yield <-chan struct{}
}

// ErrYielded ends a run stopped through Options.Yield: what it fetched is on
// disk, and the next run goes on from there.
var ErrYielded = errors.New("stopped to go on with more tracks")

// A Hold is the answer to Options.Claim.
type Hold struct {
	// Arrived: another copy of the segment landed (waited for when asked to wait).
	Arrived bool
	// Busy: another copy is on its way and the claim was asked not to wait.
	Busy bool
	// Release, when set, means the caller fetches the segment and calls it when done.
	Release func()
	// show, when set, receives the bytes as they arrive (see growing).
	show *growing
}

// errBusy puts a segment the browser is fetching at the back of the queue.
var errBusy = errors.New("the browser is fetching it")

// DefaultConcurrency is the number of parallel downloads when none is given.
// Chosen with the benchmark in bench/: 32 connections saturate a 200 MB/s link
// of 8 MB/s connections with 30 ms to first byte.
const DefaultConcurrency = 32

func (o *Options) fill() {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 8 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 20 * time.Second
	}
	if o.MaxSegmentBytes <= 0 {
		o.MaxSegmentBytes = 256 << 20
	}
	if o.MaxProbes <= 0 {
		o.MaxProbes = 64
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.MinRate == 0 {
		o.MinRate = DefaultMinRate
	}
	if o.RateWindow <= 0 {
		o.RateWindow = DefaultRateWindow
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = NewProgress()
	}
	if o.Client == nil {
		o.Client = NewClient(nil, o.Concurrency)
	}
}

// NewClient returns an HTTP client for segment downloads: connection reuse
// sized for the concurrency, HTTP/2 when the origin offers it, no transparent
// decompression (segments are stored byte for byte), verified TLS.
func NewClient(base *http.Transport, concurrency int) *http.Client {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	tr := base.Clone()
	tr.MaxIdleConns = concurrency * 2
	tr.MaxIdleConnsPerHost = concurrency * 2
	tr.MaxConnsPerHost = 0
	tr.ForceAttemptHTTP2 = true
	tr.DisableCompression = true
	tr.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: tr}
}

// A SegmentError records a segment that could not be fetched.
type SegmentError struct {
	Track string // the track's id; "" in a session of one track
	Index int64
	URL   string
	Err   error
}

func (e *SegmentError) Error() string {
	if e.Track != "" && e.Track != "video" {
		return fmt.Sprintf("%s segment %d: %v", e.Track, e.Index, e.Err)
	}
	return fmt.Sprintf("segment %d: %v", e.Index, e.Err)
}

func (e *SegmentError) Unwrap() error { return e.Err }

// reason names an error for the retry account.
func reason(err error) string {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprint(se.Code)
	case errors.Is(err, ErrDecrypt):
		return "cannot decrypt"
	case errors.Is(err, ErrNotMedia):
		return "not media"
	case errors.Is(err, ErrTruncated):
		return "truncated"
	case errors.Is(err, ErrStalled):
		return "stalled"
	case errors.Is(err, ErrTooLarge):
		return "too large"
	case strings.Contains(err.Error(), "reset"), strings.Contains(err.Error(), "EOF"), strings.Contains(err.Error(), "broken pipe"):
		return "reset"
	}
	return "network"
}

// feed hands completed segments to a sink in index order while downloads
// finish in any order: the merge runs alongside the download. A live feed
// grows as the playlist does; it forgets what it has delivered.
type feed struct {
	first, step int64
	sink        func(i int64) error
	skip        func(i int64) // told of each skipped index, in order; may be nil

	mu    sync.Mutex
	state []uint8 // by position from base: 0 pending, 1 done, 2 skipped (a gap)
	base  int     // position of state[0]
	pos   int     // next position to deliver
	open  bool    // live: positions may still be added; run waits for them
	ended bool    // live: no more positions; deliver what is ready, stop at the first pending
	err   error   // the sink's first error; delivery stops
	wake  chan struct{}
}

const (
	pending uint8 = iota
	ready
	skipped
)

func newFeed(first, step int64, n int, sink func(int64) error) *feed {
	return &feed{first: first, step: step, sink: sink, state: make([]uint8, n), wake: make(chan struct{}, 1)}
}

// newLiveFeed makes an empty feed from index first that grows until end.
func newLiveFeed(first int64, sink func(int64) error, skip func(int64)) *feed {
	return &feed{first: first, step: 1, sink: sink, skip: skip, open: true, wake: make(chan struct{}, 1)}
}

// grow adds n pending positions.
func (f *feed) grow(n int) {
	f.mu.Lock()
	f.state = append(f.state, make([]uint8, n)...)
	f.mu.Unlock()
}

// end says no position will be added: run delivers what is ready and returns
// at the first position still pending.
func (f *feed) end() {
	f.mu.Lock()
	f.open, f.ended = false, true
	f.mu.Unlock()
	f.poke()
}

// delivered is the first index not yet handed to the sink.
func (f *feed) delivered() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first + int64(f.pos)*f.step
}

func (f *feed) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *feed) mark(i int64, st uint8) {
	p := int((i-f.first)/f.step) - f.base
	f.mu.Lock()
	if p >= 0 && p < len(f.state) {
		f.state[p] = st
	}
	f.mu.Unlock()
	f.poke()
}

// run delivers until every position is delivered (a live feed: until it has
// ended and nothing more is ready), the sink fails or ctx ends.
func (f *feed) run(ctx context.Context) error {
	for {
		f.mu.Lock()
		for f.pos-f.base < len(f.state) && f.state[f.pos-f.base] != pending {
			st, i := f.state[f.pos-f.base], f.first+int64(f.pos)*f.step
			f.pos++
			f.mu.Unlock()
			if st == skipped {
				if f.skip != nil {
					f.skip(i)
				}
			} else if err := f.sink(i); err != nil {
				f.mu.Lock()
				f.err = err
				f.mu.Unlock()
				return err
			}
			f.mu.Lock()
		}
		if n := f.pos - f.base; f.open && n >= 4096 {
			f.state = append([]uint8(nil), f.state[n:]...) // forget what was delivered
			f.base = f.pos
		}
		done := !f.open && (f.pos-f.base >= len(f.state) || f.ended)
		f.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-f.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// backfill fetches every index in idx that is not on disk. It returns the
// segments that failed after every retry, and ErrExpired (wrapped) when the
// origin started refusing access: then it stops early, leaving the rest for a
// later run with new headers.
func backfill(ctx context.Context, s *Track, idx []int64, f *fetcher, o *Options, fd *feed, halt *halt) ([]*SegmentError, error) {
	var (
		mu     sync.Mutex
		failed []*SegmentError
		full   error // the disk is full or the origin untrusted: stop, no other segment can succeed
	)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if halt == nil {
		halt = newHalt()
	}
	halted := halt.stopped

	attempt := func(ctx context.Context, i int64, tries int, wait bool) error {
		url := s.URL(i)
		// A slot first, then the claim: a segment is claimed only when its
		// request can start, so the browser never waits behind the queue.
		slot := func() (func(error), error) {
			if halted() {
				return nil, errHalted // access was refused: no new request with these credentials
			}
			if o.Limiter == nil {
				return func(error) {}, nil
			}
			done, err := o.Limiter.acquire(ctx, url, o.Concurrency)
			if err == nil && halted() { // refused while it waited for the slot
				done(errBusy)
				return nil, errHalted
			}
			return done, err
		}
		done, err := slot()
		if err != nil {
			return err
		}
		var show *growing
		if o.Claim != nil {
			cctx := ctx
			if wait {
				// Waiting for the browser's copy is not a transfer of ours: a halt ends it.
				var cancel context.CancelFunc
				cctx, cancel = context.WithCancel(ctx)
				defer cancel()
				go func() {
					select {
					case <-halt.done():
						cancel()
					case <-cctx.Done():
					}
				}()
			}
			h := o.Claim(cctx, s.ID, i, wait)
			if h.Busy {
				done(errBusy)
				return errBusy
			}
			if h.Release != nil {
				defer h.Release()
			} else if halted() && !s.Have(i) {
				done(errBusy)
				return errHalted // stopped while it waited for the browser's copy
			}
			show = h.show
			// Whether it waited for another copy or claimed the segment, that
			// copy may have landed since the list of what to fetch was made.
			if s.Have(i) {
				done(errBusy)
				o.Progress.Done.Add(1)
				o.Progress.Kept.Add(fileSize(s.SegmentPath(i)))
				return nil
			}
		}
		var dec *decryption
		seg := s.Segment(i)
		if seg.Key > 0 && seg.Key < len(f.blocks) {
			iv, err := s.IV(i)
			if err != nil {
				done(err)
				return fmt.Errorf("%s: %w: %w", redactURL(url), ErrDecrypt, err)
			}
			dec = &decryption{block: f.blocks[seg.Key], iv: iv}
		}
		for a := 1; a <= tries; a++ {
			if a > 1 {
				if done, err = slot(); err != nil {
					return err
				}
			}
			o.Progress.Attempts.Add(1)
			var n int64
			n, err = f.fetchShown(ctx, url, seg.Range, s.SegmentPath(i), true, dec, show)
			if errors.Is(err, ErrExpired) {
				halt.stop(err) // before the slot goes to another request with the same credentials
			}
			done(err)
			if err == nil {
				o.Progress.Bytes.Add(n)
				o.Progress.Fetched.Add(1)
				o.Progress.Done.Add(1)
				return nil
			}
			if ctx.Err() != nil || errors.Is(err, ErrExpired) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrDecrypt) ||
				errors.Is(err, ErrUntrusted) || diskFull(err) {
				return err
			}
			if a == tries {
				break
			}
			o.Progress.retried(reason(err))
			o.Logger.Debug("retrying segment", "index", i, "attempt", a, "err", err)
			if !sleep(ctx, backoff(o, a, err)) {
				return ctx.Err()
			}
		}
		return err
	}

	pass := func(list []int64, tries, limit int, wait bool) (again, busy []int64) {
		jobs := make(chan int64)
		var wg sync.WaitGroup
		for w := 0; w < limit; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					err := attempt(runCtx, i, tries, wait)
					switch {
					case err == nil:
						fd.mark(i, ready)
					case errors.Is(err, errBusy):
						mu.Lock()
						busy = append(busy, i)
						mu.Unlock()
					case runCtx.Err() != nil, errors.Is(err, errHalted):
					case diskFull(err), errors.Is(err, ErrUntrusted):
						mu.Lock()
						if full == nil {
							full = &SegmentError{Index: i, URL: s.URL(i), Err: err}
						}
						mu.Unlock()
						stop()
					case errors.Is(err, ErrExpired):
						// No new request with these credentials; the transfers
						// under way were authorised and finish.
						halt.stop(err)
					default:
						mu.Lock()
						again = append(again, i)
						failed = append(failed, &SegmentError{Index: i, URL: s.URL(i), Err: err})
						mu.Unlock()
					}
				}
			}()
		}
	dispatch:
		for _, i := range list {
			select {
			case jobs <- i:
			case <-runCtx.Done():
				break dispatch
			case <-halt.done():
				break dispatch
			}
		}
		close(jobs)
		wg.Wait()
		return again, busy
	}

	var todo []int64
	o.Progress.Kept.Store(0)
	for _, i := range idx {
		if s.IsGap(i) {
			fd.mark(i, skipped) // EXT-X-GAP: a hole by design, never fetched
			continue
		}
		if s.Have(i) {
			o.Progress.Done.Add(1)
			o.Progress.Kept.Add(fileSize(s.SegmentPath(i)))
			fd.mark(i, ready)
			continue
		}
		todo = append(todo, i)
	}
	again, busy := pass(todo, o.Attempts, o.Concurrency, false)
	if len(busy) > 0 && full == nil && !halted() && ctx.Err() == nil {
		// What the browser was fetching: its copy has landed by now, or is
		// waited for; the backfill fetches what it did not keep.
		more, _ := pass(sortInts(busy), o.Attempts, o.Concurrency, true)
		again = append(again, more...)
	}
	if full != nil {
		return failed, full
	}
	if len(again) > 0 && !halted() && ctx.Err() == nil {
		// A final pass over what failed, gentler: fewer at once, the same tries.
		o.Logger.Info("final pass over failed segments", "count", len(again))
		failed = nil
		again, _ = pass(sortInts(again), o.Attempts, min(4, o.Concurrency), true)
	}
	if err := halt.err(); err != nil {
		return failed, fmt.Errorf("%w", err)
	}
	if err := ctx.Err(); err != nil {
		return failed, err
	}
	o.Progress.Failed.Store(int64(len(again)))
	sortSegErrs(failed)
	return failed, nil
}

// A halt stops new requests of every track of a run once access is refused
// (the credentials are the same for all), or when the run yields
// (Options.Yield). Transfers under way go on.
type halt struct {
	once  sync.Once
	ch    chan struct{}
	cause error
}

// errHalted ends an attempt that would have made a new request after a halt.
var errHalted = errors.New("halted: access refused")

func newHalt() *halt { return &halt{ch: make(chan struct{})} }

func (h *halt) stop(err error) {
	h.once.Do(func() {
		h.cause = err
		close(h.ch)
	})
}

func (h *halt) done() <-chan struct{} { return h.ch }

func (h *halt) stopped() bool {
	select {
	case <-h.ch:
		return true
	default:
		return false
	}
}

// err is the refusal (or ErrYielded) that halted the run, nil when none did.
func (h *halt) err() error {
	if h.stopped() {
		return h.cause
	}
	return nil
}

func backoff(o *Options, attempt int, err error) time.Duration {
	d := o.Backoff << (attempt - 1)
	if d > o.MaxBackoff || d <= 0 {
		d = o.MaxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > d {
		d = min(se.RetryAfter, time.Minute)
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
