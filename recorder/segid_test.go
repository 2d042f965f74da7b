package recorder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

func TestSegIndex(t *testing.T) {
	x := newSegIndex[int]()
	x.add("https://cdn.example/v/seg.ts?n=0", 0)
	x.add("https://cdn.example/v/seg.ts?n=3", 3)
	x.add("https://cdn.example/v/a_0001.ts?token=old", 1)
	x.add("https://cdn.example/v/a_0002.ts?token=old", 2)
	x.add("https://cdn.example/v/a_0002.ts?token=new", 2) // a reload: the same segment
	for _, tc := range []struct {
		name string
		url  string
		want int // -1: none
	}{
		{"exact", "https://cdn.example/v/seg.ts?n=3", 3},
		{"exact, the other", "https://cdn.example/v/seg.ts?n=0", 0},
		{"query told apart only: never guessed", "https://cdn.example/v/seg.ts?n=9", -1},
		{"query told apart only, no query", "https://cdn.example/v/seg.ts", -1},
		{"fresh token, unique path", "https://cdn.example/v/a_0001.ts?token=fresh", 1},
		{"no query, unique path", "https://cdn.example/v/a_0001.ts", 1},
		{"reloaded twice, unique path", "https://cdn.example/v/a_0002.ts?token=newer", 2},
		{"unknown", "https://cdn.example/v/b_0001.ts", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := x.find(tc.url)
			if !ok {
				got = -1
			}
			if got != tc.want {
				t.Errorf("find(%q): got %d, want %d", tc.url, got, tc.want)
			}
		})
	}
	x.drop(func(v int) bool { return v == 1 })
	if _, ok := x.find("https://cdn.example/v/a_0001.ts?token=old"); ok {
		t.Error("find after drop: still found")
	}
}

// Segments told apart only by a query value: the browser and the recording
// get each segment's own bytes (issue 13: the browser was given segment 9's
// bytes for ?n=0, and the recording kept segment 0's at another index).
func TestCaptureSegmentsToldApartByQuery(t *testing.T) {
	media := testmedia.ForTest(t, testmedia.Small)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Path != "/v/seg.ts" || err != nil || n < 0 || n >= len(media.Segments) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "video/mp2t")
		w.Write(media.Bytes(n))
	}))
	defer srv.Close()
	pl, err := os.ReadFile(media.Playlist)
	if err != nil {
		t.Fatal(err)
	}
	pl = regexp.MustCompile(`(?m)^seg_0*(\d+)\.ts$`).ReplaceAll(pl, []byte("seg.ts?n=$1"))
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := fastOpts()
	o.Concurrency = 2
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: o, Merge: MergeOptions{KeepSegments: true}})
	browse(t, c, srv.URL+"/v/index.m3u8", pl, map[string]string{"Referer": "http://127.0.0.1/watch"})

	// The browser plays: each request is answered from disk or forwarded and tee'd.
	get := func(n int) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("%s/v/seg.ts?n=%d", srv.URL, n), nil)
		if resp := c.Respond(req); resp != nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(b, media.Bytes(n)) {
				t.Errorf("seg.ts?n=%d answered from disk with %d other bytes, want segment %d's own", n, len(b), n)
			}
			return
		}
		body := media.Bytes(n)
		tap := c.Observe(&proxy.Exchange{Req: req, Status: http.StatusOK, ContentLength: int64(len(body)),
			RespHeader: http.Header{"Content-Type": {"video/mp2t"}}, Received: time.Now()})
		if tap != nil {
			tap.Write(body)
			tap.Close(nil)
		}
	}
	for n := range media.Segments {
		get(n)
	}
	s := waitState(t, st, onlySession(t, st).ID, StateDone)
	for i := range media.Segments {
		b, err := os.ReadFile(s.Main().SegmentPath(int64(i)))
		if err != nil || !bytes.Equal(b, media.Bytes(i)) {
			t.Errorf("recorded segment %d: %d bytes (%v), want segment %d's own %d", i, len(b), err, i, len(media.Bytes(i)))
		}
	}
	for n := range media.Segments {
		get(n) // now all from disk
	}
	v, a, err := testmedia.CountPackets(context.Background(), s.Output)
	if err != nil || v != media.VideoPackets || a != media.AudioPackets {
		t.Errorf("output: video %d audio %d (%v), want %d %d", v, a, err, media.VideoPackets, media.AudioPackets)
	}
	cancel()
	c.Wait()
}
