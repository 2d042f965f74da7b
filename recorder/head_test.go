package recorder

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// The fetcher shows a segment's first headSize bytes, once, while the body is still arriving (the merge starts
// ffmpeg on them); a body shorter than that is shown whole when it ends, and nothing is shown of a body that
// is not media.
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
	f := &fetcher{client: srv.Client(), maxBytes: 64 << 20, head: func(path string, b []byte) {
		heads <- shown{path, bytes.Clone(b)}
		if filepath.Base(path) == "0.ts" {
			close(release)
		}
	}}

	p := filepath.Join(dir, "0.ts")
	if _, err := f.fetch(context.Background(), srv.URL+"/seg.ts", p, true); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if got := <-heads; got.path != p || !bytes.Equal(got.b, seg[:headSize]) {
		t.Errorf("head of a segment: %s, %d bytes; want %s, its first %d bytes", got.path, len(got.b), p, headSize)
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, seg) {
		t.Errorf("segment file: %d bytes, %v; want the whole segment", len(b), err)
	}

	p = filepath.Join(dir, "1.ts")
	if _, err := f.fetch(context.Background(), srv.URL+"/short.ts", p, true); err != nil {
		t.Fatalf("fetch of a short body: %v", err)
	}
	if got := <-heads; got.path != p || !bytes.Equal(got.b, short) {
		t.Errorf("head of a short body: %s, %d bytes; want %s, all %d bytes", got.path, len(got.b), p, len(short))
	}

	if _, err := f.fetch(context.Background(), srv.URL+"/page.ts", filepath.Join(dir, "2.ts"), true); err == nil {
		t.Fatal("fetch of a page: no error")
	}
	select {
	case got := <-heads:
		t.Errorf("a page's head was shown: %s, %q", got.path, got.b)
	default:
	}
}
