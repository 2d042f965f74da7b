package recorder

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// TestProgressCountsBytesInFlight: while a segment's body arrives its bytes are
// InFlight, not yet Bytes; when the body ends, whole or cut off, they leave
// InFlight, and only a whole body is counted in Bytes. The origin sends half of
// one segment and holds the rest until the test has looked.
func TestProgressCountsBytesInFlight(t *testing.T) {
	media := testmedia.ForTest(t, testmedia.Small)
	const held = 2 // the segment whose body is held half-way
	var total int64
	for i := range media.Segments {
		total += int64(len(media.Bytes(i)))
	}
	body := media.Bytes(held)
	half := int64(len(body) / 2)

	for _, tc := range []struct {
		name   string
		cutOff bool // the held body's first answer is cut off after the half, and the retry is whole
	}{
		{name: "whole body"},
		{name: "cut off, then retried", cutOff: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			halfSent := make(chan struct{})
			release := make(chan struct{})
			var once sync.Once
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/seg_"), ".ts"))
				if err != nil || i < 0 || i >= len(media.Segments) {
					http.NotFound(w, r)
					return
				}
				b := media.Bytes(i)
				w.Header().Set("Content-Type", "video/mp2t")
				w.Header().Set("Content-Length", strconv.Itoa(len(b)))
				first := false
				if i == held {
					once.Do(func() { first = true })
				}
				if !first {
					w.Write(b)
					return
				}
				w.Write(b[:half])
				w.(http.Flusher).Flush()
				close(halfSent)
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				if tc.cutOff {
					panic(http.ErrAbortHandler) // the client sees the body end early
				}
				w.Write(b[half:])
			}))
			defer srv.Close()

			st, err := NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			tmpl, err := urltemplate.Placeholder(srv.URL+"/seg_(*).ts", 5)
			if err != nil {
				t.Fatal(err)
			}
			s := known(withTemplate(&Session{Source: "get", Target: filepath.Join(t.TempDir(), "out.mp4")}, tmpl, 0, false),
				int64(len(media.Segments)-1))
			if err := st.Create(s); err != nil {
				t.Fatal(err)
			}
			p := NewProgress()
			o := fastOpts()
			o.Progress = p
			o.IdleTimeout = time.Minute // the held body is not stalled
			o.MinRate = -1              // nor too slow
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := Run(ctx, s, o, MergeOptions{NoMerge: true})
				done <- err
			}()

			select {
			case <-halfSent:
			case err := <-done:
				t.Fatalf("Run ended (%v) before the held segment was asked for", err)
			case <-time.After(30 * time.Second):
				t.Fatal("the held segment was never asked for")
			}
			// The half is on its way to the fetcher: wait until it is counted.
			for deadline := time.Now().Add(10 * time.Second); p.InFlight.Load() != half; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("InFlight %d with half of segment %d (%d bytes) received, want %d", p.InFlight.Load(), held, half, half)
				}
			}
			if b := p.Bytes.Load(); b > total-int64(len(body)) {
				t.Errorf("Bytes %d while segment %d is half-way: more than the other segments' %d", b, held, total-int64(len(body)))
			}
			if have, _ := p.Estimate(); have < half {
				t.Errorf("Estimate has %d bytes, less than the %d in flight", have, half)
			}

			close(release)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not end once the body was released")
			}
			if got := p.InFlight.Load(); got != 0 {
				t.Errorf("InFlight %d after the run, want 0", got)
			}
			if got := p.Bytes.Load(); got != total {
				t.Errorf("Bytes %d after the run, want %d (each segment once%s)", got, total, map[bool]string{true: ", the cut-off body not counted"}[tc.cutOff])
			}
			if tc.cutOff && p.Attempts.Load() <= int64(len(media.Segments)) {
				t.Errorf("%d attempts for %d segments: the cut-off body was not retried", p.Attempts.Load(), len(media.Segments))
			}
		})
	}
}
