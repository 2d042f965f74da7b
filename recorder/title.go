package recorder

import (
	"bytes"
	"compress/gzip"
	"errors"
	"html"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// A recording is named by the page it was seen on: the <title> of the HTML
// document the proxy saw for it, read from the first bytes of its body.

// maxTitleScan is how much of a page is read for its title; maxTitle is the
// longest title kept (in bytes).
const (
	maxTitleScan = 64 << 10
	maxTitle     = 200
	maxTitles    = 1024
)

// titleBook remembers the titles of the pages seen, by URL and by origin
// (a cross-origin segment request's Referer is often only the origin).
type titleBook struct {
	mu       sync.Mutex
	byURL    map[string]string
	byOrigin map[string]string
}

func (b *titleBook) put(page, title string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byURL == nil || len(b.byURL) >= maxTitles {
		b.byURL, b.byOrigin = map[string]string{}, map[string]string{}
	}
	b.byURL[pageKey(page)] = title
	b.byOrigin[originOf(page)] = title
}

// get returns the title of page, or the latest of its origin.
func (b *titleBook) get(page string) string {
	if page == "" {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.byURL[pageKey(page)]; ok {
		return t
	}
	return b.byOrigin[originOf(page)]
}

func pageKey(raw string) string {
	raw, _, _ = strings.Cut(raw, "#")
	return raw
}

// titleTap reads a page's title from the first bytes of its body (identity
// or gzip encoded) and stops tapping once it has it.
func (c *Capture) titleTap(ex *proxy.Exchange) proxy.BodyTap {
	if ex.Status != http.StatusOK {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(ex.RespHeader.Get("Content-Type"))
	if mt != "text/html" && mt != "application/xhtml+xml" {
		return nil
	}
	enc := strings.ToLower(strings.TrimSpace(ex.RespHeader.Get("Content-Encoding")))
	if enc != "" && enc != "identity" && enc != "gzip" {
		return nil // br, zstd, deflate: not read
	}
	page := ex.Req.URL.String()
	return &titleTap{gz: enc == "gzip", done: func(title string) { c.titles.put(page, title) }}
}

type titleTap struct {
	buf  bytes.Buffer
	gz   bool
	got  bool
	done func(string)
}

// errEnough stops a tap that has what it wanted.
var errEnough = errors.New("enough read")

func (t *titleTap) Write(p []byte) (int, error) {
	n := min(len(p), maxTitleScan-t.buf.Len())
	t.buf.Write(p[:n])
	if t.look() || t.buf.Len() >= maxTitleScan {
		return 0, errEnough
	}
	return len(p), nil
}

func (t *titleTap) Close(error) { t.look() }

// look finds the title in what was read; true once found.
func (t *titleTap) look() bool {
	if t.got {
		return true
	}
	b := t.buf.Bytes()
	if t.gz {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return false
		}
		b, _ = io.ReadAll(io.LimitReader(zr, maxTitleScan)) // what decodes of a prefix
	}
	if title, ok := pageTitle(b); ok {
		t.got = true
		t.done(title)
	}
	return t.got
}

// pageTitle returns the text of the first <title> element in an HTML prefix,
// entities decoded and white space collapsed; false until its end tag is in b.
func pageTitle(b []byte) (string, bool) {
	lower := bytes.ToLower(b)
	i := bytes.Index(lower, []byte("<title"))
	if i < 0 || i+6 < len(lower) && !strings.ContainsRune(" \t\r\n>/", rune(lower[i+6])) {
		return "", false
	}
	gt := bytes.IndexByte(lower[i:], '>')
	if gt < 0 {
		return "", false
	}
	start := i + gt + 1
	end := bytes.Index(lower[start:], []byte("</title"))
	if end < 0 {
		return "", false
	}
	s := strings.Join(strings.Fields(html.UnescapeString(string(b[start:start+end]))), " ")
	if len(s) > maxTitle {
		s = s[:maxTitle]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s, true
}
