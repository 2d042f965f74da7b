package dash

import (
	"errors"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/plan"
)

func seeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds %s: %v", pattern, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParse: Parse never panics and its errors are a *ParseError or wrap
// ErrDRM or ErrDynamic. For a parsed manifest, periods have finite
// non-negative timing, and Plan (with every kind of selection) either fails
// or returns a presentation that passes plan.Check, whose every URL is an
// absolute http(s) URL, with finite non-negative durations, sections that
// are period indexes and at most plan.MaxSegments segments per track. When
// Plan asks for sidx boxes, they are ranges of absolute URLs, and planning
// with a well-formed box for each succeeds or fails without panicking.
func FuzzParse(f *testing.F) {
	seeds(f, "*.mpd")
	base, _ := url.Parse("https://cdn.example.com/dash/manifest.mpd?token=T")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, base)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) && !errors.Is(err, ErrDRM) && !errors.Is(err, ErrDynamic) {
				t.Fatalf("Parse: error %v is %T, want *ParseError, ErrDRM or ErrDynamic", err, err)
			}
			return
		}
		for i, p := range m.Periods {
			if math.IsNaN(p.Start) || math.IsInf(p.Start, 0) || p.Start < 0 || math.IsNaN(p.Duration) || math.IsInf(p.Duration, 0) || p.Duration < 0 {
				t.Fatalf("Parse: period %d starts at %g and lasts %g", i, p.Start, p.Duration)
			}
		}
		for _, sel := range []Selection{{}, {AllAudio: true}, {Video: "720p", AudioLang: "en"}} {
			p, err := m.Plan(sel)
			var need *NeedsIndexError
			if errors.As(err, &need) {
				index := map[IndexRef][]byte{}
				for _, r := range need.Refs {
					absolute(t, "index", r.URL)
					if r.Range.Offset < 0 || r.Range.Length <= 0 {
						t.Fatalf("Plan: index range %+v", r.Range)
					}
					index[r] = sidxBox(0, 1000, 0, [2]int64{100, 1000}, [2]int64{200, 500})
				}
				p, err = m.PlanIndexed(sel, index)
			}
			if err != nil {
				continue
			}
			if err := p.Check(); err != nil {
				t.Fatalf("Plan(%+v): %v", sel, err)
			}
			for _, tr := range p.Tracks {
				if len(tr.Segments) > plan.MaxSegments {
					t.Fatalf("Plan: track %s has %d segments", tr.ID, len(tr.Segments))
				}
				for _, in := range tr.Inits {
					absolute(t, "init", in.URL)
				}
				for _, s := range tr.Segments {
					absolute(t, "segment", s.URL)
					if math.IsNaN(s.Duration) || math.IsInf(s.Duration, 0) || s.Duration < 0 || s.Section < 0 || s.Section >= len(m.Periods) {
						t.Fatalf("Plan: track %s segment %+v", tr.ID, s)
					}
				}
			}
		}
	})
}

func absolute(t *testing.T, what, s string) {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		t.Fatalf("Plan: %s url %q is not an absolute http(s) url", what, s)
	}
}

// FuzzParseSIDX: ParseSIDX never panics and its errors are *SIDXError; the
// ranges it returns are non-empty, follow each other, start after the box
// and have finite non-negative durations.
func FuzzParseSIDX(f *testing.F) {
	seeds(f, "*.sidx")
	f.Add(sidxBox(1, 48000, 12, [2]int64{1, 1}, [2]int64{1 << 30, 1 << 31}))
	f.Fuzz(func(t *testing.T, b []byte) {
		const offset = 1000
		subs, err := ParseSIDX(b, offset)
		if err != nil {
			var se *SIDXError
			if !errors.As(err, &se) {
				t.Fatalf("ParseSIDX: error %v is %T, want *SIDXError", err, err)
			}
			return
		}
		if len(subs) == 0 {
			t.Fatalf("ParseSIDX: no subsegments and no error")
		}
		if subs[0].Range.Offset < offset+32 {
			t.Fatalf("ParseSIDX: first range %+v starts inside the box", subs[0].Range)
		}
		for i, s := range subs {
			if s.Range.Length <= 0 || math.IsNaN(s.Duration) || math.IsInf(s.Duration, 0) || s.Duration < 0 {
				t.Fatalf("ParseSIDX: subsegment %d %+v", i, s)
			}
			if i > 0 && s.Range.Offset != subs[i-1].Range.Offset+subs[i-1].Range.Length {
				t.Fatalf("ParseSIDX: subsegment %d at %d, the one before ends at %d", i, s.Range.Offset, subs[i-1].Range.Offset+subs[i-1].Range.Length)
			}
		}
	})
}
