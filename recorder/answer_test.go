package recorder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

func TestAnswerHeader(t *testing.T) {
	const page, other = "https://www.example.com", "https://other.example.com"
	cors := func(acao string) http.Header {
		return http.Header{"Content-Type": {"video/mp2t"}, "Access-Control-Allow-Origin": {acao},
			"Access-Control-Allow-Credentials": {"true"}, "Vary": {"Origin"}}
	}
	for _, tc := range []struct {
		name      string
		reqOrigin string      // the Origin the origin was asked with
		resp      http.Header // what it answered
		origin    string      // the Origin of the request answered from disk
		acao      string      // want Access-Control-Allow-Origin
		creds     string      // want Access-Control-Allow-Credentials
	}{
		{"echoed origin follows the new request", page, cors(page), other, other, "true"},
		{"echoed origin, same page", page, cors(page), page, page, "true"},
		{"echoed origin, request without Origin", page, cors(page), "", "", ""},
		{"star stays star", page, cors("*"), other, "*", "true"},
		{"star without request Origin", "", cors("*"), "", "*", "true"},
		{"fixed origin stays fixed", other, cors(page), other, page, "true"},
		{"fixed origin kept when asked without Origin", "", cors(page), other, page, "true"},
		{"no CORS at all", page, http.Header{"Content-Type": {"video/mp2t"}}, other, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAnswer(http.Header{"Origin": {tc.reqOrigin}}, tc.resp)
			h := a.header(tc.origin)
			if got := h.Get("Access-Control-Allow-Origin"); got != tc.acao {
				t.Errorf("header(%q): Access-Control-Allow-Origin %q, want %q", tc.origin, got, tc.acao)
			}
			if got := h.Get("Access-Control-Allow-Credentials"); got != tc.creds {
				t.Errorf("header(%q): Access-Control-Allow-Credentials %q, want %q", tc.origin, got, tc.creds)
			}
			if h.Get("Content-Type") != "video/mp2t" {
				t.Errorf("header(%q): Content-Type %q, want the origin's", tc.origin, h.Get("Content-Type"))
			}
		})
	}
}

func TestAnswerKeepsOnlyAnswerHeaders(t *testing.T) {
	resp := http.Header{"Set-Cookie": {"s=1"}, "Content-Length": {"9"}, "Server": {"cdn"},
		"Etag": {`"abc"`}, "Timing-Allow-Origin": {"*"}, "Cache-Control": {"max-age=60"}}
	h := newAnswer(http.Header{}, resp).header("https://www.example.com")
	for _, k := range []string{"Set-Cookie", "Content-Length", "Server"} {
		if h.Get(k) != "" {
			t.Errorf("%s was kept: %q", k, h.Get(k))
		}
	}
	for _, k := range []string{"Etag", "Timing-Allow-Origin", "Cache-Control"} {
		if h.Get(k) != resp.Get(k) {
			t.Errorf("%s: %q, want %q", k, h.Get(k), resp.Get(k))
		}
	}
}

// corsCDN serves dir under /v/abc/720p/ like a CDN that allows a page on
// another origin with credentials: it echoes the request's Origin.
func corsCDN(t *testing.T, dir string) *httptest.Server {
	files := http.StripPrefix("/v/abc/720p/", http.FileServer(http.Dir(dir)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" {
			w.Header().Set("Access-Control-Allow-Origin", o)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Expose-Headers", "Content-Length, Content-Range")
			w.Header().Set("Vary", "Origin")
		}
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "video/MP2T")
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Answers from disk carry the origin's headers: those of the browser's own
// response for a tee'd segment, those of the backfill's for the others, with
// an echoed Origin following the new request's.
func TestRespondReplaysOriginHeaders(t *testing.T) {
	media := testmedia.ForTest(t, testmedia.Small)
	cdn := corsCDN(t, media.Dir)
	base := cdn.URL + "/v/abc/720p/"
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts(), Merge: MergeOptions{KeepSegments: true}})
	const page = "https://www.example.com"
	seePage(c, page+"/", "127.0.0.1:443") // the page came from loopback, as the CDN does
	// The browser's two segments, answered with a fixed "*" (unlike the backfill's echo).
	for _, i := range []int{0, 1} {
		req := httptest.NewRequest(http.MethodGet, base+filepath.Base(media.Segments[i]), nil)
		req.Header.Set("Origin", page)
		req.Header.Set("Referer", page+"/")
		ex := &proxy.Exchange{Req: req, Status: http.StatusOK, ContentLength: int64(len(media.Bytes(i))),
			RespHeader: http.Header{"Content-Type": {"video/mp2t"}, "Access-Control-Allow-Origin": {"*"},
				"Etag": {fmt.Sprintf(`"seg%d"`, i)}, "Set-Cookie": {"x=1"}}}
		tap := c.Observe(ex)
		if tap == nil {
			t.Fatalf("segment %d was not tee'd", i)
		}
		if _, err := tap.Write(media.Bytes(i)); err != nil {
			t.Fatal(err)
		}
		tap.Close(nil)
	}
	list, _ := st.List()
	if len(list) != 1 {
		t.Fatalf("%d sessions, want 1", len(list))
	}
	waitState(t, st, list[0].ID, StateDone)

	const other = "https://other.example.com"
	ask := func(i int, origin, rng string) (*http.Response, []byte) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, base+filepath.Base(media.Segments[i]), nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp := c.Respond(req)
		if resp == nil {
			t.Fatalf("segment %d (Origin %q, Range %q): not answered from disk", i, origin, rng)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	resp, body := ask(0, other, "")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("tee'd segment: Access-Control-Allow-Origin %q, want the browser's answer's \"*\"", got)
	}
	if resp.Header.Get("Etag") != `"seg0"` || resp.Header.Get("Set-Cookie") != "" || !bytes.Equal(body, media.Bytes(0)) {
		t.Errorf("tee'd segment: headers %v, %d bytes: want its ETag, no cookie, its bytes", resp.Header, len(body))
	}

	resp, body = ask(5, other, "")
	want := map[string]string{
		"Access-Control-Allow-Origin":      other,
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Expose-Headers":    "Content-Length, Content-Range",
		"Vary":                             "Origin",
		"Cache-Control":                    "max-age=3600",
		"Content-Type":                     "video/MP2T",
		"Accept-Ranges":                    "bytes",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("backfilled segment: %s %q, want %q", k, got, v)
		}
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Last-Modified") == "" || !bytes.Equal(body, media.Bytes(5)) {
		t.Errorf("backfilled segment: %d, Last-Modified %q, %d bytes; want 200, the origin's Last-Modified, its bytes",
			resp.StatusCode, resp.Header.Get("Last-Modified"), len(body))
	}

	n := len(media.Bytes(5))
	resp, body = ask(5, page, "bytes=100-")
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-%d/%d", n-1, n) ||
		resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("Access-Control-Allow-Origin") != page ||
		!bytes.Equal(body, media.Bytes(5)[100:]) {
		t.Errorf("range: %d %v, %d bytes; want 206 with Content-Range, Accept-Ranges and the page's Origin", resp.StatusCode, resp.Header, len(body))
	}

	resp, _ = ask(5, "", "")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("no Origin: CORS headers %v, want none (the origin sends none then)", resp.Header)
	}
	if strings.Contains(fmt.Sprint(resp.Header), "x=1") {
		t.Errorf("a cookie leaked into an answer from disk: %v", resp.Header)
	}
	cancel()
	c.Wait()
}

// TestAnswerSave: the answer is written in place while its segment is not there yet (nobody looks for it),
// and through a temporary file over an existing segment; either way it loads back and leaves nothing else.
func TestAnswerSave(t *testing.T) {
	for _, segmentThere := range []bool{false, true} {
		t.Run(fmt.Sprintf("segment there %v", segmentThere), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "000001.ts")
			if segmentThere {
				if err := os.WriteFile(p, []byte("ts"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// A stale answer, longer than the new one, from an earlier attempt.
			if err := os.WriteFile(answerPath(p), bytes.Repeat([]byte(" "), 4096), 0o600); err != nil {
				t.Fatal(err)
			}
			a := newAnswer(http.Header{"Origin": {"https://player.example"}},
				http.Header{"Content-Type": {"video/mp2t"}, "Access-Control-Allow-Origin": {"*"}})
			if err := a.save(p); err != nil {
				t.Fatalf("save: %v", err)
			}
			got := loadAnswer(p)
			if got == nil || got.Header.Get("Access-Control-Allow-Origin") != "*" || got.ReqOrigin != "https://player.example" {
				t.Fatalf("loadAnswer after save: got %+v", got)
			}
			ents, _ := os.ReadDir(dir)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			want := []string{"000001.ts.hdr"}
			if segmentThere {
				want = []string{"000001.ts", "000001.ts.hdr"}
			}
			if !slices.Equal(names, want) {
				t.Errorf("files after save: got %v, want %v", names, want)
			}
		})
	}
}

// A get keeps no answers: without a capture no browser is answered from its files. The capture's backfill
// keeps them (TestRespondReplaysOriginHeaders).
func TestRunKeepsNoAnswersWithoutACapture(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	s := fx.session(t, true)
	if _, err := Run(context.Background(), s, fastOpts(), MergeOptions{KeepSegments: true}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	segs, err := os.ReadDir(s.Main().SegmentDir())
	if err != nil || len(segs) != len(fx.media.Segments) {
		t.Fatalf("segment directory: %d entries, %v; want the %d segments", len(segs), err, len(fx.media.Segments))
	}
	for _, e := range segs {
		if strings.HasSuffix(e.Name(), ".hdr") {
			t.Errorf("answer file %s kept by a get", e.Name())
		}
	}
}
