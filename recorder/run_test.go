package recorder

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// fixture is a test origin serving real ffmpeg-made segments that demands a Referer and a cookie.
type fixture struct {
	media  *testmedia.Media
	origin *testorigin.Origin
	store  *Store
}

const (
	testReferer = "https://video.example/watch/42"
	testCookie  = "sess=c00k1e"
)

func newFixture(t *testing.T, opts testorigin.Options) *fixture {
	t.Helper()
	m := testmedia.ForTest(t, testmedia.Small)
	opts.Dir = m.Dir
	if opts.Prefix == "" {
		opts.Prefix = "/v/abc/720p/"
	}
	opts.RequireReferer = testReferer
	opts.RequireCookie = testCookie
	o := testorigin.Start(t, opts)
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{media: m, origin: o, store: st}
}

func (fx *fixture) headers() map[string]string {
	return map[string]string{"Referer": testReferer, "Cookie": testCookie}
}

// session makes a (*) session over the fixture's segments, with the count known or not.
func (fx *fixture) session(t *testing.T, known bool) *Session {
	t.Helper()
	tmpl, err := urltemplate.Placeholder(fx.origin.URL+"seg_(*).ts", 5)
	if err != nil {
		t.Fatal(err)
	}
	s := withTemplate(&Session{Source: "get", Headers: fx.headers(),
		Target: filepath.Join(t.TempDir(), "out.mp4")}, tmpl, 0, false)
	if known {
		s.Main().Last, s.Main().EndKnown = int64(len(fx.media.Segments)-1), true
	}
	if err := fx.store.Create(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkOutput asserts the output has exactly the source's video and audio packets.
func (fx *fixture) checkOutput(t *testing.T, path string) {
	t.Helper()
	v, a, err := testmedia.CountPackets(context.Background(), path)
	if err != nil {
		t.Fatalf("counting packets of %s: %v", path, err)
	}
	if v != fx.media.VideoPackets || a != fx.media.AudioPackets {
		t.Fatalf("output packets: video %d audio %d, want video %d audio %d", v, a, fx.media.VideoPackets, fx.media.AudioPackets)
	}
}

func (fx *fixture) checkEachOnce(t *testing.T) {
	t.Helper()
	for _, seg := range fx.media.Segments {
		if n := fx.origin.Completed(filepath.Base(seg)); n != 1 {
			t.Errorf("segment %s fetched to completion %d times, want exactly 1", filepath.Base(seg), n)
		}
	}
}

func fastOpts() Options {
	return Options{Concurrency: 8, Backoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, IdleTimeout: 2 * time.Second}
}

func TestRunCountedTemplate(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	s := fx.session(t, true)
	res, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Output != s.Target {
		t.Errorf("output %q, want %q", res.Output, s.Target)
	}
	fx.checkOutput(t, res.Output)
	fx.checkEachOnce(t)
	if _, err := os.Stat(s.Main().SegmentDir()); !os.IsNotExist(err) {
		t.Errorf("segments still on disk after a verified merge: %v", err)
	}
	got, err := fx.store.Load(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateDone || got.Output != s.Target {
		t.Errorf("saved session: state %q output %q, want done %q", got.State, got.Output, s.Target)
	}
	fi, err := os.Stat(filepath.Join(s.Dir(), "session.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("session.json mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	di, _ := os.Stat(s.Dir())
	if di.Mode().Perm() != 0o700 {
		t.Errorf("session dir mode %v, want 0700", di.Mode().Perm())
	}
}

// A single URL from the middle of the video: the start and the end are found by probing.
func TestRunProbesStartAndEnd(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	mid := fx.origin.URL + filepath.Base(fx.media.Segments[3])
	tmpl, err := urltemplate.Learn([]string{mid})
	if err != nil {
		t.Fatal(err)
	}
	s := withTemplate(&Session{Source: "get", Headers: fx.headers(),
		Target: filepath.Join(t.TempDir(), "probed.mp4")}, tmpl, tmpl.First, true)
	if err := fx.store.Create(s); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if m := s.Main(); m.First != 0 || m.Last != int64(len(fx.media.Segments)-1) {
		t.Errorf("probed range %d..%d, want 0..%d", m.First, m.Last, len(fx.media.Segments)-1)
	}
	fx.checkOutput(t, res.Output)
	fx.checkEachOnce(t)
}

func TestRunPlaylist(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	s := &Session{Source: "get", Playlist: fx.origin.URL + "index.m3u8", Headers: fx.headers(),
		Target: filepath.Join(t.TempDir(), "pl.mp4")}
	if err := fx.store.Create(s); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s.Total() != len(fx.media.Segments) {
		t.Errorf("playlist gave %d segments, want %d", s.Total(), len(fx.media.Segments))
	}
	fx.checkOutput(t, res.Output)
	fx.checkEachOnce(t)
}

// Faults at well over 20 % of requests, on several seeds: the output is always complete.
func TestRunSurvivesFaults(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			fx := newFixture(t, testorigin.Options{Faults: testorigin.Faults{
				Seed: seed, P500: 0.08, P429: 0.05, PReset: 0.05, PTruncate: 0.05, PHTML: 0.04, PStall: 0.03,
				RetryAfter: time.Second, Stall: 5 * time.Second, MaxPerPath: 4,
			}})
			s := fx.session(t, true)
			o := fastOpts()
			o.IdleTimeout = 300 * time.Millisecond
			o.Attempts = 3 // the final pass must pick up what the main pass gave up on
			res, err := Run(context.Background(), s, o, MergeOptions{})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			fx.checkOutput(t, res.Output)
			faults := fx.origin.FaultCounts()
			total := 0
			for _, n := range faults {
				total += n
			}
			if total == 0 {
				t.Fatal("the origin injected no faults: the test proves nothing")
			}
			if res.Retries == "" {
				t.Errorf("faults %v but no retries reported", faults)
			}
			t.Logf("faults injected %v; %s", faults, res.Retries)
		})
	}
}

// A run stopped half way leaves only complete segments; the next run fetches only what is missing.
func TestRunResumesAfterCancel(t *testing.T) {
	fx := newFixture(t, testorigin.Options{TTFB: 20 * time.Millisecond})
	s := fx.session(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	o := fastOpts()
	o.Concurrency = 2
	o.Progress = NewProgress()
	go func() {
		for o.Progress.Fetched.Load() < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := Run(ctx, s, o, MergeOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first Run: %v, want context.Canceled", err)
	}
	if s.State != StateInterrupted {
		t.Errorf("state %q, want %q", s.State, StateInterrupted)
	}
	all, _ := os.ReadDir(s.Main().SegmentDir())
	var entries []os.DirEntry
	for _, e := range all {
		switch filepath.Ext(e.Name()) {
		case ".partial":
			t.Errorf("a .partial file was left behind: %s", e.Name())
		case ".ts":
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 || len(entries) >= len(fx.media.Segments) {
		t.Fatalf("%d segments on disk after the cancel, want some but not all", len(entries))
	}
	// A body cut off by the cancel after the origin sent it whole (its last
	// bytes still in flight) is rightly fetched again; nothing on disk may be.
	lost := map[string]bool{}
	for i, seg := range fx.media.Segments {
		if name := filepath.Base(seg); fx.origin.Completed(name) > 0 && !s.Main().Have(int64(i)) {
			lost[name] = true
		}
	}
	again, err := fx.store.Load(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), again, fastOpts(), MergeOptions{})
	if err != nil {
		t.Fatalf("resumed Run: %v", err)
	}
	fx.checkOutput(t, res.Output)
	for _, seg := range fx.media.Segments {
		name := filepath.Base(seg)
		want := 1
		if lost[name] {
			want = 2
		}
		if n := fx.origin.Completed(name); n != want {
			t.Errorf("segment %s fetched to completion %d times, want %d (cut off by the cancel: %v)", name, n, want, lost[name])
		}
	}
}

// When the origin starts refusing access mid-run, the run pauses (not fails) and a fresh token resumes it.
func TestRunPausesOnExpiredToken(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	fx.origin.SetRequiredQuery("token", "old")
	tmpl, err := urltemplate.Placeholder(fx.origin.URL+"seg_(*).ts?token=old", 5)
	if err != nil {
		t.Fatal(err)
	}
	s := withTemplate(&Session{Source: "get", Headers: fx.headers(),
		Target: filepath.Join(t.TempDir(), "tok.mp4")}, tmpl, 0, false)
	s.Main().Last, s.Main().EndKnown = int64(len(fx.media.Segments)-1), true
	if err := fx.store.Create(s); err != nil {
		t.Fatal(err)
	}
	fx.origin.ExpireAfter(3)
	o := fastOpts()
	o.Concurrency = 1
	_, err = Run(context.Background(), s, o, MergeOptions{})
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("Run: %v, want ErrExpired", err)
	}
	if s.State != StatePaused {
		t.Fatalf("state %q, want %q", s.State, StatePaused)
	}
	fx.origin.SetRequiredQuery("token", "new")
	if err := s.Refresh(fx.origin.URL + "seg_00005.ts?token=new"); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	res, err := Run(context.Background(), s, o, MergeOptions{})
	if err != nil {
		t.Fatalf("Run after refresh: %v", err)
	}
	fx.checkOutput(t, res.Output)
	fx.checkEachOnce(t)
}

// A segment that never comes: the merge is refused and the index and URL are named; --allow-gaps merges the rest.
func TestRunRefusesHoles(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	s := fx.session(t, true)
	const hole = 4
	for i := 0; i < 40; i++ {
		fx.origin.Inject(fmt.Sprintf("seg_%05d.ts", hole), testorigin.Fault500)
	}
	o := fastOpts()
	o.Attempts = 2
	_, err := Run(context.Background(), s, o, MergeOptions{})
	var ie *IncompleteError
	if !errors.As(err, &ie) {
		t.Fatalf("Run: %v, want *IncompleteError", err)
	}
	if got := ie.Indices(); len(got) != 1 || got[0] != hole {
		t.Fatalf("missing %v, want [%d]", got, hole)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("seg_%05d.ts", hole)) || !strings.Contains(err.Error(), "500") {
		t.Errorf("error %q does not name the URL and the status", err)
	}
	if _, err := os.Stat(s.Target); !os.IsNotExist(err) {
		t.Fatalf("an output was written despite the hole: %v", err)
	}
	if s.State != StateIncomplete || len(s.Main().Missing) != 1 {
		t.Errorf("saved state %q missing %v, want incomplete [%d]", s.State, s.Main().Missing, hole)
	}
	res, err := Run(context.Background(), s, o, MergeOptions{AllowGaps: true})
	if err != nil {
		t.Fatalf("Run with AllowGaps: %v", err)
	}
	if len(res.Gaps) != 1 || res.Gaps[0] != hole {
		t.Errorf("gaps %v, want [%d]", res.Gaps, hole)
	}
	v, a, err := testmedia.CountPackets(context.Background(), res.Output)
	if err != nil {
		t.Fatal(err)
	}
	sv, sa, err := testmedia.CountPackets(context.Background(), fx.media.Segments[hole])
	if err != nil {
		t.Fatal(err)
	}
	if v != fx.media.VideoPackets-sv || a < fx.media.AudioPackets-sa-2 || a > fx.media.AudioPackets-sa+2 {
		t.Errorf("output with a gap: video %d audio %d, want the source's minus segment %d (%d, ~%d)", v, a, hole, fx.media.VideoPackets-sv, fx.media.AudioPackets-sa)
	}
}

// HTML with status 200 is never taken for a segment.
func TestRunRejectsHTML(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	s := fx.session(t, true)
	for i := 0; i < 20; i++ {
		fx.origin.Inject("seg_00002.ts", testorigin.FaultHTML)
	}
	o := fastOpts()
	o.Attempts = 2
	_, err := Run(context.Background(), s, o, MergeOptions{})
	if !errors.Is(err, ErrNotMedia) {
		t.Fatalf("Run: %v, want ErrNotMedia", err)
	}
	if s.Main().Have(2) {
		t.Error("the HTML page was kept as segment 2")
	}
}

// Over TLS the backfill speaks HTTP/2 when the origin offers it.
func TestRunUsesHTTP2(t *testing.T) {
	fx := newFixture(t, testorigin.Options{TLS: true, HTTP2: true})
	s := fx.session(t, true)
	o := fastOpts()
	o.Client = NewClient(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: fx.origin.CertPool()}}, o.Concurrency)
	res, err := Run(context.Background(), s, o, MergeOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	fx.checkOutput(t, res.Output)
	req, ok := fx.origin.LastRequest(filepath.Base(fx.media.Segments[0]))
	if !ok || req.Proto != "HTTP/2.0" {
		t.Errorf("segment fetched over %q, want HTTP/2.0", req.Proto)
	}
}
