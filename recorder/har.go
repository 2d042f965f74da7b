package recorder

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/streamsnatcher/streamsnatcher/media"
	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/playlist"
	"github.com/streamsnatcher/streamsnatcher/proxy"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// MaxHARSize is the largest HAR file ParseHAR accepts. A DevTools export with
// the bodies of a few minutes of video stays well below it.
const MaxHARSize = 512 << 20

var maxHARSize = MaxHARSize // lowered by tests

// A HAR is the part of an HTTP Archive 1.2 (the browser DevTools' "Save all as
// HAR") that streamsnatcher reads and writes. Unknown fields are ignored.
type HAR struct {
	Log HARLog `json:"log"`
}

// HARLog is the HAR's log object.
type HARLog struct {
	Version string     `json:"version"`
	Creator HARCreator `json:"creator"`
	Entries []HAREntry `json:"entries"`
	Comment string     `json:"comment,omitempty"`
}

// HARCreator names the program that wrote the HAR.
type HARCreator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// A HAREntry is one request and its response.
type HAREntry struct {
	StartedDateTime string      `json:"startedDateTime"`
	Time            float64     `json:"time"`
	Request         HARRequest  `json:"request"`
	Response        HARResponse `json:"response"`
	Cache           struct{}    `json:"cache"`
	Timings         HARTimings  `json:"timings"`
}

// HARRequest is an entry's request.
type HARRequest struct {
	Method      string      `json:"method"`
	URL         string      `json:"url"`
	HTTPVersion string      `json:"httpVersion"`
	Cookies     []HARCookie `json:"cookies"`
	Headers     []HARHeader `json:"headers"`
	QueryString []HARHeader `json:"queryString"`
	HeadersSize int64       `json:"headersSize"`
	BodySize    int64       `json:"bodySize"`
}

// HARResponse is an entry's response.
type HARResponse struct {
	Status      int         `json:"status"`
	StatusText  string      `json:"statusText"`
	HTTPVersion string      `json:"httpVersion"`
	Cookies     []HARCookie `json:"cookies"`
	Headers     []HARHeader `json:"headers"`
	Content     HARContent  `json:"content"`
	RedirectURL string      `json:"redirectURL"`
	HeadersSize int64       `json:"headersSize"`
	BodySize    int64       `json:"bodySize"`
}

// HARHeader is a name and value (headers and query parameters).
type HARHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HARCookie is a request or response cookie.
type HARCookie struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HARContent is a response body. Text is absent when the export left bodies
// out; binary bodies are base64 with Encoding "base64".
type HARContent struct {
	Size     int64  `json:"size"`
	MimeType string `json:"mimeType"`
	Text     string `json:"text,omitempty"`
	Encoding string `json:"encoding,omitempty"`
}

// HARTimings are an entry's timings (all zero in what we write).
type HARTimings struct {
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
}

// ErrBadHAR is matched (errors.Is) by every error about a HAR file.
var ErrBadHAR = errors.New("bad HAR file")

// ErrNoStream means a HAR holds no stream that can be recorded.
var ErrNoStream = errors.New("no video stream found")

// A HARError is a problem with a HAR file, at one entry (log.entries[Entry])
// or, when Entry is -1, with the file as a whole.
type HARError struct {
	Entry int
	Err   error
}

func (e *HARError) Error() string {
	if e.Entry < 0 {
		return "har: " + e.Err.Error()
	}
	return fmt.Sprintf("har: entry %d: %v", e.Entry, e.Err)
}

func (e *HARError) Unwrap() error { return e.Err }

// Is makes every HARError match ErrBadHAR.
func (e *HARError) Is(target error) bool { return target == ErrBadHAR }

// ParseHAR decodes a HAR file and checks that it is one. It does no I/O.
func ParseHAR(data []byte) (*HAR, error) {
	if len(data) > maxHARSize {
		return nil, &HARError{-1, fmt.Errorf("%w: %d bytes, the limit is %d MiB", ErrTooLarge, len(data), maxHARSize>>20)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // some tools write a BOM
	var probe struct {
		Log *struct {
			Entries *json.RawMessage `json:"entries"`
		} `json:"log"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, &HARError{-1, jsonErr(err)}
	}
	if probe.Log == nil || probe.Log.Entries == nil {
		return nil, &HARError{-1, errors.New(`not a HAR file: no "log.entries"`)}
	}
	var h HAR
	if err := json.Unmarshal(data, &h); err != nil {
		// Name the entry: decode them one by one.
		var raw struct {
			Log struct {
				Entries []json.RawMessage `json:"entries"`
			} `json:"log"`
		}
		if json.Unmarshal(data, &raw) == nil {
			for i, e := range raw.Log.Entries {
				var he HAREntry
				if eerr := json.Unmarshal(e, &he); eerr != nil {
					return nil, &HARError{i, jsonErr(eerr)}
				}
			}
		}
		return nil, &HARError{-1, jsonErr(err)}
	}
	for i := range h.Log.Entries {
		e := &h.Log.Entries[i]
		if e.Request.URL == "" {
			return nil, &HARError{i, errors.New("request has no url")}
		}
		if _, err := url.Parse(e.Request.URL); err != nil {
			return nil, &HARError{i, fmt.Errorf("request url: %w", err)}
		}
		switch strings.ToLower(e.Response.Content.Encoding) {
		case "", "base64":
		default:
			return nil, &HARError{i, fmt.Errorf("content encoding %q: only base64 or none", e.Response.Content.Encoding)}
		}
	}
	return &h, nil
}

func jsonErr(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("not JSON at byte %d: %v", se.Offset, err)
	case errors.As(err, &te):
		return fmt.Errorf("field %s: %s where %s was expected", te.Field, te.Value, te.Type)
	}
	return err
}

// Body returns the decoded response body, and false when the HAR has none.
func (c *HARContent) Body() ([]byte, bool, error) {
	if c.Text == "" {
		return nil, false, nil
	}
	if strings.EqualFold(c.Encoding, "base64") {
		b, err := base64.StdEncoding.DecodeString(c.Text)
		if err != nil {
			return nil, false, fmt.Errorf("response body: %w", err)
		}
		return b, true, nil
	}
	return []byte(c.Text), true, nil
}

// A HARBody is a complete, valid segment body carried by the HAR: segment
// Index of Sessions[Session], from log.entries[Entry].
type HARBody struct {
	Session int
	Index   int64
	Entry   int
	Data    []byte
}

// HARImport is what a HAR holds: one session per stream (Source "har", not yet
// saved), the segment bodies to store before running them, and what was left out.
type HARImport struct {
	Sessions []*Session
	Bodies   []HARBody
	Skipped  []string // e.g. "entry 7: …: only one segment seen; the numbering needs two"
}

// harSeg is one observed segment request.
type harSeg struct {
	entry   int
	url     string
	headers map[string]string
	body    []byte // nil: none, or not complete and valid
}

// harList is one playlist, by URL without query, as last fetched.
type harList struct {
	entry   int
	url     string
	headers map[string]string
	media   *playlist.Media
	master  *playlist.Master
}

// SessionsFromHAR learns the streams of a HAR as the proxy's capture would have
// learned them from the same traffic. Media playlists with their content give
// the exact segment list; playlists without content are fetched when the
// session runs (PlaylistURL); segments not listed by a playlist are grouped by
// urltemplate.Shape and their numbering learned (two or more distinct URLs).
// Master playlists are left out in favour of the media playlists the player
// fetched. Request headers are kept as the capture keeps them (Referer, Origin,
// Cookie, User-Agent, Authorization, X-*), the Cookie header built from the
// request's cookies when missing. It does no I/O.
func SessionsFromHAR(h *HAR) (*HARImport, error) {
	imp := &HARImport{}
	var segs []harSeg
	lists := map[string]*harList{} // URL without query → last seen
	var listOrder []string
	var bare []*harList // playlists without content, first fetch first
	bareSeen := map[string]bool{}

	for i := range h.Log.Entries {
		e := &h.Log.Entries[i]
		if m := strings.ToUpper(e.Request.Method); m != "" && m != http.MethodGet {
			continue
		}
		u, err := url.Parse(e.Request.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			continue
		}
		reqH := harHeader(e.Request.Headers)
		respH := harHeader(e.Response.Headers)
		if respH.Get("Content-Type") == "" && e.Response.Content.MimeType != "" {
			respH.Set("Content-Type", e.Response.Content.MimeType)
		}
		ex := &proxy.Exchange{Req: &http.Request{Method: http.MethodGet, URL: u, Header: reqH}, Status: e.Response.Status, RespHeader: respH}
		k := classify(ex)
		if k == kindOther {
			continue
		}
		if e.Response.Status != http.StatusOK && e.Response.Status != http.StatusPartialContent {
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("entry %d: %s: status %d", i, redactURL(e.Request.URL), e.Response.Status))
			continue
		}
		kept := keptHeaders(reqH)
		if _, ok := kept["Cookie"]; !ok && len(e.Request.Cookies) > 0 {
			var parts []string
			for _, c := range e.Request.Cookies {
				if c.Name != "" {
					parts = append(parts, c.Name+"="+c.Value)
				}
			}
			if len(parts) > 0 {
				kept["Cookie"] = strings.Join(parts, "; ")
			}
		}
		body, has, berr := e.Response.Content.Body()
		if berr != nil {
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("entry %d: %v (fetched again)", i, berr))
			has = false
		}
		full := fullBody(ex)
		if k == kindPlaylist {
			if !has || !full {
				key := stripQuery(e.Request.URL)
				if !bareSeen[key] {
					bareSeen[key] = true
					bare = append(bare, &harList{entry: i, url: e.Request.URL, headers: kept})
				}
				continue
			}
			pl, err := playlist.Parse(body, u)
			if err != nil {
				imp.Skipped = append(imp.Skipped, fmt.Sprintf("entry %d: %s: %v", i, redactURL(e.Request.URL), err))
				continue
			}
			key := stripQuery(e.Request.URL)
			if _, ok := lists[key]; !ok {
				listOrder = append(listOrder, key)
			}
			lists[key] = &harList{entry: i, url: e.Request.URL, headers: kept, media: pl.Media, master: pl.Master}
			continue
		}
		sg := harSeg{entry: i, url: e.Request.URL, headers: kept}
		if has && full {
			switch {
			case sniffMedia(body) != nil:
				imp.Skipped = append(imp.Skipped, fmt.Sprintf("entry %d: body is not media: %v (fetched again)", i, sniffMedia(body)))
			case e.Response.Content.Size > 0 && int64(len(body)) != e.Response.Content.Size:
				imp.Skipped = append(imp.Skipped, fmt.Sprintf("entry %d: body has %d of %d bytes (fetched again)", i, len(body), e.Response.Content.Size))
			default:
				sg.body = body
			}
		}
		segs = append(segs, sg)
	}

	// Media playlists with content: the exact list.
	type ref struct {
		si int
		i  int64
	}
	bySeg := newSegIndex[ref]() // segment URL → session and index
	haveMaster := false
	for _, key := range listOrder {
		l := lists[key]
		if l.master != nil {
			haveMaster = true
			continue
		}
		if len(l.media.Segments) > maxSegments {
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("entry %d: %s: over %d segments", l.entry, redactURL(l.url), maxSegments))
			continue
		}
		s := &Session{Source: "har", Page: l.headers["Referer"], Input: l.url, Headers: l.headers}
		p, err := plan.FromMedia(l.media, l.url, "video", plan.Video)
		if err != nil {
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("entry %d: playlist %s: %v", l.entry, redactURL(l.url), wrapUnsupported(err)))
			continue
		}
		s.AddTrack(NewListTrack(p))
		imp.Sessions = append(imp.Sessions, s)
		for i, sg := range p.Segments {
			bySeg.add(sg.URL, ref{len(imp.Sessions) - 1, int64(i)})
		}
	}
	addBody := func(si int, idx int64, sg harSeg) {
		if sg.body == nil {
			return
		}
		for _, b := range imp.Bodies {
			if b.Session == si && b.Index == idx {
				return
			}
		}
		imp.Bodies = append(imp.Bodies, HARBody{Session: si, Index: idx, Entry: sg.entry, Data: sg.body})
	}

	// Segments: those of a listed stream, and groups by shape for the rest.
	type group struct {
		segs []harSeg
		urls []string
		seen map[string]bool
	}
	groups := map[string]*group{}
	var shapes []string
	for _, sg := range segs {
		if r, ok := bySeg.find(sg.url); ok {
			s := imp.Sessions[r.si]
			s.Headers = mergeHeaders(s.Headers, sg.headers)
			addBody(r.si, r.i, sg)
			continue
		}
		shape := urltemplate.Shape(sg.url)
		g := groups[shape]
		if g == nil {
			g = &group{seen: map[string]bool{}}
			groups[shape] = g
			shapes = append(shapes, shape)
		}
		g.segs = append(g.segs, sg)
		if !g.seen[sg.url] {
			g.seen[sg.url] = true
			g.urls = append(g.urls, sg.url)
		}
	}
	learned := 0
	for _, shape := range shapes {
		g := groups[shape]
		first := g.segs[0]
		if len(g.urls) < 2 {
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("entry %d: %s: only one segment of this stream; the numbering needs two", first.entry, redactURL(first.url)))
			continue
		}
		t, err := urltemplate.Learn(g.urls)
		if err != nil {
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("entry %d: %s: %v", first.entry, redactURL(first.url), err))
			continue
		}
		last := g.segs[len(g.segs)-1]
		s := &Session{Source: "har", Page: last.headers["Referer"], Input: first.url, Headers: last.headers}
		s.AddTrack(&Track{Track: plan.Track{ID: "video", Kind: plan.Video, Template: t, Ext: segmentExt(first.url)},
			First: t.First, ProbeStart: true})
		imp.Sessions = append(imp.Sessions, s)
		learned++
		si := len(imp.Sessions) - 1
		for _, sg := range g.segs {
			if i, ok := t.Match(sg.url); ok {
				addBody(si, i, sg)
			}
		}
	}

	// Playlists without content: their segments were not learned above (else
	// the same video would be recorded twice). The player fetches the master
	// first, so of several the first is taken to be the master, unless a
	// master's content says otherwise.
	if learned > 0 {
		for _, l := range bare {
			if _, ok := lists[stripQuery(l.url)]; ok {
				continue
			}
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("entry %d: %s: playlist without content left out; its segments were learned", l.entry, redactURL(l.url)))
		}
	} else {
		var keep []*harList
		for _, l := range bare {
			if _, ok := lists[stripQuery(l.url)]; ok {
				continue // its content came with another fetch
			}
			keep = append(keep, l)
		}
		if !haveMaster && len(keep) > 1 {
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("entry %d: %s: taken to be the master playlist", keep[0].entry, redactURL(keep[0].url)))
			keep = keep[1:]
		}
		for _, l := range keep {
			imp.Sessions = append(imp.Sessions, &Session{Source: "har", Page: l.headers["Referer"], Input: l.url,
				Playlist: l.url, Headers: l.headers})
		}
		if len(keep) == 0 && len(imp.Sessions) == 0 {
			// Only masters with content: let the run pick a variant of the first.
			for _, key := range listOrder {
				if l := lists[key]; l.master != nil {
					imp.Sessions = append(imp.Sessions, &Session{Source: "har", Page: l.headers["Referer"], Input: l.url,
						Playlist: l.url, Headers: l.headers})
					break
				}
			}
		}
	}
	for _, s := range imp.Sessions {
		for _, t := range s.Tracks {
			if t.Ext == "" || t.Ext == ".m3u8" {
				t.Ext = ".ts"
			}
		}
	}
	if len(imp.Sessions) == 0 {
		why := "no segment or playlist requests"
		if len(imp.Skipped) > 0 {
			why = strings.Join(imp.Skipped, "; ")
		}
		return imp, &HARError{-1, fmt.Errorf("%w in %d entries: %s", ErrNoStream, len(h.Log.Entries), why)}
	}
	return imp, nil
}

func harHeader(hs []HARHeader) http.Header {
	h := http.Header{}
	for _, x := range hs {
		if x.Name == "" || strings.HasPrefix(x.Name, ":") {
			continue // HTTP/2 pseudo-headers
		}
		h.Add(x.Name, x.Value)
	}
	return h
}

// mergeHeaders returns dst with src's values over it (the later request's credentials win).
func mergeHeaders(dst, src map[string]string) map[string]string {
	if dst == nil {
		dst = map[string]string{}
	}
	for k, v := range src {
		dst[k] = v
	}
	return dst
}

// PutSegment stores data as the complete segment i (written atomically), so a
// run does not fetch it again. data must look like media.
func (s *Session) PutSegment(i int64, data []byte) error {
	if err := sniffMedia(data); err != nil {
		return fmt.Errorf("segment %d: %w", i, err)
	}
	t := s.Main()
	if t == nil {
		return fmt.Errorf("session %s: no track to put segment %d in", s.ID, i)
	}
	if err := os.MkdirAll(t.SegmentDir(), 0o700); err != nil {
		return fmt.Errorf("session %s: %w", s.ID, err)
	}
	if err := writeFileAtomic(t.SegmentPath(i), data, 0o600); err != nil {
		return fmt.Errorf("segment %d: %w", i, err)
	}
	return nil
}

// ExportHAR describes a session as a HAR 1.2: one GET per segment of its known
// range (every observed one while the end is unknown) with the session's
// headers, cookies included, and a 200 response without a body, giving the
// size of the segment file when it is on disk. A playlist session also gets an
// entry for its playlist, whose content is rebuilt from the segment list, so
// that importing the HAR gives the same session. It only reads file sizes.
func ExportHAR(s *Session, creatorVersion string) (*HAR, error) {
	t := s.Main()
	if t == nil {
		return nil, fmt.Errorf("session %s: no known segments to export", s.ID)
	}
	idx := t.Indices()
	if len(idx) == 0 && t.Template != nil && t.Template.Last >= t.Template.First {
		for i := t.Template.First; i <= t.Template.Last; i += t.Step() {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("session %s: no known segments to export", s.ID)
	}
	when := s.Updated
	if when.IsZero() {
		when = time.Now()
	}
	started := when.UTC().Format(time.RFC3339Nano)
	var reqH []HARHeader
	var cookies []HARCookie
	names := make([]string, 0, len(s.Headers))
	for k := range s.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		reqH = append(reqH, HARHeader{Name: canonicalHeader(k), Value: s.Headers[k]})
		if strings.EqualFold(k, "Cookie") {
			for _, c := range strings.Split(s.Headers[k], ";") {
				if n, v, ok := strings.Cut(strings.TrimSpace(c), "="); ok {
					cookies = append(cookies, HARCookie{Name: n, Value: v})
				}
			}
		}
	}
	entry := func(u, mime string, size int64, text string) HAREntry {
		q := []HARHeader{}
		if pu, err := url.Parse(u); err == nil {
			for k, vs := range pu.Query() {
				for _, v := range vs {
					q = append(q, HARHeader{Name: k, Value: v})
				}
			}
			sort.Slice(q, func(i, j int) bool { return q[i].Name < q[j].Name })
		}
		respH := []HARHeader{{Name: "Content-Type", Value: mime}}
		body := int64(-1)
		if size >= 0 {
			respH = append(respH, HARHeader{Name: "Content-Length", Value: strconv.FormatInt(size, 10)})
			body = size
		}
		c := HARContent{Size: max(size, 0), MimeType: mime, Text: text}
		if text != "" {
			body = int64(len(text))
			c.Size = body
		}
		return HAREntry{
			StartedDateTime: started,
			Request: HARRequest{Method: http.MethodGet, URL: u, HTTPVersion: "HTTP/1.1", Cookies: append([]HARCookie{}, cookies...),
				Headers: append([]HARHeader{}, reqH...), QueryString: q, HeadersSize: -1, BodySize: 0},
			Response: HARResponse{Status: http.StatusOK, StatusText: "OK", HTTPVersion: "HTTP/1.1", Cookies: []HARCookie{},
				Headers: respH, Content: c, HeadersSize: -1, BodySize: body},
		}
	}
	h := &HAR{Log: HARLog{Version: "1.2", Creator: HARCreator{Name: "streamsnatcher", Version: creatorVersion},
		Comment: "session " + s.ID + "; the requests carry the session's cookies and headers"}}
	if t.Template == nil && len(t.Segments) > 0 && t.Source != "" {
		h.Log.Entries = append(h.Log.Entries, entry(t.Source, media.FormatHLS.MIME(), -1, t.mediaPlaylist()))
	}
	for _, i := range idx {
		u := t.URL(i)
		if u == "" {
			continue
		}
		size := int64(-1)
		if fi, err := os.Stat(t.SegmentPath(i)); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		h.Log.Entries = append(h.Log.Entries, entry(u, mimeFor(t.SegmentPath(i)), size, ""))
	}
	return h, nil
}

// mediaPlaylist rebuilds a VOD media playlist from the session's segment list.
func (t *Track) mediaPlaylist() string {
	target := 1.0
	for _, sg := range t.Segments {
		target = math.Max(target, sg.Duration)
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n", int64(math.Ceil(target)))
	if in := t.InitOf(0); in != nil {
		fmt.Fprintf(&b, "#EXT-X-MAP:URI=%q\n", in.URL)
	}
	for _, sg := range t.Segments {
		d := sg.Duration
		if d <= 0 {
			d = target
		}
		fmt.Fprintf(&b, "#EXTINF:%s,\n%s\n", strconv.FormatFloat(d, 'f', -1, 64), sg.URL)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.String()
}
