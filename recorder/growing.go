package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// A growing is a segment on its way to disk that the browser may read while
// it is written: the writer (the backfill's fetch, or the tee of the browser's
// own request) publishes the origin's headers and the file it writes, then
// every chunk that reached the file; readers follow the file until it is
// complete. A failed attempt ends every reader of it with an error; the
// backfill's next attempt starts a new generation.
type growing struct {
	mu     sync.Mutex
	change chan struct{} // closed and replaced on every change
	gen    int           // attempts started
	file   string        // the file being written; "" before the first attempt
	hdr    *answer
	size   int64 // Content-Length of the attempt, -1 unknown
	n      int64 // bytes of the attempt on the file so far
	state  growState
}

type growState int

const (
	growIdle     growState = iota // no attempt yet, or the last one failed
	growWriting                   // headers published, bytes arriving
	growComplete                  // the attempt landed: the file is at its final path
	growEnded                     // the flight ended: nothing more will be written
)

func newGrowing() *growing { return &growing{change: make(chan struct{})} }

// notifyLocked wakes every reader.
func (g *growing) notifyLocked() {
	close(g.change)
	g.change = make(chan struct{})
}

// start publishes a new attempt: its file (already created) and headers.
func (g *growing) start(file string, hdr *answer, size int64) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == growEnded {
		return
	}
	g.gen++
	g.file, g.hdr, g.size, g.n, g.state = file, hdr, size, 0, growWriting
	g.notifyLocked()
}

// wrote publishes n more bytes on the file.
func (g *growing) wrote(n int) {
	if g == nil || n <= 0 {
		return
	}
	g.mu.Lock()
	g.n += int64(n)
	g.notifyLocked()
	g.mu.Unlock()
}

// finish ends the attempt: complete (the file is at its final path) or not.
func (g *growing) finish(ok bool) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != growWriting {
		return
	}
	if ok {
		g.state = growComplete
	} else {
		g.state = growIdle
	}
	g.notifyLocked()
}

// end says that no attempt will follow.
func (g *growing) end() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == growWriting {
		g.state = growIdle // an attempt that never said how it ended
	}
	if g.state != growComplete {
		g.state = growEnded
	}
	g.notifyLocked()
}

// errAttemptFailed ends a reader whose attempt failed.
var errAttemptFailed = errors.New("the copy being fetched failed")

// respond answers req from the copy on its way, as soon as its headers are
// known, with a body that follows the file as it is written: first and last
// are the request's single range (last -1: open). It returns nil when the
// copy landed (serve the file), failed or ended (forward the request), or
// when wait passed without headers.
func (g *growing) respond(req *http.Request, first, last int64, wait time.Duration) *http.Response {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		g.mu.Lock()
		state, gen, file, hdr, size, ch := g.state, g.gen, g.file, g.hdr, g.size, g.change
		g.mu.Unlock()
		switch state {
		case growComplete, growEnded:
			return nil
		case growWriting:
			return g.answer(req, gen, file, hdr, size, first, last)
		}
		if gen > 0 {
			return nil // an attempt failed: the origin answers, not a retry after a backoff
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil
		case <-req.Context().Done():
			return nil
		}
	}
}

// answer builds the response of generation gen.
func (g *growing) answer(req *http.Request, gen int, file string, hdr *answer, size, first, last int64) *http.Response {
	ranged := req.Header.Get("Range") != ""
	if ranged && size < 0 && first > 0 {
		return nil // an offset into a body of unknown length: the origin answers
	}
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	h := http.Header{}
	if hdr != nil {
		h = hdr.header(req.Header.Get("Origin"))
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", mimeFor(file))
	}
	h.Del("Content-Length")
	resp := &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: size, Request: req}
	end := size // the offset where the body ends; -1 at the end of the file, whatever its length
	if size >= 0 {
		if last < 0 || last >= size {
			last = size - 1
		}
		if first > last {
			f.Close()
			return nil
		}
		if ranged {
			resp.StatusCode = http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, size))
			if h.Get("Accept-Ranges") == "" {
				h.Set("Accept-Ranges", "bytes")
			}
			resp.ContentLength = last - first + 1
			end = last + 1
		}
		h.Set("Content-Length", fmt.Sprint(resp.ContentLength))
	} else {
		first = 0 // unknown length: the whole body, as a 200
	}
	resp.Status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	resp.Body = &follower{g: g, gen: gen, f: f, off: first, end: end, ctx: req.Context()}
	return resp
}

// followIdle is how long a reader waits for the writer's next bytes before it
// gives up (the writer's own idle timeout fails the attempt before that).
var followIdle = time.Minute

// A follower reads a growing file from off to end (-1: until complete).
type follower struct {
	g   *growing
	gen int
	f   *os.File
	off int64
	end int64
	ctx context.Context
}

func (r *follower) Read(p []byte) (int, error) {
	timer := time.NewTimer(followIdle)
	defer timer.Stop()
	for {
		if r.end >= 0 && r.off >= r.end {
			return 0, io.EOF
		}
		g := r.g
		g.mu.Lock()
		gen, state, n, ch := g.gen, g.state, g.n, g.change
		g.mu.Unlock()
		if gen != r.gen || state == growIdle || state == growEnded {
			return 0, errAttemptFailed
		}
		if avail := n - r.off; avail > 0 {
			if r.end >= 0 {
				avail = min(avail, r.end-r.off)
			}
			m, err := r.f.ReadAt(p[:min(int64(len(p)), avail)], r.off)
			r.off += int64(m)
			if m > 0 {
				return m, nil
			}
			if err != nil && err != io.EOF {
				return 0, err
			}
		}
		if state == growComplete {
			return 0, io.EOF
		}
		select {
		case <-ch:
		case <-timer.C:
			return 0, fmt.Errorf("%w: no bytes for %s", ErrStalled, followIdle)
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

func (r *follower) Close() error { return r.f.Close() }

// countWriter passes writes to w and publishes each chunk to g.
type countWriter struct {
	w io.Writer
	g *growing
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.g.wrote(n)
	return n, err
}
