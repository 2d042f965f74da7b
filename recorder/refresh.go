package recorder

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// ErrOtherStream means a URL does not belong to the session's stream.
var ErrOtherStream = errors.New("not a segment of this stream")

// Refresh swaps in what a fresh segment URL of the same stream carries (a new
// token or signature in its query) while keeping the learned numbering and range.
func (s *Session) Refresh(fresh string) error {
	var err error
	for _, t := range s.Tracks {
		if t.Template == nil {
			continue
		}
		if err = t.refresh(fresh); err == nil {
			return nil
		}
	}
	if err == nil {
		return fmt.Errorf("session %s follows a playlist: give a fresh playlist instead", s.ID)
	}
	return err
}

func (s *Track) refresh(fresh string) error {
	i, ok := s.Template.MatchLoose(fresh)
	if !ok {
		return fmt.Errorf("%s: %w (%s)", redactURL(fresh), ErrOtherStream, s.Template.String())
	}
	if idx, ok := s.Template.Match(fresh); ok && idx == i {
		return nil // nothing changed
	}
	t, err := urltemplate.Learn([]string{fresh})
	if err != nil {
		return fmt.Errorf("%s: %w", redactURL(fresh), err)
	}
	// The guess from one URL must put the index where the old template had it.
	for _, j := range []int64{i, i + s.Template.Step, s.First} {
		if pathOf(t.URL(j)) != pathOf(s.Template.URL(j)) {
			return fmt.Errorf("%s: %w: the numbering differs", redactURL(fresh), ErrOtherStream)
		}
	}
	t.Step, t.First, t.Last, t.Tentative = s.Template.Step, s.Template.First, s.Template.Last, false
	s.Template = t
	return nil
}

func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host + u.Path
}
