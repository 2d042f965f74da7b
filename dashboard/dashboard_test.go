package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/recorder"
)

const testToken = "t0ken"

// fakeBackend records what the dashboard asked of it.
type fakeBackend struct {
	mu      sync.Mutex
	streams []recorder.StreamStatus
	acts    []string
	forms   []GetForm
	getErr  error
}

func (f *fakeBackend) Streams() []recorder.StreamStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorder.StreamStatus(nil), f.streams...)
}

func (f *fakeBackend) Act(id, action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.streams {
		if s.Session.ID == id {
			f.acts = append(f.acts, id+" "+action)
			return nil
		}
	}
	return fmt.Errorf("%q: %w", id, recorder.ErrUnknownStream)
}

func (f *fakeBackend) StartGet(form GetForm) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return "", f.getErr
	}
	f.forms = append(f.forms, form)
	return "new-session", nil
}

func (f *fakeBackend) CA() CAInfo {
	return CAInfo{PEM: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), SPKI: "c3BraQ==",
		TrustSteps: "sudo trust anchor --store <ca.pem>"}
}

func (f *fakeBackend) calls() (acts []string, forms []GetForm) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.acts...), append([]GetForm(nil), f.forms...)
}

func newFake(t *testing.T) (*fakeBackend, string) {
	out := filepath.Join(t.TempDir(), "film-s1.mp4")
	if err := os.WriteFile(out, []byte("the whole video"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := recorder.NewProgress()
	p.Total.Store(100)
	p.Done.Store(40)
	p.Fetched.Store(30)
	p.Bytes.Store(3_000_000)
	p.Failed.Store(2)
	return &fakeBackend{streams: []recorder.StreamStatus{
		{Session: recorder.Summary{ID: "s1", State: recorder.StateDone, Source: "watch", Output: out, Missing: []int64{},
			SegmentsTotal: 10, SegmentsDone: 10}, Template: "https://cdn.example/v/(*).ts", Progress: recorder.NewProgress(),
			Headers: map[string]string{"Referer": "https://videos.example/watch?id=1", "Cookie": "<redacted>"}},
		{Session: recorder.Summary{ID: "s2", State: recorder.StatePaused, Source: "get", Output: out,
			Input: "https://cdn2.example/a/seg_(*).ts", Missing: []int64{7, 8}}, Template: "https://cdn2.example/a/seg_(*).ts",
			Progress: p, Headers: map[string]string{}, Reason: "waiting for the origin"},
	}}, out
}

func newServer(t *testing.T, b Backend) *httptest.Server {
	srv := httptest.NewServer(New(Options{Backend: b, Token: testToken,
		ChromiumArgs: func(addr string) []string { return []string{"--proxy-server=http://" + addr} }}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // an endless answer fails the test
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoutes(t *testing.T) {
	b, _ := newFake(t)
	srv := newServer(t, b)
	host := must(url.Parse(srv.URL)).Host
	tests := []struct {
		name, path string
		status     int
		ctype      string
		contains   []string
	}{
		{"page", "/", 200, "text/html", []string{`<meta name="streamsnatcher-token" content="` + testToken + `">`,
			"/static/app.js", `href="/ca.pem"`, "--proxy-server=http://" + host, "sudo trust anchor --store &lt;ca.pem&gt;", "c3BraQ=="}},
		{"script", "/static/app.js", 200, "text/javascript", []string{"EventSource"}},
		{"style", "/static/style.css", 200, "text/css", []string{"@media"}},
		{"streams", "/api/streams", 200, "application/json", []string{`"id":"s1"`, `"host":"videos.example"`}},
		{"ca", "/ca.pem", 200, "application/x-pem-file", []string{"BEGIN CERTIFICATE"}},
		{"events are not here", "/index.html", 404, "", nil},
		{"unknown", "/nope", 404, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, srv, "GET", tt.path, nil, "")
			body := readAll(t, resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("GET %s: status %d, want %d: %s", tt.path, resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("GET %s: Content-Type %q, want %q", tt.path, ct, tt.ctype)
			}
			for _, want := range tt.contains {
				if !strings.Contains(body, want) {
					t.Errorf("GET %s: body lacks %q", tt.path, want)
				}
			}
			for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("GET %s: %s %q, want %q", tt.path, k, got, want)
				}
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("GET %s: Content-Security-Policy %q lacks default-src 'self'", tt.path, csp)
			}
		})
	}
	if acts, forms := b.calls(); len(acts)+len(forms) != 0 {
		t.Errorf("GET requests changed something: %v %v", acts, forms)
	}
}

func TestStreamsJSON(t *testing.T) {
	b, _ := newFake(t)
	srv := newServer(t, b)
	var got []Stream
	if err := json.NewDecoder(do(t, srv, "GET", "/api/streams", nil, "").Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d streams, want 2", len(got))
	}
	done, dl := got[0], got[1]
	if done.File != "/files/s1" || done.Output != "film-s1.mp4" || done.Page != "https://videos.example/watch?id=1" {
		t.Errorf("done stream: file %q output %q page %q", done.File, done.Output, done.Page)
	}
	if len(done.Headers) != 2 || done.Headers[0] != (Header{"Cookie", "<redacted>"}) || done.Headers[1].Name != "Referer" {
		t.Errorf("done stream headers %+v, want Cookie (redacted) then Referer", done.Headers)
	}
	// While it works, a stream waits for nothing: the last reason is stale.
	b.mu.Lock()
	b.streams[1].Session.State = recorder.StateDownloading
	b.mu.Unlock()
	var again []Stream
	json.NewDecoder(do(t, srv, "GET", "/api/streams", nil, "").Body).Decode(&again)
	if len(again) != 2 || again[1].Reason != "" {
		t.Errorf("downloading stream shows reason %q, want none", again[1].Reason)
	}
	// Stopped, its counts add up: 40 done + 60 missing = 100, whatever the last save listed.
	if dl.Host != "cdn2.example" || dl.Done != 40 || dl.Total != 100 || dl.Missing != 60 || dl.Failed != 2 ||
		dl.Bytes != 3_000_000 || dl.MB != 3 || dl.Reason != "waiting for the origin" || dl.File != "" {
		t.Errorf("downloading stream: %+v", dl)
	}
}

func TestActionGuard(t *testing.T) {
	b, _ := newFake(t)
	srv := newServer(t, b)
	host := must(url.Parse(srv.URL)).Host
	_, port, _ := strings.Cut(host, ":")
	self := "http://" + host
	tests := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		status int
		acted  bool
	}{
		{"same origin with token", "POST", "/api/streams/s2/pause", map[string]string{"Origin": self, TokenHeader: testToken}, 204, true},
		{"localhost name", "POST", "/api/streams/s2/resume", map[string]string{"Host": "localhost:" + port, "Origin": "http://localhost:" + port, TokenHeader: testToken}, 204, true},
		{"sec-fetch-site instead of origin", "POST", "/api/streams/s2/merge", map[string]string{"Sec-Fetch-Site": "same-origin", TokenHeader: testToken}, 204, true},
		{"no token", "POST", "/api/streams/s2/pause", map[string]string{"Origin": self}, 403, false},
		{"wrong token", "POST", "/api/streams/s2/pause", map[string]string{"Origin": self, TokenHeader: testToken + "x"}, 403, false},
		{"foreign origin", "POST", "/api/streams/s2/delete", map[string]string{"Origin": "https://evil.example", TokenHeader: testToken}, 403, false},
		{"foreign origin claiming same-origin", "POST", "/api/streams/s2/delete", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "same-origin", TokenHeader: testToken}, 403, false},
		{"null origin", "POST", "/api/streams/s2/delete", map[string]string{"Origin": "null", TokenHeader: testToken}, 403, false},
		{"no origin, cross-site fetch", "POST", "/api/streams/s2/delete", map[string]string{"Sec-Fetch-Site": "cross-site", TokenHeader: testToken}, 403, false},
		{"no origin at all", "POST", "/api/streams/s2/delete", map[string]string{TokenHeader: testToken}, 403, false},
		{"dns rebinding", "POST", "/api/streams/s2/delete", map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port, TokenHeader: testToken}, 403, false},
		{"rebinding to a localhost subdomain", "POST", "/api/streams/s2/delete", map[string]string{"Host": "a.localhost:" + port, "Origin": "http://a.localhost:" + port, TokenHeader: testToken}, 403, false},
		{"wrong port", "POST", "/api/streams/s2/delete", map[string]string{"Host": "127.0.0.1:1", "Origin": "http://127.0.0.1:1", TokenHeader: testToken}, 403, false},
		{"via GET", "GET", "/api/streams/s2/delete", map[string]string{"Origin": self, TokenHeader: testToken}, 405, false},
		{"unknown action", "POST", "/api/streams/s2/explode", map[string]string{"Origin": self, TokenHeader: testToken}, 400, false},
		{"unknown stream", "POST", "/api/streams/zz/pause", map[string]string{"Origin": self, TokenHeader: testToken}, 404, false},
		{"get form without token", "POST", "/api/get", map[string]string{"Origin": self, "Content-Type": "application/json"}, 403, false},
		{"get form from another site", "POST", "/api/get", map[string]string{"Origin": "http://evil.example", TokenHeader: testToken, "Content-Type": "application/json"}, 403, false},
		{"page with a rebound host", "GET", "/", map[string]string{"Host": "evil.example:" + port}, 403, false},
		{"events with a rebound host", "GET", "/events", map[string]string{"Host": "evil.example:" + port}, 403, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := b.calls()
			resp := do(t, srv, tt.method, tt.path, tt.hdr, `{"url":"https://x.example/(*).ts"}`)
			body := readAll(t, resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s: status %d, want %d: %s", tt.method, tt.path, resp.StatusCode, tt.status, body)
			}
			after, forms := b.calls()
			if acted := len(after) > len(before); acted != tt.acted {
				t.Errorf("%s %s: backend acted %v, want %v (%v)", tt.method, tt.path, acted, tt.acted, after)
			}
			if len(forms) != 0 {
				t.Errorf("%s %s: a get was started: %v", tt.method, tt.path, forms)
			}
		})
	}
	if acts, _ := b.calls(); strings.Join(acts, ",") != "s2 pause,s2 resume,s2 merge" {
		t.Errorf("backend actions %v, want the three allowed ones", acts)
	}
}

func TestStartGet(t *testing.T) {
	b, _ := newFake(t)
	srv := newServer(t, b)
	self := "http://" + must(url.Parse(srv.URL)).Host
	ok := map[string]string{"Origin": self, TokenHeader: testToken, "Content-Type": "application/json"}
	tests := []struct {
		name    string
		hdr     map[string]string
		body    string
		backErr error
		status  int
		want    string
	}{
		{"count", ok, `{"url":" https://cdn.example/v/seg_(*).ts ","pad":5,"count":150,"referer":"https://example.com/"}`, nil, 201, `"id":"new-session"`},
		{"duration", ok, `{"url":"https://cdn.example/v/(*).ts","duration":"01:02:03","segment_seconds":6}`, nil, 201, `"id":"new-session"`},
		{"no url", ok, `{"url":"  "}`, nil, 400, "(*)"},
		{"not json", ok, `url=x`, nil, 400, "bad form"},
		{"unknown field", ok, `{"url":"https://x/(*)","evil":1}`, nil, 400, "bad form"},
		{"form encoded", map[string]string{"Origin": self, TokenHeader: testToken, "Content-Type": "application/x-www-form-urlencoded"}, `url=x`, nil, 415, "json"},
		{"backend refuses", ok, `{"url":"https://x/(*).ts","count":3,"duration":"1:00"}`, errors.New("give --count or --duration, not both"), 400, "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.mu.Lock()
			b.getErr, b.forms = tt.backErr, nil
			b.mu.Unlock()
			resp := do(t, srv, "POST", "/api/get", tt.hdr, tt.body)
			body := readAll(t, resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("POST /api/get %s: %d %q, want %d with %q", tt.body, resp.StatusCode, body, tt.status, tt.want)
			}
			_, forms := b.calls()
			if tt.status == 201 {
				var want GetForm
				json.Unmarshal([]byte(tt.body), &want)
				want.URL = strings.TrimSpace(want.URL)
				if len(forms) != 1 || forms[0] != want {
					t.Errorf("backend got forms %+v, want %+v", forms, want)
				}
			} else if len(forms) != 0 {
				t.Errorf("backend started %+v on a refused form", forms)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	b, _ := newFake(t)
	ended := make(chan struct{})
	h := New(Options{Backend: b, Token: testToken})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.URL.Path == "/events" {
			close(ended)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	next := func() []Stream {
		t.Helper()
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if e, ok := strings.CutPrefix(line, "event: "); ok {
				event = e
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				if event != "streams" {
					t.Fatalf("event %q, want streams", event)
				}
				var ss []Stream
				if err := json.Unmarshal([]byte(d), &ss); err != nil {
					t.Fatalf("event data %q: %v", d, err)
				}
				return ss
			}
		}
		t.Fatalf("event stream ended: %v", sc.Err())
		return nil
	}
	if ss := next(); len(ss) != 2 || ss[1].ID != "s2" {
		t.Fatalf("first snapshot %+v, want s1 and s2", ss)
	}
	// A change shows in a later snapshot.
	b.mu.Lock()
	b.streams = b.streams[:1]
	b.mu.Unlock()
	if ss := next(); len(ss) != 1 {
		t.Fatalf("snapshot after a change has %d streams, want 1", len(ss))
	}
	cancel() // the tab closes: the handler must return
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("/events kept running after the client went away")
	}
}

func TestFiles(t *testing.T) {
	b, _ := newFake(t)
	srv := newServer(t, b)
	tests := []struct {
		name, path string
		status     int
	}{
		{"finished output", "/files/s1", 200},
		{"unfinished session", "/files/s2", 404},
		{"unknown session", "/files/nope", 404},
		{"escaped traversal", "/files/..%2f..%2f..%2fetc%2fpasswd", 404},
		{"traversal", "/files/../../etc/passwd", 404},
		{"absolute path", "/files/%2fetc%2fpasswd", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, srv, "GET", tt.path, nil, "")
			body := readAll(t, resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("GET %s: status %d, want %d", tt.path, resp.StatusCode, tt.status)
			}
			if tt.status == 200 {
				if body != "the whole video" {
					t.Errorf("GET %s: body %q", tt.path, body)
				}
				if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename="film-s1.mp4"`) {
					t.Errorf("GET %s: Content-Disposition %q", tt.path, cd)
				}
			} else if strings.Contains(body, "root:") || strings.Contains(body, "the whole video") {
				t.Errorf("GET %s leaked a file: %q", tt.path, body)
			}
		})
	}
}

// TestAssetsOffline: the page loads nothing from the internet.
func TestAssetsOffline(t *testing.T) {
	re := regexp.MustCompile(`(?i)https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import`)
	n := 0
	err := fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		data, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			if m := re.FindString(line); m != "" {
				t.Errorf("%s:%d: external reference %q: %s", p, i+1, m, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("walked %d embedded files, want the page, script and style", n)
	}
}

func TestRate(t *testing.T) {
	var r rateTracker
	r.last = map[string][]sample{}
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name  string
		at    time.Duration
		bytes int64
		want  float64
	}{
		{"first sample", 0, 0, 0},
		{"too soon to tell", 300 * time.Millisecond, 100, 0},
		{"one second", time.Second, 1000, 1000},
		{"steady", 3 * time.Second, 3000, 1000},
		{"window slides", 9 * time.Second, 15000, 2000},
		{"counter restarted", 10 * time.Second, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.rate("a", t0.Add(tt.at), tt.bytes); got < tt.want*0.99 || got > tt.want*1.01+0.001 {
				t.Fatalf("rate at %s with %d bytes: got %.1f, want %.1f", tt.at, tt.bytes, got, tt.want)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// /api/streams never shows a secret, whatever the backend hands over: the
// Referer's and Origin's tokens, cookies, authorization, custom signature and
// key headers, tokens in the template and in errors.
func TestStreamsRedactSecrets(t *testing.T) {
	b := &fakeBackend{streams: []recorder.StreamStatus{{
		Session: recorder.Summary{ID: "s1", State: recorder.StateFailed, Source: "watch", Missing: []int64{},
			Error: "segment 3 https://cdn.example/v/3.ts?token=SECRET1: status 403"},
		Template: "playlist https://cdn.example/v/index.m3u8?Policy=SECRET2&Signature=SECRET3&n=1",
		Progress: recorder.NewProgress(),
		Headers: map[string]string{
			"Referer": "https://videos.example/watch?token=SECRET4&id=1", "Origin": "https://u:SECRET5@videos.example",
			"Cookie": "sess=SECRET6", "Authorization": "Bearer SECRET7", "X-Signature": "SECRET8",
			"X-Api-Key": "SECRET9", "X-Auth-Token": "SECRET10", "User-Agent": "TestBrowser/1",
		},
	}}}
	srv := newServer(t, b)
	body := readAll(t, do(t, srv, "GET", "/api/streams", nil, "").Body)
	if strings.Contains(body, "SECRET") {
		t.Errorf("/api/streams shows a secret:\n%s", body)
	}
	for _, keep := range []string{"TestBrowser/1", "id=1", "n=1", "videos.example"} {
		if !strings.Contains(body, keep) {
			t.Errorf("/api/streams lost %q:\n%s", keep, body)
		}
	}
}

// The error box: one line per distinct cause, not the same 404 twenty-seven times.
func TestCauses(t *testing.T) {
	var b strings.Builder
	b.WriteString("27 segment(s) missing after every retry: segment 3: https://cdn.example/v/seg_3.ts?token=<redacted>: status 404 Not Found")
	for i := 4; i <= 24; i++ {
		fmt.Fprintf(&b, "\n  segment %d: https://cdn.example/v/seg_%d.ts: status 404 Not Found", i, i)
	}
	b.WriteString("\n  segment 25: https://cdn.example/v/seg_25.ts: connection reset")
	b.WriteString("\n  … and 2 more")
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"none", "", nil},
		{"one line", "playlist https://x/a.m3u8: no segments", []string{"playlist https://x/a.m3u8: no segments"}},
		{"incomplete", b.String(), []string{
			"27 segment(s) missing after every retry",
			"22 segments (3, 4, 5, …, 24): status 404 Not Found",
			"1 segment (25): connection reset",
			"and 2 more",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := causes(tc.text); !slices.Equal(got, tc.want) {
				t.Errorf("causes: got %q, want %q", got, tc.want)
			}
		})
	}
}
