package recorder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// renumbered serves the fixture's segments as seg_<from>.ts, seg_<from+1>.ts, …,
// leaving out the positions in skip (404s).
func renumbered(t *testing.T, fx *fixture, from int, skip ...int) *testorigin.Origin {
	t.Helper()
	dir := t.TempDir()
	for i, seg := range fx.media.Segments {
		if containsInt(skip, i) {
			continue
		}
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seg_%05d.ts", from+i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return testorigin.Start(t, testorigin.Options{Dir: dir, Prefix: "/v/abc/720p/",
		RequireReferer: testReferer, RequireCookie: testCookie})
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// placeholderSession is what `get URL --pad 5 [--start first] --count n` makes.
func placeholderSession(t *testing.T, fx *fixture, rawURL string, first, count int64, startGiven bool) *Session {
	t.Helper()
	tmpl, err := urltemplate.Placeholder(rawURL, 5)
	if err != nil {
		t.Fatal(err)
	}
	s := withTemplate(&Session{Source: "get", Headers: fx.headers(), Target: filepath.Join(t.TempDir(), "out.mp4")},
		tmpl, first, !startGiven)
	if count > 0 {
		s.Main().Last, s.Main().EndKnown = first+count-1, true
	}
	if err := fx.store.Create(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// A mistyped (*) URL with a count fails after a request or two, naming the URL
// tried, instead of retrying every segment of the range.
func TestProbeMistypedURLFailsFast(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	for _, count := range []int64{0, 150} {
		t.Run(fmt.Sprintf("count=%d", count), func(t *testing.T) {
			before := fx.origin.TotalHits()
			s := placeholderSession(t, fx, fx.origin.URL+"segment-(*).ts", 0, count, false)
			start := time.Now()
			_, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
			var se *StartError
			if !errors.As(err, &se) || se.NextExists {
				t.Fatalf("Run: %v, want a *StartError with nothing there", err)
			}
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "segment-00000.ts") {
				t.Errorf("error %q does not name the URL tried", err)
			}
			if hits := fx.origin.TotalHits() - before; hits > 3 {
				t.Errorf("%d requests to find nothing, want at most 3", hits)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("failing took %v", d)
			}
			if s.State != StateFailed {
				t.Errorf("state %q, want failed", s.State)
			}
		})
	}
}

// A site numbering from 1: with the start not given it is found, and --count N
// still means N segments; with --start 0 given the error says to try 1.
func TestProbeStartAtOne(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	o := renumbered(t, fx, 1)
	n := int64(len(fx.media.Segments))
	for _, tc := range []struct {
		name  string
		count int64
	}{{"counted", n}, {"probed", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			s := placeholderSession(t, fx, o.URL+"seg_(*).ts", 0, tc.count, false)
			res, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if s.Main().First != 1 || s.Main().Last != n {
				t.Errorf("range %d..%d, want 1..%d", s.Main().First, s.Main().Last, n)
			}
			fx.checkOutput(t, res.Output)
		})
	}
	t.Run("start given", func(t *testing.T) {
		s := placeholderSession(t, fx, o.URL+"seg_(*).ts", 0, n, true)
		_, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
		var se *StartError
		if !errors.As(err, &se) || !se.NextExists || se.Next != 1 {
			t.Fatalf("Run: %v, want a *StartError saying segment 1 is there", err)
		}
	})
}

// A count a little too high ends where the video does: the session's range is
// corrected and the output complete, without retrying the segments past the end.
func TestRunCountPastTheEnd(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	n := int64(len(fx.media.Segments))
	for _, extra := range []int64{1, 2, 5, 40} {
		t.Run(fmt.Sprint(extra), func(t *testing.T) {
			before := fx.origin.TotalHits()
			s := placeholderSession(t, fx, fx.origin.URL+"seg_(*).ts", 0, n+extra, false)
			res, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if s.Main().Last != n-1 || s.Main().Total() != int(n) {
				t.Errorf("range ends at %d (%d segments), want %d (%d)", s.Main().Last, s.Main().Total(), n-1, n)
			}
			fx.checkOutput(t, res.Output)
			saved, err := fx.store.Load(s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if saved.Main().Last != n-1 || saved.State != StateDone {
				t.Errorf("saved: last %d state %q, want %d done", saved.Main().Last, saved.State, n-1)
			}
			// The segments, plus a few probes: no retries of the missing tail.
			if hits := fx.origin.TotalHits() - before; hits > int(n)+12 {
				t.Errorf("%d requests for %d segments", hits, n)
			}
		})
	}
}

// An origin failing at first (5xx) is not a mistyped URL: the range check
// gives up and the backfill's retries with backoff fetch everything.
func TestRunFlakyStartIsNotFatal(t *testing.T) {
	fx := newFixture(t, testorigin.Options{Faults: testorigin.Faults{Seed: 1, P500: 1, MaxPerPath: 4}})
	s := placeholderSession(t, fx, fx.origin.URL+"seg_(*).ts", 0, int64(len(fx.media.Segments)), false)
	res, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	fx.checkOutput(t, res.Output)
}

// A segment missing in the middle is still missing, not the end of the video.
func TestRunHoleInTheMiddleIsMissing(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	o := renumbered(t, fx, 0, 4)
	n := int64(len(fx.media.Segments))
	s := placeholderSession(t, fx, o.URL+"seg_(*).ts", 0, n, false)
	opts := fastOpts()
	opts.Attempts = 2
	_, err := Run(context.Background(), s, opts, MergeOptions{})
	var ie *IncompleteError
	if !errors.As(err, &ie) {
		t.Fatalf("Run: %v, want *IncompleteError", err)
	}
	if got := ie.Indices(); len(got) != 1 || got[0] != 4 {
		t.Errorf("missing %v, want [4]", got)
	}
	if s.Main().Last != n-1 {
		t.Errorf("range ends at %d, want %d", s.Main().Last, n-1)
	}

	// Merged without it, the summary (sessions, sessions --json, the dashboard) says so.
	if _, err := Run(context.Background(), s, opts, MergeOptions{AllowGaps: true}); err != nil {
		t.Fatalf("Run with AllowGaps: %v", err)
	}
	sum := s.Summary()
	if sum.State != StateDone || len(sum.Gaps) != 1 || sum.Gaps[0] != 4 || sum.SegmentsDone != int(n)-1 {
		t.Errorf("summary: state %s done %d/%d gaps %v, want done %d/%d gaps [4]", sum.State, sum.SegmentsDone, sum.SegmentsTotal, sum.Gaps, n-1, n)
	}
}
