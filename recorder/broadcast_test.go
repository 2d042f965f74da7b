package recorder

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// A broadcaster serves on loopback what an ffmpeg -re live broadcast writes
// into dir, with the faults a test injects. Live HLS and live DASH sources
// embed it.
type broadcaster struct {
	dir  string
	base string     // the server's URL
	done chan error // ffmpeg's exit

	mu    sync.Mutex
	fault func(w http.ResponseWriter, r *http.Request) bool // answers instead of the files when it returns true
}

func newBroadcaster(t *testing.T) *broadcaster {
	t.Helper()
	b := &broadcaster{dir: t.TempDir(), done: make(chan error, 1)}
	files := http.FileServer(http.Dir(b.dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		fault := b.fault
		b.mu.Unlock()
		if fault != nil && fault(w, r) {
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	b.base = srv.URL
	return b
}

// run starts ffmpeg with args; its exit (with its stderr) arrives on done.
func (b *broadcaster) run(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		b.done <- err
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
}

func (b *broadcaster) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	b.mu.Lock()
	b.fault = f
	b.mu.Unlock()
}
