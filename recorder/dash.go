package recorder

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/streamsnatcher/streamsnatcher/dash"
	"github.com/streamsnatcher/streamsnatcher/plan"
)

// Errors a DASH manifest can stop a recording with.
var (
	// ErrDRM means the manifest's content is protected (ContentProtection):
	// it is never recorded. The error names the DRM systems.
	ErrDRM = dash.ErrDRM
	// ErrLiveDASH means the manifest is live (type="dynamic") and cannot be
	// followed: its segments need the wall clock and it does not say where
	// it started (availabilityStartTime).
	ErrLiveDASH = errors.New("a live DASH manifest that cannot be followed")
)

// maxIndexBytes caps one sidx box fetched for a SegmentBase representation
// (12 bytes per subsegment: a day of 1-second subsegments is about 1 MiB).
const maxIndexBytes = 4 << 20

// dashSelection turns the run's choice (--variant, --audio-lang, --audio all)
// into a DASH selection.
func dashSelection(variant, audio string) dash.Selection {
	sel := dash.Selection{Video: variant}
	if strings.EqualFold(audio, "all") {
		sel.AllAudio = true
	} else {
		sel.AudioLang = audio
	}
	return sel
}

// parseMPD parses a manifest fetched from final, static or live.
func parseMPD(data []byte, final string) (*dash.MPD, error) {
	base, err := url.Parse(final)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", redactURL(final), err)
	}
	m, err := dash.ParseDynamic(data, base)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", redactURL(final), err)
	}
	return m, nil
}

// planDASH plans sel from a manifest fetched from final. A SegmentBase
// representation's segment index (sidx) is fetched with a byte-range request
// first. With a non-zero now (a live recording's, even once the manifest
// has turned static) it is planned at that wall-clock time, with each
// track's segment cursors. A live manifest that cannot be placed on the clock
// is refused with ErrLiveDASH.
func planDASH(ctx context.Context, f *fetcher, m *dash.MPD, final string, sel dash.Selection, now time.Time) (*plan.Presentation, [][]dash.Cursor, error) {
	planAt := func(index map[dash.IndexRef][]byte) (*plan.Presentation, [][]dash.Cursor, error) {
		if !now.IsZero() {
			return m.PlanLive(sel, now, index)
		}
		p, err := m.PlanIndexed(sel, index)
		return p, nil, err
	}
	p, ids, err := planAt(nil)
	var need *dash.NeedsIndexError
	if errors.As(err, &need) {
		index := make(map[dash.IndexRef][]byte, len(need.Refs))
		for _, r := range need.Refs {
			rng := r.Range
			b, _, err := f.getRange(ctx, r.URL, &rng, maxIndexBytes, false)
			if err != nil {
				return nil, nil, fmt.Errorf("manifest %s: segment index: %w", redactURL(final), err)
			}
			index[r] = b
		}
		p, ids, err = planAt(index)
	}
	switch {
	case errors.Is(err, dash.ErrDynamic):
		return nil, nil, fmt.Errorf("manifest %s: %w: %w", redactURL(final), ErrLiveDASH, err)
	case err != nil:
		return nil, nil, fmt.Errorf("manifest %s: %w", redactURL(final), err)
	}
	return p, ids, nil
}

// liveNow is the origin's time for a live manifest fetched at fetched: the
// local clock, unless the origin's Date header (whole seconds) says the
// clocks differ by more than that rounding, or the manifest was published
// later than the local clock says it is now.
func liveNow(m *dash.MPD, date, fetched time.Time) time.Time {
	now := time.Now()
	if !date.IsZero() {
		if off := date.Sub(fetched); off > 2*time.Second || off < -2*time.Second {
			now = now.Add(off)
		}
	}
	if m.PublishTime.After(now) {
		now = m.PublishTime
	}
	return now
}

// A DASHState is what a live DASH track's follower keeps: where it is in the
// manifest, and the choice it makes again on every reload.
type DASHState struct {
	Cursor dash.Cursor `json:"cursor"` // the last segment planned
	Video  string      `json:"video,omitempty"`
	Audio  string      `json:"audio,omitempty"` // "", "all" or a language
}

// dashWaitFirst bounds how long a live manifest may list no segment for a
// chosen track before the recording starts.
const dashWaitFirst = 30 * time.Second

// resolveDASH makes the session's tracks from an MPD fetched from final, the
// origin's Date header date: the chosen video and audio representations,
// each a listed track of every Period. A live manifest's tracks get a
// follower that starts after the last segment listed now; while a chosen
// track lists none yet, the manifest is fetched again.
func resolveDASH(ctx context.Context, s *Session, f *fetcher, data []byte, final string, date time.Time, variant, audio string) error {
	sel := dashSelection(variant, audio)
	fetched := time.Now()
	for {
		m, err := parseMPD(data, final)
		if err != nil {
			return err
		}
		var now time.Time
		if m.Dynamic {
			now = liveNow(m, date, fetched)
		}
		p, ids, err := planDASH(ctx, f, m, final, sel, now)
		if err != nil {
			return err
		}
		empty := false
		for _, t := range p.Tracks {
			empty = empty || len(t.Segments) == 0
		}
		if !m.Dynamic || !empty {
			for k, pt := range p.Tracks {
				t := NewListTrack(pt)
				if m.Dynamic {
					cur := ids[k][len(ids[k])-1]
					cur.Section = pt.Segments[len(pt.Segments)-1].Section
					t.Follower = &LiveState{DASH: &DASHState{Cursor: cur, Video: variant, Audio: audio}}
				}
				s.AddTrack(t)
			}
			return nil
		}
		if time.Since(fetched) > dashWaitFirst {
			return fmt.Errorf("manifest %s: the live manifest has listed no segment for %s", redactURL(final), dashWaitFirst)
		}
		if !sleep(ctx, dashReload(m, 1, false)) {
			return ctx.Err()
		}
		if data, final, date, err = f.getDated(ctx, final, nil, dash.MaxSize, true); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
	}
}

// dashReload is how long to wait before reloading a live manifest: its
// minimumUpdatePeriod, at least a second and at most the longest segment
// (target, seconds), since a manifest on the clock may never change until it
// ends; half that when the last reload brought nothing new.
func dashReload(m *dash.MPD, target float64, changed bool) time.Duration {
	d := min(m.MinimumUpdatePeriod, max(1, target))
	if d <= 0 {
		d = max(1, target)
	}
	w := time.Duration(max(1, d) * float64(time.Second))
	if !changed {
		w /= 2
	}
	return w
}
