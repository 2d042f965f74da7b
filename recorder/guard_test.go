package recorder

import (
	"bytes"
	"context"
	"errors"
	"github.com/streamsnatcher/streamsnatcher/plan"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

func TestPrivateAddr(t *testing.T) {
	tests := []struct {
		addr    string
		private bool
	}{
		{"127.0.0.1", true}, {"127.8.9.10", true}, {"::1", true}, {"10.0.0.1", true}, {"172.16.0.1", true},
		{"172.31.255.255", true}, {"172.32.0.1", false}, {"192.168.1.1", true}, {"169.254.169.254", true},
		{"fe80::1", true}, {"fc00::1", true}, {"fd12::1", true}, {"::ffff:10.0.0.1", true}, {"::ffff:127.0.0.1", true},
		{"0.0.0.0", true}, {"::", true}, {"100.64.0.1", true}, {"100.127.255.255", true}, {"100.128.0.1", false},
		{"224.0.0.1", true}, {"93.184.216.34", false}, {"2606:2800:220:1::", false}, {"8.8.8.8", false},
	}
	for _, tc := range tests {
		if got := PrivateAddr(netip.MustParseAddr(tc.addr)); got != tc.private {
			t.Errorf("PrivateAddr(%s): got %v, want %v", tc.addr, got, tc.private)
		}
	}
}

// The dial-time hook checks the address a name resolved to, so a name rebound
// to a private address is refused like the literal.
func TestGuardControl(t *testing.T) {
	public := NewGuard("https://site.example/watch", false, "cdn.example")
	for _, addr := range []string{"127.0.0.1:443", "[::1]:80", "10.1.2.3:80", "169.254.169.254:80", "[::ffff:192.168.0.1]:443"} {
		if err := public.Control("tcp4", addr, nil); !errors.Is(err, ErrGuarded) {
			t.Errorf("Control(%s) for a public page: %v, want ErrGuarded", addr, err)
		}
	}
	if err := public.Control("tcp4", "93.184.216.34:443", nil); err != nil {
		t.Errorf("Control(public address): %v", err)
	}
	if err := NewGuard("http://127.0.0.1:8000/", true).Control("tcp4", "127.0.0.1:9000", nil); err != nil {
		t.Errorf("Control(loopback) for a loopback page: %v", err)
	}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://cdn.example/v/1.ts?token=x", true},
		{"https://CDN.example:8443/v/1.ts", true},
		{"https://other.example/v/1.ts", false},
		{"http://127.0.0.1/v/1.ts", false},
	} {
		if err := public.CheckURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("CheckURL(%s): %v, want allowed %v", tc.url, err, tc.ok)
		}
	}
}

// A page on the internet names a playlist on a loopback address: the capture
// refuses to record it, saying why, and contacts nothing.
func TestCaptureRefusesPrivatePlaylistFromPublicPage(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	var logs lockedBuffer
	o := fastOpts()
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, fx.store, CaptureOptions{Run: o})
	const page = "https://evil.example/watch"
	seePage(c, page, "93.184.216.34:443")
	pl, err := os.ReadFile(fx.media.Playlist)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"Referer": page, "Cookie": testCookie}
	tap := c.Observe(playlistExchange(fx.origin.URL+"index.m3u8", h))
	if tap != nil {
		tap.Write(pl)
		tap.Close(nil)
	}
	c.Wait()
	if list, _ := fx.store.List(); len(list) != 0 {
		t.Errorf("%d sessions from a private-address playlist on a public page, want none", len(list))
	}
	if n := fx.origin.TotalHits(); n != 0 {
		t.Errorf("the recorder made %d requests to the private origin", n)
	}
	if out := logs.String(); !strings.Contains(out, "playlist not recorded") ||
		!strings.Contains(out, "127.0.0.1 is a loopback, private or link-local address and the page https://evil.example/watch did not come from one") {
		t.Errorf("no clear message in the logs:\n%s", out)
	}
}

// The backfill of a captured stream only contacts the hosts the page used for
// it: a segment the playlist puts on another host is refused until the
// browser itself fetched something from there.
func TestGuardLimitsTheBackfillToThePagesHosts(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	s := fx.session(t, true)
	other := strings.Replace(fx.origin.URL, "127.0.0.1", "localhost", 1) // same server, a host the page never used
	m := s.Main()
	m.Template = nil
	for i := range fx.media.Segments {
		base := fx.origin.URL
		if i == 3 {
			base = other
		}
		m.Segments = append(m.Segments, plan.Segment{URL: base + filepath.Base(fx.media.Segments[i]), Sequence: int64(i)})
	}
	m.First, m.Last, m.EndKnown = 0, int64(len(m.Segments)-1), true
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	o := fastOpts()
	o.Attempts = 1
	o.Guard = NewGuard("http://127.0.0.1/watch", true, fx.origin.URL)
	_, err := Run(context.Background(), s, o, MergeOptions{})
	var ie *IncompleteError
	if !errors.As(err, &ie) || !errors.Is(err, ErrGuarded) || len(ie.Failed) != 1 || ie.Failed[0].Index != 3 {
		t.Fatalf("Run with a segment on a host the page did not use: %v, want segment 3 refused by the guard", err)
	}
	if fx.origin.Hits(filepath.Base(fx.media.Segments[3])) != 0 {
		t.Errorf("the guarded segment was requested")
	}
	o.Guard.Allow(other) // the browser fetched from there
	res, err := Run(context.Background(), s, o, MergeOptions{})
	if err != nil {
		t.Fatalf("Run once the host was used by the page: %v", err)
	}
	fx.checkOutput(t, res.Output)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func playlistExchange(u string, h map[string]string) *proxy.Exchange {
	req := httptest.NewRequest(http.MethodGet, u, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	return &proxy.Exchange{Req: req, Status: http.StatusOK, ContentLength: -1, Received: time.Now(),
		RespHeader: http.Header{"Content-Type": {"application/vnd.apple.mpegurl"}}, RemoteAddr: "127.0.0.1:1"}
}
