package testorigin

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// Fault is a kind of injected failure.
type Fault string

// The faults an Origin injects.
const (
	// Fault500 answers 500 with a small text body.
	Fault500 Fault = "500"
	// Fault429 answers 429 with Retry-After (Faults.RetryAfter in whole seconds, rounded up).
	Fault429 Fault = "429"
	// FaultReset sends the headers and half the body, then resets the TCP connection (SO_LINGER 0);
	// over HTTP/2 it resets the stream instead.
	FaultReset Fault = "reset"
	// FaultTruncate declares the full Content-Length, sends half the body and ends the response
	// cleanly; the connection closes and the client sees an unexpected EOF.
	FaultTruncate Fault = "truncate"
	// FaultHTML answers 200 text/html with an HTML error page, as CDNs do.
	FaultHTML Fault = "html"
	// FaultStall sends half the body, then hangs for Faults.Stall (or until the client gives up or
	// the Origin closes) and aborts the response.
	FaultStall Fault = "stall"
)

// Faults configures random fault injection on segment requests (.ts, .m4s, .aac, .mp4, .m4a GETs of
// existing files). One draw per request picks at most one fault, so the probabilities must sum to
// at most 1. Whether the k-th request of a path faults depends only on Seed, the path and k, not on
// the order in which concurrent requests arrive.
type Faults struct {
	Seed                                         int64
	P500, P429, PReset, PTruncate, PHTML, PStall float64

	// RetryAfter is sent with 429 answers.
	RetryAfter time.Duration
	// Stall is how long a stalled response hangs before it is aborted; 0 hangs until the client
	// gives up or the Origin closes.
	Stall time.Duration
	// MaxPerPath caps the faults injected per path (0 = no cap), so that a client that retries
	// more than MaxPerPath times always gets every file.
	MaxPerPath int
}

func (f Faults) probabilities() [6]struct {
	fault Fault
	p     float64
} {
	return [6]struct {
		fault Fault
		p     float64
	}{
		{Fault500, f.P500}, {Fault429, f.P429}, {FaultReset, f.PReset},
		{FaultTruncate, f.PTruncate}, {FaultHTML, f.PHTML}, {FaultStall, f.PStall},
	}
}

func (f Faults) validate() error {
	sum := 0.0
	for _, fp := range f.probabilities() {
		if fp.p < 0 || fp.p > 1 {
			return fmt.Errorf("fault %s: probability %v outside [0, 1]", fp.fault, fp.p)
		}
		sum += fp.p
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("fault probabilities sum to %v, more than 1", sum)
	}
	if f.MaxPerPath < 0 {
		return errors.New("fault MaxPerPath is negative")
	}
	return nil
}

func (f Faults) enabled() bool {
	for _, fp := range f.probabilities() {
		if fp.p > 0 {
			return true
		}
	}
	return false
}

// draw picks the fault (or "") for attempt number attempt of path p.
func (f Faults) draw(p string, attempt int) Fault {
	h := fnv.New64a()
	h.Write([]byte(p))
	rng := rand.New(rand.NewPCG(uint64(f.Seed), h.Sum64()^(uint64(attempt)*0x9e3779b97f4a7c15)))
	x := rng.Float64()
	for _, fp := range f.probabilities() {
		if x < fp.p {
			return fp.fault
		}
		x -= fp.p
	}
	return ""
}
