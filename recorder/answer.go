package recorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
)

// An answer is what the origin said alongside a segment's bytes: the response
// headers a player (or the browser's CORS check) looks at, and the Origin the
// request carried. It is kept beside the segment file ("000123.ts.hdr") by the
// tee and the backfill, so that an answer from disk looks like the origin's.
type answer struct {
	Header http.Header `json:"header"`
	// ReqOrigin is the Origin header of the request the origin answered; it
	// tells an echoed Access-Control-Allow-Origin from a fixed one.
	ReqOrigin string `json:"req_origin,omitempty"`
}

// answerHeaders are the response headers kept with a segment's bytes.
var answerHeaders = []string{
	"Content-Type",
	"Access-Control-Allow-Origin",
	"Access-Control-Allow-Credentials",
	"Access-Control-Expose-Headers",
	"Timing-Allow-Origin",
	"Cache-Control",
	"Accept-Ranges",
	"Vary",
	"Etag",
	"Last-Modified",
}

// echoed are the headers whose value an origin may copy from the request's
// Origin; replayed, they follow the new request's Origin the same way.
var echoed = []string{"Access-Control-Allow-Origin", "Timing-Allow-Origin"}

// newAnswer keeps what matters of a response to a request with headers req.
func newAnswer(req, resp http.Header) *answer {
	a := &answer{Header: http.Header{}, ReqOrigin: req.Get("Origin")}
	for _, k := range answerHeaders {
		if vs := resp.Values(k); len(vs) > 0 {
			a.Header[k] = append([]string(nil), vs...)
		}
	}
	return a
}

// answerPath is where the answer for the segment file at p is kept.
func answerPath(p string) string { return p + ".hdr" }

// save writes the answer beside the segment file p, before p itself is
// renamed into place. A reader only looks for the answer of a segment it has
// found, so while p does not exist the answer is written in place; over an
// existing segment it goes through a temporary file, so that a reader never
// sees half of it. (A capture's backfill writes one per segment, 32 at a
// time: a temporary file's create and rename each took the segments
// directory's lock again.)
func (a *answer) save(p string) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return writeAnswer(answerPath(p), b)
	}
	tmp := answerPath(p) + ".partial"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, answerPath(p)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeAnswer writes b to name, propagating the Close error.
func writeAnswer(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

// loadAnswer reads the answer kept beside the segment file p; nil when there
// is none (a session from an older version) or it is unreadable.
func loadAnswer(p string) *answer {
	b, err := os.ReadFile(answerPath(p))
	if err != nil {
		return nil
	}
	var a answer
	if json.Unmarshal(b, &a) != nil || a.Header == nil {
		return nil
	}
	return &a
}

// header returns the headers to answer a request carrying Origin origin: the
// kept ones, with an Origin the origin had echoed replaced by this request's
// (or dropped when it has none), and "*" or a fixed value kept as they were.
func (a *answer) header(origin string) http.Header {
	h := a.Header.Clone()
	for _, k := range echoed {
		v := h.Get(k)
		if v == "" || v == "*" || a.ReqOrigin == "" || v != a.ReqOrigin {
			continue
		}
		if origin == "" {
			h.Del(k)
		} else {
			h.Set(k, origin)
		}
	}
	if origin == "" && h.Get("Access-Control-Allow-Origin") == "" {
		h.Del("Access-Control-Allow-Credentials")
		h.Del("Access-Control-Expose-Headers")
	}
	return h
}

// serveFile answers req from the complete segment file at p as the origin
// would: its kept headers, and for a Range request a 206 with Content-Range.
// rng is the request's single range (first, last; last -1 when open). It
// returns nil when the file is not there or the range is not satisfiable here
// (then the origin answers).
func serveFile(req *http.Request, p string, first, last int64) *http.Response {
	file, err := os.Open(p)
	if err != nil {
		return nil
	}
	fi, err := file.Stat()
	if err != nil || fi.Size() == 0 {
		file.Close()
		return nil
	}
	size := fi.Size()
	if last < 0 || last >= size {
		last = size - 1
	}
	if first > last {
		file.Close()
		return nil // unsatisfiable here: let the origin say so
	}
	h := http.Header{}
	if a := loadAnswer(p); a != nil {
		h = a.header(req.Header.Get("Origin"))
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", mimeFor(p))
	}
	resp := &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: file, ContentLength: size, Request: req,
	}
	if req.Header.Get("Range") != "" {
		// Players ask for "bytes=0-", and after a pause for the rest from an offset.
		resp.StatusCode = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, size))
		if h.Get("Accept-Ranges") == "" {
			h.Set("Accept-Ranges", "bytes")
		}
		resp.ContentLength = last - first + 1
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.NewSectionReader(file, first, resp.ContentLength), file}
	}
	resp.Status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	h.Set("Content-Length", fmt.Sprint(resp.ContentLength))
	return resp
}

// moveSegment renames a complete segment file and the answer kept beside it,
// the answer first: a segment file on disk always has its answer by then.
func moveSegment(src, dst string) error {
	if err := os.Rename(answerPath(src), answerPath(dst)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.Rename(src, dst)
}
