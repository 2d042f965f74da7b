package testorigin

import (
	"sync"
	"time"
)

// bucket paces bytes at a fixed rate. It keeps the time at which the next byte may be sent
// (a virtual clock), so a reservation costs one mutex and no goroutine; reservations are served
// in the order they are made, which shares the rate fairly between concurrent responses.
type bucket struct {
	rate int64 // bytes/s

	mu   sync.Mutex
	next time.Time
}

func newBucket(rate int64) *bucket { return &bucket{rate: rate} }

const burstWindow = 50 * time.Millisecond

// reserve books n bytes and returns how long to wait before sending them.
func (b *bucket) reserve(now time.Time, n int64) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Credit for time already past is kept up to a small window: it absorbs timer oversleep,
	// which would otherwise lower the rate, while an idle bucket grants only a short burst.
	if floor := now.Add(-burstWindow); b.next.Before(floor) {
		b.next = floor
	}
	wait := max(b.next.Sub(now), 0)
	b.next = b.next.Add(time.Duration(float64(n) / float64(b.rate) * float64(time.Second)))
	return wait
}

// minRate returns the lowest rate of the non-nil buckets, 0 if none.
func minRate(bs ...*bucket) int64 {
	var r int64
	for _, b := range bs {
		if b != nil && (r == 0 || b.rate < r) {
			r = b.rate
		}
	}
	return r
}
