package recorder

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// A page may start at most MaxPerPage recordings, and all pages MaxActive:
// the next is refused with a message, and no session is made for it.
func TestCaptureLimitsRecordingsPerPageAndInAll(t *testing.T) {
	st, c, logs := limitedCapture(t, CaptureLimits{MaxPerPage: 2, MaxActive: 3})
	seg := func(page string, n int) {
		// One segment of a new shape: a learning stream, no backfill yet.
		browse(t, c, fmt.Sprintf("https://cdn.example/%s/v/seg_0001.ts", strings.Repeat("r", n)), tsPacket(), map[string]string{"Referer": page})
	}
	count := func() int { list, _ := st.List(); return len(list) }
	seg("https://a.example/watch", 1)
	seg("https://a.example/other", 2) // the same page origin
	if got := count(); got != 2 {
		t.Fatalf("%d sessions after 2 streams from one page, want 2", got)
	}
	seg("https://a.example/watch", 3)
	if got := count(); got != 2 {
		t.Errorf("%d sessions after a 3rd stream from one page, want it refused", got)
	}
	if !strings.Contains(logs.String(), "2 recordings from https://a.example are active already (at most 2 per page)") {
		t.Errorf("no clear message for the per-page limit:\n%s", logs.String())
	}
	seg("https://b.example/watch", 4)
	seg("https://c.example/watch", 5)
	if got := count(); got != 3 {
		t.Errorf("%d sessions with a limit of 3 in all, want 3", got)
	}
	if !strings.Contains(logs.String(), "3 recordings are active already (at most 3)") {
		t.Errorf("no clear message for the limit in all:\n%s", logs.String())
	}
}

// A captured playlist may list at most MaxSegments segments: at the limit it
// is recorded, one over it is refused with a message.
func TestCaptureLimitsSegmentsPerPlaylist(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	pl, err := os.ReadFile(fx.media.Playlist)
	if err != nil {
		t.Fatal(err)
	}
	n := len(fx.media.Segments)
	for _, tc := range []struct {
		limit  int
		record bool
	}{{n - 1, false}, {n, true}} {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			st, c, logs := limitedCapture(t, CaptureLimits{MaxSegments: tc.limit})
			if tc.record {
				browse(t, c, fx.origin.URL+"index.m3u8", pl, fx.headers())
			} else if kept := keptOfPlaylist(c, fx.origin.URL+"index.m3u8", pl, len(pl)); kept != 0 {
				t.Errorf("the capture kept %d bytes of a playlist over its limit, want it dropped", kept)
			}
			list, _ := st.List()
			if (len(list) == 1) != tc.record {
				t.Fatalf("limit %d, %d segments: %d sessions, want recorded %v", tc.limit, n, len(list), tc.record)
			}
			if tc.record {
				waitState(t, st, list[0].ID, StateDone)
			} else if want := fmt.Sprintf("lists more than the %d segments", tc.limit); !strings.Contains(logs.String(), want) {
				t.Errorf("no message %q in:\n%s", want, logs.String())
			}
		})
	}
}

// A page's playlist over the limit is dropped as it arrives, not kept whole to be counted: the capture
// takes none of it past the entry over the limit (the browser still gets all of it: the tap is a copy).
func TestCaptureDropsAHugePlaylistAsItArrives(t *testing.T) {
	const limit = 1000
	st, c, logs := limitedCapture(t, CaptureLimits{MaxSegments: limit})
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-TARGETDURATION:4\n")
	entry := 0
	for i := range 100_000 {
		if i == limit {
			entry = b.Len() // where the entry over the limit begins
		}
		fmt.Fprintf(&b, "#EXTINF:4,\nseg_%07d.ts\n", i)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	pl := []byte(b.String())
	seePage(c, testReferer, "127.0.0.1:443")
	// 5-byte writes: entries straddle them.
	if kept := keptOfPlaylist(c, "https://cdn.example/huge/index.m3u8", pl, 5); kept > entry+len("#EXTINF") || kept < entry {
		t.Errorf("the capture took %d bytes of a %d-byte playlist, want it to stop at the entry over the limit (%d)", kept, len(pl), entry)
	}
	if list, _ := st.List(); len(list) != 0 {
		t.Errorf("%d sessions, want none", len(list))
	}
	if want := fmt.Sprintf("lists more than the %d segments", limit); !strings.Contains(logs.String(), want) {
		t.Errorf("no message %q in:\n%s", want, logs.String())
	}
}

// keptOfPlaylist shows the capture the browser fetching playlist u with body, in writes of chunk bytes, and
// returns how many bytes the capture's tap took before it refused the rest.
func keptOfPlaylist(c *Capture, u string, body []byte, chunk int) int {
	req := httptest.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Referer", testReferer)
	tap := c.Observe(&proxy.Exchange{Req: req, Status: http.StatusOK,
		RespHeader:    http.Header{"Content-Type": {"application/vnd.apple.mpegurl"}},
		ContentLength: int64(len(body)), Received: time.Now()})
	if tap == nil {
		return 0
	}
	kept := 0
	for len(body) > 0 {
		p := body[:min(chunk, len(body))]
		body = body[len(p):]
		if _, err := tap.Write(p); err != nil {
			tap.Close(err)
			return kept
		}
		kept += len(p)
	}
	tap.Close(nil)
	return kept
}

// limitedCapture is a capture with limits whose log is kept; it stops with the test.
func limitedCapture(t *testing.T, limits CaptureLimits) (*Store, *Capture, *lockedBuffer) {
	t.Helper()
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	o := fastOpts()
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: o, Limits: limits})
	t.Cleanup(func() { cancel(); c.Wait() })
	return st, c, logs
}
