package dash

import (
	"math"
	"time"

	"github.com/streamsnatcher/streamsnatcher/plan"
)

// A Cursor identifies a segment of a live manifest, whatever its place in a
// window that slides: its Period (by id, and by start for periods without
// one) and, within it, its $Time$ on a SegmentTimeline or else its $Number$.
// A live follower keeps the cursor of the last segment it planned and takes
// from each reload only what comes after it.
type Cursor struct {
	Valid  bool    `json:"valid"`  // false before any segment: everything comes after it
	Period string  `json:"period"` // Period@id; "" when the manifest gives none
	Start  float64 `json:"start"`  // Period@start in seconds: orders periods
	// Section is the segment's discontinuity section: in a cursor from
	// PlanLive the period's index in that manifest, in one from Follow the
	// section of the track it was appended to.
	Section int    `json:"section"`
	ByTime  bool   `json:"by_time,omitempty"` // Key is a $Time$; else a $Number$
	Key     uint64 `json:"key"`
	End     uint64 `json:"end"`    // Key plus the segment's duration (timescale units) or plus one (numbers)
	Number  uint64 `json:"number"` // $Number$
}

// samePeriod reports whether c and d are segments of one period.
func (c Cursor) samePeriod(d Cursor) bool {
	return c.Period == d.Period && (c.Period != "" || c.Start == d.Start)
}

// Before reports whether c comes before d. An invalid cursor comes before
// everything.
func (c Cursor) Before(d Cursor) bool {
	switch {
	case !c.Valid:
		return true
	case !d.Valid:
		return false
	case c.samePeriod(d):
		return c.Key < d.Key
	}
	return c.Start < d.Start
}

// PlanLive is PlanIndexed for a live manifest at the wall-clock time now: a
// $Number$ template with @duration, and a trailing S@r="-1", list the
// segments that have ended by now, back to the start of the time-shift
// buffer (timeShiftBufferDepth). It also returns, for each track, the cursor
// of each of its segments. For a static manifest now only asks for the
// cursors.
func (m *MPD) PlanLive(sel Selection, now time.Time, index map[IndexRef][]byte) (*plan.Presentation, [][]Cursor, error) {
	if now.IsZero() {
		now = time.Unix(0, 0) // a cursor is asked for whatever the time
	}
	return m.planAt(sel, index, plan.MaxSegments, now)
}

// Follow appends to t the segments of fresh that come after last, the
// cursor of t's last planned segment; fresh is the same track planned by
// PlanLive from a newer copy of the manifest, and ids its cursors. Segments
// of last's period that left the window before a reload saw them become gap
// segments, holes the output will have: by $Number$, or on a timeline by the
// time between the last segment's end and the first new one's start. Each
// period after last's starts a new section of t; init sections are shared
// with t's when they are the same. It returns what it did and the cursor of
// t's last segment now.
func Follow(t, fresh *plan.Track, ids []Cursor, last Cursor) (plan.Update, Cursor) {
	up := plan.Update{Last: plan.Position{Disc: int64(last.Section), Seq: int64(min(last.Number, math.MaxInt64))}}
	t.TargetDuration = max(t.TargetDuration, fresh.TargetDuration)
	from := len(ids)
	for j, id := range ids {
		if last.Before(id) {
			from = j
			break
		}
	}
	if from == len(ids) || len(ids) != len(fresh.Segments) {
		return up, last
	}
	section := last.Section
	if !last.Valid {
		section = 0
	}
	first, fseg := ids[from], fresh.Segments[from]
	if last.Valid && last.samePeriod(first) {
		var n int64
		var hole float64 // seconds
		switch {
		case first.ByTime && last.ByTime && first.Key > last.End && fseg.Duration > 0 && first.End > first.Key:
			ts := float64(first.End-first.Key) / fseg.Duration // timescale units per second
			hole = float64(first.Key-last.End) / ts
			n = int64(math.Round(hole / fseg.Duration))
		case !first.ByTime && !last.ByTime && first.Number > last.Number+1:
			n = int64(min(first.Number-last.Number-1, math.MaxInt64))
			hole = float64(n) * fseg.Duration
		}
		if n > 0 {
			up.Skipped = n
			for q := int64(1); q <= n && q <= plan.MaxSkipped; q++ {
				t.Segments = append(t.Segments, plan.Segment{Sequence: int64(min(last.Number, math.MaxInt64-plan.MaxSkipped)) + q,
					Section: section, Duration: hole / float64(min(n, plan.MaxSkipped)), Gap: true})
				up.Added++
			}
		}
	} else if last.Valid {
		section++
	}
	prev := fseg.Section
	for j := from; j < len(ids); j++ {
		sg := fresh.Segments[j]
		if sg.Section != prev {
			section++
			prev = sg.Section
		}
		sg.Section = section
		if sg.Init > 0 {
			sg.Init = initIndex(t, fresh.Inits[sg.Init-1])
		}
		t.Segments = append(t.Segments, sg)
		up.Added++
	}
	cur := ids[len(ids)-1]
	cur.Section = section
	up.Last = plan.Position{Disc: int64(section), Seq: int64(min(cur.Number, math.MaxInt64))}
	return up, cur
}

// initIndex is the 1-based index of in among t's init sections, added when new.
func initIndex(t *plan.Track, in plan.Init) int {
	for j, have := range t.Inits {
		if have.URL == in.URL && (have.Range == nil) == (in.Range == nil) && (have.Range == nil || *have.Range == *in.Range) {
			return j + 1
		}
	}
	t.Inits = append(t.Inits, in)
	return len(t.Inits)
}
