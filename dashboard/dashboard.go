// Package dashboard serves the live web page on the proxy's own address: the
// streams being captured with their progress, the actions a person can take on
// them, the original script's form to start a download, and how to connect a
// browser. It guards every change against other web sites and DNS rebinding.
package dashboard

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/streamsnatcher/streamsnatcher/recorder"
)

//go:embed assets
var assets embed.FS

// TokenHeader carries the per-process CSRF token on every POST.
const TokenHeader = "X-StreamSnatcher-Token"

// Interval is how often /events sends a snapshot when nothing changed.
const Interval = 500 * time.Millisecond

// Actions the dashboard offers on a stream; they are recorder's.
var Actions = []string{recorder.ActionResume, recorder.ActionPause, recorder.ActionMerge, recorder.ActionAllowGaps, recorder.ActionDelete}

// A Backend is what the dashboard shows and drives; the command layer implements it over a recorder.Capture.
type Backend interface {
	// Streams is a snapshot of every captured stream.
	Streams() []recorder.StreamStatus
	// Act applies one of Actions to the stream of session id; recorder.ErrUnknownStream when there is none.
	Act(id, action string) error
	// StartGet starts a download as `streamsnatcher get` would and returns its session id. Its errors are
	// shown to the person, so they should say what to fix.
	StartGet(form GetForm) (id string, err error)
	// CA describes the proxy's CA for the "connect your browser" panel.
	CA() CAInfo
}

// GetForm is the original script's form: a URL with (*) where the segment number goes.
type GetForm struct {
	URL            string  `json:"url"`
	Pad            int     `json:"pad"`             // zero-pad the number to this many digits
	Count          int64   `json:"count"`           // how many segments, or
	Duration       string  `json:"duration"`        // hh:mm:ss, with
	SegmentSeconds float64 `json:"segment_seconds"` // seconds per segment
	Referer        string  `json:"referer"`
}

// CAInfo describes the proxy's CA.
type CAInfo struct {
	PEM        []byte // the certificate, served at /ca.pem
	SPKI       string // base64 SHA-256 of the public key, for --ignore-certificate-errors-spki-list
	TrustSteps string // how to trust it (certs.TrustInstructions)
}

// Options configure the dashboard.
type Options struct {
	Backend Backend
	// ChromiumArgs, if set, gives the flags of a throwaway Chromium using the proxy at addr.
	ChromiumArgs func(addr string) []string
	// Token is the CSRF token; empty makes a random one (the normal case).
	Token  string
	Logger *slog.Logger // nil discards
}

type handler struct {
	b      Backend
	chrome func(string) []string
	token  string
	log    *slog.Logger
	page   *template.Template
	static http.Handler

	rates rateTracker

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when an action changed something
}

// New returns the dashboard's handler. Mount it as proxy.Options.Handler: it expects direct requests to the
// proxy's own address.
func New(opts Options) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tok := opts.Token
	if tok == "" {
		var b [32]byte
		rand.Read(b[:])
		tok = hex.EncodeToString(b[:])
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		panic(err)
	}
	h := &handler{
		b: opts.Backend, chrome: opts.ChromiumArgs, token: tok, log: log,
		page:    template.Must(template.ParseFS(assets, "assets/index.html")),
		static:  http.StripPrefix("/static/", http.FileServerFS(static)),
		rates:   rateTracker{last: map[string][]sample{}},
		changed: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.index)
	mux.Handle("GET /static/", h.static)
	mux.HandleFunc("GET /ca.pem", h.caPEM)
	mux.HandleFunc("GET /api/streams", h.apiStreams)
	mux.HandleFunc("GET /events", h.events)
	mux.HandleFunc("GET /files/{id}", h.file)
	mux.HandleFunc("POST /api/streams/{id}/{action}", h.guard(h.act))
	mux.HandleFunc("POST /api/get", h.guard(h.startGet))
	return h.headers(mux)
}

// headers checks the Host of every request and sets the security headers of every answer.
func (h *handler) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !selfHost(r) {
			h.log.Warn("dashboard: refused a request with a foreign Host", "host", r.Host, "remote", r.RemoteAddr)
			http.Error(w, "streamsnatcher: forbidden: Host "+r.Host+" is not this proxy's address", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// selfHost reports whether the Host header names the address the request arrived on: localhost, a loopback IP or
// the IP it came in on, with the right port. A page whose DNS name was rebound to 127.0.0.1 sends its own name.
func selfHost(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lhost, lport, err := net.SplitHostPort(local.String())
	if err != nil {
		return false
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, "80"
	}
	if port != lport {
		return false
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.Equal(net.ParseIP(strings.Trim(lhost, "[]"))))
}

// guard lets a POST through only from the dashboard itself: same origin and the page's token.
func (h *handler) guard(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if why := h.refuse(r); why != "" {
			h.log.Warn("dashboard: refused an action", "why", why, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
			http.Error(w, "streamsnatcher: forbidden: "+why, http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

func (h *handler) refuse(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		if !strings.EqualFold(o, "http://"+r.Host) {
			return "Origin " + o + " is not this dashboard"
		}
	} else if r.Header.Get("Sec-Fetch-Site") != "same-origin" {
		return "no Origin header"
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(TokenHeader)), []byte(h.token)) != 1 {
		return "missing or wrong " + TokenHeader
	}
	return ""
}

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	ca := h.b.CA()
	var flags []string
	if h.chrome != nil {
		flags = h.chrome(r.Host)
	}
	data := struct {
		Token, Addr, SPKI, TrustSteps, Flags string
	}{h.token, r.Host, ca.SPKI, ca.TrustSteps, strings.Join(flags, " \\\n  ")}
	var buf bytes.Buffer
	if err := h.page.Execute(&buf, data); err != nil {
		http.Error(w, "streamsnatcher: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

func (h *handler) caPEM(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="streamsnatcher-ca.pem"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.b.CA().PEM))
}

func (h *handler) apiStreams(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(h.snapshot())
}

// events streams a snapshot every Interval and right after an action, until the client goes away.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		data, err := json.Marshal(h.snapshot())
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "event: streams\ndata: %s\n\n", data); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		h.mu.Lock()
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		case <-changed:
		}
	}
}

func (h *handler) notify() {
	h.mu.Lock()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// file serves the finished output of a known session, and nothing else.
func (h *handler) file(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var out string
	for _, s := range h.b.Streams() {
		if s.Session.ID == id && s.Session.State == recorder.StateDone {
			out = s.Session.Output
		}
	}
	if out == "" {
		http.Error(w, "streamsnatcher: no finished video for that session", http.StatusNotFound)
		return
	}
	f, err := os.Open(out)
	if err != nil {
		http.Error(w, "streamsnatcher: the finished video is gone", http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "streamsnatcher: the finished video is not a file", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Disposition", mimeAttachment(filepath.Base(out)))
	http.ServeContent(w, r, filepath.Base(out), fi.ModTime(), f)
}

func mimeAttachment(name string) string {
	return `attachment; filename="` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == '\\' || r > 0x7e {
			return '_'
		}
		return r
	}, name) + `"; filename*=UTF-8''` + url.PathEscape(name)
}

func (h *handler) act(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	known := false
	for _, a := range Actions {
		known = known || a == action
	}
	if !known {
		http.Error(w, fmt.Sprintf("streamsnatcher: unknown action %q", action), http.StatusBadRequest)
		return
	}
	err := h.b.Act(id, action)
	switch {
	case errors.Is(err, recorder.ErrUnknownStream):
		http.Error(w, "streamsnatcher: "+err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, "streamsnatcher: "+err.Error(), http.StatusConflict)
		return
	}
	h.log.Info("dashboard action", "session", id, "action", action)
	h.notify()
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) startGet(w http.ResponseWriter, r *http.Request) {
	if mt := r.Header.Get("Content-Type"); !strings.HasPrefix(mt, "application/json") {
		http.Error(w, "streamsnatcher: send the form as application/json", http.StatusUnsupportedMediaType)
		return
	}
	var form GetForm
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&form); err != nil {
		http.Error(w, "streamsnatcher: bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	form.URL = strings.TrimSpace(form.URL)
	form.Referer = strings.TrimSpace(form.Referer)
	if form.URL == "" {
		http.Error(w, "streamsnatcher: give the URL of a segment with (*) where the number goes", http.StatusBadRequest)
		return
	}
	id, err := h.b.StartGet(form)
	if err != nil {
		http.Error(w, "streamsnatcher: "+err.Error(), http.StatusBadRequest)
		return
	}
	h.log.Info("dashboard started a download", "session", id)
	h.notify()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]string{"id": id})
}
