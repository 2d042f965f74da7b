package recorder

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/streamsnatcher/streamsnatcher/dash"
	"github.com/streamsnatcher/streamsnatcher/plan"
)

// Errors a DASH manifest can stop a recording with.
var (
	// ErrDRM means the manifest's content is protected (ContentProtection):
	// it is never recorded. The error names the DRM systems.
	ErrDRM = dash.ErrDRM
	// ErrLiveDASH means the manifest is live (type="dynamic").
	ErrLiveDASH = errors.New("live DASH is not recorded yet")
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

// planDASH parses an MPD fetched from final and plans sel. A SegmentBase
// representation's segment index (sidx) is fetched with a byte-range request
// first. DRM and live manifests are refused with ErrDRM and ErrLiveDASH.
func planDASH(ctx context.Context, f *fetcher, data []byte, final string, sel dash.Selection) (*plan.Presentation, error) {
	base, err := url.Parse(final)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", redactURL(final), err)
	}
	m, err := dash.Parse(data, base)
	switch {
	case errors.Is(err, dash.ErrDynamic):
		return nil, fmt.Errorf("manifest %s: %w", redactURL(final), ErrLiveDASH)
	case err != nil:
		return nil, fmt.Errorf("manifest %s: %w", redactURL(final), err)
	}
	p, err := m.Plan(sel)
	var need *dash.NeedsIndexError
	if errors.As(err, &need) {
		index := make(map[dash.IndexRef][]byte, len(need.Refs))
		for _, r := range need.Refs {
			rng := r.Range
			b, _, err := f.getRange(ctx, r.URL, &rng, maxIndexBytes, false)
			if err != nil {
				return nil, fmt.Errorf("manifest %s: segment index: %w", redactURL(final), err)
			}
			index[r] = b
		}
		p, err = m.PlanIndexed(sel, index)
	}
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", redactURL(final), err)
	}
	return p, nil
}

// resolveDASH makes the session's tracks from an MPD: the chosen video and
// audio representations, each a listed track of every Period.
func resolveDASH(ctx context.Context, s *Session, f *fetcher, data []byte, final string, sel dash.Selection) error {
	p, err := planDASH(ctx, f, data, final, sel)
	if err != nil {
		return err
	}
	for _, t := range p.Tracks {
		s.AddTrack(NewListTrack(t))
	}
	return nil
}
