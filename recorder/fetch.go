package recorder

import (
	"bytes"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/streamsnatcher/streamsnatcher/media"
	"github.com/streamsnatcher/streamsnatcher/plan"
)

// Sentinel errors callers branch on.
var (
	// ErrExpired means the origin refused access (401/403): a token, cookie or
	// header is missing or has expired. Retrying will not help; new headers will.
	ErrExpired = errors.New("access refused")
	// ErrNotMedia means a body was not a media segment (an HTML error page, JSON, ...).
	ErrNotMedia = errors.New("not media")
	// ErrNotFound means the origin has no such segment (404/410).
	ErrNotFound = errors.New("no such segment")
	// ErrTooLarge means a body exceeded the size cap.
	ErrTooLarge = errors.New("response too large")
	// ErrStalled means a body stopped arriving for longer than the idle timeout.
	ErrStalled = errors.New("stalled")
	// ErrTruncated means a body ended before its Content-Length.
	ErrTruncated = errors.New("truncated")
)

// A StatusError is an HTTP status other than success.
type StatusError struct {
	URL        string
	Code       int
	RetryAfter time.Duration // from a Retry-After header, if any
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: status %d %s", redactURL(e.URL), e.Code, http.StatusText(e.Code))
}

// Unwrap maps the status onto the sentinel errors.
func (e *StatusError) Unwrap() error {
	switch e.Code {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrExpired
	case http.StatusNotFound, http.StatusGone:
		return ErrNotFound
	}
	return nil
}

// fetcher downloads single segments: bounded, validated, written to .partial
// and renamed only when complete.
type fetcher struct {
	client      *http.Client
	headers     http.Header
	idleTimeout time.Duration
	maxBytes    int64
	blocks      []cipher.Block // the track's AES-128 keys, 1-based as segments name them; nil when clear
	minFree     int64          // free-space floor of the segment's disk (see Options.MinFreeBytes)
	minRate     int64          // bytes/s a body must average over each rateWindow; 0: no floor
	rateWindow  time.Duration
	inflight    *atomic.Int64 // if set, counts the bytes of segment bodies still arriving
	// subtitles: the track's segments are WebVTT, and sniffing wants that rather than audio or video.
	subtitles bool
	// answers: keep the origin's headers beside each segment (see answer), for a capture that answers the
	// browser from these files. get and replay have no browser to answer: a file more per segment cost
	// their 2-core benchmark about 0.1 s of CPU in inode allocation.
	answers bool
	// head, if set, is shown the first headSize bytes (fewer for a shorter body) written to the segment
	// file headPath, as they are written: what a merge needs to start before the segment is complete. It
	// must not keep b; a retry shows them again.
	headPath string
	head     func(b []byte)
}

// headSize is how much of a segment's start fetcher.head is shown: an MPEG-TS PAT and PMT come in the first
// few 188-byte packets.
const headSize = 4 << 10

// headWriter passes writes through to w and calls fn once, with the first headSize bytes or, at close, with
// what there was.
type headWriter struct {
	w    io.Writer
	fn   func([]byte)
	buf  []byte
	done bool
}

func (h *headWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	if !h.done {
		h.buf = append(h.buf, p[:min(n, headSize-len(h.buf))]...)
		if len(h.buf) == headSize {
			h.flush()
		}
	}
	return n, err
}

// flush shows what was gathered, once.
func (h *headWriter) flush() {
	if !h.done && len(h.buf) > 0 {
		h.fn(h.buf)
	}
	h.done, h.buf = true, nil
}

// sniff is the check of a segment body's first bytes: media, or WebVTT for a subtitle track.
func (f *fetcher) sniff(b []byte) error {
	if f.subtitles {
		return sniffSubtitles(b)
	}
	return sniffMedia(b)
}

// createSegmentFile opens a segment's .partial file for writing. Tests replace
// it to inject disk errors such as ENOSPC.
var createSegmentFile = func(name string) (io.WriteCloser, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
}

// diskError wraps a local write failure of a segment file.
func diskError(err error) error { return fmt.Errorf("segment file: %w", err) }

// diskFull reports a full disk or quota: retrying cannot help until space is freed.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, ErrLowDisk)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func (f *fetcher) newRequest(ctx context.Context, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redactURL(url), err)
	}
	for k, vs := range f.headers {
		req.Header[k] = vs
	}
	return req, nil
}

// fetch downloads url into path (via path.partial) and returns the bytes
// received. A body that is not media, short, stalled or too large is an error
// and leaves nothing at path.
func (f *fetcher) fetch(ctx context.Context, url, path string, sniff bool) (int64, error) {
	return f.fetchTo(ctx, url, path, sniff, nil)
}

// A decryption is the AES-128 key and IV of one segment.
type decryption struct {
	block cipher.Block
	iv    [keySize]byte
}

// fetchTo is fetch that, given dec, decrypts the body as it streams to disk;
// then the decrypted bytes are sniffed, and a failure wraps ErrDecrypt.
func (f *fetcher) fetchTo(ctx context.Context, url, path string, sniff bool, dec *decryption) (int64, error) {
	return f.fetchRange(ctx, url, nil, path, sniff, dec)
}

// fetchRange is fetchTo of the byte range rng of url (the whole body when nil).
func (f *fetcher) fetchRange(ctx context.Context, url string, rng *plan.ByteRange, path string, sniff bool, dec *decryption) (int64, error) {
	return f.fetchShown(ctx, url, rng, path, sniff, dec, nil)
}

// fetchShown is fetchRange that shows the bytes to g as they reach the file,
// so the browser can read them while they arrive (see growing). Only a whole,
// clear body is shown: a range or a decrypted body is not what the browser
// asked for.
func (f *fetcher) fetchShown(ctx context.Context, url string, rng *plan.ByteRange, path string, sniff bool, dec *decryption, g *growing) (int64, error) {
	if rng != nil || dec != nil {
		g = nil
	}
	if err := checkFree(filepath.Dir(path), f.minFree); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := f.newRequest(ctx, url)
	if err != nil {
		return 0, err
	}
	if rng != nil {
		req.Header.Set("Range", rng.Header())
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", redactURL(url), untrusted(cleanNetErr(err)))
	}
	defer resp.Body.Close()
	if err := checkStatus(resp, url); err != nil {
		return 0, err
	}
	if rng != nil {
		if err := checkContentRange(resp, rng); err != nil {
			return 0, fmt.Errorf("%s: %w", redactURL(url), err)
		}
	}
	if f.maxBytes > 0 && resp.ContentLength > f.maxBytes {
		return 0, fmt.Errorf("%s: %w: Content-Length %d over the %d byte cap", redactURL(url), ErrTooLarge, resp.ContentLength, f.maxBytes)
	}
	if sniff {
		if err := checkContentType(resp.Header.Get("Content-Type")); err != nil {
			return 0, fmt.Errorf("%s: %w", redactURL(url), err)
		}
	}

	// An idle timer cancels the request when no bytes arrive for idleTimeout.
	idle := f.idleTimeout
	if idle <= 0 {
		idle = 30 * time.Second
	}
	timer := time.AfterFunc(idle, func() { cancel(ErrStalled) })
	defer timer.Stop()
	var n int64 // bytes received so far
	if stop := f.watchRate(&n, cancel); stop != nil {
		defer stop()
	}

	partial := path + ".partial"
	out, err := createSegmentFile(partial)
	if err != nil {
		return 0, diskError(err)
	}
	ok := false
	defer func() {
		if !ok {
			g.finish(false)
			out.Close()
			os.Remove(partial)
		}
	}()

	// body → [decrypt] → [sniff] → [head] → file [→ the browser]
	var w io.Writer = out
	var hw *headWriter
	if f.head != nil && path == f.headPath {
		hw = &headWriter{w: w, fn: f.head}
		w = hw
	}
	if g != nil {
		g.start(partial, newAnswer(req.Header, resp.Header), resp.ContentLength)
		w = &countWriter{w: w, g: g}
	}
	var sw *sniffWriter
	if sniff || dec != nil {
		sw = &sniffWriter{w: w, check: f.sniff}
		w = sw
	}
	var dw *decryptWriter
	if dec != nil {
		dw = newDecryptWriter(w, dec.block, dec.iv)
		w = dw
	}
	// writeErr names why a write failed: not media (after decryption, a wrong
	// key), or the disk.
	writeErr := func(werr error) error {
		switch {
		case sw != nil && sw.bad != nil && dec != nil:
			return fmt.Errorf("%s: %w: %w", redactURL(url), ErrDecrypt, sw.bad)
		case sw != nil && sw.bad != nil:
			return fmt.Errorf("%s: %w", redactURL(url), sw.bad)
		case errors.Is(werr, ErrDecrypt):
			return fmt.Errorf("%s: %w", redactURL(url), werr)
		}
		return diskError(werr)
	}

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	if f.inflight != nil {
		// Done or failed, the body is no longer in flight.
		defer func() { f.inflight.Add(-atomic.LoadInt64(&n)) }()
	}
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			timer.Reset(idle)
			atomic.AddInt64(&n, int64(m))
			if f.inflight != nil {
				f.inflight.Add(int64(m))
			}
			if f.maxBytes > 0 && n > f.maxBytes {
				return 0, fmt.Errorf("%s: %w: over %d bytes", redactURL(url), ErrTooLarge, f.maxBytes)
			}
			if _, werr := w.Write(buf[:m]); werr != nil {
				return 0, writeErr(werr)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if cause := context.Cause(ctx); errors.Is(cause, ErrTooSlow) {
				return 0, fmt.Errorf("%s: %w", redactURL(url), cause)
			} else if errors.Is(cause, ErrStalled) {
				return 0, fmt.Errorf("%s: %w: no data for %s", redactURL(url), ErrStalled, idle)
			}
			if errors.Is(rerr, io.ErrUnexpectedEOF) {
				return 0, fmt.Errorf("%s: %w: got %d of %d bytes", redactURL(url), ErrTruncated, n, resp.ContentLength)
			}
			return 0, fmt.Errorf("%s: %w", redactURL(url), cleanNetErr(rerr))
		}
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return 0, fmt.Errorf("%s: %w: got %d of %d bytes", redactURL(url), ErrTruncated, n, resp.ContentLength)
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: %w: empty body", redactURL(url), ErrNotMedia)
	}
	if dw != nil {
		if err := dw.Close(); err != nil {
			return 0, writeErr(err)
		}
	}
	if hw != nil {
		hw.flush() // a body shorter than headSize
	}
	if err := out.Close(); err != nil {
		return 0, diskError(err)
	}
	// The origin's headers go beside the bytes, so that an answer from disk
	// looks like the origin's (see answer).
	if f.answers {
		if err := newAnswer(req.Header, resp.Header).save(path); err != nil {
			return 0, diskError(err)
		}
	}
	if err := os.Rename(partial, path); err != nil {
		return 0, fmt.Errorf("segment file: %w", err)
	}
	ok = true
	g.finish(true)
	return n, nil
}

// errMediaBody: a document (a playlist or manifest) was asked for and the
// origin began to send a media segment.
var errMediaBody = errors.New("a media segment, not a playlist or manifest")

// get fetches a small document (playlist, manifest) whole, up to max bytes.
func (f *fetcher) get(ctx context.Context, url string, max int64) ([]byte, string, error) {
	return f.getRange(ctx, url, nil, max, false)
}

// getRange is get of the byte range rng of url (a DASH segment index), which
// the origin must answer with exactly those bytes. With doc, what should be a
// playlist or manifest, a body that starts as media fails at once with
// errMediaBody.
func (f *fetcher) getRange(ctx context.Context, url string, rng *plan.ByteRange, max int64, doc bool) ([]byte, string, error) {
	data, final, _, err := f.getDated(ctx, url, rng, max, doc)
	return data, final, err
}

// getDated is getRange that also returns the origin's clock: its Date
// header, zero when absent or unreadable. A live DASH manifest is placed on it.
func (f *fetcher) getDated(ctx context.Context, url string, rng *plan.ByteRange, max int64, doc bool) ([]byte, string, time.Time, error) {
	req, err := f.newRequest(ctx, url)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	if rng != nil {
		req.Header.Set("Range", rng.Header())
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("%s: %w", redactURL(url), untrusted(cleanNetErr(err)))
	}
	defer resp.Body.Close()
	if err := checkStatus(resp, url); err != nil {
		return nil, "", time.Time{}, err
	}
	date, _ := http.ParseTime(resp.Header.Get("Date"))
	if rng != nil {
		if err := checkContentRange(resp, rng); err != nil {
			return nil, "", time.Time{}, fmt.Errorf("%s: %w", redactURL(url), err)
		}
	}
	// A document's first bytes say whether it is one: a media segment where a
	// playlist was expected is not read to its end.
	head := make([]byte, media.SniffLen)
	n, err := io.ReadFull(resp.Body, head)
	head = head[:n]
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, "", time.Time{}, fmt.Errorf("%s: %w", redactURL(url), cleanNetErr(err))
	}
	if doc && media.Sniff(head).IsMedia() {
		return nil, "", time.Time{}, fmt.Errorf("%s: %w", redactURL(url), errMediaBody)
	}
	rest, err := io.ReadAll(io.LimitReader(resp.Body, max+1-int64(n)))
	data := append(head, rest...)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("%s: %w", redactURL(url), cleanNetErr(err))
	}
	if int64(len(data)) > max {
		return nil, "", time.Time{}, fmt.Errorf("%s: %w: over %d bytes", redactURL(url), ErrTooLarge, max)
	}
	return data, resp.Request.URL.String(), date, nil
}

// exists asks for the first bytes of url and reports whether it is a media segment.
func (f *fetcher) exists(ctx context.Context, url string) (bool, error) {
	ok, _, err := f.probe(ctx, url)
	return ok, err
}

// probe is exists that also says why a segment is not there: a 404/410
// (wrapping ErrNotFound) or a body that is not media (ErrNotMedia).
func (f *fetcher) probe(ctx context.Context, url string) (ok bool, miss, err error) {
	req, err := f.newRequest(ctx, url)
	if err != nil {
		return false, nil, err
	}
	req.Header.Set("Range", "bytes=0-1023")
	resp, err := f.client.Do(req)
	if err != nil {
		return false, nil, fmt.Errorf("%s: %w", redactURL(url), untrusted(cleanNetErr(err)))
	}
	defer resp.Body.Close()
	if err := checkStatus(resp, url); err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, err, nil
		}
		return false, nil, err
	}
	if err := checkContentType(resp.Header.Get("Content-Type")); err != nil {
		return false, err, nil
	}
	head := make([]byte, 1024)
	m, _ := io.ReadFull(resp.Body, head)
	if m == 0 {
		return false, fmt.Errorf("%w: empty body", ErrNotMedia), nil
	}
	if err := sniffMedia(head[:m]); err != nil {
		return false, err, nil
	}
	return true, nil, nil
}

// ErrRange means the origin did not answer a byte-range request with the
// bytes asked for: a 200 with the whole resource, or another Content-Range.
var ErrRange = errors.New("wrong byte range")

// checkContentRange requires the 206 and the exact Content-Range asked for.
func checkContentRange(resp *http.Response, rng *plan.ByteRange) error {
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("%w: asked for %s, got status %d instead of 206", ErrRange, rng.Header(), resp.StatusCode)
	}
	want := fmt.Sprintf("bytes %d-%d/", rng.Offset, rng.Offset+rng.Length-1)
	if got := resp.Header.Get("Content-Range"); !strings.HasPrefix(got, want) {
		return fmt.Errorf("%w: asked for %s, got Content-Range %q", ErrRange, rng.Header(), got)
	}
	return nil
}

func checkStatus(resp *http.Response, url string) error {
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
		return nil
	}
	// Drain a little so the connection can be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	return &StatusError{URL: url, Code: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// checkContentType refuses, before the body is read, a response whose Content-Type says it is a web page or
// document (media.KindPage).
func checkContentType(ct string) error {
	if media.Classify("", ct) != media.KindPage {
		return nil
	}
	return fmt.Errorf("%w: got a web page or document (Content-Type %s)", ErrNotMedia, ct)
}

// sniffMedia checks that the first bytes of a body are media (media.Sniff: MPEG-TS or M2TS, fMP4, AAC, MP3),
// and says what they are when they are not.
func sniffMedia(b []byte) error {
	switch f := media.Sniff(b); {
	case f.IsMedia():
		return nil
	case f != media.FormatUnknown:
		return fmt.Errorf("%w: body starts with %q (%s, not video)", ErrNotMedia, clip(bytes.TrimLeft(b, " \t\r\n\ufeff"), 24), f)
	}
	return fmt.Errorf("%w: body starts with % x, not MPEG-TS, fMP4 or AAC", ErrNotMedia, clip(b, 8))
}

// sniffSubtitles checks that the first bytes of a body are WebVTT, and says what they are when they are not.
func sniffSubtitles(b []byte) error {
	switch f := media.Sniff(b); f {
	case media.FormatWebVTT:
		return nil
	case media.FormatUnknown:
		return fmt.Errorf("%w: body starts with % x, not WebVTT", ErrNotMedia, clip(b, 8))
	default:
		return fmt.Errorf("%w: body starts with %q (%s, not WebVTT subtitles)", ErrNotMedia, clip(bytes.TrimLeft(b, " \t\r\n\ufeff"), 24), f)
	}
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// cleanNetErr drops the request-method-and-URL wrapper of *url.Error; callers add the URL once.
func cleanNetErr(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil && strings.HasPrefix(err.Error(), "Get ") {
			return inner
		}
	}
	return err
}

// watchRate cancels the transfer with ErrTooSlow when fewer than
// minRate*rateWindow bytes arrived during a whole window, so a body that
// trickles (a byte now and then keeps the idle timer quiet) cannot keep a
// segment downloading forever. n is the running byte count, read atomically.
func (f *fetcher) watchRate(n *int64, cancel context.CancelCauseFunc) (stop func()) {
	if f.minRate <= 0 || f.rateWindow <= 0 {
		return nil
	}
	floor := int64(float64(f.minRate) * f.rateWindow.Seconds())
	t := time.NewTicker(f.rateWindow)
	done := make(chan struct{})
	go func() {
		var last int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
				now := atomic.LoadInt64(n)
				if got := now - last; got < floor {
					cancel(fmt.Errorf("%w: %d bytes in %s, under %s/s", ErrTooSlow, got, f.rateWindow, sizeString(f.minRate)))
					return
				}
				last = now
			}
		}
	}()
	return func() { t.Stop(); close(done) }
}
