// Package playlist parses HLS master and media playlists (RFC 8216). It does no I/O.
package playlist

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/streamsnatcher/streamsnatcher/media"
)

// Limits on what Parse accepts.
const (
	MaxSize     = 16 << 20  // bytes of input
	MaxSegments = 1_000_000 // segments in a media playlist
	// MaxMediaSequence is the largest EXT-X-MEDIA-SEQUENCE accepted: every segment's sequence number (and a
	// recorder's index derived from it) stays far from overflowing an int64. Whoever stores a sequence
	// number checks it against this same bound, so what is written from a parsed playlist reads back.
	MaxMediaSequence = math.MaxInt64 - 1<<20
)

// A Playlist is either a master or a media playlist: exactly one field is set.
type Playlist struct {
	Master *Master
	Media  *Media
}

// A Master playlist lists the variant streams and alternative renditions.
type Master struct {
	Variants []Variant
	Media    []Rendition
}

// A Variant is one EXT-X-STREAM-INF entry.
type Variant struct {
	URI              string // resolved against the playlist's URL
	Bandwidth        int64  // bits per second (peak)
	AverageBandwidth int64  // 0 when absent
	Resolution       string // "1280x720", or "" when absent
	Codecs           string
	Audio            string // GROUP-ID of the audio renditions it plays with
	Subtitles        string // GROUP-ID of the subtitle renditions it plays with
}

// A Rendition is one EXT-X-MEDIA entry.
type Rendition struct {
	Type     string // AUDIO, VIDEO, SUBTITLES, CLOSED-CAPTIONS
	GroupID  string
	Name     string
	Language string
	Default  bool
	Forced   bool   // FORCED=YES: subtitles shown whatever the viewer chose (foreign-language dialogue)
	URI      string // resolved; "" when the rendition is muxed into the variant
}

// A Media playlist lists the segments of one stream.
type Media struct {
	TargetDuration int64 // seconds
	MediaSequence  int64 // sequence number of the first segment
	Segments       []Segment
	Map            *Map // the first EXT-X-MAP (fMP4 initialisation section), or nil
	EndList        bool
	PlaylistType   string // "VOD", "EVENT" or ""
	// DiscontinuitySequence is the discontinuity sequence number of the first segment.
	DiscontinuitySequence int64
}

// A Segment is one media segment.
type Segment struct {
	URI           string // resolved against the playlist's URL
	Duration      float64
	Title         string
	Sequence      int64      // media sequence number: MediaSequence + position
	ByteRange     *ByteRange // nil when the segment is the whole resource
	Key           *Key       // the EXT-X-KEY in effect, nil when not encrypted
	Map           *Map       // the EXT-X-MAP in effect, nil for none
	Discontinuity bool
	Gap           bool // EXT-X-GAP: the segment is missing on purpose and must not be fetched
}

// A ByteRange selects Length bytes at Offset of a resource.
type ByteRange struct {
	Length, Offset int64
}

// A Key is an EXT-X-KEY: how the segments that follow are encrypted.
type Key struct {
	Method string // "AES-128", "SAMPLE-AES", …
	URI    string // resolved
	IV     string // as written ("0x…"), "" when absent
}

// A Map is an EXT-X-MAP: the initialisation section of fMP4 segments.
type Map struct {
	URI       string // resolved
	ByteRange *ByteRange
}

// A ParseError reports the playlist line that could not be parsed.
type ParseError struct {
	Line int    // 1-based; 0 for the input as a whole
	Text string // the line as written
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return "playlist: " + e.Msg
	}
	text := e.Text
	if len(text) > 120 {
		text = text[:120] + "…"
	}
	return fmt.Sprintf("playlist line %d %q: %s", e.Line, text, e.Msg)
}

const bom = "\ufeff"

// Sniff reports whether b looks like a playlist: "#EXTM3U" after an optional
// byte order mark and whitespace, as media.Sniff decides.
func Sniff(b []byte) bool {
	return media.Sniff(b) == media.FormatHLS
}

// TotalDuration is the sum of the segment durations, in seconds.
func (m *Media) TotalDuration() float64 {
	var d float64
	for _, s := range m.Segments {
		d += s.Duration
	}
	return d
}

// Best returns the variant with the highest bandwidth (the first among
// equals), or nil when there are none.
func (m *Master) Best() *Variant {
	var best *Variant
	for i := range m.Variants {
		if v := &m.Variants[i]; best == nil || v.Bandwidth > best.Bandwidth {
			best = v
		}
	}
	return best
}

// A NoMatchError is a selection (of a variant, an audio or a subtitle
// rendition) that matches nothing the master playlist offers.
type NoMatchError struct {
	Of      string // what was selected: "variant", "audio rendition", "subtitle rendition"
	Sel     string // the selection as given
	Choices string // what the master offers, e.g. "en (English), fr (Français)"
}

func (e *NoMatchError) Error() string {
	return fmt.Sprintf("no %s matches %q; choices: %s", e.Of, e.Sel, e.Choices)
}

// Pick selects a variant by sel: "best"; an index into Variants ("0"); a
// resolution ("1280x720"); a height ("720p" or "720", the highest bandwidth
// of that height); or an exact bandwidth ("2500000"). Its error lists the
// choices.
func (m *Master) Pick(sel string) (*Variant, error) {
	sel = strings.TrimSpace(sel)
	if len(m.Variants) == 0 {
		return nil, fmt.Errorf("pick variant %q: the master playlist has no variants", sel)
	}
	if strings.EqualFold(sel, "best") {
		return m.Best(), nil
	}
	n, numErr := strconv.ParseInt(strings.TrimSuffix(sel, "p"), 10, 64)
	if numErr == nil && !strings.HasSuffix(sel, "p") && n >= 0 && n < int64(len(m.Variants)) {
		return &m.Variants[n], nil
	}
	var byHeight *Variant
	for i := range m.Variants {
		v := &m.Variants[i]
		if v.Resolution != "" && strings.EqualFold(v.Resolution, sel) {
			return v, nil
		}
		if _, h, ok := strings.Cut(v.Resolution, "x"); ok && numErr == nil && h == strconv.FormatInt(n, 10) {
			if byHeight == nil || v.Bandwidth > byHeight.Bandwidth {
				byHeight = v
			}
		}
	}
	if byHeight != nil {
		return byHeight, nil
	}
	if numErr == nil && !strings.HasSuffix(sel, "p") {
		for i := range m.Variants {
			if m.Variants[i].Bandwidth == n {
				return &m.Variants[i], nil
			}
		}
	}
	var choices []string
	for i, v := range m.Variants {
		c := fmt.Sprintf("%d: %d bps", i, v.Bandwidth)
		if v.Resolution != "" {
			c = fmt.Sprintf("%d: %s %d bps", i, v.Resolution, v.Bandwidth)
		}
		choices = append(choices, c)
	}
	return nil, &NoMatchError{Of: "variant", Sel: sel, Choices: strings.Join(choices, ", ")}
}

// Parse parses a master or media playlist. Relative URIs are resolved against
// base (the playlist's URL after redirects); with a nil base they are kept as
// written. Errors are *ParseError.
func Parse(data []byte, base *url.URL) (*Playlist, error) {
	if len(data) > MaxSize {
		return nil, &ParseError{Msg: fmt.Sprintf("input of %d bytes is larger than %d MiB", len(data), MaxSize>>20)}
	}
	p := &parser{base: base, media: &Media{}, master: &Master{}}
	text := strings.TrimPrefix(string(data), bom)
	if n := strings.Count(text, "#EXTINF"); n > 0 {
		p.media.Segments = make([]Segment, 0, min(n, MaxSegments))
	}
	sawHeader := false
	n := 0
	for line := range strings.Lines(text) {
		n++
		p.line, p.text = n, strings.TrimRight(line, "\r\n")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !sawHeader {
			if strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "#EXT") {
				continue // a comment before the header: players tolerate it
			}
			if line != "#EXTM3U" && !strings.HasPrefix(line, "#EXTM3U ") {
				return nil, p.errorf("missing #EXTM3U header")
			}
			sawHeader = true
			continue
		}
		if err := p.parseLine(line); err != nil {
			return nil, err
		}
	}
	if !sawHeader {
		return nil, &ParseError{Msg: "missing #EXTM3U header (empty input)"}
	}
	if _, seg := p.pending.(*Segment); seg && !p.isMaster {
		// A live playlist caught mid-write: the last #EXTINF has no URI yet.
		// Players drop it and so do we; the next reload lists it whole.
		p.pending = nil
	}
	if p.pending != nil {
		p.line, p.text = p.pendingLine, p.pendingText
		return nil, p.errorf("no uri after %s", p.pendingTag)
	}
	if p.isMaster {
		return &Playlist{Master: p.master}, nil
	}
	return &Playlist{Media: p.media}, nil
}

type parser struct {
	base          *url.URL
	line          int
	text          string
	media         *Media
	master        *Master
	isMaster      bool
	isMedia       bool
	key           *Key
	curMap        *Map
	discontinuity bool
	gap           bool
	byteRange     *ByteRange
	hasByteRange  bool
	rangeOpen     bool // byteRange has no explicit offset
	lastRange     *ByteRange
	lastURI       string

	// A segment or variant waiting for its URI line.
	pending     any // *Segment or *Variant
	pendingTag  string
	pendingLine int
	pendingText string
}

func (p *parser) errorf(format string, args ...any) error {
	return &ParseError{Line: p.line, Text: p.text, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) kind(master bool) error {
	if master {
		p.isMaster = true
	} else {
		p.isMedia = true
	}
	if p.isMaster && p.isMedia {
		return p.errorf("master and media playlist tags mixed")
	}
	return nil
}

func (p *parser) resolve(ref string) (string, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return "", p.errorf("bad uri %q", ref)
	}
	if p.base == nil {
		return u.String(), nil
	}
	return p.base.ResolveReference(u).String(), nil
}

func (p *parser) parseLine(line string) error {
	if !strings.HasPrefix(line, "#") {
		return p.uri(line)
	}
	if !strings.HasPrefix(line, "#EXT") {
		return nil // a comment
	}
	tag, value, _ := strings.Cut(line, ":")
	switch tag {
	case "#EXTINF":
		if err := p.kind(false); err != nil {
			return err
		}
		if p.pending != nil {
			return p.errorf("%s without a uri before it", p.pendingTag)
		}
		dur, title, _ := strings.Cut(value, ",")
		d, err := strconv.ParseFloat(strings.TrimSpace(dur), 64)
		if err != nil || d < 0 || math.IsInf(d, 0) || math.IsNaN(d) {
			return p.errorf("bad duration")
		}
		p.setPending(&Segment{Duration: d, Title: title}, tag)
	case "#EXT-X-STREAM-INF":
		if err := p.kind(true); err != nil {
			return err
		}
		if p.pending != nil {
			return p.errorf("%s without a uri before it", p.pendingTag)
		}
		attrs, err := p.attributes(value)
		if err != nil {
			return err
		}
		v := &Variant{Resolution: attrs["RESOLUTION"], Codecs: attrs["CODECS"], Audio: attrs["AUDIO"],
			Subtitles: attrs["SUBTITLES"]}
		if v.Bandwidth, err = p.intAttr(attrs, "BANDWIDTH"); err != nil {
			return err
		}
		if v.AverageBandwidth, err = p.intAttr(attrs, "AVERAGE-BANDWIDTH"); err != nil {
			return err
		}
		p.setPending(v, tag)
	case "#EXT-X-MEDIA":
		if err := p.kind(true); err != nil {
			return err
		}
		attrs, err := p.attributes(value)
		if err != nil {
			return err
		}
		r := Rendition{Type: attrs["TYPE"], GroupID: attrs["GROUP-ID"], Name: attrs["NAME"],
			Language: attrs["LANGUAGE"], Default: attrs["DEFAULT"] == "YES", Forced: attrs["FORCED"] == "YES"}
		if u, ok := attrs["URI"]; ok {
			if r.URI, err = p.resolve(u); err != nil {
				return err
			}
		}
		p.master.Media = append(p.master.Media, r)
	case "#EXT-X-TARGETDURATION":
		if err := p.kind(false); err != nil {
			return err
		}
		d, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || d < 0 || d > math.MaxInt32 {
			return p.errorf("bad target duration")
		}
		p.media.TargetDuration = int64(math.Ceil(d))
	case "#EXT-X-MEDIA-SEQUENCE":
		if err := p.kind(false); err != nil {
			return err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil || n < 0 {
			return p.errorf("bad media sequence")
		}
		if n > MaxMediaSequence {
			return p.errorf("media sequence %d is over %d", n, int64(MaxMediaSequence))
		}
		if len(p.media.Segments) > 0 {
			return p.errorf("media sequence after the first segment")
		}
		p.media.MediaSequence = n
	case "#EXT-X-PLAYLIST-TYPE":
		p.media.PlaylistType = strings.TrimSpace(value)
		return p.kind(false)
	case "#EXT-X-ENDLIST":
		p.media.EndList = true
		return p.kind(false)
	case "#EXT-X-DISCONTINUITY":
		p.discontinuity = true
		return p.kind(false)
	case "#EXT-X-GAP":
		p.gap = true
		return p.kind(false)
	case "#EXT-X-DISCONTINUITY-SEQUENCE":
		if err := p.kind(false); err != nil {
			return err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil || n < 0 || n > math.MaxInt32 {
			return p.errorf("bad discontinuity sequence")
		}
		p.media.DiscontinuitySequence = n
	case "#EXT-X-BYTERANGE":
		br, open, err := p.byteRangeValue(strings.TrimSpace(value))
		if err != nil {
			return err
		}
		p.byteRange, p.rangeOpen, p.hasByteRange = br, open, true
		return p.kind(false)
	case "#EXT-X-KEY":
		attrs, err := p.attributes(value)
		if err != nil {
			return err
		}
		method := attrs["METHOD"]
		switch method {
		case "":
			return p.errorf("key without METHOD")
		case "NONE":
			p.key = nil
		default:
			k := &Key{Method: method, IV: attrs["IV"]}
			u, ok := attrs["URI"]
			if !ok {
				return p.errorf("key without URI")
			}
			if k.URI, err = p.resolve(u); err != nil {
				return err
			}
			p.key = k
		}
		return p.kind(false)
	case "#EXT-X-MAP":
		attrs, err := p.attributes(value)
		if err != nil {
			return err
		}
		u, ok := attrs["URI"]
		if !ok {
			return p.errorf("map without URI")
		}
		m := &Map{}
		if m.URI, err = p.resolve(u); err != nil {
			return err
		}
		if r, ok := attrs["BYTERANGE"]; ok {
			br, open, err := p.byteRangeValue(r)
			if err != nil {
				return err
			}
			if open {
				br.Offset = 0
			}
			m.ByteRange = br
		}
		p.curMap = m
		if p.media.Map == nil {
			p.media.Map = m
		}
		return p.kind(false)
	}
	return nil
}

func (p *parser) setPending(v any, tag string) {
	p.pending, p.pendingTag, p.pendingLine, p.pendingText = v, tag, p.line, p.text
}

func (p *parser) uri(line string) error {
	resolved, err := p.resolve(line)
	if err != nil {
		return err
	}
	switch v := p.pending.(type) {
	case *Variant:
		v.URI = resolved
		p.master.Variants = append(p.master.Variants, *v)
	case *Segment:
		if len(p.media.Segments) >= MaxSegments {
			return p.errorf("more than %d segments", MaxSegments)
		}
		v.URI = resolved
		v.Sequence = p.media.MediaSequence + int64(len(p.media.Segments))
		v.Key, v.Map, v.Discontinuity, v.Gap = p.key, p.curMap, p.discontinuity, p.gap
		if p.hasByteRange {
			br := *p.byteRange
			if p.rangeOpen {
				br.Offset = 0
				if p.lastRange != nil && p.lastURI == resolved {
					br.Offset = p.lastRange.Offset + p.lastRange.Length
				}
			}
			v.ByteRange = &br
		}
		p.lastRange, p.lastURI = v.ByteRange, resolved
		p.media.Segments = append(p.media.Segments, *v)
		p.discontinuity, p.gap, p.hasByteRange, p.byteRange = false, false, false, nil
	default:
		return p.errorf("uri without a preceding #EXTINF or #EXT-X-STREAM-INF")
	}
	p.pending = nil
	return nil
}

// byteRangeValue parses "<length>[@<offset>]"; open reports a missing offset.
func (p *parser) byteRangeValue(s string) (br *ByteRange, open bool, err error) {
	ls, os, hasOff := strings.Cut(s, "@")
	n, err1 := strconv.ParseInt(ls, 10, 64)
	if err1 != nil || n < 0 {
		return nil, false, p.errorf("bad byte range")
	}
	br = &ByteRange{Length: n}
	if hasOff {
		o, err := strconv.ParseInt(os, 10, 64)
		if err != nil || o < 0 || o > math.MaxInt64-n {
			return nil, false, p.errorf("bad byte range")
		}
		br.Offset = o
	}
	return br, !hasOff, nil
}

func (p *parser) intAttr(attrs map[string]string, name string) (int64, error) {
	s, ok := attrs[name]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, p.errorf("bad %s", name)
	}
	return n, nil
}

// attributes parses an attribute list: NAME=value pairs separated by commas,
// where a value is a quoted string (which may hold commas) or runs to the next
// comma. Quotes are removed.
func (p *parser) attributes(s string) (map[string]string, error) {
	attrs := make(map[string]string)
	for {
		s = strings.TrimLeft(s, " \t,") // tolerate empty entries
		if s == "" {
			return attrs, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, p.errorf("bad attribute list")
		}
		name := strings.TrimSpace(s[:eq])
		s = s[eq+1:]
		var value string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, p.errorf("unterminated quoted string in attribute %s", name)
			}
			value, s = s[1:1+end], strings.TrimLeft(s[2+end:], " \t")
			if s != "" && s[0] != ',' {
				return nil, p.errorf("bad attribute list after %s", name)
			}
		} else {
			value, s, _ = strings.Cut(s, ",")
			value = strings.TrimSpace(value)
		}
		attrs[name] = value
	}
}

// AudioFor selects the audio renditions that play with variant v: sel "" takes
// the group's DEFAULT=YES rendition (else its first), "all" every language of
// the group once, and a language tag ("en", "fr-CA") the rendition of that
// language (a prefix match: "en" finds "en-US"). Renditions without a URI are
// muxed into the variant and are not returned; a nil result means the
// variant carries its own audio (or none).
func (m *Master) AudioFor(v *Variant, sel string) ([]Rendition, error) {
	if v == nil || v.Audio == "" {
		return nil, nil
	}
	var group []Rendition
	for _, r := range m.Media {
		if r.Type == "AUDIO" && r.GroupID == v.Audio && r.URI != "" {
			group = append(group, r)
		}
	}
	if len(group) == 0 {
		return nil, nil
	}
	sel = strings.TrimSpace(sel)
	switch {
	case sel == "":
		for _, r := range group {
			if r.Default {
				return []Rendition{r}, nil
			}
		}
		return group[:1], nil
	case strings.EqualFold(sel, "all"):
		return eachLanguage(group), nil
	}
	if r := matchLanguage(group, sel); r != nil {
		return []Rendition{*r}, nil
	}
	return nil, &NoMatchError{Of: "audio rendition", Sel: sel, Choices: choices(group)}
}

// SubtitlesFor selects the subtitle renditions that play with variant v: sel "" or "all" takes every language
// of the group once (a forced rendition apart from the full one of its language), "none" nothing, and a
// language tag ("en", "pt-BR"; a prefix match as in AudioFor) or a NAME the renditions of that language, forced
// or not. Renditions without a URI (invalid for subtitles) are skipped; a nil result means the variant has
// no subtitles.
func (m *Master) SubtitlesFor(v *Variant, sel string) ([]Rendition, error) {
	sel = strings.TrimSpace(sel)
	if v == nil || v.Subtitles == "" || strings.EqualFold(sel, "none") {
		return nil, nil
	}
	var group []Rendition
	for _, r := range m.Media {
		if r.Type == "SUBTITLES" && r.GroupID == v.Subtitles && r.URI != "" {
			group = append(group, r)
		}
	}
	if len(group) == 0 {
		return nil, nil
	}
	if sel == "" || strings.EqualFold(sel, "all") {
		return eachLanguage(group), nil
	}
	r := matchLanguage(group, sel)
	if r == nil {
		return nil, &NoMatchError{Of: "subtitle rendition", Sel: sel, Choices: choices(group)}
	}
	var out []Rendition
	for _, g := range eachLanguage(group) {
		if strings.EqualFold(g.Language, r.Language) && (r.Language != "" || g.Name == r.Name) {
			out = append(out, g)
		}
	}
	return out, nil
}

// eachLanguage keeps the first rendition of each language (of each name when it has none), forced ones apart.
func eachLanguage(group []Rendition) []Rendition {
	var out []Rendition
	seen := map[string]bool{}
	for _, r := range group {
		k := strings.ToLower(r.Language + "\x00" + r.Name)
		if r.Language != "" {
			k = strings.ToLower(r.Language)
		}
		if r.Forced {
			k += "\x00forced"
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

// matchLanguage returns the first rendition whose language is sel or starts with sel+"-", or whose name is sel.
// Selected reports whether a choice of renditions as SubtitlesFor takes it ("" or "all", "none", or a
// language or name) includes r: watch records only the renditions the player fetched that the person chose.
func (r Rendition) Selected(sel string) bool {
	switch sel = strings.TrimSpace(sel); {
	case sel == "" || strings.EqualFold(sel, "all"):
		return true
	case strings.EqualFold(sel, "none"):
		return false
	}
	return matchLanguage([]Rendition{r}, sel) != nil
}

func matchLanguage(group []Rendition, sel string) *Rendition {
	for i, r := range group {
		l := strings.ToLower(r.Language)
		if l == strings.ToLower(sel) || strings.HasPrefix(l, strings.ToLower(sel)+"-") || strings.EqualFold(r.Name, sel) {
			return &group[i]
		}
	}
	return nil
}

func choices(group []Rendition) string {
	var langs []string
	for _, r := range group {
		langs = append(langs, fmt.Sprintf("%s (%s)", r.Language, r.Name))
	}
	return strings.Join(langs, ", ")
}
