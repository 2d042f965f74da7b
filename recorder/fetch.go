package recorder

import (
	"bytes"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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
	block       cipher.Block  // the session's AES-128 key; nil when segments are clear
	inflight    *atomic.Int64 // if set, counts the bytes of segment bodies still arriving
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
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
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
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := f.newRequest(ctx, url)
	if err != nil {
		return 0, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", redactURL(url), cleanNetErr(err))
	}
	defer resp.Body.Close()
	if err := checkStatus(resp, url); err != nil {
		return 0, err
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

	partial := path + ".partial"
	out, err := createSegmentFile(partial)
	if err != nil {
		return 0, diskError(err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(partial)
		}
	}()

	// body → [decrypt] → [sniff] → file
	var w io.Writer = out
	var sw *sniffWriter
	if sniff || dec != nil {
		sw = &sniffWriter{w: out}
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
	var n int64
	if f.inflight != nil {
		// Done or failed, the body is no longer in flight.
		defer func() { f.inflight.Add(-n) }()
	}
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			timer.Reset(idle)
			n += int64(m)
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
			if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
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
	if err := out.Close(); err != nil {
		return 0, diskError(err)
	}
	if err := os.Rename(partial, path); err != nil {
		return 0, fmt.Errorf("segment file: %w", err)
	}
	ok = true
	return n, nil
}

// get fetches a small document (playlist, key) whole, up to max bytes.
func (f *fetcher) get(ctx context.Context, url string, max int64) ([]byte, string, error) {
	req, err := f.newRequest(ctx, url)
	if err != nil {
		return nil, "", err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", redactURL(url), cleanNetErr(err))
	}
	defer resp.Body.Close()
	if err := checkStatus(resp, url); err != nil {
		return nil, "", err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", redactURL(url), cleanNetErr(err))
	}
	if int64(len(data)) > max {
		return nil, "", fmt.Errorf("%s: %w: over %d bytes", redactURL(url), ErrTooLarge, max)
	}
	return data, resp.Request.URL.String(), nil
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
		return false, nil, fmt.Errorf("%s: %w", redactURL(url), cleanNetErr(err))
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

func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil
	}
	switch {
	case mt == "text/html", mt == "application/xhtml+xml", mt == "application/json", mt == "text/xml", mt == "application/xml":
		return fmt.Errorf("%w: got a web page or document (Content-Type %s)", ErrNotMedia, mt)
	}
	return nil
}

// sniffMedia checks the first bytes of a body: MPEG-TS sync bytes, ISO BMFF
// boxes (fMP4), ADTS or ID3 (packed audio). Anything that looks like text is refused.
func sniffMedia(b []byte) error {
	switch {
	case len(b) >= 1 && b[0] == 0x47 && (len(b) < 189 || b[188] == 0x47):
		return nil
	case len(b) >= 8 && isBox(string(b[4:8])):
		return nil
	case len(b) >= 2 && b[0] == 0xFF && b[1]&0xF0 == 0xF0:
		return nil
	case len(b) >= 3 && string(b[:3]) == "ID3":
		return nil
	}
	t := bytes.TrimLeft(b, " \t\r\n\ufeff")
	if len(t) > 0 && (t[0] == '<' || t[0] == '{' || t[0] == '[') {
		return fmt.Errorf("%w: body starts with %q (an HTML or JSON page, not video)", ErrNotMedia, clip(t, 24))
	}
	return fmt.Errorf("%w: body starts with % x, not MPEG-TS, fMP4 or AAC", ErrNotMedia, clip(b, 8))
}

func isBox(t string) bool {
	switch t {
	case "ftyp", "styp", "moof", "sidx", "moov", "emsg", "prft", "mdat", "free":
		return true
	}
	return false
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
