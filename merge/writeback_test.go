package merge

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// writeback follows a file that appears late and grows, and returns as soon as done is closed; on Linux the
// write-out it starts is accepted by the kernel for a regular file.
func TestWriteback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.mp4.partial")
	done := make(chan struct{})
	returned := make(chan struct{})
	go func() {
		writeback(path, done)
		close(returned)
	}()
	time.Sleep(2 * writebackEvery) // the file does not exist yet
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for range 2 * writebackChunk / len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * writebackEvery)
	close(done)
	select {
	case <-returned:
	case <-time.After(time.Second):
		t.Fatal("writeback did not return after done was closed")
	}

	err = startWriteOut(f, 0, writebackChunk)
	switch {
	case runtime.GOOS == "linux" && err != nil:
		t.Errorf("startWriteOut of a regular file: %v", err)
	case runtime.GOOS != "linux" && err == nil:
		t.Error("startWriteOut outside Linux: nil, want errors.ErrUnsupported")
	}
	f.Close()
	if err := startWriteOut(f, 0, writebackChunk); err == nil {
		t.Error("startWriteOut of a closed file: nil error")
	}
}
