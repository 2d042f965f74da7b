package recorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// sessionV1 is session.json as written before tracks: one HLS-VOD shaped
// stream. It is read, never written.
type sessionV1 struct {
	ID            string                `json:"id"`
	Created       time.Time             `json:"created"`
	Updated       time.Time             `json:"updated"`
	Source        string                `json:"source"`
	Page          string                `json:"page"`
	Input         string                `json:"input"`
	Template      *urltemplate.Template `json:"template"`
	PlaylistURL   string                `json:"playlist_url"`
	Segments      []string              `json:"segments"`
	Durations     []float64             `json:"durations"`
	InitURL       string                `json:"init_url"`
	Key           *v1Key                `json:"key"`
	Ext           string                `json:"ext"`
	MediaSequence int64                 `json:"media_sequence"`
	IVs           []string              `json:"ivs"`
	Headers       map[string]string     `json:"headers"`
	First         int64                 `json:"first"`
	Last          int64                 `json:"last"`
	EndKnown      bool                  `json:"end_known"`
	State         string                `json:"state"`
	Error         string                `json:"error"`
	Missing       []int64               `json:"missing"`
	Output        string                `json:"output"`
	Target        string                `json:"target"`
	ProbeStart    bool                  `json:"probe_start"`
	Gaps          []int64               `json:"gaps"`
}

type v1Key struct {
	Method string `json:"method"`
	URI    string `json:"uri"`
	IV     string `json:"iv"`
}

// decodeV1 reads a version 1 session as one video track whose files stay
// where version 1 put them (segments/ and init.* in the session directory).
func decodeV1(data []byte) (*Session, error) {
	var v sessionV1
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	s := &Session{Version: SessionVersion, ID: v.ID, Created: v.Created, Updated: v.Updated, Source: v.Source,
		Page: v.Page, Input: v.Input, Headers: v.Headers, State: v.State, Error: v.Error, Output: v.Output,
		Target: v.Target}
	if v.Template == nil && len(v.Segments) == 0 {
		if v.PlaylistURL == "" {
			return nil, errors.New("no template, segment list or playlist")
		}
		s.Playlist = v.PlaylistURL
		return s, nil
	}
	t := &Track{Track: plan.Track{ID: "video", Kind: plan.Video, Source: v.PlaylistURL, Ext: v.Ext, Template: v.Template},
		First: v.First, Last: v.Last, EndKnown: v.EndKnown, ProbeStart: v.ProbeStart, Dir: ".",
		Missing: v.Missing, Gaps: v.Gaps}
	if v.InitURL != "" {
		t.Inits = []plan.Init{{URL: v.InitURL}}
		t.Init = 1
	}
	if v.Key != nil {
		if v.Key.Method != MethodAES128 {
			return nil, fmt.Errorf("%s encryption: %w", v.Key.Method, ErrUnsupported)
		}
		t.Keys = []plan.Key{{Method: v.Key.Method, URI: v.Key.URI}}
	}
	switch {
	case v.MediaSequence < 0 || v.MediaSequence > math.MaxInt64-maxSegments:
		return nil, fmt.Errorf("bad media sequence %d", v.MediaSequence)
	case len(v.IVs) > 0 && (v.Key == nil || len(v.IVs) != len(v.Segments)):
		return nil, fmt.Errorf("%d IVs for %d segments", len(v.IVs), len(v.Segments))
	case len(v.Durations) > 0 && len(v.Durations) != len(v.Segments):
		return nil, fmt.Errorf("%d durations for %d segments", len(v.Durations), len(v.Segments))
	case len(v.Segments) > maxSegments:
		return nil, fmt.Errorf("%d segments, at most %d", len(v.Segments), maxSegments)
	}
	for i, u := range v.Segments {
		seg := plan.Segment{URL: u, Sequence: v.MediaSequence + int64(i), Init: t.Init}
		if i < len(v.Durations) {
			seg.Duration = v.Durations[i]
		}
		if v.Key != nil {
			seg.Key, seg.IV = 1, v.Key.IV
			if len(v.IVs) > 0 {
				seg.IV = v.IVs[i]
			}
		}
		t.Segments = append(t.Segments, seg)
	}
	s.Tracks = []*Track{t}
	return s, nil
}
