package plan

import (
	"github.com/streamsnatcher/streamsnatcher/playlist"
)

// A Position identifies a segment of a live playlist: its discontinuity
// sequence and media sequence. A follower keeps the position of the last
// segment it planned and takes from each reload only what comes after it,
// whatever the segment's place in a window that slides.
type Position struct {
	Disc int64 `json:"disc"`
	Seq  int64 `json:"seq"`
}

// Before reports whether p comes before q.
func (p Position) Before(q Position) bool {
	return p.Disc < q.Disc || p.Disc == q.Disc && p.Seq < q.Seq
}

// Positions returns the position of each segment of md. The discontinuity
// sequence of the first is the playlist's; each EXT-X-DISCONTINUITY after it
// adds one (a tag on the first segment is already counted by the server).
func Positions(md *playlist.Media) []Position {
	out := make([]Position, len(md.Segments))
	disc := md.DiscontinuitySequence
	for i, s := range md.Segments {
		if i > 0 && s.Discontinuity {
			disc++
		}
		out[i] = Position{Disc: disc, Seq: s.Sequence}
	}
	return out
}

// MaxSkipped bounds the gap segments one reload adds for sequence numbers
// that left the window unseen; beyond it they are counted, not planned.
const MaxSkipped = 1 << 14

// An Update is what one reload of a live playlist did to a track.
type Update struct {
	Added   int      // segments appended, gap segments included
	Skipped int64    // media sequence numbers that left the window before a reload saw them
	Last    Position // the position of the track's last segment now
	Ended   bool     // the playlist has EXT-X-ENDLIST
	Reset   bool     // the playlist went backwards (the server restarted): nothing was taken
}

// Follow appends to t the segments of md that come after last, the position
// of t's last segment. Sequence numbers between last and the first new
// segment that the window no longer lists become EXT-X-GAP-like segments,
// holes the output will have. Discontinuity sections go on from t's last.
func (t *Track) Follow(md *playlist.Media, last Position) (Update, error) {
	up := Update{Last: last, Ended: md.EndList}
	if md.TargetDuration > 0 {
		t.TargetDuration = float64(md.TargetDuration)
	}
	pos := Positions(md)
	from := len(pos)
	for i, p := range pos {
		if last.Before(p) {
			from = i
			break
		}
	}
	if from == len(pos) {
		if n := len(pos); n > 0 && pos[n-1].Before(last) && pos[n-1].Disc == last.Disc && last.Seq-pos[n-1].Seq > int64(n) {
			up.Reset = true
		}
		return up, nil
	}
	section := 0
	if n := len(t.Segments); n > 0 {
		section = t.Segments[n-1].Section
	}
	first := pos[from]
	if skipped := first.Seq - last.Seq - 1; skipped > 0 {
		up.Skipped = skipped
		for q := last.Seq + 1; q < first.Seq && q-last.Seq <= MaxSkipped; q++ {
			t.Segments = append(t.Segments, Segment{Sequence: q, Section: section, Duration: t.TargetDuration, Gap: true})
			up.Added++
		}
	}
	if first.Disc != last.Disc {
		section++
	}
	before := len(t.Segments)
	if err := t.appendMedia(md.Segments, from, section, false); err != nil {
		t.Segments = t.Segments[:before-up.Added]
		return Update{Last: last}, err
	}
	up.Added += len(t.Segments) - before
	up.Last = pos[len(pos)-1]
	return up, nil
}

// KeepLast drops all but the last n segments of a listed track (a live
// recording that starts at the edge), renumbering sections from 0.
func (t *Track) KeepLast(n int) {
	if n <= 0 || len(t.Segments) <= n {
		return
	}
	t.Segments = append([]Segment(nil), t.Segments[len(t.Segments)-n:]...)
	base := t.Segments[0].Section
	for i := range t.Segments {
		t.Segments[i].Section -= base
	}
}
