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

	mu     sync.Mutex
	fault  func(w http.ResponseWriter, r *http.Request) bool // answers instead of the files when it returns true
	served map[string]int                                    // complete 200 responses, by path
}

func newBroadcaster(t *testing.T) *broadcaster {
	t.Helper()
	b := &broadcaster{dir: t.TempDir(), done: make(chan error, 1), served: map[string]int{}}
	files := http.FileServer(http.Dir(b.dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		fault := b.fault
		b.mu.Unlock()
		if fault != nil && fault(w, r) {
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		cw := &servedWriter{ResponseWriter: w, code: http.StatusOK}
		files.ServeHTTP(cw, r)
		if cw.code == http.StatusOK && fmt.Sprint(cw.n) == w.Header().Get("Content-Length") {
			b.mu.Lock()
			b.served[r.URL.Path]++
			b.mu.Unlock()
		}
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

// servedCount is how many complete 200 responses the broadcaster gave for path.
func (b *broadcaster) servedCount(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.served[path]
}

// servedWriter notes a response's status and the body bytes written.
type servedWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (w *servedWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *servedWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}
