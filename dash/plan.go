package dash

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streamsnatcher/streamsnatcher/plan"
)

// A Selection says which representations to record.
type Selection struct {
	// Video is "" for the highest bandwidth, a height ("720p" or "720": the
	// highest bandwidth of that height) or a Representation@id.
	Video string
	// AudioLang is "" for the main audio (Role "main", else the first audio
	// AdaptationSet) or a language ("en" also matches "en-US").
	AudioLang string
	// AllAudio records one audio track per language instead.
	AllAudio bool
}

// An IndexRef is a sidx box to fetch: GET URL with the Range header
// Range.Header().
type IndexRef struct {
	URL   string
	Range plan.ByteRange
}

// A NeedsIndexError lists the sidx boxes Plan needs before it can list the
// segments of SegmentBase representations. It wraps ErrNeedsIndex.
type NeedsIndexError struct {
	Refs []IndexRef
}

func (e *NeedsIndexError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dash: %d segment index(es) (sidx) to fetch first:", len(e.Refs))
	for i, r := range e.Refs {
		if i == 3 {
			fmt.Fprintf(&b, " …")
			break
		}
		fmt.Fprintf(&b, " %s %s", r.URL, r.Range.Header())
	}
	return b.String()
}

func (e *NeedsIndexError) Unwrap() error { return ErrNeedsIndex }

// Plan builds the presentation for sel: the chosen video representation as a
// plan.Video track and the chosen audio representation(s) as plan.Audio
// tracks, every Period concatenated (Segment.Section is the period's index,
// with one plan.Init per period). In later periods the representation is
// matched by kind and language and then by the same height and the closest
// bandwidth, since ids may differ between periods; a period with nothing
// that matches adds no segments to that track.
//
// A representation addressed by SegmentBase keeps its segment byte ranges in
// a sidx box that Plan cannot read. Then Plan returns a *NeedsIndexError
// listing the boxes; the caller fetches each one's bytes and calls
// PlanIndexed with them. Indexes lists them up front.
func (m *MPD) Plan(sel Selection) (*plan.Presentation, error) {
	return m.PlanIndexed(sel, nil)
}

// Indexes lists the sidx boxes that Plan(sel) needs, nil when there are none.
func (m *MPD) Indexes(sel Selection) ([]IndexRef, error) {
	_, err := m.PlanIndexed(sel, nil)
	var need *NeedsIndexError
	if errors.As(err, &need) {
		return need.Refs, nil
	}
	return nil, err
}

// PlanIndexed is Plan with the bytes of the sidx boxes Indexes listed, each
// exactly the bytes of its IndexRef.Range.
func (m *MPD) PlanIndexed(sel Selection, index map[IndexRef][]byte) (*plan.Presentation, error) {
	return m.plan(sel, index, plan.MaxSegments)
}

// plan builds the presentation with at most limit segments per track.
func (m *MPD) plan(sel Selection, index map[IndexRef][]byte, limit int) (*plan.Presentation, error) {
	p, _, err := m.planAt(sel, index, limit, time.Time{})
	return p, err
}

// planAt is plan at the wall-clock time now; with a non-zero now it also
// returns each track's segment cursors.
func (m *MPD) planAt(sel Selection, index map[IndexRef][]byte, limit int, now time.Time) (*plan.Presentation, [][]Cursor, error) {
	streams, err := m.choose(sel)
	if err != nil {
		return nil, nil, err
	}
	b := &builder{m: m, index: index, limit: limit, now: now}
	if m.source != "" {
		b.base, _ = url.Parse(m.source)
	}
	pres := &plan.Presentation{}
	var cursors [][]Cursor
	ids := map[string]bool{}
	for _, s := range streams {
		t, cs, err := b.track(s)
		if err != nil {
			return nil, nil, err
		}
		t.ID = uniqueID(ids, t.ID)
		pres.Tracks = append(pres.Tracks, t)
		cursors = append(cursors, cs)
	}
	if len(b.need) > 0 {
		return nil, nil, &NeedsIndexError{Refs: b.need}
	}
	if err := pres.Check(); err != nil {
		return nil, nil, fmt.Errorf("dash: %w", err)
	}
	if now.IsZero() {
		cursors = nil
	}
	return pres, cursors, nil
}

// A stream is one track to build: what it matches in every period.
type stream struct {
	kind    string
	lang    string // the language of its AdaptationSet in the reference period
	main    bool
	label   string
	def     bool
	ref     *Representation // in the reference period: the bandwidth and height to match
	refAS   *AdaptationSet
	refPer  int
	onlyLng bool // for AllAudio: periods without this language add nothing
}

func (m *MPD) choose(sel Selection) ([]*stream, error) {
	var out []*stream
	v, err := m.chooseVideo(sel.Video)
	if err != nil {
		return nil, err
	}
	if v != nil {
		out = append(out, v)
	}
	audio, err := m.chooseAudio(sel)
	if err != nil {
		return nil, err
	}
	out = append(out, audio...)
	if len(out) == 0 {
		return nil, fmt.Errorf("dash: no video or audio to record (the manifest lists %s)", m.listKinds())
	}
	if len(out) > plan.MaxTracks {
		return nil, fmt.Errorf("dash: %d tracks chosen, at most %d", len(out), plan.MaxTracks)
	}
	return out, nil
}

func (m *MPD) listKinds() string {
	var kinds []string
	for _, p := range m.Periods {
		for _, a := range p.AdaptationSets {
			k := a.Kind
			if k == "" {
				k = "unknown (" + a.ContentType + a.MimeType + ")"
			}
			if !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
	}
	if len(kinds) == 0 {
		return "no adaptation sets"
	}
	return strings.Join(kinds, ", ")
}

// sets returns the AdaptationSets of a kind in period i that can be recorded.
func (m *MPD) sets(i int, kind string) []*AdaptationSet {
	var out []*AdaptationSet
	for j := range m.Periods[i].AdaptationSets {
		a := &m.Periods[i].AdaptationSets[j]
		if a.Kind == kind && !a.TrickMode && len(a.Representations) > 0 {
			out = append(out, a)
		}
	}
	return out
}

func best(reps []*Representation) *Representation {
	var b *Representation
	for _, r := range reps {
		if b == nil || r.Bandwidth > b.Bandwidth || r.Bandwidth == b.Bandwidth && r.Height > b.Height {
			b = r
		}
	}
	return b
}

func (m *MPD) chooseVideo(sel string) (*stream, error) {
	sel = strings.TrimSpace(sel)
	for i := range m.Periods {
		sets := m.sets(i, plan.Video)
		if len(sets) == 0 {
			continue
		}
		var all []*Representation
		owner := map[*Representation]*AdaptationSet{}
		for _, a := range sets {
			for j := range a.Representations {
				r := &a.Representations[j]
				all = append(all, r)
				owner[r] = a
			}
		}
		var r *Representation
		h, numErr := strconv.Atoi(strings.TrimSuffix(sel, "p"))
		switch {
		case sel == "" || strings.EqualFold(sel, "best"):
			r = best(all)
		case numErr == nil:
			r = best(slices.DeleteFunc(slices.Clone(all), func(r *Representation) bool { return r.Height != h }))
		}
		if r == nil && !strings.HasSuffix(sel, "p") {
			for _, c := range all {
				if c.ID == sel {
					r = c
					break
				}
			}
		}
		if r == nil {
			var choices []string
			for _, c := range all {
				choices = append(choices, fmt.Sprintf("%q %dx%d %d bps %s", c.ID, c.Width, c.Height, c.Bandwidth, c.Codecs))
			}
			return nil, fmt.Errorf("dash: no video representation matches %q; choices: %s", sel, strings.Join(choices, ", "))
		}
		a := owner[r]
		return &stream{kind: plan.Video, lang: a.Lang, label: a.Label, ref: r, refAS: a, refPer: i, def: true}, nil
	}
	if sel != "" {
		return nil, fmt.Errorf("dash: video %q asked for, but the manifest has no video", sel)
	}
	return nil, nil
}

func isMain(a *AdaptationSet) bool { return slices.Contains(a.Roles, "main") }

// langMatch reports whether a language tag matches what the user asked:
// equal, or the same primary language ("en" and "en-US").
func langMatch(tag, want string) bool {
	if strings.EqualFold(tag, want) {
		return true
	}
	p, _, _ := strings.Cut(tag, "-")
	w, _, _ := strings.Cut(want, "-")
	return p != "" && strings.EqualFold(p, w) && !strings.Contains(want, "-")
}

// preferMain returns the first AdaptationSet with Role main, else the first.
func preferMain(sets []*AdaptationSet) *AdaptationSet {
	for _, a := range sets {
		if isMain(a) {
			return a
		}
	}
	if len(sets) == 0 {
		return nil
	}
	return sets[0]
}

func (m *MPD) chooseAudio(sel Selection) ([]*stream, error) {
	want := strings.TrimSpace(sel.AudioLang)
	for i := range m.Periods {
		sets := m.sets(i, plan.Audio)
		if len(sets) == 0 {
			continue
		}
		var chosen []*AdaptationSet
		switch {
		case sel.AllAudio:
			seen := map[string]bool{}
			for _, a := range sets {
				key := strings.ToLower(a.Lang)
				if seen[key] {
					continue
				}
				seen[key] = true
				chosen = append(chosen, preferMain(slices.DeleteFunc(slices.Clone(sets), func(b *AdaptationSet) bool {
					return !strings.EqualFold(b.Lang, a.Lang)
				})))
			}
		case want == "":
			chosen = []*AdaptationSet{preferMain(sets)}
		default:
			a := preferMain(slices.DeleteFunc(slices.Clone(sets), func(a *AdaptationSet) bool { return !langMatch(a.Lang, want) }))
			if a == nil {
				var langs []string
				for _, a := range sets {
					langs = append(langs, strconv.Quote(a.Lang))
				}
				return nil, fmt.Errorf("dash: no audio in language %q; the manifest has %s", want, strings.Join(langs, ", "))
			}
			chosen = []*AdaptationSet{a}
		}
		var out []*stream
		for k, a := range chosen {
			reps := make([]*Representation, len(a.Representations))
			for j := range a.Representations {
				reps[j] = &a.Representations[j]
			}
			out = append(out, &stream{
				kind: plan.Audio, lang: a.Lang, main: isMain(a), label: a.Label, ref: best(reps),
				refAS: a, refPer: i, def: k == 0, onlyLng: sel.AllAudio,
			})
		}
		return out, nil
	}
	if want != "" {
		return nil, fmt.Errorf("dash: audio in %q asked for, but the manifest has no separate audio", want)
	}
	return nil, nil
}

// match finds what plays the stream's part in period i, or nil.
func (m *MPD) match(s *stream, i int) *Representation {
	if i == s.refPer {
		return s.ref
	}
	sets := m.sets(i, s.kind)
	if len(sets) == 0 {
		return nil
	}
	if s.kind == plan.Audio {
		same := slices.DeleteFunc(slices.Clone(sets), func(a *AdaptationSet) bool { return !strings.EqualFold(a.Lang, s.lang) })
		switch {
		case len(same) > 0:
			sets = same
		case s.onlyLng:
			return nil
		default:
			sets = []*AdaptationSet{preferMain(sets)} // an ad period may call its language "und"
		}
		if len(sets) > 1 && s.main {
			sets = []*AdaptationSet{preferMain(sets)}
		}
	}
	var found *Representation
	var foundScore [2]int64
	for _, a := range sets {
		for j := range a.Representations {
			r := &a.Representations[j]
			score := [2]int64{0, absDiff(r.Bandwidth, s.ref.Bandwidth)}
			if r.Height != s.ref.Height {
				score[0] = 1
			}
			if found == nil || score[0] < foundScore[0] || score[0] == foundScore[0] &&
				(score[1] < foundScore[1] || score[1] == foundScore[1] && r.Bandwidth > found.Bandwidth) {
				found, foundScore = r, score
			}
		}
	}
	return found
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

func uniqueID(seen map[string]bool, id string) string {
	out := id
	for n := 2; seen[out]; n++ {
		out = fmt.Sprintf("%s-%d", id, n)
	}
	seen[out] = true
	return out
}

// trackID names a track: "video", "audio", "audio-en".
func trackID(kind, lang string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, lang)
	if len(clean) > 20 {
		clean = clean[:20]
	}
	if clean == "" || kind == plan.Video {
		return kind
	}
	return kind + "-" + clean
}

// ext is the file extension for a representation's segments.
func ext(mime string) string {
	switch m := strings.ToLower(mime); {
	case strings.HasSuffix(m, "/webm"):
		return ".webm"
	case strings.HasSuffix(m, "/mp2t"):
		return ".ts"
	case strings.HasSuffix(m, "/vtt"):
		return ".vtt"
	}
	return ".m4s"
}

type builder struct {
	m     *MPD
	base  *url.URL
	index map[IndexRef][]byte
	need  []IndexRef
	limit int // segments per track

	baseOf  *Representation // whose BaseURL repBase is
	repBase *url.URL

	// now places a live manifest's segments on the wall clock; zero refuses
	// what needs it. With it, track also returns the segments' cursors.
	now   time.Time
	slots []slot // of the last segmentsOf on a SegmentTimeline
}

// A segID is what identifies a segment within its period: its $Time$ (a
// SegmentTimeline) or its $Number$.
type segID struct {
	key, end uint64 // end: key+duration for a time, key+1 for a number
	byTime   bool
}

func (b *builder) track(s *stream) (*plan.Track, []Cursor, error) {
	t := &plan.Track{
		ID:       trackID(s.kind, s.lang),
		Kind:     s.kind,
		Language: s.lang,
		Name:     s.label,
		Default:  s.def,
		Source:   b.m.source,
		Live:     b.m.Dynamic,
		Ext:      ext(s.ref.MimeType),
	}
	var cursors []Cursor
	for i := range b.m.Periods {
		r := b.m.match(s, i)
		if r == nil {
			continue
		}
		budget := b.limit - len(t.Segments)
		segs, keys, init, err := b.segments(i, r, budget)
		if err != nil {
			return nil, nil, fmt.Errorf("dash: period %d (%q) representation %q: %w", i, b.m.Periods[i].ID, r.ID, err)
		}
		if !b.now.IsZero() {
			pe := &b.m.Periods[i]
			for k, id := range keys {
				cursors = append(cursors, Cursor{Valid: true, Period: pe.ID, Start: pe.Start, Section: i,
					ByTime: id.byTime, Key: id.key, End: id.end, Number: uint64(segs[k].Sequence)})
			}
		}
		t.Segments = slices.Grow(t.Segments, len(segs))
		in := 0
		if init != nil {
			t.Inits = append(t.Inits, *init)
			in = len(t.Inits)
		}
		for _, sg := range segs {
			sg.Section, sg.Init = i, in
			t.Segments = append(t.Segments, sg)
			t.TargetDuration = max(t.TargetDuration, sg.Duration)
		}
	}
	return t, cursors, nil
}

// resolve makes ref absolute against the representation's BaseURL. Only
// http(s) URLs, or ones of the manifest's own scheme, are planned: a
// manifest must not send the runner to file: or other schemes.
func (b *builder) resolve(r *Representation, ref string) (string, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("bad segment url %q", ref)
	}
	if b.baseOf != r { // parsed once per representation, not per segment
		b.baseOf, b.repBase = r, nil
		if base, err := url.Parse(r.BaseURL); err == nil && r.BaseURL != "" {
			b.repBase = base
		}
	}
	if b.repBase != nil {
		u = b.repBase.ResolveReference(u)
	}
	if !u.IsAbs() || u.Host == "" && u.Scheme != "file" {
		return "", fmt.Errorf("segment url %q is not absolute (no manifest url to resolve it against)", u)
	}
	s := strings.ToLower(u.Scheme)
	if s != "http" && s != "https" && (b.base == nil || !strings.EqualFold(b.base.Scheme, s)) {
		return "", fmt.Errorf("segment url %q: scheme %q is not recorded", u, u.Scheme)
	}
	return u.String(), nil
}

// segments lists representation r's segments in period i, at most budget.
func (b *builder) segments(i int, r *Representation, budget int) ([]plan.Segment, []segID, *plan.Init, error) {
	segs, init, err := b.segmentsOf(i, r, budget)
	if err != nil {
		return nil, nil, nil, err
	}
	var keys []segID
	if !b.now.IsZero() {
		keys = make([]segID, len(segs))
		for k, sg := range segs {
			keys[k] = segID{key: uint64(sg.Sequence), end: uint64(sg.Sequence) + 1}
		}
		for k, sl := range b.slots {
			keys[k] = segID{key: sl.t, end: sl.t + sl.d, byTime: true}
		}
	}
	return segs, keys, init, nil
}

// segmentsOf lists representation r's segments in period i, at most budget.
// For a template on a SegmentTimeline it leaves the timeline's slots in b.slots.
func (b *builder) segmentsOf(i int, r *Representation, budget int) ([]plan.Segment, *plan.Init, error) {
	b.slots = nil
	a := &r.addr
	pd := b.m.Periods[i].Duration
	ts := float64(a.timescale)
	// edge is the live edge in the representation's media time, +Inf when
	// the manifest is static or the clock unknown.
	edge := math.Inf(1)
	if b.m.Dynamic && !b.now.IsZero() && !b.m.AvailabilityStart.IsZero() {
		elapsed := b.now.Sub(b.m.AvailabilityStart).Seconds() - b.m.Periods[i].Start
		edge = float64(a.pto) + elapsed*ts
	}
	switch a.kind {
	case addrNone:
		u, err := b.resolve(r, "")
		if err != nil {
			return nil, nil, err
		}
		return []plan.Segment{{URL: u, Duration: pd, Sequence: 1}}, nil, nil

	case addrBase:
		u, err := b.resolve(r, "")
		if err != nil {
			return nil, nil, err
		}
		if a.indexRange == nil {
			// No index: the whole file is one segment, its init included.
			return []plan.Segment{{URL: u, Duration: pd, Sequence: 1}}, nil, nil
		}
		var init *plan.Init
		switch {
		case a.initRange != nil || a.initURL != "":
			iu, err := b.resolve(r, a.initURL)
			if err != nil {
				return nil, nil, err
			}
			init = &plan.Init{URL: iu, Range: a.initRange}
		case a.indexRange.Offset > 0:
			// No Initialization: what precedes the index is ftyp and moov.
			init = &plan.Init{URL: u, Range: &plan.ByteRange{Offset: 0, Length: a.indexRange.Offset}}
		}
		ref := IndexRef{URL: u, Range: *a.indexRange}
		box, ok := b.index[ref]
		if !ok {
			if !slices.Contains(b.need, ref) {
				b.need = append(b.need, ref)
			}
			return nil, init, nil
		}
		subs, err := ParseSIDX(box, a.indexRange.Offset)
		if err != nil {
			return nil, nil, fmt.Errorf("index %s %s: %w", u, a.indexRange.Header(), err)
		}
		if len(subs) > budget {
			return nil, nil, fmt.Errorf("%d segments, more than %d", len(subs), budget)
		}
		segs := make([]plan.Segment, len(subs))
		for k, sub := range subs {
			rng := sub.Range
			segs[k] = plan.Segment{URL: u, Range: &rng, Duration: sub.Duration, Sequence: int64(k + 1)}
		}
		return segs, init, nil

	case addrList:
		var init *plan.Init
		if a.hasInit {
			iu, err := b.resolve(r, a.initURL)
			if err != nil {
				return nil, nil, err
			}
			init = &plan.Init{URL: iu, Range: a.initRange}
		}
		n := len(a.list)
		if a.endNumber > 0 && a.endNumber >= a.startNumber && a.endNumber-a.startNumber+1 < uint64(n) {
			n = int(a.endNumber - a.startNumber + 1)
		}
		if n > budget {
			return nil, nil, fmt.Errorf("%d segments, more than %d", n, budget)
		}
		var slots []slot
		if a.timeline != nil {
			var err error
			if slots, err = b.timeline(a, pd, edge, n, false); err != nil {
				return nil, nil, err
			}
		}
		segs := make([]plan.Segment, n)
		for k := range segs {
			u, err := b.resolve(r, a.list[k].media)
			if err != nil {
				return nil, nil, err
			}
			var d float64
			switch {
			case k < len(slots):
				d = float64(slots[k].d) / ts
			case a.duration > 0:
				d = float64(a.duration) / ts
				if pd > 0 { // the listed segments fill the period, the last one cut at its end
					d = max(0, min(d, pd-float64(k)*d))
				}
			case pd > 0:
				d = pd / float64(n)
			}
			segs[k] = plan.Segment{URL: u, Range: a.list[k].rng, Duration: d, Sequence: int64(a.startNumber) + int64(k)}
		}
		return segs, init, nil

	case addrTemplate:
		var init *plan.Init
		if a.init != nil {
			iu, err := b.resolve(r, expand(a.init, r, 0, 0))
			if err != nil {
				return nil, nil, err
			}
			init = &plan.Init{URL: iu, Range: a.initRange}
		}
		var slots []slot
		if a.timeline != nil {
			var err error
			if slots, err = b.timeline(a, pd, edge, budget, true); err != nil {
				return nil, nil, err
			}
			b.slots = slots
		} else if b.m.Dynamic {
			if math.IsInf(edge, 1) {
				return nil, nil, fmt.Errorf("%w: a live SegmentTemplate without a SegmentTimeline needs the wall clock and availabilityStartTime", ErrDynamic)
			}
			slots = b.clock(a, pd, edge, budget)
		} else {
			if pd <= 0 {
				return nil, nil, fmt.Errorf("SegmentTemplate@duration with no period duration: the manifest does not say how many segments there are")
			}
			x := pd * ts / float64(a.duration)
			if x > float64(budget) {
				return nil, nil, fmt.Errorf("%.0f segments, more than %d", math.Ceil(x), budget)
			}
			n := int(math.Ceil(x - 1e-6))
			if a.endNumber > 0 && a.endNumber >= a.startNumber && a.endNumber-a.startNumber+1 < uint64(n) {
				n = int(a.endNumber - a.startNumber + 1)
			}
			slots = make([]slot, n)
			end := pd * ts
			for k := range slots {
				d := min(float64(a.duration), end-float64(k)*float64(a.duration))
				slots[k] = slot{
					t:      a.pto + uint64(k)*a.duration,
					d:      uint64(max(0, math.Round(d))),
					number: a.startNumber + uint64(k),
				}
			}
		}
		segs := make([]plan.Segment, len(slots))
		for k, s := range slots {
			u, err := b.resolve(r, expand(a.media, r, s.number, s.t))
			if err != nil {
				return nil, nil, err
			}
			segs[k] = plan.Segment{URL: u, Duration: float64(s.d) / ts, Sequence: int64(min(s.number, math.MaxInt64))}
		}
		return segs, init, nil
	}
	return nil, nil, fmt.Errorf("unknown addressing")
}

// A slot is one segment of a timeline: its start in timescale units, its
// duration and its $Number$.
type slot struct {
	t, d, number uint64
}

// clock lists the segments of a live SegmentTemplate with @duration that are
// available at the live edge (media time, timescale units): those that have
// ended, back to the start of the time-shift buffer. Segment k (from 0)
// spans [pto + k×duration, pto + (k+1)×duration) and is $Number$
// startNumber+k. A quarter of a segment is kept off the buffer's start: the
// origin may be deleting that one as it is asked for.
func (b *builder) clock(a *addressing, pd, edge float64, budget int) []slot {
	ts, d := float64(a.timescale), float64(a.duration)
	elapsed := edge - float64(a.pto)
	n := int64(math.Floor(elapsed/d + 1e-9)) // segments that have ended
	if pd > 0 {
		n = min(n, int64(math.Ceil(pd*ts/d-1e-6)))
	}
	if a.endNumber > 0 && a.endNumber >= a.startNumber {
		n = min(n, int64(min(a.endNumber-a.startNumber+1, math.MaxInt64)))
	}
	first := int64(0)
	if tsbd := b.m.TimeShiftBufferDepth; tsbd > 0 {
		first = max(0, int64(math.Ceil((elapsed-tsbd*ts)/d+0.25))-1)
	}
	first = max(first, n-int64(budget))
	if n <= first {
		return nil
	}
	out := make([]slot, 0, n-first)
	for k := first; k < n; k++ {
		out = append(out, slot{t: a.pto + uint64(k)*a.duration, d: a.duration, number: a.startNumber + uint64(k)})
	}
	return out
}

// timeline expands a SegmentTimeline into at most limit slots. The period
// spans media times [presentationTimeOffset, presentationTimeOffset +
// duration×timescale): segments that end before it are skipped (their
// numbers counted) and ones that start at or after its end are dropped, as a
// multi-period manifest may repeat one timeline in every period. r="-1"
// repeats up to the next S@t, else to the period's end. With strict, more
// than limit slots is an error; without, the expansion stops at limit.
func (b *builder) timeline(a *addressing, pd, edge float64, limit int, strict bool) ([]slot, error) {
	ts := float64(a.timescale)
	end := math.Inf(1)
	if pd > 0 {
		end = float64(a.pto) + pd*ts
	}
	tooMany := fmt.Errorf("the SegmentTimeline lists more than %d segments", limit)
	var out []slot
	var t int64
	number := a.startNumber
	for i, s := range a.timeline {
		if s.t >= 0 {
			t = s.t
		}
		count := s.r + 1
		if s.r < 0 {
			until := end
			if i+1 < len(a.timeline) && a.timeline[i+1].t >= 0 {
				until = float64(a.timeline[i+1].t)
			}
			var c float64
			switch {
			case !math.IsInf(until, 1):
				c = math.Ceil((until - float64(t)) / float64(s.d))
			case b.m.Dynamic && !math.IsInf(edge, 1):
				c = math.Floor((edge - float64(t)) / float64(s.d)) // the segments that have ended
			case b.m.Dynamic:
				return nil, fmt.Errorf("%w: r=\"-1\" repeats up to the live edge, which needs the wall clock and availabilityStartTime", ErrDynamic)
			default:
				return nil, fmt.Errorf("S@r=\"-1\" with no period duration to repeat up to")
			}
			if c > float64(plan.MaxSegments) {
				return nil, tooMany
			}
			count = max(1, int64(c))
			if c < 1 && !math.IsInf(edge, 1) && math.IsInf(until, 1) {
				count = 0 // the live edge has not reached the end of the first
			}
		}
		if s.d > 0 && count > (math.MaxInt64-t)/s.d {
			return nil, fmt.Errorf("S@t=%d d=%d r=%d runs past the largest time", t, s.d, s.r)
		}
		// Skip, in one step, the segments that end before the period starts.
		if pto := int64(min(a.pto, math.MaxInt64)); t+s.d <= pto {
			skip := min(count, (pto-t)/s.d)
			t += skip * s.d
			number += uint64(skip)
			count -= skip
		}
		for ; count > 0; count-- {
			if float64(t)+1e-6*ts >= end {
				return out, nil
			}
			if len(out) == limit {
				if strict {
					return nil, tooMany
				}
				return out, nil
			}
			out = append(out, slot{t: uint64(t), d: uint64(s.d), number: number})
			t += s.d
			number++
		}
	}
	return out, nil
}
