// Package dash parses MPEG-DASH manifests (MPDs, ISO/IEC 23009-1) into the
// same presentation plan that HLS playlists produce. It does no I/O: the one
// thing a manifest may leave unsaid, the byte ranges inside a SegmentBase
// file's sidx box, is asked of the caller (see ErrNeedsIndex and ParseSIDX).
package dash

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/streamsnatcher/streamsnatcher/plan"
)

// MaxSize is the largest manifest Parse reads.
const MaxSize = 16 << 20

// Errors callers branch on.
var (
	// ErrDRM: the manifest has ContentProtection; the error names the schemes.
	ErrDRM = errors.New("protected with DRM")
	// ErrDynamic: the manifest is live (type="dynamic"); Parse refuses it,
	// ParseDynamic accepts it.
	ErrDynamic = errors.New("live (dynamic) manifest")
	// ErrNeedsIndex: a chosen representation is addressed by SegmentBase and
	// the bytes of its sidx box were not given. The error is a
	// *NeedsIndexError that lists them.
	ErrNeedsIndex = errors.New("segment index (sidx) needed")
)

// A ParseError reports the part of the manifest that could not be parsed: the
// element's path, the attribute and the value as written.
type ParseError struct {
	Path  string // "Period[1]/AdaptationSet[0]/Representation[2]/SegmentTemplate"; "" for the input as a whole
	Attr  string // "duration", "" for the element itself
	Value string // as written
	Msg   string
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return "dash: " + e.Msg
	}
	v := e.Value
	if len(v) > 120 {
		v = v[:120] + "…"
	}
	if e.Attr == "" {
		return fmt.Sprintf("dash: %s: %s", e.Path, e.Msg)
	}
	return fmt.Sprintf("dash: %s@%s=%q: %s", e.Path, e.Attr, v, e.Msg)
}

// An MPD is a parsed manifest. Every URL in it is resolved.
type MPD struct {
	Dynamic  bool
	Duration float64 // mediaPresentationDuration in seconds, 0 when absent
	// For live manifests, as written: the live recorder interprets them.
	AvailabilityStartTime string
	MinimumUpdatePeriod   float64 // seconds
	TimeShiftBufferDepth  float64 // seconds
	// AvailabilityStart and PublishTime are the parsed availabilityStartTime
	// and publishTime; zero when absent. A live $Number$ template with
	// @duration is placed on the wall clock from AvailabilityStart.
	AvailabilityStart time.Time
	PublishTime       time.Time
	Periods           []Period

	source string // the manifest's URL, for plan.Track.Source
}

// A Period is one part of the presentation; periods play one after another.
type Period struct {
	ID    string
	Start float64 // seconds from the start of the presentation
	// Duration in seconds: Period@duration, else up to the next Period's
	// start, else up to mediaPresentationDuration; 0 when unknown.
	Duration       float64
	AdaptationSets []AdaptationSet
}

// Kinds of AdaptationSet besides plan.Video, plan.Audio and plan.Subtitles.
const (
	KindImage   = "image" // thumbnails: never recorded
	KindUnknown = ""
)

// An AdaptationSet is a set of interchangeable encodings of one content.
type AdaptationSet struct {
	ID          string
	Kind        string // plan.Video, plan.Audio, plan.Subtitles, KindImage or KindUnknown
	ContentType string // as written
	MimeType    string
	Lang        string
	Label       string
	Roles       []string // values of Role with the DASH role scheme: "main", "alternate", "commentary", …
	// TrickMode marks a trick-play set (fast-forward thumbnails of the video):
	// never chosen.
	TrickMode       bool
	Representations []Representation
}

// A Representation is one encoding. Attributes missing on it are inherited
// from its AdaptationSet.
type Representation struct {
	ID        string
	Bandwidth int64 // bits per second
	Width     int
	Height    int
	Codecs    string
	MimeType  string
	FrameRate string
	BaseURL   string // resolved: the URL its segment URLs are relative to

	addr addressing
}

// Parse parses a static (on-demand) MPD. base is the manifest's URL after
// redirects: BaseURLs and segment URLs are resolved against it. Errors are a
// *ParseError for malformed input, an error wrapping ErrDRM for protected
// content and one wrapping ErrDynamic for a live manifest.
func Parse(data []byte, base *url.URL) (*MPD, error) {
	return parse(data, base, false)
}

// ParseDynamic is Parse that also accepts a live (type="dynamic") manifest.
func ParseDynamic(data []byte, base *url.URL) (*MPD, error) {
	return parse(data, base, true)
}

// XML shapes, every value kept as written so errors can quote it.

type xmlMPD struct {
	XMLName                   xml.Name
	Type                      string       `xml:"type,attr"`
	MediaPresentationDuration string       `xml:"mediaPresentationDuration,attr"`
	AvailabilityStartTime     string       `xml:"availabilityStartTime,attr"`
	PublishTime               string       `xml:"publishTime,attr"`
	MinimumUpdatePeriod       string       `xml:"minimumUpdatePeriod,attr"`
	TimeShiftBufferDepth      string       `xml:"timeShiftBufferDepth,attr"`
	BaseURLs                  []xmlBaseURL `xml:"BaseURL"`
	Periods                   []xmlPeriod  `xml:"Period"`
}

type xmlBaseURL struct {
	Value string `xml:",chardata"`
}

type xmlSegments struct {
	SegmentBase     *xmlSegmentBase     `xml:"SegmentBase"`
	SegmentList     *xmlSegmentList     `xml:"SegmentList"`
	SegmentTemplate *xmlSegmentTemplate `xml:"SegmentTemplate"`
}

type xmlPeriod struct {
	ID       string       `xml:"id,attr"`
	Start    string       `xml:"start,attr"`
	Duration string       `xml:"duration,attr"`
	Href     string       `xml:"href,attr"`
	BaseURLs []xmlBaseURL `xml:"BaseURL"`
	xmlSegments
	AdaptationSets []xmlAdaptationSet `xml:"AdaptationSet"`
}

type xmlDescriptor struct {
	SchemeIDURI string `xml:"schemeIdUri,attr"`
	Value       string `xml:"value,attr"`
}

type xmlCommon struct {
	MimeType          string          `xml:"mimeType,attr"`
	Codecs            string          `xml:"codecs,attr"`
	Width             string          `xml:"width,attr"`
	Height            string          `xml:"height,attr"`
	FrameRate         string          `xml:"frameRate,attr"`
	ContentProtection []xmlDescriptor `xml:"ContentProtection"`
	Essential         []xmlDescriptor `xml:"EssentialProperty"`
	BaseURLs          []xmlBaseURL    `xml:"BaseURL"`
	xmlSegments
}

type xmlAdaptationSet struct {
	ID               string          `xml:"id,attr"`
	ContentType      string          `xml:"contentType,attr"`
	Lang             string          `xml:"lang,attr"`
	Label            string          `xml:"label,attr"`
	Href             string          `xml:"href,attr"`
	Roles            []xmlDescriptor `xml:"Role"`
	ContentComponent []struct {
		ContentType string `xml:"contentType,attr"`
	} `xml:"ContentComponent"`
	LabelElem []string `xml:"Label"`
	xmlCommon
	Representations []xmlRepresentation `xml:"Representation"`
}

type xmlRepresentation struct {
	ID        string `xml:"id,attr"`
	Bandwidth string `xml:"bandwidth,attr"`
	xmlCommon
}

type xmlURL struct {
	SourceURL string `xml:"sourceURL,attr"`
	Range     string `xml:"range,attr"`
}

type xmlSegmentBase struct {
	Timescale              string  `xml:"timescale,attr"`
	PresentationTimeOffset string  `xml:"presentationTimeOffset,attr"`
	IndexRange             string  `xml:"indexRange,attr"`
	Initialization         *xmlURL `xml:"Initialization"`
}

type xmlMultiple struct {
	xmlSegmentBase
	Duration    string       `xml:"duration,attr"`
	StartNumber string       `xml:"startNumber,attr"`
	EndNumber   string       `xml:"endNumber,attr"`
	Timeline    *xmlTimeline `xml:"SegmentTimeline"`
}

type xmlSegmentList struct {
	xmlMultiple
	SegmentURLs []struct {
		Media      string `xml:"media,attr"`
		MediaRange string `xml:"mediaRange,attr"`
	} `xml:"SegmentURL"`
}

type xmlSegmentTemplate struct {
	xmlMultiple
	Media    string `xml:"media,attr"`
	InitAttr string `xml:"initialization,attr"`
}

type xmlTimeline struct {
	S []struct {
		T string `xml:"t,attr"`
		D string `xml:"d,attr"`
		R string `xml:"r,attr"`
	} `xml:"S"`
}

func parse(data []byte, base *url.URL, allowDynamic bool) (*MPD, error) {
	if len(data) > MaxSize {
		return nil, &ParseError{Msg: fmt.Sprintf("input of %d bytes is larger than %d MiB", len(data), MaxSize>>20)}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	var x xmlMPD
	d := xml.NewDecoder(bytes.NewReader(data))
	d.CharsetReader = charsetReader
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("#EXTM3U")) {
		return nil, &ParseError{Msg: "not an MPD: this is an HLS playlist (#EXTM3U)"}
	}
	if err := d.Decode(&x); err != nil {
		if err == io.EOF {
			return nil, &ParseError{Msg: "not XML: no element in the input"}
		}
		line, _ := d.InputPos()
		return nil, &ParseError{Msg: fmt.Sprintf("not XML near line %d: %v", line, err)}
	}
	if x.XMLName.Local != "MPD" {
		return nil, &ParseError{Msg: fmt.Sprintf("not an MPD: the root element is <%s>", x.XMLName.Local)}
	}
	if schemes := drmSchemes(&x); len(schemes) > 0 {
		return nil, fmt.Errorf("%w (%s): not recordable", ErrDRM, strings.Join(schemes, ", "))
	}
	p := &parser{}
	m := &MPD{AvailabilityStartTime: x.AvailabilityStartTime}
	if base != nil {
		m.source = base.String()
	}
	switch x.Type {
	case "", "static":
	case "dynamic":
		if !allowDynamic {
			return nil, fmt.Errorf("%w: not recordable as a file yet", ErrDynamic)
		}
		m.Dynamic = true
	default:
		return nil, &ParseError{Path: "MPD", Attr: "type", Value: x.Type, Msg: "want static or dynamic"}
	}
	m.Duration = p.duration("MPD", "mediaPresentationDuration", x.MediaPresentationDuration)
	m.MinimumUpdatePeriod = p.duration("MPD", "minimumUpdatePeriod", x.MinimumUpdatePeriod)
	m.TimeShiftBufferDepth = p.duration("MPD", "timeShiftBufferDepth", x.TimeShiftBufferDepth)
	// Lenient: only a live $Number$ template needs the clock, and it says so.
	m.AvailabilityStart = dateTime(x.AvailabilityStartTime)
	m.PublishTime = dateTime(x.PublishTime)
	mpdBase := p.resolve("MPD", base, x.BaseURLs)
	if len(x.Periods) == 0 {
		p.fail("MPD", "", "", "no Period")
	}
	m.Periods = make([]Period, len(x.Periods))
	for i := range x.Periods {
		p.period(&m.Periods[i], &x.Periods[i], fmt.Sprintf("Period[%d]", i), mpdBase)
	}
	if p.err != nil {
		return nil, p.err
	}
	// Period timing: a start defaults to the end of the one before; a duration
	// to the next start, or the presentation's end.
	for i := range m.Periods {
		pe, xp := &m.Periods[i], &x.Periods[i]
		if xp.Start == "" && i > 0 {
			prev := &m.Periods[i-1]
			pe.Start = prev.Start + prev.Duration
		}
		if xp.Duration == "" {
			switch {
			case i+1 < len(m.Periods) && x.Periods[i+1].Start != "":
				pe.Duration = m.Periods[i+1].Start - pe.Start
			case i+1 == len(m.Periods) && m.Duration > 0:
				pe.Duration = m.Duration - pe.Start
			}
		}
		if pe.Duration < 0 {
			p.fail(fmt.Sprintf("Period[%d]", i), "start", xp.Start, fmt.Sprintf("starts after the next period (%.3fs)", pe.Start+pe.Duration))
			return nil, p.err
		}
	}
	return m, nil
}

// parser collects the first error; its helpers return zero values after one.
type parser struct {
	err error
}

func (p *parser) fail(path, attr, value, msg string) {
	if p.err == nil {
		p.err = &ParseError{Path: path, Attr: attr, Value: value, Msg: msg}
	}
}

func (p *parser) duration(path, attr, s string) float64 {
	if s == "" {
		return 0
	}
	d, err := parseDuration(s)
	if err != nil {
		p.fail(path, attr, s, err.Error())
	}
	return d
}

// dateTime parses an xs:dateTime, zero when absent or malformed; one without
// a time zone is UTC, as the DASH-IF guidelines ask of players.
func dateTime(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil && s != "" {
			return t.UTC()
		}
	}
	return time.Time{}
}

func (p *parser) uint(path, attr, s string, def uint64) uint64 {
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || n > math.MaxInt64 {
		p.fail(path, attr, s, "want a non-negative integer")
	}
	return n
}

func (p *parser) byteRange(path, attr, s string) *plan.ByteRange {
	if s == "" {
		return nil
	}
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || first < 0 || last < first || last == math.MaxInt64 {
		p.fail(path, attr, s, `want a byte range "first-last"`)
		return nil
	}
	return &plan.ByteRange{Offset: first, Length: last - first + 1}
}

// resolve applies the first BaseURL of an element to its parent's base.
func (p *parser) resolve(path string, parent *url.URL, bases []xmlBaseURL) *url.URL {
	if len(bases) == 0 {
		return parent
	}
	s := strings.TrimSpace(bases[0].Value)
	u, err := url.Parse(s)
	if err != nil {
		p.fail(path+"/BaseURL", "", s, "bad url")
		return parent
	}
	if parent == nil {
		return u
	}
	return parent.ResolveReference(u)
}

func (p *parser) period(pe *Period, x *xmlPeriod, path string, base *url.URL) {
	if x.Href != "" {
		p.fail(path, "xlink:href", x.Href, "remote periods are not supported")
		return
	}
	pe.ID = x.ID
	pe.Start = p.duration(path, "start", x.Start)
	pe.Duration = p.duration(path, "duration", x.Duration)
	base = p.resolve(path, base, x.BaseURLs)
	periodSegs := p.segments(path, &x.xmlSegments, nil)
	for i := range x.AdaptationSets {
		xa := &x.AdaptationSets[i]
		apath := fmt.Sprintf("%s/AdaptationSet[%d]", path, i)
		if xa.Href != "" {
			p.fail(apath, "xlink:href", xa.Href, "remote adaptation sets are not supported")
			return
		}
		a := AdaptationSet{
			ID: xa.ID, ContentType: xa.ContentType, MimeType: xa.MimeType,
			Lang: strings.TrimSpace(xa.Lang), Label: xa.Label,
		}
		if a.Label == "" && len(xa.LabelElem) > 0 {
			a.Label = strings.TrimSpace(xa.LabelElem[0])
		}
		for _, r := range xa.Roles {
			if strings.EqualFold(r.SchemeIDURI, "urn:mpeg:dash:role:2011") {
				a.Roles = append(a.Roles, r.Value)
			}
		}
		for _, e := range xa.Essential {
			if strings.EqualFold(e.SchemeIDURI, "http://dashif.org/guidelines/trickmode") {
				a.TrickMode = true
			}
		}
		abase := p.resolve(apath, base, xa.BaseURLs)
		asegs := p.segments(apath, &xa.xmlSegments, periodSegs)
		awidth := p.uint(apath, "width", xa.Width, 0)
		aheight := p.uint(apath, "height", xa.Height, 0)
		for j := range xa.Representations {
			xr := &xa.Representations[j]
			rpath := fmt.Sprintf("%s/Representation[%d]", apath, j)
			r := Representation{
				ID:        xr.ID,
				Bandwidth: int64(p.uint(rpath, "bandwidth", xr.Bandwidth, 0)),
				Width:     int(min(p.uint(rpath, "width", xr.Width, awidth), math.MaxInt32)),
				Height:    int(min(p.uint(rpath, "height", xr.Height, aheight), math.MaxInt32)),
				Codecs:    cmp(xr.Codecs, xa.Codecs),
				MimeType:  cmp(xr.MimeType, xa.MimeType),
				FrameRate: cmp(xr.FrameRate, xa.FrameRate),
			}
			rbase := p.resolve(rpath, abase, xr.BaseURLs)
			if rbase != nil {
				r.BaseURL = rbase.String()
			}
			r.addr = p.addressing(rpath, p.segments(rpath, &xr.xmlSegments, asegs))
			a.Representations = append(a.Representations, r)
		}
		a.Kind = kindOf(xa)
		pe.AdaptationSets = append(pe.AdaptationSets, a)
	}
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// kindOf says what an AdaptationSet carries: contentType, else the mimeType
// of the set or its first representation, else its codecs.
func kindOf(x *xmlAdaptationSet) string {
	ct := strings.ToLower(x.ContentType)
	if ct == "" && len(x.ContentComponent) == 1 {
		ct = strings.ToLower(x.ContentComponent[0].ContentType)
	}
	mime, codecs := x.MimeType, x.Codecs
	if len(x.Representations) > 0 {
		mime = cmp(mime, x.Representations[0].MimeType)
		codecs = cmp(codecs, x.Representations[0].Codecs)
	}
	if ct == "" {
		ct, _, _ = strings.Cut(strings.ToLower(mime), "/")
		if strings.Contains(strings.ToLower(mime), "ttml") || strings.Contains(strings.ToLower(mime), "vtt") {
			ct = "text"
		}
	}
	if ct == "" || ct == "application" {
		switch c := strings.ToLower(codecs); {
		case strings.HasPrefix(c, "avc"), strings.HasPrefix(c, "hev"), strings.HasPrefix(c, "hvc"),
			strings.HasPrefix(c, "vp0"), strings.HasPrefix(c, "vp9"), strings.HasPrefix(c, "av01"):
			ct = "video"
		case strings.HasPrefix(c, "mp4a"), strings.HasPrefix(c, "opus"), strings.HasPrefix(c, "ac-3"),
			strings.HasPrefix(c, "ec-3"), strings.HasPrefix(c, "flac"):
			ct = "audio"
		case strings.HasPrefix(c, "stpp"), strings.HasPrefix(c, "wvtt"):
			ct = "text"
		}
	}
	switch ct {
	case "video":
		return plan.Video
	case "audio":
		return plan.Audio
	case "text":
		return plan.Subtitles
	case "image":
		return KindImage
	}
	return KindUnknown
}

// drmSchemes names the ContentProtection schemes anywhere in the manifest.
func drmSchemes(x *xmlMPD) []string {
	var names []string
	seen := map[string]bool{}
	add := func(ds []xmlDescriptor) {
		for _, d := range ds {
			n := drmName(d)
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	for i := range x.Periods {
		for j := range x.Periods[i].AdaptationSets {
			a := &x.Periods[i].AdaptationSets[j]
			add(a.ContentProtection)
			for k := range a.Representations {
				add(a.Representations[k].ContentProtection)
			}
		}
	}
	return names
}

var drmSystems = map[string]string{
	"edef8ba9-79d6-4ace-a3c8-27dcd51d21ed": "Widevine",
	"9a04f079-9840-4286-ab92-e65be0885f95": "PlayReady",
	"94ce86fb-07ff-4f43-adb8-93d2fa968ca2": "FairPlay",
	"e2719d58-a985-b3c9-781a-b030af78d30e": "ClearKey",
	"1077efec-c0b2-4d02-ace3-3c1e52e2fb4b": "ClearKey",
	"3d5e6d35-9b9a-41e8-b843-dd3c6e72c42c": "ChinaDRM",
}

func drmName(d xmlDescriptor) string {
	s := strings.ToLower(strings.TrimSpace(d.SchemeIDURI))
	if s == "urn:mpeg:dash:mp4protection:2011" && d.Value != "" {
		return d.Value // "cenc", "cbcs"
	}
	if n, ok := drmSystems[strings.TrimPrefix(s, "urn:uuid:")]; ok {
		return n
	}
	if s == "" {
		return "unknown scheme"
	}
	return s
}

// charsetReader lets manifests that declare a Latin-1 or ASCII encoding
// through; encoding/xml reads only UTF-8 itself.
func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "us-ascii", "ascii", "utf8":
		return r, nil
	case "iso-8859-1", "latin1", "latin-1", "windows-1252":
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		rs := make([]rune, len(b))
		for i, c := range b {
			rs[i] = rune(c)
		}
		return strings.NewReader(string(rs)), nil
	}
	return nil, fmt.Errorf("unsupported encoding %q", charset)
}
