package recorder

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// The fetcher shows the first headSize bytes of the segment it is told of (headPath), once, while the body is
// still arriving (the merge starts ffmpeg on them); a body shorter than that is shown whole when it ends, and
// nothing is shown of another segment or of a body that is not media.
func TestFetcherShowsTheHead(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	seg := m.Bytes(0)
	short := seg[:3*188]
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp2t")
		switch r.URL.Path {
		case "/seg.ts":
			w.Write(seg[:headSize+1000])
			w.(http.Flusher).Flush()
			<-release // the rest only after the head was shown
			w.Write(seg[headSize+1000:])
		case "/short.ts":
			w.Write(short)
		default:
			w.Write([]byte("<!doctype html><html>not media</html>"))
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	type shown struct {
		path string
		b    []byte
	}
	heads := make(chan shown, 10)
	f := &fetcher{client: srv.Client(), maxBytes: 64 << 20}
	f.head = func(b []byte) {
		heads <- shown{f.headPath, bytes.Clone(b)}
		if filepath.Base(f.headPath) == "0.ts" {
			close(release)
		}
	}

	next := func() shown {
		t.Helper()
		select {
		case got := <-heads:
			return got
		case <-time.After(10 * time.Second):
			t.Fatal("no head shown within 10 s")
			return shown{}
		}
	}

	p := filepath.Join(dir, "0.ts")
	f.headPath = p
	if _, err := f.fetch(context.Background(), srv.URL+"/seg.ts", p, true); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if got := next(); got.path != p || !bytes.Equal(got.b, seg[:headSize]) {
		t.Errorf("head of a segment: %s, %d bytes; want %s, its first %d bytes", got.path, len(got.b), p, headSize)
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, seg) {
		t.Errorf("segment file: %d bytes, %v; want the whole segment", len(b), err)
	}

	// Another segment's head is not shown.
	if _, err := f.fetch(context.Background(), srv.URL+"/short.ts", filepath.Join(dir, "9.ts"), true); err != nil {
		t.Fatalf("fetch of another segment: %v", err)
	}
	select {
	case got := <-heads:
		t.Errorf("the head of a segment other than %s was shown: %d bytes", f.headPath, len(got.b))
	default:
	}

	// A segment the browser reads as it arrives (a capture's claim) is shown too.
	p = filepath.Join(dir, "3.ts")
	f.headPath = p
	if _, err := f.fetchShown(context.Background(), srv.URL+"/short.ts", nil, p, true, nil, newGrowing()); err != nil {
		t.Fatalf("fetch shown to the browser: %v", err)
	}
	if got := next(); got.path != p || !bytes.Equal(got.b, short) {
		t.Errorf("head of a segment shown to the browser: %s, %d bytes; want %s, all %d bytes", got.path, len(got.b), p, len(short))
	}

	p = filepath.Join(dir, "1.ts")
	f.headPath = p
	if _, err := f.fetch(context.Background(), srv.URL+"/short.ts", p, true); err != nil {
		t.Fatalf("fetch of a short body: %v", err)
	}
	if got := next(); got.path != p || !bytes.Equal(got.b, short) {
		t.Errorf("head of a short body: %s, %d bytes; want %s, all %d bytes", got.path, len(got.b), p, len(short))
	}

	f.headPath = filepath.Join(dir, "2.ts")
	if _, err := f.fetch(context.Background(), srv.URL+"/page.ts", f.headPath, true); err == nil {
		t.Fatal("fetch of a page: no error")
	}
	select {
	case got := <-heads:
		t.Errorf("a page's head was shown: %s, %q", got.path, got.b)
	default:
	}
}
