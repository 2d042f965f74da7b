package main

import (
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// Before any segment is complete the line still moves: the bytes arriving count.
// Segments already there (the browser's copies) count their bytes too.
func TestProgressLineCountsInFlightAndKept(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		done, bytes, in, kept int64
		want                  string
	}{
		{"nothing yet", 0, 0, 0, 0, "0/30 segments  0.0 MB  "},
		{"in flight only", 0, 0, 2_500_000, 0, "0/30 segments  2.5 MB  "},
		{"kept by the browser", 3, 0, 0, 3_000_000, "3/30 segments  3.0/30.0 MB  "},
		{"mixed", 4, 2_000_000, 500_000, 2_000_000, "4/30 segments  4.5/30.0 MB  "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := recorder.NewProgress()
			p.Total.Store(30)
			p.Done.Store(tc.done)
			p.Bytes.Store(tc.bytes)
			p.InFlight.Store(tc.in)
			p.Kept.Store(tc.kept)
			if got := progressLine(p, false, nil); !strings.HasPrefix(got, tc.want) {
				t.Errorf("progressLine: got %q, want it to start %q", got, tc.want)
			}
		})
	}
}

// The ETA follows the smoothed rate: a burst or a stall of a tick moves it a
// little, never from minutes to 0:00 and back.
func TestSpeedoSmoothsETA(t *testing.T) {
	var sp speedo
	now := time.Unix(0, 0)
	var n int64
	const left = 60_000_000 // bytes to go: 60 s at 1 MB/s
	sp.update(now, n)
	etas := []float64{}
	for i := 1; i <= 100; i++ { // 20 s of 200 ms ticks at 1 MB/s, a 10x burst at 10 s, a stall at 15 s
		now = now.Add(200 * time.Millisecond)
		switch i {
		case 50:
			n += 2_000_000
		case 75:
		default:
			n += 200_000
		}
		sp.update(now, n)
		if s, ok := sp.eta(left); ok {
			etas = append(etas, s)
		} else if i > 10 {
			t.Fatalf("tick %d: no ETA after %v", i, time.Duration(i)*200*time.Millisecond)
		}
	}
	for i, s := range etas {
		if s < 40 || s > 80 {
			t.Errorf("ETA %d: %.0f s, want 40..80 (60 s at a steady 1 MB/s)", i, s)
		}
	}
	if _, ok := (&speedo{}).eta(left); ok {
		t.Errorf("an ETA before any rate was seen")
	}
}
