package dash

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/streamsnatcher/streamsnatcher/plan"
)

// segInfo is the segment addressing in effect at one level of the manifest:
// each of SegmentBase, SegmentList and SegmentTemplate merged with the same
// element at the levels above, and which of them the lowest level uses.
type segInfo struct {
	base *xmlSegmentBase
	list *xmlSegmentList
	tmpl *xmlSegmentTemplate
	kind addrKind
}

type addrKind int

const (
	addrNone     addrKind = iota // only a BaseURL: the whole resource is one segment
	addrBase                     // SegmentBase: ranges from the sidx box
	addrList                     // SegmentList
	addrTemplate                 // SegmentTemplate
)

// segments merges the addressing elements of one level over its parent's.
func (p *parser) segments(path string, x *xmlSegments, parent *segInfo) *segInfo {
	s := &segInfo{}
	if parent != nil {
		*s = *parent
	}
	if x.SegmentBase != nil {
		s.base = mergeBase(x.SegmentBase, s.base)
		s.kind = addrBase
	}
	if x.SegmentList != nil {
		l := *x.SegmentList
		if s.list != nil {
			l.xmlMultiple = mergeMultiple(l.xmlMultiple, s.list.xmlMultiple)
			if len(l.SegmentURLs) == 0 {
				l.SegmentURLs = s.list.SegmentURLs
			}
		}
		s.list = &l
		s.kind = addrList
	}
	if x.SegmentTemplate != nil {
		t := *x.SegmentTemplate
		if s.tmpl != nil {
			t.xmlMultiple = mergeMultiple(t.xmlMultiple, s.tmpl.xmlMultiple)
			t.Media = cmp(t.Media, s.tmpl.Media)
			t.InitAttr = cmp(t.InitAttr, s.tmpl.InitAttr)
		}
		s.tmpl = &t
		s.kind = addrTemplate
	}
	return s
}

func mergeBase(c, p *xmlSegmentBase) *xmlSegmentBase {
	m := *c
	if p != nil {
		m.Timescale = cmp(m.Timescale, p.Timescale)
		m.PresentationTimeOffset = cmp(m.PresentationTimeOffset, p.PresentationTimeOffset)
		m.IndexRange = cmp(m.IndexRange, p.IndexRange)
		if m.Initialization == nil {
			m.Initialization = p.Initialization
		}
	}
	return &m
}

func mergeMultiple(c, p xmlMultiple) xmlMultiple {
	c.xmlSegmentBase = *mergeBase(&c.xmlSegmentBase, &p.xmlSegmentBase)
	c.Duration = cmp(c.Duration, p.Duration)
	c.StartNumber = cmp(c.StartNumber, p.StartNumber)
	c.EndNumber = cmp(c.EndNumber, p.EndNumber)
	if c.Timeline == nil {
		c.Timeline = p.Timeline
	}
	return c
}

// addressing is a representation's segment addressing, checked and typed.
type addressing struct {
	kind        addrKind
	timescale   uint64
	pto         uint64 // presentationTimeOffset, in timescale units
	duration    uint64 // segment duration in timescale units; 0 when absent
	startNumber uint64
	endNumber   uint64 // 0 when absent
	timeline    []sEntry
	media, init []tmplPart // SegmentTemplate
	initURL     string     // Initialization@sourceURL as written, "" for the BaseURL
	hasInit     bool
	initRange   *plan.ByteRange
	indexRange  *plan.ByteRange
	list        []listEntry
}

type sEntry struct {
	t int64 // -1 when absent
	d int64
	r int64 // -1: repeat up to the next S@t or the period's end
}

type listEntry struct {
	media string // as written, "" for the BaseURL
	rng   *plan.ByteRange
}

func (p *parser) addressing(path string, s *segInfo) addressing {
	a := addressing{kind: s.kind, timescale: 1, startNumber: 1}
	var sb *xmlSegmentBase
	var mu *xmlMultiple
	switch s.kind {
	case addrNone:
		return a
	case addrBase:
		sb, path = s.base, path+"/SegmentBase"
	case addrList:
		mu, path = &s.list.xmlMultiple, path+"/SegmentList"
		sb = &mu.xmlSegmentBase
	case addrTemplate:
		mu, path = &s.tmpl.xmlMultiple, path+"/SegmentTemplate"
		sb = &mu.xmlSegmentBase
	}
	a.timescale = p.uint(path, "timescale", sb.Timescale, 1)
	if a.timescale == 0 {
		p.fail(path, "timescale", sb.Timescale, "must be positive")
	}
	a.pto = p.uint(path, "presentationTimeOffset", sb.PresentationTimeOffset, 0)
	a.indexRange = p.byteRange(path, "indexRange", sb.IndexRange)
	if in := sb.Initialization; in != nil {
		a.hasInit = true
		a.initURL = strings.TrimSpace(in.SourceURL)
		a.initRange = p.byteRange(path+"/Initialization", "range", in.Range)
	}
	if mu != nil {
		a.duration = p.uint(path, "duration", mu.Duration, 0)
		a.startNumber = p.uint(path, "startNumber", mu.StartNumber, 1)
		a.endNumber = p.uint(path, "endNumber", mu.EndNumber, 0)
		if mu.Timeline != nil {
			a.timeline = p.timeline(path+"/SegmentTimeline", mu.Timeline)
		}
	}
	switch s.kind {
	case addrList:
		if len(s.list.SegmentURLs) > plan.MaxSegments {
			p.fail(path, "", "", fmt.Sprintf("%d SegmentURLs, at most %d", len(s.list.SegmentURLs), plan.MaxSegments))
			return a
		}
		a.list = make([]listEntry, len(s.list.SegmentURLs))
		for i, u := range s.list.SegmentURLs {
			upath := fmt.Sprintf("%s/SegmentURL[%d]", path, i)
			a.list[i] = listEntry{media: strings.TrimSpace(u.Media), rng: p.byteRange(upath, "mediaRange", u.MediaRange)}
		}
	case addrTemplate:
		t := s.tmpl
		var err error
		if a.media, err = compileTemplate(t.Media, false); err != nil {
			p.fail(path, "media", t.Media, err.Error())
		}
		if t.Media == "" {
			p.fail(path, "media", "", "SegmentTemplate without a media template")
		}
		if t.InitAttr != "" {
			a.hasInit = true
			if a.init, err = compileTemplate(t.InitAttr, true); err != nil {
				p.fail(path, "initialization", t.InitAttr, err.Error())
			}
		} else if a.hasInit && a.initURL != "" {
			if a.init, err = compileTemplate(a.initURL, true); err != nil {
				p.fail(path+"/Initialization", "sourceURL", a.initURL, err.Error())
			}
		}
		if a.duration == 0 && a.timeline == nil {
			p.fail(path, "duration", mu.Duration, "a SegmentTemplate needs a duration or a SegmentTimeline")
		}
	}
	return a
}

// timeline checks a SegmentTimeline and bounds the segments it lists, so a
// hostile repeat count is refused before anything is allocated for it.
func (p *parser) timeline(path string, x *xmlTimeline) []sEntry {
	if len(x.S) > plan.MaxSegments {
		p.fail(path, "", "", fmt.Sprintf("%d S elements, at most %d", len(x.S), plan.MaxSegments))
		return nil
	}
	out := make([]sEntry, len(x.S))
	var total int64
	for i, s := range x.S {
		spath := fmt.Sprintf("%s/S[%d]", path, i)
		e := sEntry{t: -1}
		if s.T != "" {
			e.t = int64(p.uint(spath, "t", s.T, 0))
		}
		e.d = int64(p.uint(spath, "d", s.D, 0))
		if e.d == 0 && p.err == nil {
			p.fail(spath, "d", s.D, "must be positive")
		}
		if s.R != "" {
			r, err := strconv.ParseInt(strings.TrimSpace(s.R), 10, 64)
			if err != nil || r < -1 {
				p.fail(spath, "r", s.R, "want -1 or a non-negative integer")
			}
			e.r = r
		}
		if e.r >= 0 {
			if e.r >= plan.MaxSegments || total+e.r+1 > plan.MaxSegments {
				p.fail(spath, "r", s.R, fmt.Sprintf("the timeline lists more than %d segments", plan.MaxSegments))
				return nil
			}
			total += e.r + 1
		}
		out[i] = e
	}
	return out
}

// A template is a SegmentTemplate media or initialization attribute split
// into literal text and $Identifier$ fields.
type tmplPart struct {
	lit   string
	ident string // "RepresentationID", "Number", "Bandwidth", "Time"; "" for a literal
	width int    // from a %0<width>d format tag
}

func compileTemplate(s string, init bool) ([]tmplPart, error) {
	var parts []tmplPart
	for s != "" {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			parts = append(parts, tmplPart{lit: s})
			break
		}
		if i > 0 {
			parts = append(parts, tmplPart{lit: s[:i]})
		}
		j := strings.IndexByte(s[i+1:], '$')
		if j < 0 {
			return nil, fmt.Errorf("unterminated $ identifier")
		}
		field := s[i+1 : i+1+j]
		s = s[i+2+j:]
		if field == "" {
			parts = append(parts, tmplPart{lit: "$"})
			continue
		}
		name, format, hasFormat := strings.Cut(field, "%")
		pt := tmplPart{ident: name}
		switch name {
		case "RepresentationID", "Bandwidth":
		case "Number", "Time":
			if init {
				return nil, fmt.Errorf("$%s$ in an initialization template", name)
			}
		default:
			return nil, fmt.Errorf("unknown identifier $%s$", field)
		}
		if hasFormat {
			w, ok := strings.CutSuffix(format, "d")
			n, err := strconv.Atoi(strings.TrimPrefix(w, "0"))
			if w == "" || w == "0" {
				n, err = 0, nil
			}
			if !ok || err != nil || n < 0 || n > 32 || strings.HasPrefix(w, "-") || strings.HasPrefix(w, "+") {
				return nil, fmt.Errorf("bad format tag %%%s in $%s$: want %%0<width>d", format, field)
			}
			if name == "RepresentationID" {
				return nil, fmt.Errorf("a format tag on $RepresentationID$")
			}
			pt.width = n
		}
		parts = append(parts, pt)
	}
	return parts, nil
}

func expand(parts []tmplPart, r *Representation, number, time uint64) string {
	var b strings.Builder
	for _, pt := range parts {
		var n uint64
		switch pt.ident {
		case "":
			b.WriteString(pt.lit)
			continue
		case "RepresentationID":
			b.WriteString(r.ID)
			continue
		case "Bandwidth":
			n = uint64(r.Bandwidth)
		case "Number":
			n = number
		case "Time":
			n = time
		}
		s := strconv.FormatUint(n, 10)
		for i := len(s); i < pt.width; i++ {
			b.WriteByte('0')
		}
		b.WriteString(s)
	}
	return b.String()
}

// parseDuration parses an ISO 8601 duration (xs:duration) such as
// "PT1H2M3.5S" or "P1DT2H" into seconds. Years count 365 days and months 30,
// as the players do.
func parseDuration(s string) (float64, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" || strings.HasSuffix(rest, "T") {
		return 0, fmt.Errorf("want an ISO 8601 duration like PT1H2M3.5S")
	}
	units := map[bool]string{false: "YMWD", true: "HMS"}
	secs := map[bool]map[byte]float64{
		false: {'Y': 365 * 86400, 'M': 30 * 86400, 'W': 7 * 86400, 'D': 86400},
		true:  {'H': 3600, 'M': 60, 'S': 1},
	}
	var total float64
	inTime, last := false, -1
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, fmt.Errorf("two T in a duration")
			}
			inTime, last, rest = true, -1, rest[1:]
			if rest == "" {
				return 0, fmt.Errorf("nothing after T")
			}
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, fmt.Errorf("want a number and a unit")
		}
		u := strings.IndexByte(units[inTime], rest[i])
		if u <= last {
			return 0, fmt.Errorf("unit %q out of place", rest[i])
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("bad number %q", rest[:i])
		}
		total += n * secs[inTime][rest[i]]
		last, rest = u, rest[i+1:]
	}
	if math.IsInf(total, 0) || math.IsNaN(total) || total > 1e12 {
		return 0, fmt.Errorf("duration out of range")
	}
	return total, nil
}
