// Package plan describes a recording as a presentation of tracks: for each
// track, where every segment is (URL, byte range, key, init section,
// discontinuity section, duration, gap) or the numbering template that
// generates the URLs. A plan is built once by a source (an HLS playlist, a DASH
// manifest, a learned template, the (*) form) and then only read; it does no I/O.
package plan

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// Kinds of track.
const (
	Video     = "video"     // the main track: video, and audio when muxed with it
	Audio     = "audio"     // a separate audio rendition
	Subtitles = "subtitles" // WebVTT
)

// A Presentation is what one recording ends up as: one file of several tracks.
type Presentation struct {
	Tracks []*Track `json:"tracks"`
}

// A Track is one stream of segments.
type Track struct {
	ID       string `json:"id"`   // file-name safe and unique in its presentation: "video", "audio-en"
	Kind     string `json:"kind"` // Video, Audio or Subtitles
	Language string `json:"language,omitempty"`
	Name     string `json:"name,omitempty"`
	Default  bool   `json:"default,omitempty"`
	// Source is the playlist or manifest the list came from ("" for a template).
	Source string `json:"source,omitempty"`
	// Live tracks grow: a follower reloads Source and appends by sequence number.
	Live           bool    `json:"live,omitempty"`
	TargetDuration float64 `json:"target_duration,omitempty"`
	Ext            string  `json:"ext,omitempty"` // segment file extension: ".ts", ".m4s", ".aac", ".vtt"

	// Exactly one of Template and Segments says where segment i is.
	Template *urltemplate.Template `json:"template,omitempty"`
	Segments []Segment             `json:"segments,omitempty"`

	Inits []Init `json:"inits,omitempty"` // referenced by Segment.Init (1-based)
	Keys  []Key  `json:"keys,omitempty"`  // referenced by Segment.Key (1-based)
	// Init is the init section of every segment of a template track (fMP4 seen
	// in the traffic or given with --init): 1-based into Inits, 0 for none.
	Init int `json:"init,omitempty"`
}

// A Segment is one entry of a listed track.
type Segment struct {
	URL      string     `json:"url"`
	Range    *ByteRange `json:"range,omitempty"`
	Duration float64    `json:"dur,omitempty"`     // seconds
	Sequence int64      `json:"seq,omitempty"`     // HLS media sequence, DASH $Number$
	Section  int        `json:"section,omitempty"` // discontinuity section (HLS) or Period (DASH), from 0
	Init     int        `json:"init,omitempty"`    // 1-based into Track.Inits; 0 for none
	Key      int        `json:"key,omitempty"`     // 1-based into Track.Keys; 0 when clear
	IV       string     `json:"iv,omitempty"`      // explicit IV ("0x…"); "" derives it from Sequence
	Gap      bool       `json:"gap,omitempty"`     // EXT-X-GAP: never fetched, a hole by design
}

// A ByteRange selects Length bytes at Offset of a resource.
type ByteRange struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// Header is the value of an HTTP Range request header for r.
func (r *ByteRange) Header() string {
	return fmt.Sprintf("bytes=%d-%d", r.Offset, r.Offset+r.Length-1)
}

// An Init is an initialisation section (fMP4 moov), whole or a byte range.
type Init struct {
	URL   string     `json:"url"`
	Range *ByteRange `json:"range,omitempty"`
}

// A Key says how segments are encrypted.
type Key struct {
	Method string `json:"method"` // "AES-128"
	URI    string `json:"uri"`
}

// Limits a plan must respect.
const (
	MaxSegments = 1 << 20 // segments in one track
	MaxTracks   = 16
)

// ErrBadPlan wraps every reason Check refuses a plan.
var ErrBadPlan = errors.New("bad plan")

// Check reports what makes a presentation unusable. Decoders call it so that
// what a process writes it can read back.
func (p *Presentation) Check() error {
	if len(p.Tracks) == 0 {
		return fmt.Errorf("%w: no tracks", ErrBadPlan)
	}
	if len(p.Tracks) > MaxTracks {
		return fmt.Errorf("%w: %d tracks, at most %d", ErrBadPlan, len(p.Tracks), MaxTracks)
	}
	seen := map[string]bool{}
	for _, t := range p.Tracks {
		if t == nil {
			return fmt.Errorf("%w: empty track", ErrBadPlan)
		}
		if seen[t.ID] {
			return fmt.Errorf("%w: two tracks named %q", ErrBadPlan, t.ID)
		}
		seen[t.ID] = true
		if err := t.Check(); err != nil {
			return err
		}
	}
	return nil
}

// Check reports what makes a track unusable.
func (t *Track) Check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: track %q: %s", ErrBadPlan, t.ID, fmt.Sprintf(format, args...))
	}
	switch {
	case !SafeID(t.ID):
		return bad("bad id")
	case t.Kind != Video && t.Kind != Audio && t.Kind != Subtitles:
		return bad("unknown kind %q", t.Kind)
	case strings.ContainsAny(t.Ext, `/\`) || len(t.Ext) > 8:
		return bad("bad extension %q", t.Ext)
	case t.Template != nil && len(t.Segments) > 0:
		return bad("both a template and a segment list")
	case t.Template != nil && len(t.Template.Parts) == 0:
		return bad("empty template")
	case len(t.Segments) > MaxSegments:
		return bad("%d segments, at most %d", len(t.Segments), MaxSegments)
	case t.Init < 0 || t.Init > len(t.Inits):
		return bad("init %d of %d", t.Init, len(t.Inits))
	case math.IsNaN(t.TargetDuration) || t.TargetDuration < 0:
		return bad("bad target duration")
	}
	if t.Template != nil {
		for _, p := range t.Template.Parts {
			if p.Field != nil && (p.Field.Width < 0 || p.Field.Width > 32) {
				return bad("template field width %d outside 0..32", p.Field.Width)
			}
		}
	}
	for _, k := range t.Keys {
		if k.Method != "AES-128" || k.URI == "" {
			return bad("key %q %q: only AES-128 with a URI is recorded", k.Method, k.URI)
		}
	}
	section := 0
	for i, s := range t.Segments {
		switch {
		case s.URL == "" && !s.Gap:
			return bad("segment %d has no url", i)
		case s.Range != nil && (s.Range.Offset < 0 || s.Range.Length <= 0 || s.Range.Offset > math.MaxInt64-s.Range.Length):
			return bad("segment %d: bad byte range", i)
		case math.IsNaN(s.Duration) || math.IsInf(s.Duration, 0) || s.Duration < 0:
			return bad("segment %d: bad duration", i)
		case s.Section < section:
			return bad("segment %d: section %d after %d", i, s.Section, section)
		case s.Init < 0 || s.Init > len(t.Inits):
			return bad("segment %d: init %d of %d", i, s.Init, len(t.Inits))
		case s.Key < 0 || s.Key > len(t.Keys):
			return bad("segment %d: key %d of %d", i, s.Key, len(t.Keys))
		case s.Sequence < 0:
			return bad("segment %d: negative sequence", i)
		}
		section = s.Section
	}
	for i, in := range t.Inits {
		if in.URL == "" || in.Range != nil && (in.Range.Offset < 0 || in.Range.Length <= 0) {
			return bad("init %d is unusable", i+1)
		}
	}
	return nil
}

// SafeID reports whether id can name a track's directory.
func SafeID(id string) bool {
	if id == "" || len(id) > 40 || id == "." || id == ".." {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Sections counts the discontinuity sections of a listed track (1 for a template).
func (t *Track) Sections() int {
	if n := len(t.Segments); n > 0 {
		return t.Segments[n-1].Section + 1
	}
	return 1
}

// SectionDuration is the listed duration of section k, gaps included.
func (t *Track) SectionDuration(k int) float64 {
	var d float64
	for _, s := range t.Segments {
		if s.Section == k {
			d += s.Duration
		}
	}
	return d
}

// Duration is the listed duration of the whole track.
func (t *Track) Duration() float64 {
	var d float64
	for _, s := range t.Segments {
		d += s.Duration
	}
	return d
}

// InitOf returns the init section of segment i (of either kind of track), or nil.
func (t *Track) InitOf(i int64) *Init {
	n := t.Init
	if t.Template == nil && i >= 0 && i < int64(len(t.Segments)) {
		n = t.Segments[i].Init
	}
	if n <= 0 || n > len(t.Inits) {
		return nil
	}
	return &t.Inits[n-1]
}
