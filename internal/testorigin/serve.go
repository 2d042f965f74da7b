package testorigin

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

const defaultPage = `<!doctype html>
<html><head><title>testorigin</title></head>
<body><video controls src="{{URL}}"></video></body></html>
`

const htmlErrorPage = `<!doctype html>
<html><head><title>Error</title></head>
<body><h1>503 Service Temporarily Unavailable</h1><p>Please try again later.</p></body></html>
`

func (o *Origin) serveHTTP(w http.ResponseWriter, r *http.Request) {
	k := r.URL.Path
	o.mu.Lock()
	o.hits[k]++
	o.last[k] = Request{Method: r.Method, RequestURI: r.RequestURI, Proto: r.Proto, Header: r.Header.Clone()}
	o.mu.Unlock()

	status, note := 0, ""
	if o.opts.Logf != nil {
		defer func() {
			o.logf("testorigin: %s %s %q -> %d %s", r.Method, r.RequestURI, r.Header.Get("Range"), status, note)
		}()
	}
	if err := o.sleep(r.Context(), o.opts.TTFB); err != nil {
		note = "gone during TTFB"
		return
	}
	if k == o.pagePath {
		status = o.servePage(w)
		return
	}
	if !strings.HasPrefix(k, o.prefix) || o.root == nil {
		status = http.StatusNotFound
		http.NotFound(w, r)
		return
	}
	rel := strings.TrimPrefix(k, o.prefix)
	kd := classify(rel)
	if reason := o.deny(r, kd); reason != "" {
		status, note = http.StatusForbidden, reason
		http.Error(w, "403 forbidden: "+reason, status)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		status = http.StatusMethodNotAllowed
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", status)
		return
	}
	f, size, err := o.open(rel)
	if err != nil {
		status, note = http.StatusNotFound, err.Error()
		http.NotFound(w, r)
		return
	}
	defer f.Close()

	fault := o.pickFault(k, kd, r.Method)
	note = string(fault)
	switch fault {
	case Fault500:
		status = http.StatusInternalServerError
		http.Error(w, "500 internal server error", status)
		return
	case Fault429:
		status = http.StatusTooManyRequests
		secs := (o.opts.Faults.RetryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
		http.Error(w, "429 too many requests", status)
		return
	case FaultHTML:
		status = http.StatusOK
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(htmlErrorPage)))
		w.WriteHeader(status)
		io.WriteString(w, htmlErrorPage)
		return
	}

	start, n, partial, ok := parseRange(r.Header.Get("Range"), size)
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	if !ok {
		status = http.StatusRequestedRangeNotSatisfiable
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		http.Error(w, "416 range not satisfiable", status)
		return
	}
	status = http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+n-1, size))
	}
	h.Set("Content-Type", contentType(rel))
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}

	if fault == FaultReset || fault == FaultTruncate || fault == FaultStall {
		if err := o.copyBody(r.Context(), w, f, start, n/2); err != nil {
			note += " write: " + err.Error()
			return
		}
		o.fail(w, r, fault)
		return
	}
	// Count the response as completed before its last byte goes out, so that a client that has
	// read the whole body always finds it counted; take it back if that byte cannot be written.
	complete := start == 0 && n == size
	rc := http.NewResponseController(w)
	if n > 0 {
		if err := o.copyBody(r.Context(), w, f, start, n-1); err != nil {
			note += " write: " + err.Error()
			return
		}
		if err := rc.Flush(); err != nil {
			note += " flush: " + err.Error()
			return
		}
	}
	o.countCompleted(k, complete, 1)
	if n > 0 {
		err = o.copyBody(r.Context(), w, f, start+n-1, 1)
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			o.countCompleted(k, complete, -1)
			note += " write: " + err.Error()
		}
	}
}

func (o *Origin) countCompleted(k string, complete bool, delta int) {
	if complete {
		o.mu.Lock()
		o.completed[k] += delta
		o.mu.Unlock()
	}
}

// fail ends a response whose headers and first half are written, as the fault says.
func (o *Origin) fail(w http.ResponseWriter, r *http.Request, fault Fault) {
	rc := http.NewResponseController(w)
	switch fault {
	case FaultTruncate:
		// Returning with fewer bytes than Content-Length makes net/http close the connection.
	case FaultReset:
		rc.Flush()
		o.reset(rc)
	case FaultStall:
		rc.Flush()
		if o.opts.Faults.Stall > 0 {
			o.sleep(r.Context(), o.opts.Faults.Stall)
		} else {
			select {
			case <-r.Context().Done():
			case <-o.done:
			}
		}
		panic(http.ErrAbortHandler)
	}
}

func (o *Origin) servePage(w http.ResponseWriter) int {
	if o.cookie != nil {
		http.SetCookie(w, o.cookie)
	}
	body := o.opts.PageHTML
	if body == "" {
		body = defaultPage
	}
	body = strings.ReplaceAll(body, "{{URL}}", o.URL)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, body)
	return http.StatusOK
}

// deny returns why r is refused, or "". Referer and cookie guard segments, playlists and keys;
// the token query and expiry guard segments.
func (o *Origin) deny(r *http.Request, kd kind) (reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	defer func() {
		if reason != "" {
			o.forbidden++
		}
	}()
	if kd == kindOther {
		return ""
	}
	if o.opts.RequireReferer != "" && r.Referer() != o.opts.RequireReferer {
		return "referer"
	}
	if o.cookie != nil {
		c, err := r.Cookie(o.cookie.Name)
		if err != nil || c.Value != o.cookie.Value {
			return "cookie"
		}
	}
	if kd != kindSegment {
		return ""
	}
	if o.queryKey != "" && r.URL.Query().Get(o.queryKey) != o.queryValue {
		return "token"
	}
	if o.expired {
		return "expired"
	}
	switch {
	case o.expireLeft == 0:
		o.expired = true
		return "expired"
	case o.expireLeft > 0:
		o.expireLeft--
	}
	return ""
}

func (o *Origin) open(rel string) (*os.File, int64, error) {
	rel = path.Clean(rel)
	if !fs.ValidPath(rel) {
		return nil, 0, fs.ErrNotExist
	}
	f, err := o.root.Open(rel)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fs.ErrNotExist
	}
	return f, fi.Size(), nil
}

// pickFault returns the fault for this request of path k, or "": a scripted one first, else a
// random one for segment GETs while the path is under MaxPerPath.
func (o *Origin) pickFault(k string, kd kind, method string) Fault {
	if method != http.MethodGet {
		return ""
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var f Fault
	if q := o.scripted[k]; len(q) > 0 {
		f = q[0]
		o.scripted[k] = q[1:]
	} else {
		if kd != kindSegment || !o.opts.Faults.enabled() {
			return ""
		}
		attempt := o.attempts[k]
		o.attempts[k]++
		if m := o.opts.Faults.MaxPerPath; m > 0 && o.faulted[k] >= m {
			return ""
		}
		f = o.opts.Faults.draw(k, attempt)
	}
	if f != "" {
		o.faulted[k]++
		o.faultCounts[f]++
	}
	return f
}

// reset closes the connection abruptly: RST over HTTP/1 (plain or TLS), a stream reset over HTTP/2.
func (o *Origin) reset(rc *http.ResponseController) {
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn() // no close_notify: the peer must see a reset, not a clean end
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	raw.Close()
}

// parseRange interprets a single "bytes=" range against size. ok is false when the range cannot
// be satisfied (416); a missing, multi-part or malformed header selects the whole file.
func parseRange(h string, size int64) (start, n int64, partial, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, size, false, true
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, size, false, true
	}
	if first == "" { // suffix: the last N bytes
		suffix, err := strconv.ParseInt(last, 10, 64)
		if err != nil || suffix < 0 {
			return 0, size, false, true
		}
		if suffix == 0 || size == 0 {
			return 0, 0, false, false
		}
		suffix = min(suffix, size)
		return size - suffix, suffix, true, true
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return 0, size, false, true
	}
	b := size - 1
	if last != "" {
		b, err = strconv.ParseInt(last, 10, 64)
		if err != nil || b < a {
			return 0, size, false, true
		}
		b = min(b, size-1)
	}
	if a >= size {
		return 0, 0, false, false
	}
	return a, b - a + 1, true, true
}

// copyBody writes n bytes of f from off, in chunks paced by the connection and total buckets.
func (o *Origin) copyBody(ctx context.Context, w io.Writer, f *os.File, off, n int64) error {
	conn, _ := ctx.Value(connBucketKey{}).(*bucket)
	chunk := int64(32 << 10)
	if rate := minRate(conn, o.totalRate); rate > 0 {
		chunk = min(max(rate/50, 2<<10), 32<<10) // ~20ms of data per chunk
	}
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := (*bufp)[:chunk]
	for sent := int64(0); sent < n; {
		m := min(chunk, n-sent)
		if conn != nil || o.totalRate != nil {
			now := time.Now()
			var wait time.Duration
			if conn != nil {
				wait = conn.reserve(now, m)
			}
			if o.totalRate != nil {
				wait = max(wait, o.totalRate.reserve(now, m))
			}
			// Short waits are carried as debt in the buckets and paid by a later, longer sleep.
			if wait >= 2*time.Millisecond {
				if err := o.sleep(ctx, wait); err != nil {
					return err
				}
			}
		}
		rn, err := f.ReadAt(buf[:m], off+sent)
		if int64(rn) < m {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read file: %w", err)
		}
		wn, err := w.Write(buf[:rn])
		sent += int64(wn)
		o.bytesSent.Add(int64(wn))
		if err != nil {
			return err
		}
	}
	return nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
