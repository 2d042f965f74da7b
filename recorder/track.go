package recorder

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// A Track is one stream of a session: its plan (where each segment is) and
// the range and status the runner keeps with it. Index i of a listed track is
// its position in Segments; of a template track, the template's number.
type Track struct {
	plan.Track
	First      int64 `json:"first"`
	Last       int64 `json:"last"`      // valid when EndKnown
	EndKnown   bool  `json:"end_known"` // Last is certain (playlist, count or probing)
	ProbeStart bool  `json:"probe_start,omitempty"`
	// Dir is the track's directory relative to the session's: its ID unless
	// set; "." for a track read from a version 1 session.
	Dir     string  `json:"dir,omitempty"`
	Missing []int64 `json:"missing,omitempty"` // indices not on disk at the last save
	Gaps    []int64 `json:"gaps,omitempty"`    // indices left out of the output: EXT-X-GAP, or allowed holes
	// Offset is the index of Segments[0]: a live track forgets the segments
	// already merged, so its plan holds only what is still to be recorded.
	Offset int64 `json:"offset,omitempty"`
	// Follower is a live track's follower state; nil for a VOD.
	Follower *LiveState `json:"follower,omitempty"`

	dir string // absolute
}

// LiveState is what a live track carries from one reload, and one run, to the next.
type LiveState struct {
	Last     plan.Position `json:"last"`     // the position of the last segment planned
	Recorded float64       `json:"recorded"` // seconds merged so far, of every run
	// Outputs are the finished outputs of earlier runs (stopped by a pause), in
	// order (file names in the track's directory), with the seconds each
	// should last; the last run joins them.
	Outputs  []string  `json:"outputs,omitempty"`
	Expected []float64 `json:"expected,omitempty"`
	// DASH is a live DASH track's place in its manifest; nil for HLS, whose
	// place is Last.
	DASH *DASHState `json:"dash,omitempty"`
}

// NewListTrack makes a track from a plan with a segment list.
func NewListTrack(p *plan.Track) *Track {
	t := &Track{Track: *p}
	if n := len(p.Segments); n > 0 {
		t.First, t.Last, t.EndKnown = 0, int64(n-1), true
	}
	return t
}

func (t *Track) bind(sessionDir string) {
	d := t.Dir
	if d == "" {
		d = t.ID
	}
	t.dir = filepath.Join(sessionDir, d)
}

// TrackDir is the track's directory.
func (t *Track) TrackDir() string { return t.dir }

// SegmentDir holds the completed segment files, one per index.
func (t *Track) SegmentDir() string { return filepath.Join(t.dir, "segments") }

// SegmentPath is where segment index i is kept once complete.
func (t *Track) SegmentPath(i int64) string {
	return filepath.Join(t.SegmentDir(), fmt.Sprintf("%06d%s", i, t.ext()))
}

// InitPath is where init section n (1-based) is kept.
func (t *Track) InitPath(n int) string {
	ext := ".mp4"
	if n == 1 && t.Dir == "." {
		// Version 1 sessions kept their one init section as init<ext>.
		if in := t.Inits; len(in) > 0 {
			if e := filepath.Ext(urlPath(in[0].URL)); e != "" && len(e) <= 8 {
				ext = e
			}
			return filepath.Join(t.dir, "init"+ext)
		}
	}
	return filepath.Join(t.dir, fmt.Sprintf("init-%d%s", n, ext))
}

func (t *Track) ext() string {
	if t.Ext == "" {
		return ".ts"
	}
	return t.Ext
}

// Step is the distance between consecutive indices.
func (t *Track) Step() int64 {
	if t.Template != nil && t.Template.Step > 1 {
		return t.Template.Step
	}
	return 1
}

// URL is the address of segment index i.
func (t *Track) URL(i int64) string {
	if t.Template != nil {
		return t.Template.URL(i)
	}
	if p := i - t.Offset; p >= 0 && p < int64(len(t.Segments)) {
		return t.Segments[p].URL
	}
	return ""
}

// Segment returns the plan of listed segment i, or a bare one for a template track.
func (t *Track) Segment(i int64) plan.Segment {
	if p := i - t.Offset; t.Template == nil && p >= 0 && p < int64(len(t.Segments)) {
		return t.Segments[p]
	}
	return plan.Segment{URL: t.URL(i), Init: t.Init}
}

// InitOf returns the init section of segment i, or nil.
func (t *Track) InitOf(i int64) *plan.Init {
	n := t.Segment(i).Init
	if n <= 0 || n > len(t.Inits) {
		return nil
	}
	return &t.Inits[n-1]
}

// IsGap reports whether index i is an EXT-X-GAP segment (never fetched).
func (t *Track) IsGap(i int64) bool {
	p := i - t.Offset
	return t.Template == nil && p >= 0 && p < int64(len(t.Segments)) && t.Segments[p].Gap
}

// Indices lists every index of the track's known range in order.
func (t *Track) Indices() []int64 {
	if !t.EndKnown || t.Last < t.First {
		return nil
	}
	out := make([]int64, 0, (t.Last-t.First)/t.Step()+1)
	for i := t.First; i <= t.Last; i += t.Step() {
		out = append(out, i)
	}
	return out
}

// Total is the number of segments in the known range (0 while the end is unknown).
func (t *Track) Total() int {
	if !t.EndKnown || t.Last < t.First {
		return 0
	}
	return int((t.Last-t.First)/t.Step() + 1)
}

// Have reports whether segment i is complete on disk.
func (t *Track) Have(i int64) bool {
	fi, err := os.Stat(t.SegmentPath(i))
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
}

// Done counts the complete segment files on disk.
func (t *Track) Done() int {
	entries, err := os.ReadDir(t.SegmentDir())
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), t.ext()) {
			n++
		}
	}
	return n
}

// MissingNow lists the indices in the known range that are neither on disk
// nor gaps by design.
func (t *Track) MissingNow() []int64 {
	var out []int64
	for _, i := range t.Indices() {
		if i < t.Offset {
			continue // merged and forgotten (a live track)
		}
		if !t.IsGap(i) && !t.Have(i) {
			out = append(out, i)
		}
	}
	return out
}

// KeyOf returns the key of segment i, or nil when it is clear.
func (t *Track) KeyOf(i int64) *plan.Key {
	s := t.Segment(i)
	if s.Key <= 0 || s.Key > len(t.Keys) {
		return nil
	}
	return &t.Keys[s.Key-1]
}

// IV returns the AES-128 IV of segment index i: its explicit IV, else its
// media sequence number.
func (t *Track) IV(i int64) ([keySize]byte, error) {
	s := t.Segment(i)
	if s.IV == "" {
		return sequenceIV(s.Sequence), nil
	}
	return parseIV(s.IV)
}

// KeyPath is where the track keeps key k as captured (mode 0600).
func (t *Track) KeyPath(k *plan.Key) string {
	sum := sha256.Sum256([]byte(k.URI))
	return filepath.Join(t.dir, "keys", hex.EncodeToString(sum[:8])+".key")
}

func (t *Track) checkRange() error {
	switch {
	case t.First < 0 || (t.EndKnown && t.Last < t.First):
		return fmt.Errorf("bad range %d..%d", t.First, t.Last)
	case t.EndKnown && t.Last > math.MaxInt64-t.Step():
		return fmt.Errorf("range ends at %d, too close to the largest index", t.Last)
	case t.EndKnown && (t.Last-t.First)/t.Step() >= maxSegments:
		return fmt.Errorf("range %d..%d is over %d segments", t.First, t.Last, maxSegments)
	case t.Offset < 0 || t.Template != nil && t.Offset != 0:
		return fmt.Errorf("bad offset %d", t.Offset)
	case t.Template == nil && len(t.Segments) > 0 && t.EndKnown && t.Last >= t.Offset+int64(len(t.Segments)):
		return fmt.Errorf("range ends at %d but only %d segments are listed from %d", t.Last, len(t.Segments), t.Offset)
	case t.Follower != nil && (len(t.Follower.Outputs) != len(t.Follower.Expected) || len(t.Follower.Outputs) > maxLiveOutputs):
		return errors.New("bad live outputs")
	case t.Template == nil && len(t.Segments) == 0 && t.Source == "" && t.Follower == nil:
		return errors.New("no template, segment list or playlist")
	case t.Dir != "" && t.Dir != "." && !plan.SafeID(t.Dir):
		return fmt.Errorf("bad directory %q", t.Dir)
	}
	if t.Follower != nil {
		for _, o := range t.Follower.Outputs {
			if o == "" || filepath.Base(o) != o || o == "." || o == ".." {
				return fmt.Errorf("bad live output %q", o)
			}
		}
	}
	for _, s := range t.Segments {
		if s.IV != "" {
			if _, err := parseIV(s.IV); err != nil {
				return err
			}
		}
	}
	return nil
}

// NewTemplateTrack makes the video track of a numbering template, from index first.
func NewTemplateTrack(tmpl *urltemplate.Template, first int64) *Track {
	return &Track{Track: plan.Track{ID: "video", Kind: plan.Video, Template: tmpl, Ext: segmentExt(tmpl.URL(first))}, First: first}
}
