package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// fullDisk makes createSegmentFile accept `room` files and then fail every
// write with ENOSPC, as a full disk does, until the returned func restores it.
func fullDisk(t *testing.T, room int) {
	t.Helper()
	orig := createSegmentFile
	var mu sync.Mutex
	created := 0
	createSegmentFile = func(name string) (io.WriteCloser, error) {
		f, err := orig(name)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		created++
		if created > room {
			return enospcFile{f}, nil
		}
		return f, nil
	}
	t.Cleanup(func() { createSegmentFile = orig })
}

type enospcFile struct{ io.WriteCloser }

func (enospcFile) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
}

// TestRunDiskFull: ENOSPC stops the run at once (no retries against a full
// disk), keeps every complete segment, leaves no .partial, and a later run
// resumes and fetches only what is missing.
func TestRunDiskFull(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	s := fx.session(t, true)
	o := fastOpts()
	o.Concurrency = 2
	o.Progress = NewProgress()
	fullDisk(t, 3)
	_, err := Run(context.Background(), s, o, MergeOptions{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Run on a full disk: err %v, want ENOSPC", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "no space left") {
		t.Errorf("error %q: want one line naming the full disk", msg)
	}
	fullErr := err.Error()
	var ie *IncompleteError
	if errors.As(err, &ie) {
		t.Errorf("a full disk reported as missing segments: %v", err)
	}
	// Each worker may start one more request before it sees the stop, and one
	// after that already dispatched: retries would be many times more.
	attempts := o.Progress.Attempts.Load()
	if bound := int64(3 + 2*o.Concurrency); attempts > bound {
		t.Errorf("%d requests on a full disk, want at most %d (no retries)", attempts, bound)
	}
	// The third file may have been in flight when the fourth hit the full disk.
	kept := s.Done()
	if kept < 2 {
		t.Errorf("%d segments kept, want at least the 2 written before the disk filled", kept)
	}
	served := map[int64]int{}
	for _, i := range s.Main().Indices() {
		if s.Main().Have(i) {
			served[i] = fx.origin.Completed(filepath.Base(fx.media.Segments[i]))
		}
	}
	if p, _ := filepath.Glob(filepath.Join(s.Main().SegmentDir(), "*.partial")); len(p) > 0 {
		t.Errorf(".partial files left: %v", p)
	}
	re, err := fx.store.Load(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if re.State != StateInterrupted && re.State != StateIncomplete {
		t.Errorf("saved state %q, want a resumable one", re.State)
	}
	t.Logf("full disk: %q after %d requests; %d segments kept", fullErr, attempts, kept)

	createSegmentFile = func(name string) (io.WriteCloser, error) {
		return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	}
	res, err := Run(context.Background(), re, fastOpts(), MergeOptions{})
	if err != nil {
		t.Fatalf("resume after freeing space: %v", err)
	}
	fx.checkOutput(t, res.Output)
	for i, n := range served {
		if now := fx.origin.Completed(filepath.Base(fx.media.Segments[i])); now != n {
			t.Errorf("segment %d was kept on disk, yet the resume fetched it again", i)
		}
	}
}

// TestRunTooLarge: a segment over the size cap is refused with ErrTooLarge,
// never written, and not retried within a pass.
func TestRunTooLarge(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	s := fx.session(t, true)
	o := fastOpts()
	o.MaxSegmentBytes = 1000 // every real segment is bigger
	o.Progress = NewProgress()
	_, err := Run(context.Background(), s, o, MergeOptions{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Run with a 1000-byte cap: err %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "1000 byte cap") {
		t.Errorf("error %q does not name the cap", err)
	}
	n := int64(len(fx.media.Segments))
	if a := o.Progress.Attempts.Load(); a > 2*n {
		t.Errorf("%d requests for %d oversized segments, want at most one per pass (%d)", a, n, 2*n)
	}
	if d := s.Done(); d != 0 {
		t.Errorf("%d oversized segments written", d)
	}
	if p, _ := filepath.Glob(filepath.Join(s.Main().SegmentDir(), "*.partial")); len(p) > 0 {
		t.Errorf(".partial files left: %v", p)
	}
}

// TestFetchTooLargeWithoutLength: a body with no Content-Length is cut off at the cap.
func TestFetchTooLargeWithoutLength(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp2t")
		pkt := make([]byte, 188)
		pkt[0] = 0x47
		for i := 0; i < 1<<14; i++ { // 3 MB, chunked
			n, err := w.Write(pkt)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	f := &fetcher{client: srv.Client(), maxBytes: 64 << 10}
	_, err := f.fetch(context.Background(), srv.URL+"/seg_1.ts", filepath.Join(dir, "1.ts"), true)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("fetch of an endless body: err %v, want ErrTooLarge", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("files left after a refused body: %v", entries)
	}
}

// TestProbeBounded: an origin that answers media for every index would make
// probing run forever; it must stop within its budget with ErrProbeLimit.
func TestProbeBounded(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "video/mp2t")
		pkt := make([]byte, 188*2)
		pkt[0], pkt[188] = 0x47, 0x47
		w.Write(pkt)
	}))
	defer srv.Close()
	for _, budget := range []int{1, 10, 64} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			hits.Store(0)
			st, err := NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			tmpl, err := urltemplate.Learn([]string{srv.URL + "/v/seg_5.ts"})
			if err != nil {
				t.Fatal(err)
			}
			s := withTemplate(&Session{Source: "get",
				Target: filepath.Join(t.TempDir(), "out.mp4")}, tmpl, tmpl.First, true)
			if err := st.Create(s); err != nil {
				t.Fatal(err)
			}
			o := fastOpts()
			o.MaxProbes = budget
			_, err = Run(context.Background(), s, o, MergeOptions{NoMerge: true})
			if !errors.Is(err, ErrProbeLimit) {
				t.Fatalf("Run against an endless origin: err %v, want ErrProbeLimit", err)
			}
			if !strings.Contains(err.Error(), "--count") {
				t.Errorf("error %q gives no way out", err)
			}
			if h := hits.Load(); h > int64(budget) {
				t.Errorf("%d requests with a budget of %d", h, budget)
			}
			if s.State != StateFailed {
				t.Errorf("state %q, want failed", s.State)
			}
		})
	}
}

// TestRedactSecrets: tokens and passwords never survive Redact, even in URLs
// that url.Parse refuses.
func TestRedactSecrets(t *testing.T) {
	tests := []struct{ name, in, keep string }{
		{"token query", "https://cdn.example.com/v/1.ts?token=SECRET1&n=2", "n=2"},
		{"user info", "https://user:SECRET1@cdn.example.com/v/1.ts", "cdn.example.com"},
		{"bad escape", "https://cdn.example.com/v/%zz.ts?token=SECRET1&n=2", "n=2"},
		{"bad escape and user", "https://u:SECRET1@cdn.example.com/%zz?sig=SECRET1", "cdn.example.com"},
		{"long opaque value", "https://cdn.example.com/v/1.ts?x=SECRET1SECRET1SECRET1SECRET1", "cdn.example.com"},
		{"bad host and query", "http://[::1/a?hdnts=SECRET1#frag", "#frag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Redact(tc.in)
			if strings.Contains(got, "SECRET1") || !strings.Contains(got, tc.keep) {
				t.Errorf("Redact(%q) = %q: want no secret and %q kept", tc.in, got, tc.keep)
			}
		})
	}
}
