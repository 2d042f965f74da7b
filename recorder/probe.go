package recorder

import (
	"context"
	"errors"
	"fmt"
)

// ErrProbeLimit means probing used its request budget without finding an end.
var ErrProbeLimit = errors.New("probe budget spent")

// prober finds the range of a template stream with ranged GETs of the first
// bytes of a segment. A miss is a 404/410 or a body that is not media.
type prober struct {
	s      *Track
	f      *fetcher
	budget int
	cache  map[int64]bool
	used   int
	// claim, if set, is Options.Claim: a copy of segment i the browser is
	// fetching lands instead of a probe request.
	claim func(ctx context.Context, track string, i int64, wait bool) Hold
	miss  error // why the last index asked was not there (ErrNotFound or ErrNotMedia), if it was not
}

func (p *prober) has(ctx context.Context, i int64) (bool, error) {
	p.miss = nil
	if v, ok := p.cache[i]; ok {
		return v, nil
	}
	if p.claim != nil {
		if h := p.claim(ctx, p.s.ID, i, true); h.Release != nil {
			defer h.Release()
		}
	}
	if p.s.Have(i) {
		p.cache[i] = true
		return true, nil
	}
	if p.used >= p.budget {
		return false, fmt.Errorf("%w: %d requests without finding the end; give --count or --duration", ErrProbeLimit, p.used)
	}
	p.used++
	var ok bool
	var err error
	for try := 0; try < 3; try++ { // a passing 5xx or reset should not end the video
		ok, p.miss, err = p.f.probe(ctx, p.s.URL(i))
		if err == nil || errors.Is(err, ErrExpired) || errors.Is(err, ErrUntrusted) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("probing segment %d: %w", i, err)
	}
	p.cache[i] = ok
	return ok, nil
}

// present treats an isolated missing index as present when the next one exists.
func (p *prober) present(ctx context.Context, i int64) (bool, error) {
	ok, err := p.has(ctx, i)
	if ok || err != nil {
		return ok, err
	}
	return p.has(ctx, i+p.s.Template.Step)
}

// findEnd returns the last index, starting from known, an index that exists:
// it steps up exponentially until a miss, then binary-searches.
func (p *prober) findEnd(ctx context.Context, known int64) (int64, error) {
	step := p.s.Template.Step
	lo := known // exists
	jump := int64(1)
	var hi int64 // a miss
	for {
		cand := lo + jump*step
		ok, err := p.present(ctx, cand)
		if err != nil {
			return 0, err
		}
		if !ok {
			hi = cand
			break
		}
		lo = cand
		if jump < 1<<40 {
			jump *= 2
		}
	}
	return p.lastBetween(ctx, lo, hi)
}

// lastBetween binary-searches the last present index in lo..hi, where lo is
// present and hi is not.
func (p *prober) lastBetween(ctx context.Context, lo, hi int64) (int64, error) {
	step := p.s.Step()
	for (hi-lo)/step > 1 {
		mid := lo + ((hi-lo)/step/2)*step
		ok, err := p.present(ctx, mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// findStart returns the first index at or below known: 0 or 1 when those
// exist, else the lowest by binary search.
func (p *prober) findStart(ctx context.Context, known int64) (int64, error) {
	step := p.s.Template.Step
	base := known % step // indices share known's residue
	for _, c := range []int64{base, base + step} {
		if c >= known {
			return known, nil
		}
		ok, err := p.has(ctx, c)
		if err != nil {
			return 0, err
		}
		if ok {
			return c, nil
		}
	}
	lo, hi := base+step, known // lo is a miss, hi exists
	for (hi-lo)/step > 1 {
		mid := lo + ((hi-lo)/step/2)*step
		ok, err := p.has(ctx, mid)
		if err != nil {
			return 0, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, nil
}

// A StartError says the first segment of a range is not there: the URL is
// mistyped, or the numbering starts elsewhere. It wraps ErrNotFound.
type StartError struct {
	Index, Next int64  // the index tried and the one after it
	URL         string // the first URL tried, redacted
	NextExists  bool   // segment Next is there: the numbering starts later
	Cause       error  // why segment Index is not there: wraps ErrNotFound or ErrNotMedia
}

func (e *StartError) Error() string {
	if e.NextExists {
		return fmt.Sprintf("segment %d %s: %v, but segment %d is there: the numbering starts at %d", e.Index, e.URL, e.Cause, e.Next, e.Next)
	}
	return fmt.Sprintf("segment %d %s: %v, nor segment %d: the first segments are not there", e.Index, e.URL, e.Cause, e.Next)
}

func (e *StartError) Unwrap() error { return e.Cause }

// checkStart makes sure segment First exists before anything else is fetched,
// so that a mistyped URL fails after a request or two instead of a whole
// backfill's retries. When the start was not given (ProbeStart) and First is 0
// while segment 1 exists, the site numbers from 1: First moves there, and Last
// with it when the range was counted (--count N is N segments from the start).
func (p *prober) checkStart(ctx context.Context) error {
	s := p.s
	ok, err := p.has(ctx, s.First)
	if err != nil || ok {
		return err
	}
	cause := p.miss
	if cause == nil { // segment First is on disk, or answered before
		cause = ErrNotFound
	} else if errors.Is(cause, ErrNotFound) {
		cause = ErrNotFound // the status and URL are said already
	}
	next := s.First + s.Step()
	nextOK, err := p.has(ctx, next)
	if err != nil {
		return err
	}
	if nextOK && s.ProbeStart && s.First == 0 {
		if s.EndKnown {
			s.Last += s.Step()
		}
		s.First = next
		return nil
	}
	return &StartError{Index: s.First, Next: next, URL: redactURL(s.URL(s.First)), NextExists: nextOK, Cause: cause}
}

// checkEnd is for a range the person counted (--count, or --duration rounded
// up) whose segment First exists: when segment Last is not there, the video
// ends earlier, and checkEnd returns its real last index, found by binary
// search between First and Last. Asking is cheaper than retrying the missing
// tail as if it were lost. A hole in the middle is not mistaken for the end:
// a miss whose next index exists counts as present.
func (p *prober) checkEnd(ctx context.Context) (int64, error) {
	s := p.s
	ok, err := p.present(ctx, s.Last)
	if err != nil || ok {
		return s.Last, err
	}
	return p.lastBetween(ctx, s.First, s.Last) // First exists, Last does not
}

// checkRange runs checkStart, and checkEnd when the range is counted, for a
// `get` session with a template that has nothing on disk yet: the range is
// what the person typed and may be off by a little. It returns the last index
// the range had when the end moved, or -1.
func (p *prober) checkRange(ctx context.Context) (shortenedFrom int64, err error) {
	s := p.s
	if err := p.checkStart(ctx); err != nil {
		return -1, err
	}
	if !s.EndKnown {
		return -1, nil
	}
	last, err := p.checkEnd(ctx)
	if err != nil || last == s.Last {
		return -1, err
	}
	was := s.Last
	s.Last = last
	return was, nil
}
