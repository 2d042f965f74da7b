package recorder

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

func TestPageTitle(t *testing.T) {
	for _, tc := range []struct {
		name, html string
		want       string
		ok         bool
	}{
		{"plain", "<html><head><title>Film 42</title></head>", "Film 42", true},
		{"attributes and case", `<TITLE lang="en">  Film &amp; Co
		 </Title>`, "Film & Co", true},
		{"unfinished", "<title>Film 4", "", false},
		{"none", "<html><body>no title</body>", "", false},
		{"titlebar is not title", "<titlebar>x</titlebar><title>Real</title>", "", false},
		{"long", "<title>" + strings.Repeat("é", 150) + "</title>", strings.Repeat("é", 100), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := pageTitle([]byte(tc.html))
			if got != tc.want || ok != tc.ok {
				t.Errorf("pageTitle(%q): got %q %v, want %q %v", tc.html, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// A recording is named by the title of the page it was seen on (an HTML page
// the proxy saw, gzip'd or not), in its summary as `sessions --json` prints it.
func TestCaptureNamesRecordingsByPageTitle(t *testing.T) {
	for _, gz := range []bool{false, true} {
		fx := newFixture(t, testorigin.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts()})
		page := "<!doctype html><html><head><meta charset=utf-8><title>The &lt;Film&gt; https://v.example/f?token=abc123secretsecret</title></head><body>" +
			strings.Repeat("x", 100<<10) + "</body></html>"
		body := []byte(page)
		h := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
		if gz {
			var b bytes.Buffer
			w := gzip.NewWriter(&b)
			w.Write(body)
			w.Close()
			body = b.Bytes()
			h.Set("Content-Encoding", "gzip")
		}
		ex := &proxy.Exchange{Req: httptest.NewRequest(http.MethodGet, testReferer, nil), Status: http.StatusOK,
			RespHeader: h, ContentLength: int64(len(body)), Received: time.Now(), RemoteAddr: "127.0.0.1:443"}
		tap := c.Observe(ex)
		if tap == nil {
			t.Fatal("the page's body is not read")
		}
		for off := 0; off < len(body); off += 1000 {
			if _, err := tap.Write(body[off:min(off+1000, len(body))]); err != nil {
				break // it has what it wanted
			}
		}
		tap.Close(nil)
		pl, err := os.ReadFile(fx.media.Playlist)
		if err != nil {
			t.Fatal(err)
		}
		browse(t, c, fx.origin.URL+"index.m3u8", pl, fx.headers())
		s := waitState(t, fx.store, onlySession(t, fx.store).ID, StateDone)
		b, _ := json.Marshal(s.Summary())
		if want := `"title":"The \u003cFilm\u003e https://v.example/f?token=`; !strings.Contains(string(b), want) || strings.Contains(string(b), "abc123secretsecret") {
			t.Errorf("gzip %v: summary %s: want a title starting %s, the token redacted", gz, b, want)
		}
		cancel()
		c.Wait()
	}
}
