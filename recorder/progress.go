package recorder

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress is the accounting of one run: counters only, safe for concurrent
// use. Rendering it is the command layer's business.
type Progress struct {
	Total    atomic.Int64 // segments in the range (0 while unknown)
	Done     atomic.Int64 // segments complete on disk (including those found there)
	Fetched  atomic.Int64 // segments downloaded in this run
	Bytes    atomic.Int64 // bytes downloaded in this run
	InFlight atomic.Int64 // bytes received of segments still downloading
	Kept     atomic.Int64 // bytes of segments that were already there: on disk, or the browser's copies
	Failed   atomic.Int64 // segments that gave up after every retry
	Attempts atomic.Int64 // requests made for segments
	Live     atomic.Bool  // following a live playlist: Total grows
	Recorded atomic.Int64 // live: milliseconds of the main track merged so far

	start   time.Time
	mu      sync.Mutex
	state   string
	retries map[string]int // reason → count
}

// NewProgress starts the clock.
func NewProgress() *Progress { return &Progress{start: time.Now(), retries: map[string]int{}} }

// Started is when the run began.
func (p *Progress) Started() time.Time { return p.start }

// SetState records what the run is doing now.
func (p *Progress) SetState(s string) {
	p.mu.Lock()
	p.state = s
	p.mu.Unlock()
}

// State is what the run is doing now.
func (p *Progress) State() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

func (p *Progress) retried(reason string) {
	p.mu.Lock()
	if p.retries == nil {
		p.retries = map[string]int{}
	}
	p.retries[reason]++
	p.mu.Unlock()
}

// Retries returns how many retries were spent, by reason.
func (p *Progress) Retries() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.retries))
	for k, v := range p.retries {
		out[k] = v
	}
	return out
}

// RetrySummary reads like "7 retries (500: 3, reset: 2, html: 2)", or "" when none.
func (p *Progress) RetrySummary() string {
	r := p.Retries()
	if len(r) == 0 {
		return ""
	}
	keys := make([]string, 0, len(r))
	total := 0
	for k, v := range r {
		keys = append(keys, k)
		total += v
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, r[k])
	}
	return fmt.Sprintf("%d retries (%s)", total, strings.Join(parts, ", "))
}

// Estimate is what a renderer needs to show a run's progress by bytes: the
// bytes so far (downloaded, arriving, and already there) and, once a segment
// is complete, the expected total from the average segment size (0 before).
func (p *Progress) Estimate() (have, total int64) {
	complete := p.Bytes.Load() + p.Kept.Load()
	have = complete + p.InFlight.Load()
	if done, n := p.Done.Load(), p.Total.Load(); done > 0 && n > 0 {
		total = max(complete*n/done, have)
	}
	return have, total
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
