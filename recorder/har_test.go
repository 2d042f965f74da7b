package recorder

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// tsBody is a tiny body that passes sniffMedia as MPEG-TS.
func tsBody(tag byte) []byte {
	b := make([]byte, 376)
	b[0], b[188] = 0x47, 0x47
	b[5] = tag
	return b
}

type harOpt func(*HAREntry)

func withBody(b []byte) harOpt {
	return func(e *HAREntry) {
		e.Response.Content.Text = base64.StdEncoding.EncodeToString(b)
		e.Response.Content.Encoding = "base64"
		e.Response.Content.Size = int64(len(b))
	}
}

func withText(s string) harOpt {
	return func(e *HAREntry) { e.Response.Content.Text = s; e.Response.Content.Size = int64(len(s)) }
}

func withHeader(name, value string) harOpt {
	return func(e *HAREntry) { e.Request.Headers = append(e.Request.Headers, HARHeader{Name: name, Value: value}) }
}

func withStatus(code int) harOpt { return func(e *HAREntry) { e.Response.Status = code } }

func withMime(mt string) harOpt { return func(e *HAREntry) { e.Response.Content.MimeType = mt } }

func harEntry(u string, opts ...harOpt) HAREntry {
	e := HAREntry{Request: HARRequest{Method: "GET", URL: u}, Response: HARResponse{Status: 200}}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func harOf(entries ...HAREntry) *HAR {
	return &HAR{Log: HARLog{Version: "1.2", Creator: HARCreator{Name: "test"}, Entries: append([]HAREntry{}, entries...)}}
}

// roundJSON encodes h and parses it back, as a file would be.
func roundJSON(t *testing.T, h *HAR) *HAR {
	t.Helper()
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseHAR(data)
	if err != nil {
		t.Fatalf("ParseHAR: %v", err)
	}
	return out
}

const (
	cdn     = "https://cdn.example.com/v/abc/720p/"
	master  = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=1280x720\n720p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=400000\n360p/index.m3u8\n"
	mediaPL = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg_a.ts\n#EXTINF:2,\nseg_b.ts\n#EXTINF:1.5,\nseg_c.ts\n#EXT-X-ENDLIST\n"
)

func TestSessionsFromHAR(t *testing.T) {
	ref := withHeader("Referer", "https://video.example/watch")
	tests := []struct {
		name    string
		har     *HAR
		check   func(t *testing.T, imp *HARImport)
		wantErr error
	}{
		{
			name: "segments learn a template, bodies kept, headers filtered",
			har: harOf(
				harEntry("https://video.example/watch", withMime("text/html")),
				harEntry(cdn+"seg_00003.ts?tok=T", ref, withHeader("cookie", "sess=ok"), withHeader("Accept", "*/*"),
					withHeader("X-Token", "abc"), withHeader(":authority", "cdn.example.com"), withBody(tsBody(3))),
				harEntry(cdn+"seg_00004.ts?tok=T", ref, withHeader("cookie", "sess=ok"), withBody(tsBody(4))),
				harEntry(cdn+"seg_00005.ts?tok=T", ref, withHeader("cookie", "sess=ok")),
			),
			check: func(t *testing.T, imp *HARImport) {
				if len(imp.Sessions) != 1 {
					t.Fatalf("sessions: got %d, want 1 (skipped %q)", len(imp.Sessions), imp.Skipped)
				}
				s := imp.Sessions[0]
				m := s.Main()
				if m.Template == nil || m.Template.URL(9) != cdn+"seg_00009.ts?tok=T" {
					t.Errorf("template: got %v, want one giving %sseg_00009.ts?tok=T", m.Template, cdn)
				}
				if m.First != 3 || m.EndKnown || !m.ProbeStart || s.Source != "har" || m.Ext != ".ts" {
					t.Errorf("session: first %d endKnown %v probeStart %v source %q ext %q", m.First, m.EndKnown, m.ProbeStart, s.Source, m.Ext)
				}
				// The last request's headers: it carried no X-Token.
				want := map[string]string{"Referer": "https://video.example/watch", "Cookie": "sess=ok"}
				if !reflect.DeepEqual(s.Headers, want) {
					t.Errorf("headers: got %v, want %v", s.Headers, want)
				}
				if len(imp.Bodies) != 2 || imp.Bodies[0].Index != 3 || imp.Bodies[1].Index != 4 || imp.Bodies[1].Entry != 2 ||
					!bytes.Equal(imp.Bodies[0].Data, tsBody(3)) {
					t.Errorf("bodies: got %+v", bodiesOf(imp))
				}
			},
		},
		{
			name: "cookies array becomes the Cookie header",
			har: harOf(
				harEntry(cdn+"1.ts", func(e *HAREntry) { e.Request.Cookies = []HARCookie{{"a", "1"}, {"b", "2"}} }),
				harEntry(cdn+"2.ts", func(e *HAREntry) { e.Request.Cookies = []HARCookie{{"a", "1"}, {"b", "2"}} }),
			),
			check: func(t *testing.T, imp *HARImport) {
				if got := imp.Sessions[0].Headers["Cookie"]; got != "a=1; b=2" {
					t.Errorf("Cookie: got %q, want %q", got, "a=1; b=2")
				}
			},
		},
		{
			name: "segments by content type, without extension",
			har: harOf(
				harEntry(cdn+"chunk?n=10", withMime("video/MP2T")),
				harEntry(cdn+"chunk?n=11", withMime("video/mp2t")),
			),
			check: func(t *testing.T, imp *HARImport) {
				if len(imp.Sessions) != 1 || imp.Sessions[0].Main().Template.URL(12) != cdn+"chunk?n=12" {
					t.Errorf("got %d sessions (%v)", len(imp.Sessions), imp.Skipped)
				}
			},
		},
		{
			name: "master and media with content: the media list, segments attached",
			har: harOf(
				harEntry(cdn+"master.m3u8", withText(master), ref),
				harEntry(cdn+"720p/index.m3u8?x=1", withText(mediaPL), ref),
				harEntry(cdn+"720p/seg_a.ts", withBody(tsBody(1)), ref, withHeader("Cookie", "late=1")),
				harEntry(cdn+"720p/seg_b.ts", withBody(tsBody(2)), ref),
			),
			check: func(t *testing.T, imp *HARImport) {
				if len(imp.Sessions) != 1 {
					t.Fatalf("sessions: got %d, want 1 (skipped %q)", len(imp.Sessions), imp.Skipped)
				}
				s := imp.Sessions[0]
				m := s.Main()
				want := []string{cdn + "720p/seg_a.ts", cdn + "720p/seg_b.ts", cdn + "720p/seg_c.ts"}
				if !reflect.DeepEqual(urlsOf(m.Segments), want) || !m.EndKnown || m.Last != 2 || m.Source != cdn+"720p/index.m3u8?x=1" {
					t.Errorf("session: segments %v last %d endKnown %v playlist %q", urlsOf(m.Segments), m.Last, m.EndKnown, m.Source)
				}
				if d := []float64{m.Segments[0].Duration, m.Segments[1].Duration, m.Segments[2].Duration}; !reflect.DeepEqual(d, []float64{2, 2, 1.5}) {
					t.Errorf("durations: got %v", d)
				}
				if s.Headers["Cookie"] != "late=1" {
					t.Errorf("headers: got %v, want the segments' Cookie too", s.Headers)
				}
				if b := bodiesOf(imp); !reflect.DeepEqual(b, []int64{0, 1}) {
					t.Errorf("bodies: got %v, want [0 1]", b)
				}
			},
		},
		{
			name: "playlists without content: the first is the master",
			har: harOf(
				harEntry(cdn+"master.m3u8", ref),
				harEntry(cdn+"720p/index.m3u8", ref),
				harEntry(cdn+"720p/index.m3u8", ref), // refetched (live)
			),
			check: func(t *testing.T, imp *HARImport) {
				if len(imp.Sessions) != 1 || imp.Sessions[0].Playlist != cdn+"720p/index.m3u8" {
					t.Fatalf("sessions: %+v", imp.Sessions)
				}
				if s := imp.Sessions[0]; len(s.Tracks) != 0 || s.Headers["Referer"] == "" {
					t.Errorf("session: %+v", s)
				}
			},
		},
		{
			name: "one playlist without content is fetched as it is",
			har:  harOf(harEntry(cdn + "master.m3u8")),
			check: func(t *testing.T, imp *HARImport) {
				if len(imp.Sessions) != 1 || imp.Sessions[0].Playlist != cdn+"master.m3u8" {
					t.Fatalf("sessions: %+v", imp.Sessions)
				}
			},
		},
		{
			name: "learned segments win over a playlist without content",
			har: harOf(
				harEntry(cdn+"index.m3u8"),
				harEntry(cdn+"seg_1.ts"), harEntry(cdn+"seg_2.ts"),
			),
			check: func(t *testing.T, imp *HARImport) {
				if len(imp.Sessions) != 1 || imp.Sessions[0].Main() == nil || imp.Sessions[0].Main().Template == nil {
					t.Fatalf("sessions: %+v", imp.Sessions)
				}
				if !strings.Contains(strings.Join(imp.Skipped, "\n"), "playlist without content left out") {
					t.Errorf("skipped: %q", imp.Skipped)
				}
			},
		},
		{
			name: "bodies that are not usable are left to fetch",
			har: harOf(
				harEntry(cdn+"seg_1.ts", withText("<html>denied</html>")),
				harEntry(cdn+"seg_2.ts", func(e *HAREntry) { e.Response.Content.Text = "!!"; e.Response.Content.Encoding = "base64" }),
				harEntry(cdn+"seg_3.ts", withBody(tsBody(3)), func(e *HAREntry) { e.Response.Content.Size = 9999 }),
				harEntry(cdn+"seg_4.ts", withBody(tsBody(4)), withStatus(206)), // no Content-Range: partial
				harEntry(cdn+"seg_5.ts", withBody(tsBody(5))),
			),
			check: func(t *testing.T, imp *HARImport) {
				if b := bodiesOf(imp); !reflect.DeepEqual(b, []int64{5}) {
					t.Errorf("bodies: got %v, want [5]", b)
				}
				all := strings.Join(imp.Skipped, "\n")
				for _, w := range []string{"entry 0: body is not media", "entry 1: response body", "entry 2: body has 376 of 9999 bytes"} {
					if !strings.Contains(all, w) {
						t.Errorf("skipped: %q lacks %q", imp.Skipped, w)
					}
				}
			},
		},
		{
			name: "refused and non-GET requests are not learned from",
			har: harOf(
				harEntry(cdn+"seg_1.ts", withStatus(403)),
				harEntry(cdn+"seg_2.ts", func(e *HAREntry) { e.Request.Method = "POST" }),
				harEntry(cdn+"seg_3.ts"),
				harEntry("data:video/mp2t;base64,AAAA"),
			),
			wantErr: ErrNoStream,
			check: func(t *testing.T, imp *HARImport) {
				all := strings.Join(imp.Skipped, "\n")
				if !strings.Contains(all, "entry 0: "+cdn+"seg_1.ts: status 403") || !strings.Contains(all, "entry 2: "+cdn+"seg_3.ts: only one segment") {
					t.Errorf("skipped: %q", imp.Skipped)
				}
			},
		},
		{
			name: "numbering that cannot be learned",
			har: harOf(
				harEntry(cdn+"seg_1.ts?sig=aaaa"),
				harEntry(cdn+"seg_2.ts?sig=bbbb"),
			),
			wantErr: urltemplate.ErrNoTemplate,
		},
		{
			name:    "no entries",
			har:     harOf(),
			wantErr: ErrNoStream,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imp, err := SessionsFromHAR(roundJSON(t, tt.har))
			if tt.wantErr != nil {
				if !errors.Is(err, ErrBadHAR) || !strings.HasPrefix(err.Error(), "har: ") {
					t.Errorf("SessionsFromHAR: got %v, want a har: error", err)
				}
				if !errors.Is(err, ErrNoStream) {
					t.Errorf("SessionsFromHAR: got %v, want ErrNoStream", err)
				}
				if tt.wantErr != ErrNoStream && !strings.Contains(err.Error(), tt.wantErr.Error()) {
					t.Errorf("SessionsFromHAR: got %v, want it to say %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("SessionsFromHAR: %v", err)
			}
			if tt.check != nil {
				tt.check(t, imp)
			}
			for _, s := range imp.Sessions {
				checkLoadable(t, s)
			}
		})
	}
}

func bodiesOf(imp *HARImport) []int64 {
	var out []int64
	for _, b := range imp.Bodies {
		out = append(out, b.Index)
	}
	return out
}

// checkLoadable asserts that s survives a save and load as it is.
func checkLoadable(t *testing.T, s *Session) {
	t.Helper()
	id := s.ID
	s.ID = "x"
	data, err := json.Marshal(s)
	s.ID = id
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeSession(data); err != nil {
		t.Errorf("DecodeSession(session from HAR): %v\n%s", err, data)
	}
}

func TestParseHARErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"not json", `{"log": `, "har: not JSON at byte"},
		{"not a har", `{"foo": 1}`, `har: not a HAR file: no "log.entries"`},
		{"entries not a list", `{"log": {"entries": 3}}`, "har: field log.entries"},
		{"bad entry named", `{"log": {"entries": [{"request": {"url": "https://a/1.ts"}}, {"response": {"status": "200"}}]}}`,
			"har: entry 1: field response.status: string"},
		{"entry without url", `{"log": {"entries": [{"request": {"method": "GET"}}]}}`, "har: entry 0: request has no url"},
		{"bad url", `{"log": {"entries": [{"request": {"url": "https://a b/%zz"}}]}}`, "har: entry 0: request url:"},
		{"unknown encoding", `{"log": {"entries": [{"request": {"url": "https://a/1.ts"}, "response": {"content": {"text": "x", "encoding": "gzip"}}}]}}`,
			`har: entry 0: content encoding "gzip"`},
		{"too large", `{"log": {"entries": [], "comment": "` + strings.Repeat("x", 200) + `"}}`, "har: response too large"},
	}
	defer func(n int) { maxHARSize = n }(maxHARSize)
	maxHARSize = 200
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHAR([]byte(tt.data))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, ErrBadHAR) {
				t.Errorf("ParseHAR(%s): got %v, want %q…", tt.data, err, tt.want)
			}
		})
	}
}

func TestParseHARChrome(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "har", "chrome.har"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHAR(data)
	if err != nil {
		t.Fatalf("ParseHAR: %v", err)
	}
	imp, err := SessionsFromHAR(h)
	if err != nil {
		t.Fatalf("SessionsFromHAR: %v", err)
	}
	if len(imp.Sessions) != 1 {
		t.Fatalf("sessions: got %d, want 1", len(imp.Sessions))
	}
	s := imp.Sessions[0]
	if got := s.Main().Template.URL(7); got != "https://cdn.example.com/hls/720p/segment-7.ts?token=abc" {
		t.Errorf("URL(7): got %s", got)
	}
	want := map[string]string{"Referer": "https://video.example/watch/1", "Cookie": "sess=ok", "Origin": "https://video.example",
		"User-Agent": "Mozilla/5.0 test"}
	if !reflect.DeepEqual(s.Headers, want) {
		t.Errorf("headers: got %v, want %v", s.Headers, want)
	}
	if b := bodiesOf(imp); !reflect.DeepEqual(b, []int64{1}) {
		t.Errorf("bodies: got %v, want [1]", b)
	}
}

// TestHARRoundTrip exports sessions and imports the HAR: the same stream comes back.
func TestHARRoundTrip(t *testing.T) {
	tmpl, err := urltemplate.Learn([]string{cdn + "000010.ts?t=1", cdn + "000011.ts?t=1"})
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{"Referer": "https://video.example/w", "Cookie": "a=1; b=2", "X-Client": "7"}
	tests := []struct {
		name string
		s    *Session
	}{
		{"template, end known", known(withTemplate(&Session{ID: "t1", Headers: headers}, tmpl, 10, false), 14)},
		{"template, end unknown", withTemplate(&Session{ID: "t2", Headers: headers}, tmpl, 10, false)},
		{"playlist", listed(&Session{ID: "p1", Headers: headers}, &plan.Track{ID: "video", Kind: plan.Video, Source: cdn + "index.m3u8?x=1",
			Ext: ".m4s", Inits: []plan.Init{{URL: cdn + "init.mp4"}}, Segments: []plan.Segment{
				{URL: cdn + "a.m4s", Duration: 4, Init: 1}, {URL: cdn + "b.m4s", Duration: 4, Init: 1, Sequence: 1},
				{URL: cdn + "c.m4s?q=1", Duration: 2.5, Init: 1, Sequence: 2}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Create(tt.s); err != nil {
				t.Fatal(err)
			}
			if err := tt.s.PutSegment(tt.s.Main().First, tsBody(1)); err != nil {
				t.Fatal(err)
			}
			h, err := ExportHAR(tt.s, "test")
			if err != nil {
				t.Fatalf("ExportHAR: %v", err)
			}
			if e := h.Log.Entries[len(h.Log.Entries)-1]; e.Response.Content.Text != "" {
				t.Errorf("segment entry carries a body")
			}
			sized := 0
			for _, e := range h.Log.Entries {
				if e.Response.Content.Size == 376 {
					sized++
				}
				if len(e.Request.Cookies) != 2 {
					t.Errorf("entry %s: cookies %v, want a and b", e.Request.URL, e.Request.Cookies)
				}
			}
			if sized != 1 {
				t.Errorf("entries with the on-disk size: got %d, want 1", sized)
			}
			imp, err := SessionsFromHAR(roundJSON(t, h))
			if err != nil {
				t.Fatalf("SessionsFromHAR(ExportHAR): %v", err)
			}
			if len(imp.Sessions) != 1 || len(imp.Bodies) != 0 {
				t.Fatalf("got %d sessions, %d bodies; want 1, 0", len(imp.Sessions), len(imp.Bodies))
			}
			got := imp.Sessions[0]
			if !reflect.DeepEqual(got.Headers, tt.s.Headers) {
				t.Errorf("headers: got %v, want %v", got.Headers, tt.s.Headers)
			}
			g, w := got.Main(), tt.s.Main()
			if g.Ext != w.Ext || g.First != w.First {
				t.Errorf("ext/first: got %q %d, want %q %d", g.Ext, g.First, w.Ext, w.First)
			}
			if w.Template != nil {
				if !reflect.DeepEqual(g.Template.Parts, w.Template.Parts) || g.Template.Step != w.Template.Step {
					t.Errorf("template: got %v, want %v", g.Template, w.Template)
				}
				return
			}
			if !reflect.DeepEqual(g.Segments, w.Segments) || !reflect.DeepEqual(g.Inits, w.Inits) ||
				g.Last != w.Last || !g.EndKnown || g.Source != w.Source {
				t.Errorf("playlist session: got %+v, want %+v", g, w)
			}
		})
	}
}

func TestExportHARNothingKnown(t *testing.T) {
	tmpl, _ := urltemplate.Placeholder(cdn+"seg_(*).ts", 0)
	_, err := ExportHAR(withTemplate(&Session{ID: "e"}, tmpl, 0, false), "test")
	if err == nil || !strings.Contains(err.Error(), "no known segments") {
		t.Errorf("ExportHAR(no range): got %v, want no known segments", err)
	}
}

func TestPutSegmentRefusesText(t *testing.T) {
	st, _ := NewStore(t.TempDir())
	s := withTemplate(&Session{}, &urltemplate.Template{Parts: []urltemplate.Part{{Lit: cdn}}}, 0, false)
	if err := st.Create(s); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSegment(0, []byte("<html>")); !errors.Is(err, ErrNotMedia) {
		t.Errorf("PutSegment(html): got %v, want ErrNotMedia", err)
	}
	if s.Main().Have(0) {
		t.Errorf("segment 0 is on disk")
	}
}

// FuzzHAR: whatever the input, ParseHAR and SessionsFromHAR do not panic, every
// error is a har: error, and every session is loadable with its bodies in range.
func FuzzHAR(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "har", "*.har"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHAR(data)
		if err != nil {
			if !errors.Is(err, ErrBadHAR) || !strings.HasPrefix(err.Error(), "har: ") {
				t.Fatalf("ParseHAR: error %v is not a har: error", err)
			}
			return
		}
		imp, err := SessionsFromHAR(h)
		if err != nil {
			if !errors.Is(err, ErrNoStream) || len(imp.Sessions) != 0 {
				t.Fatalf("SessionsFromHAR: error %v with %d sessions", err, len(imp.Sessions))
			}
			return
		}
		for _, s := range imp.Sessions {
			s.ID = "fuzz"
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeSession(b); err != nil {
				t.Fatalf("session from HAR is not loadable: %v\n%s", err, b)
			}
		}
		for _, b := range imp.Bodies {
			if b.Session < 0 || b.Session >= len(imp.Sessions) {
				t.Fatalf("body of session %d of %d", b.Session, len(imp.Sessions))
			}
			if s := imp.Sessions[b.Session].Main(); s.URL(b.Index) == "" || b.Index < s.First {
				t.Fatalf("body index %d is not a segment of its session", b.Index)
			}
			if sniffMedia(b.Data) != nil {
				t.Fatalf("body of segment %d is not media", b.Index)
			}
		}
	})
}
