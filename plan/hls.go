package plan

import (
	"errors"
	"fmt"
	"strings"

	"github.com/streamsnatcher/streamsnatcher/media"
	"github.com/streamsnatcher/streamsnatcher/playlist"
)

// ErrUnsupported marks what a plan cannot record (SAMPLE-AES, DRM, …).
var ErrUnsupported = errors.New("not supported")

// FromMedia builds a track from an HLS media playlist fetched from source.
// Segments are numbered from 0 in playlist order; Sequence keeps the media
// sequence number (the key IV and a live follower's identity), Section counts
// EXT-X-DISCONTINUITY tags, and EXT-X-GAP segments are marked, never fetched.
func FromMedia(md *playlist.Media, source, id, kind string) (*Track, error) {
	if len(md.Segments) == 0 {
		return nil, errors.New("the playlist lists no segments")
	}
	if len(md.Segments) > MaxSegments {
		return nil, fmt.Errorf("the playlist lists %d segments, at most %d", len(md.Segments), MaxSegments)
	}
	t := &Track{ID: id, Kind: kind, Source: source, Live: !md.EndList, TargetDuration: float64(md.TargetDuration)}
	t.Segments = make([]Segment, 0, len(md.Segments))
	if err := t.appendMedia(md.Segments, 0, 0, false); err != nil {
		return nil, err
	}
	if kind == Subtitles {
		// Segments are WebVTT text whatever their names (.vtt, .webvtt, none); subtitles in fMP4 (wvtt,
		// IMSC) are a different thing.
		if len(t.Inits) > 0 {
			return nil, fmt.Errorf("subtitles in fMP4 segments (EXT-X-MAP) are %w (only WebVTT is)", ErrUnsupported)
		}
		t.Ext = media.FormatWebVTT.Ext()
		return t, nil
	}
	t.Ext = media.ExtOf(firstURL(t.Segments))
	if t.Ext == "" {
		t.Ext = ".ts"
		if len(t.Inits) > 0 {
			t.Ext = ".m4s"
		}
	}
	return t, nil
}

func sameInit(a, b Init) bool {
	if a.URL != b.URL || (a.Range == nil) != (b.Range == nil) {
		return false
	}
	return a.Range == nil || *a.Range == *b.Range
}

func firstURL(segs []Segment) string {
	for _, s := range segs {
		if s.URL != "" {
			return s.URL
		}
	}
	return ""
}

// appendMedia appends the playlist segments ps[from:] to t, numbering their
// discontinuity sections on from section, and adding their keys and init
// sections to t's tables. A discontinuity tag on the first appended segment
// starts a new section only when cont is set (it follows a segment already
// in the plan).
func (t *Track) appendMedia(ps []playlist.Segment, from, section int, cont bool) error {
	keys := map[Key]int{}
	for n, k := range t.Keys {
		keys[k] = n + 1
	}
	for i := from; i < len(ps); i++ {
		p := ps[i]
		if p.Discontinuity && (i > from || cont) {
			section++
		}
		s := Segment{URL: p.URI, Duration: p.Duration, Sequence: p.Sequence, Section: section, Gap: p.Gap}
		if p.ByteRange != nil {
			s.Range = &ByteRange{Offset: p.ByteRange.Offset, Length: p.ByteRange.Length}
		}
		if k := p.Key; k != nil && !strings.EqualFold(k.Method, "NONE") {
			if k.Method != "AES-128" {
				return fmt.Errorf("segment %d: %s encryption is %w (only whole-segment AES-128 is)", i, k.Method, ErrUnsupported)
			}
			if p.Map != nil {
				return fmt.Errorf("encrypted fMP4 (EXT-X-MAP with AES-128) is %w", ErrUnsupported)
			}
			key := Key{Method: k.Method, URI: k.URI}
			n, ok := keys[key]
			if !ok {
				t.Keys = append(t.Keys, key)
				n = len(t.Keys)
				keys[key] = n
			}
			s.Key, s.IV = n, k.IV
		}
		if m := p.Map; m != nil {
			in := Init{URL: m.URI}
			if m.ByteRange != nil {
				in.Range = &ByteRange{Offset: m.ByteRange.Offset, Length: m.ByteRange.Length}
			}
			n := 0
			for j, have := range t.Inits {
				if sameInit(have, in) {
					n = j + 1
				}
			}
			if n == 0 {
				t.Inits = append(t.Inits, in)
				n = len(t.Inits)
			}
			s.Init = n
		}
		t.Segments = append(t.Segments, s)
	}
	return nil
}
