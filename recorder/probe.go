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
	claim func(ctx context.Context, track string, i int64) (bool, func())
}

func (p *prober) has(ctx context.Context, i int64) (bool, error) {
	if v, ok := p.cache[i]; ok {
		return v, nil
	}
	if p.claim != nil {
		_, release := p.claim(ctx, p.s.ID, i)
		if release != nil {
			defer release()
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
		ok, err = p.f.exists(ctx, p.s.URL(i))
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
