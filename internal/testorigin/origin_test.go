package testorigin

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pattern returns n bytes that differ at every offset modulo 251, so a wrong range shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func serveDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteFiles(dir, files); err != nil {
		t.Fatal(err)
	}
	return dir
}

type result struct {
	resp    *http.Response
	body    []byte
	readErr error
	took    time.Duration // until the body was read or failed
}

func fetch(t *testing.T, c *http.Client, method, url string, hdr map[string]string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return result{resp, body, err, time.Since(start)}
}

func TestServeFiles(t *testing.T) {
	seg := pattern(1000)
	dir := serveDir(t, map[string][]byte{
		"720p/000001.ts":  seg,
		"720p/index.m3u8": []byte("#EXTM3U\n"),
		"init.mp4":        []byte("mp4"),
		"a.m4s":           []byte("m4s"),
		"a.aac":           []byte("aac"),
		"empty.ts":        nil,
	})
	o := Start(t, Options{Dir: dir, Prefix: "/v/abc"})
	if !strings.HasSuffix(o.URL, "/v/abc/") {
		t.Fatalf("URL = %q, want it to end in /v/abc/", o.URL)
	}
	tests := []struct {
		name        string
		method      string
		path        string
		rangeHdr    string
		wantStatus  int
		wantBody    []byte
		wantType    string
		wantCRange  string
		wantComplet int // Completed(path) after the request
	}{
		{name: "full", path: "720p/000001.ts", wantStatus: 200, wantBody: seg, wantType: "video/mp2t", wantComplet: 1},
		{name: "first bytes", path: "720p/000001.ts", rangeHdr: "bytes=0-9", wantStatus: 206, wantBody: seg[:10], wantCRange: "bytes 0-9/1000", wantComplet: 1},
		{name: "middle", path: "720p/000001.ts", rangeHdr: "bytes=500-599", wantStatus: 206, wantBody: seg[500:600], wantCRange: "bytes 500-599/1000", wantComplet: 1},
		{name: "open end", path: "720p/000001.ts", rangeHdr: "bytes=990-", wantStatus: 206, wantBody: seg[990:], wantCRange: "bytes 990-999/1000", wantComplet: 1},
		{name: "player bytes=0- counts as complete", path: "720p/000001.ts", rangeHdr: "bytes=0-", wantStatus: 206, wantBody: seg, wantCRange: "bytes 0-999/1000", wantComplet: 2},
		{name: "end past size is clamped", path: "720p/000001.ts", rangeHdr: "bytes=998-5000", wantStatus: 206, wantBody: seg[998:], wantCRange: "bytes 998-999/1000", wantComplet: 2},
		{name: "last byte", path: "720p/000001.ts", rangeHdr: "bytes=999-999", wantStatus: 206, wantBody: seg[999:], wantCRange: "bytes 999-999/1000", wantComplet: 2},
		{name: "suffix", path: "720p/000001.ts", rangeHdr: "bytes=-3", wantStatus: 206, wantBody: seg[997:], wantCRange: "bytes 997-999/1000", wantComplet: 2},
		{name: "start at size", path: "720p/000001.ts", rangeHdr: "bytes=1000-", wantStatus: 416, wantCRange: "bytes */1000", wantComplet: 2},
		{name: "malformed range ignored", path: "720p/000001.ts", rangeHdr: "bytes=9-3", wantStatus: 200, wantBody: seg, wantComplet: 3},
		{name: "head", method: "HEAD", path: "720p/000001.ts", wantStatus: 200, wantType: "video/mp2t", wantComplet: 3},
		{name: "playlist", path: "720p/index.m3u8", wantStatus: 200, wantBody: []byte("#EXTM3U\n"), wantType: "application/vnd.apple.mpegurl", wantComplet: 1},
		{name: "mp4", path: "init.mp4", wantStatus: 200, wantBody: []byte("mp4"), wantType: "video/mp4", wantComplet: 1},
		{name: "m4s", path: "a.m4s", wantStatus: 200, wantBody: []byte("m4s"), wantType: "video/iso.segment", wantComplet: 1},
		{name: "aac", path: "a.aac", wantStatus: 200, wantBody: []byte("aac"), wantType: "audio/aac", wantComplet: 1},
		{name: "empty file", path: "empty.ts", wantStatus: 200, wantBody: []byte{}, wantComplet: 1},
		{name: "missing", path: "720p/000002.ts", wantStatus: 404},
		{name: "directory", path: "720p", wantStatus: 404},
		{name: "escape", path: "../../etc/passwd", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			hdr := map[string]string{}
			if tt.rangeHdr != "" {
				hdr["Range"] = tt.rangeHdr
			}
			r := fetch(t, o.Client(), method, o.URL+tt.path, hdr)
			if r.readErr != nil {
				t.Fatalf("read body: %v", r.readErr)
			}
			if r.resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", r.resp.StatusCode, tt.wantStatus)
			}
			if tt.wantBody != nil && !bytes.Equal(r.body, tt.wantBody) {
				t.Errorf("body = %d bytes %.20q, want %d bytes %.20q", len(r.body), r.body, len(tt.wantBody), tt.wantBody)
			}
			if tt.wantBody != nil && r.resp.ContentLength != int64(len(tt.wantBody)) {
				t.Errorf("Content-Length = %d, want %d", r.resp.ContentLength, len(tt.wantBody))
			}
			if got := r.resp.Header.Get("Content-Type"); tt.wantType != "" && got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if got := r.resp.Header.Get("Content-Range"); got != tt.wantCRange {
				t.Errorf("Content-Range = %q, want %q", got, tt.wantCRange)
			}
			if got := o.Completed(tt.path); got != tt.wantComplet {
				t.Errorf("Completed(%q) = %d, want %d", tt.path, got, tt.wantComplet)
			}
		})
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		name             string
		hdr              string
		size             int64
		start, n         int64
		partial, satisfy bool
	}{
		{"none", "", 10, 0, 10, false, true},
		{"one byte", "bytes=0-0", 10, 0, 1, true, true},
		{"to size-1", "bytes=0-9", 10, 0, 10, true, true},
		{"to size", "bytes=0-10", 10, 0, 10, true, true},
		{"from size-1", "bytes=9-", 10, 9, 1, true, true},
		{"from size", "bytes=10-", 10, 0, 0, false, false},
		{"from size+1", "bytes=11-", 10, 0, 0, false, false},
		{"suffix size-1", "bytes=-9", 10, 1, 9, true, true},
		{"suffix size+1", "bytes=-11", 10, 0, 10, true, true},
		{"suffix zero", "bytes=-0", 10, 0, 0, false, false},
		{"empty file", "bytes=0-", 0, 0, 0, false, false},
		{"multi-range ignored", "bytes=0-1,5-6", 10, 0, 10, false, true},
		{"other unit ignored", "items=0-1", 10, 0, 10, false, true},
		{"garbage ignored", "bytes=a-b", 10, 0, 10, false, true},
		{"reversed ignored", "bytes=5-4", 10, 0, 10, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, n, partial, ok := parseRange(tt.hdr, tt.size)
			if ok != tt.satisfy || (ok && (start != tt.start || n != tt.n || partial != tt.partial)) {
				t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v; want %d, %d, %v, %v",
					tt.hdr, tt.size, start, n, partial, ok, tt.start, tt.n, tt.partial, tt.satisfy)
			}
		})
	}
}

func TestHitsKeyForms(t *testing.T) {
	dir := serveDir(t, map[string][]byte{"s/1.ts": []byte("x")})
	o := Start(t, Options{Dir: dir, Prefix: "/p/"})
	fetch(t, o.Client(), "GET", o.URL+"s/1.ts?token=a", nil)
	fetch(t, o.Client(), "GET", o.URL+"s/1.ts?token=b", map[string]string{"X-Test": "2"})
	for _, p := range []string{"s/1.ts", "/p/s/1.ts", o.URL + "s/1.ts", o.URL + "s/1.ts?token=zzz"} {
		if got := o.Hits(p); got != 2 {
			t.Errorf("Hits(%q) = %d, want 2", p, got)
		}
		if got := o.Completed(p); got != 2 {
			t.Errorf("Completed(%q) = %d, want 2", p, got)
		}
	}
	if got := o.TotalHits(); got != 2 {
		t.Errorf("TotalHits = %d, want 2", got)
	}
	last, ok := o.LastRequest("s/1.ts")
	if !ok || last.Header.Get("X-Test") != "2" || !strings.HasSuffix(last.RequestURI, "token=b") {
		t.Errorf("LastRequest = %+v, %v; want the second request", last, ok)
	}
	if got := o.BytesSent(); got != 2 {
		t.Errorf("BytesSent = %d, want 2", got)
	}
}

// protocols are the transports every fault must work over.
var protocols = []struct {
	name      string
	tls, h2   bool
	wantMajor int
}{
	{"http1", false, false, 1},
	{"https1", true, false, 1},
	{"h2", true, true, 2},
}

func TestFaultsObservable(t *testing.T) {
	const size = 256 << 10
	seg := pattern(size)
	dir := serveDir(t, map[string][]byte{"seg.ts": seg})
	type check func(t *testing.T, r result)
	readFails := func(t *testing.T, r result) {
		if r.resp.StatusCode != 200 || r.resp.ContentLength != size {
			t.Errorf("status %d Content-Length %d, want 200 with the full length", r.resp.StatusCode, r.resp.ContentLength)
		}
		if r.readErr == nil {
			t.Errorf("read body: got %d bytes and no error, want an error", len(r.body))
		}
		if len(r.body) >= size {
			t.Errorf("read %d bytes, want fewer than %d", len(r.body), size)
		}
	}
	tests := []struct {
		fault Fault
		check check
	}{
		{Fault500, func(t *testing.T, r result) {
			if r.resp.StatusCode != 500 || r.readErr != nil {
				t.Errorf("status %d read error %v, want 500 and a readable body", r.resp.StatusCode, r.readErr)
			}
		}},
		{Fault429, func(t *testing.T, r result) {
			if r.resp.StatusCode != 429 {
				t.Errorf("status %d, want 429", r.resp.StatusCode)
			}
			if got := r.resp.Header.Get("Retry-After"); got != "2" {
				t.Errorf("Retry-After = %q, want \"2\" (1.5s rounded up)", got)
			}
		}},
		{FaultReset, func(t *testing.T, r result) {
			readFails(t, r)
			// A reset, not a clean close: ECONNRESET over HTTP/1, a stream error over HTTP/2.
			if errors.Is(r.readErr, io.ErrUnexpectedEOF) || (r.resp.ProtoMajor == 1 && !errors.Is(r.readErr, syscall.ECONNRESET)) {
				t.Errorf("read error = %v, want a connection or stream reset", r.readErr)
			}
		}},
		{FaultTruncate, func(t *testing.T, r result) {
			readFails(t, r)
			if !errors.Is(r.readErr, io.ErrUnexpectedEOF) {
				t.Errorf("read error = %v, want unexpected EOF", r.readErr)
			}
		}},
		{FaultHTML, func(t *testing.T, r result) {
			if r.resp.StatusCode != 200 || !strings.HasPrefix(r.resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("status %d type %q, want 200 text/html", r.resp.StatusCode, r.resp.Header.Get("Content-Type"))
			}
			if !bytes.HasPrefix(r.body, []byte("<!doctype html>")) {
				t.Errorf("body %.30q, want an HTML page", r.body)
			}
		}},
		{FaultStall, func(t *testing.T, r result) {
			readFails(t, r)
			if r.took < 40*time.Millisecond {
				t.Errorf("failed after %v, want after the 50ms stall", r.took)
			}
		}},
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			o := Start(t, Options{Dir: dir, TLS: p.tls, HTTP2: p.h2,
				Faults: Faults{RetryAfter: 1500 * time.Millisecond, Stall: 50 * time.Millisecond}})
			for _, tt := range tests {
				t.Run(string(tt.fault), func(t *testing.T) {
					o.Inject("seg.ts", tt.fault)
					before := o.Completed("seg.ts")
					r := fetch(t, o.Client(), "GET", o.URL+"seg.ts", nil)
					if r.resp.ProtoMajor != p.wantMajor {
						t.Errorf("ProtoMajor = %d, want %d", r.resp.ProtoMajor, p.wantMajor)
					}
					tt.check(t, r)
					if got := o.Completed("seg.ts"); got != before {
						t.Errorf("Completed went %d -> %d on a faulted response", before, got)
					}
					// The fault is spent: the next request succeeds and completes.
					r = fetch(t, o.Client(), "GET", o.URL+"seg.ts", nil)
					if r.readErr != nil || r.resp.StatusCode != 200 || !bytes.Equal(r.body, seg) {
						t.Errorf("after the fault: status %d, %d bytes, err %v; want the whole file", r.resp.StatusCode, len(r.body), r.readErr)
					}
					if got := o.Completed("seg.ts"); got != before+1 {
						t.Errorf("Completed = %d, want %d", got, before+1)
					}
				})
			}
			want := map[string]int{"500": 1, "429": 1, "reset": 1, "truncate": 1, "html": 1, "stall": 1}
			if got := o.FaultCounts(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("FaultCounts = %v, want %v", got, want)
			}
		})
	}
}

// fetchWithRetries GETs every path until it reads the whole body, at most attempts times each.
func fetchWithRetries(t *testing.T, o *Origin, paths []string, want map[string][]byte, attempts int) {
	t.Helper()
	for _, p := range paths {
		ok := false
		for range attempts {
			r := fetch(t, o.Client(), "GET", o.URL+p, nil)
			if r.readErr == nil && r.resp.StatusCode == 200 && bytes.Equal(r.body, want[p]) {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("%s: no complete response in %d attempts", p, attempts)
		}
	}
}

func TestRandomFaultsConvergeAndAreDeterministic(t *testing.T) {
	files := map[string][]byte{}
	var paths []string
	for i := range 30 {
		p := fmt.Sprintf("%06d.ts", i)
		files[p] = pattern(4096 + i)
		paths = append(paths, p)
	}
	files["index.m3u8"] = []byte("#EXTM3U\n")
	dir := serveDir(t, files)
	const maxPerPath = 3
	opts := Options{Dir: dir, Faults: Faults{Seed: 7, P500: 0.15, P429: 0.15, PReset: 0.15, PTruncate: 0.15,
		PHTML: 0.15, PStall: 0.15, Stall: time.Millisecond, MaxPerPath: maxPerPath}}

	a := Start(t, opts)
	fetchWithRetries(t, a, paths, files, maxPerPath+1)
	total := 0
	for _, p := range paths {
		if got := a.Completed(p); got != 1 {
			t.Errorf("Completed(%s) = %d, want 1", p, got)
		}
		if h := a.Hits(p); h > maxPerPath+1 {
			t.Errorf("Hits(%s) = %d, more than MaxPerPath+1", p, h)
		}
		total += a.Hits(p) - 1
	}
	counts := a.FaultCounts()
	sum := 0
	for _, n := range counts {
		sum += n
	}
	if sum != total || sum == 0 {
		t.Errorf("FaultCounts = %v (sum %d), want the %d failed attempts and more than none", counts, sum, total)
	}
	for _, f := range []string{"500", "429", "reset", "truncate", "html", "stall"} {
		if counts[f] == 0 {
			t.Errorf("fault %s never injected in %d draws: %v", f, sum+len(paths), counts)
		}
	}
	// Playlists are never faulted at random.
	if r := fetch(t, a.Client(), "GET", a.URL+"index.m3u8", nil); r.resp.StatusCode != 200 {
		t.Errorf("playlist status %d, want 200", r.resp.StatusCode)
	}

	// Same seed, opposite order: the same faults per path.
	b := Start(t, opts)
	reversed := make([]string, len(paths))
	for i, p := range paths {
		reversed[len(paths)-1-i] = p
	}
	fetchWithRetries(t, b, reversed, files, maxPerPath+1)
	for _, p := range paths {
		if a.Hits(p) != b.Hits(p) {
			t.Errorf("%s: %d hits in order, %d reversed; want the same", p, a.Hits(p), b.Hits(p))
		}
	}
	if fmt.Sprint(b.FaultCounts()) != fmt.Sprint(counts) {
		t.Errorf("FaultCounts reversed = %v, in order %v; want equal", b.FaultCounts(), counts)
	}
}

func TestFaultsValidate(t *testing.T) {
	tests := []struct {
		name string
		f    Faults
	}{
		{"negative", Faults{P500: -0.1}},
		{"above one", Faults{PReset: 1.5}},
		{"sum above one", Faults{P500: 0.6, P429: 0.6}},
		{"negative cap", Faults{MaxPerPath: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if o, err := New(Options{Faults: tt.f}); err == nil {
				o.Close()
				t.Errorf("New(%+v): no error", tt.f)
			}
		})
	}
	if _, err := New(Options{HTTP2: true}); err == nil {
		t.Error("New(HTTP2 without TLS): no error")
	}
}

func TestRateLimits(t *testing.T) {
	dir := serveDir(t, map[string][]byte{"big.ts": pattern(4 << 20), "a.ts": pattern(1 << 20), "b.ts": pattern(1 << 20)})
	for _, p := range protocols {
		t.Run("per connection "+p.name, func(t *testing.T) {
			o := Start(t, Options{Dir: dir, ConnRate: 8 << 20, TLS: p.tls, HTTP2: p.h2})
			start := time.Now()
			r := fetch(t, o.Client(), "GET", o.URL+"big.ts", nil)
			d := time.Since(start)
			if r.readErr != nil || len(r.body) != 4<<20 || r.resp.ProtoMajor != p.wantMajor {
				t.Fatalf("read %d bytes over HTTP/%d, err %v", len(r.body), r.resp.ProtoMajor, r.readErr)
			}
			t.Logf("4 MiB at 8 MiB/s per connection: %v", d)
			if d < 350*time.Millisecond || d > 5*time.Second {
				t.Errorf("took %v, want about 0.5s", d)
			}
		})
	}
	t.Run("total across connections", func(t *testing.T) {
		o := Start(t, Options{Dir: dir, TotalRate: 4 << 20})
		start := time.Now()
		var wg sync.WaitGroup
		for _, p := range []string{"a.ts", "b.ts"} {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", o.URL+p, nil)
				resp, err := o.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != 1<<20 {
					t.Errorf("%s: read %d bytes, err %v", p, n, err)
				}
			})
		}
		wg.Wait()
		d := time.Since(start)
		t.Logf("2 x 1 MiB at 4 MiB/s total: %v", d)
		if d < 350*time.Millisecond || d > 5*time.Second {
			t.Errorf("took %v, want about 0.5s", d)
		}
		if o.Completed("a.ts") != 1 || o.Completed("b.ts") != 1 {
			t.Errorf("Completed a=%d b=%d, want 1 each", o.Completed("a.ts"), o.Completed("b.ts"))
		}
	})
}

func TestTTFB(t *testing.T) {
	dir := serveDir(t, map[string][]byte{"a.ts": []byte("x")})
	o := Start(t, Options{Dir: dir, TTFB: 200 * time.Millisecond})
	start := time.Now()
	r := fetch(t, o.Client(), "GET", o.URL+"a.ts", nil)
	if d := time.Since(start); d < 150*time.Millisecond || r.resp.StatusCode != 200 {
		t.Errorf("status %d after %v, want 200 after at least the TTFB", r.resp.StatusCode, d)
	}
	start = time.Now()
	if r = fetch(t, o.Client(), "GET", o.URL+"missing.ts", nil); time.Since(start) < 150*time.Millisecond || r.resp.StatusCode != 404 {
		t.Errorf("404 after %v, want after at least the TTFB", time.Since(start))
	}
}

func TestAccessRequirements(t *testing.T) {
	dir := serveDir(t, map[string][]byte{"1.ts": []byte("seg"), "index.m3u8": []byte("#EXTM3U\n"), "note.txt": []byte("free")})
	const page = "https://site.example/watch/42"

	t.Run("referer", func(t *testing.T) {
		o := Start(t, Options{Dir: dir, RequireReferer: page})
		tests := []struct {
			name, path, referer string
			want                int
		}{
			{"segment without", "1.ts", "", 403},
			{"segment wrong", "1.ts", page + "/other", 403},
			{"segment right", "1.ts", page, 200},
			{"playlist without", "index.m3u8", "", 403},
			{"playlist right", "index.m3u8", page, 200},
			{"other file unprotected", "note.txt", "", 200},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				hdr := map[string]string{}
				if tt.referer != "" {
					hdr["Referer"] = tt.referer
				}
				if r := fetch(t, o.Client(), "GET", o.URL+tt.path, hdr); r.resp.StatusCode != tt.want {
					t.Errorf("status %d, want %d", r.resp.StatusCode, tt.want)
				}
			})
		}
		if got := o.Forbidden(); got != 3 {
			t.Errorf("Forbidden = %d, want 3", got)
		}
	})

	t.Run("cookie from page", func(t *testing.T) {
		o := Start(t, Options{Dir: dir, RequireCookie: "sess=s3cret", PageHTML: `<video src="{{URL}}index.m3u8">`})
		c := o.Client()
		if r := fetch(t, c, "GET", o.URL+"1.ts", nil); r.resp.StatusCode != 403 {
			t.Fatalf("segment without cookie: status %d, want 403", r.resp.StatusCode)
		}
		if r := fetch(t, c, "GET", o.URL+"1.ts", map[string]string{"Cookie": "sess=wrong"}); r.resp.StatusCode != 403 {
			t.Fatalf("segment with wrong cookie: status %d, want 403", r.resp.StatusCode)
		}
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Jar = jar
		r := fetch(t, c, "GET", o.PageURL(), nil)
		if want := `<video src="` + o.URL + `index.m3u8">`; string(r.body) != want || r.resp.StatusCode != 200 {
			t.Fatalf("page: status %d body %q, want 200 %q", r.resp.StatusCode, r.body, want)
		}
		if r := fetch(t, c, "GET", o.URL+"1.ts", nil); r.resp.StatusCode != 200 {
			t.Errorf("segment with the page's cookie: status %d, want 200", r.resp.StatusCode)
		}
		if r := fetch(t, c, "GET", o.URL+"index.m3u8", nil); r.resp.StatusCode != 200 {
			t.Errorf("playlist with the page's cookie: status %d, want 200", r.resp.StatusCode)
		}
	})

	t.Run("token query", func(t *testing.T) {
		o := Start(t, Options{Dir: dir})
		o.SetRequiredQuery("token", "A")
		tests := []struct {
			name, query string
			want        int
		}{
			{"missing", "", 403},
			{"wrong", "?token=B", 403},
			{"right", "?token=A", 200},
			{"right among others", "?x=1&token=A", 200},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if r := fetch(t, o.Client(), "GET", o.URL+"1.ts"+tt.query, nil); r.resp.StatusCode != tt.want {
					t.Errorf("status %d, want %d", r.resp.StatusCode, tt.want)
				}
			})
		}
		if r := fetch(t, o.Client(), "GET", o.URL+"index.m3u8", nil); r.resp.StatusCode != 200 {
			t.Errorf("playlist without token: status %d, want 200", r.resp.StatusCode)
		}
		o.SetRequiredQuery("token", "B")
		if r := fetch(t, o.Client(), "GET", o.URL+"1.ts?token=A", nil); r.resp.StatusCode != 403 {
			t.Errorf("old token after refresh: status %d, want 403", r.resp.StatusCode)
		}
		if r := fetch(t, o.Client(), "GET", o.URL+"1.ts?token=B", nil); r.resp.StatusCode != 200 {
			t.Errorf("new token: status %d, want 200", r.resp.StatusCode)
		}
	})
}

func TestExpiry(t *testing.T) {
	dir := serveDir(t, map[string][]byte{"1.ts": []byte("seg"), "index.m3u8": []byte("#EXTM3U\n")})
	o := Start(t, Options{Dir: dir})
	status := func(p string) int { return fetch(t, o.Client(), "GET", o.URL+p, nil).resp.StatusCode }

	o.ExpireAfter(2)
	got := []int{status("1.ts"), status("1.ts"), status("index.m3u8"), status("1.ts"), status("1.ts")}
	if want := []int{200, 200, 200, 403, 403}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ExpireAfter(2): statuses %v, want %v (playlists unaffected)", got, want)
	}
	o.SetRequiredQuery("token", "new")
	if s := status("1.ts?token=new"); s != 200 {
		t.Errorf("after a token refresh: status %d, want 200", s)
	}
	o.SetRequiredQuery("", "")

	o.ExpireAfter(0)
	if s := status("1.ts"); s != 403 {
		t.Errorf("ExpireAfter(0): status %d, want 403", s)
	}
	o.SetExpired(false)
	if s := status("1.ts"); s != 200 {
		t.Errorf("SetExpired(false): status %d, want 200", s)
	}
	o.SetExpired(true)
	if s := status("1.ts"); s != 403 {
		t.Errorf("SetExpired(true): status %d, want 403", s)
	}
}

func TestTLS(t *testing.T) {
	dir := serveDir(t, map[string][]byte{"1.ts": []byte("seg")})
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			o := Start(t, Options{Dir: dir, TLS: p.tls, HTTP2: p.h2})
			if wantScheme := map[bool]string{true: "https://", false: "http://"}[p.tls]; !strings.HasPrefix(o.URL, wantScheme) {
				t.Errorf("URL %q, want scheme %s", o.URL, wantScheme)
			}
			r := fetch(t, o.Client(), "GET", o.URL+"1.ts", nil)
			if r.resp.ProtoMajor != p.wantMajor || (r.resp.TLS != nil) != p.tls {
				t.Errorf("ProtoMajor %d TLS %v, want %d %v", r.resp.ProtoMajor, r.resp.TLS != nil, p.wantMajor, p.tls)
			}
			if !p.tls {
				return
			}
			// A client built from CertPool alone also trusts the origin; one without it does not.
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: o.CertPool()}, ForceAttemptHTTP2: true}}
			defer c.CloseIdleConnections()
			if r := fetch(t, c, "GET", o.URL+"1.ts", nil); string(r.body) != "seg" {
				t.Errorf("CertPool client: body %q", r.body)
			}
			if _, err := (&http.Client{Transport: &http.Transport{}}).Get(o.URL + "1.ts"); err == nil {
				t.Error("a client without the certificate connected")
			}
		})
	}
}

func TestCloseCutsOffStalledResponse(t *testing.T) {
	dir := serveDir(t, map[string][]byte{"1.ts": pattern(64 << 10)})
	o, err := New(Options{Dir: dir, Faults: Faults{PStall: 1}}) // Stall 0: hang until closed
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", o.URL+"1.ts", nil)
	resp, err := o.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil { // the stalled half has begun
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { o.Close(); close(closed) }()
	_, err = io.ReadAll(resp.Body)
	if err == nil || ctx.Err() != nil {
		t.Errorf("read after Close: err %v, ctx %v; want a read error before the timeout", err, ctx.Err())
	}
	select {
	case <-closed:
	case <-ctx.Done():
		t.Error("Close did not return")
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFiles(dir, map[string][]byte{"a/b/c.ts": []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "b", "c.ts")); err != nil || string(b) != "x" {
		t.Errorf("read back %q, %v", b, err)
	}
	for _, name := range []string{"../x.ts", "/abs.ts", ""} {
		if err := WriteFiles(dir, map[string][]byte{name: nil}); err == nil {
			t.Errorf("WriteFiles(%q): no error", name)
		}
	}
}

// BenchmarkServe measures the origin's unthrottled throughput for 1 MiB segments over HTTP/1.1.
func BenchmarkServe(b *testing.B) {
	const size = 1 << 20
	dir := b.TempDir()
	if err := WriteFiles(dir, map[string][]byte{"1.ts": pattern(size)}); err != nil {
		b.Fatal(err)
	}
	o := Start(b, Options{Dir: dir})
	c := o.Client()
	b.SetBytes(size)
	for b.Loop() {
		resp, err := c.Get(o.URL + "1.ts")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size {
			b.Fatalf("read %d bytes, err %v", n, err)
		}
	}
}
