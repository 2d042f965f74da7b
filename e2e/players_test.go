package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// The player tests' two origins, as the browser sees them: the page, and the
// CDN that serves the stream to it across origins. httptest's certificate
// covers both names.
const (
	pageHost = "www.example.com"
	cdnHost  = "cdn.example.com"
	pageURL  = "https://" + pageHost
)

// playersDir holds the pinned player libraries (script/deps players installs them).
var playersDir = filepath.Join("players", "node_modules")

func needPlayers(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(playersDir); err != nil {
		t.Fatal("the player libraries are needed for these tests: ./script/deps players (npm ci in e2e/players; ./script/test does it)")
	}
}

// pages are the test pages, one per player. Each plays {{.Src}} muted, pushes
// every error the player reports to window.playerErrors, and defines
// window.playhead() for the video's currentTime. Requests to the CDN carry
// credentials, as on sites that set cookies on their CDN. hls.js's
// "bufferSeekOverHole" is not an error: it is the notice that playback jumped
// the 0.02 s before the first frame of ffmpeg's MPEG-TS; hls.js reports it now
// and then on the same page loaded directly, without the proxy. Nor is a
// non-fatal "aborted": hls.js reports so a load it cancelled itself (that
// jump is a seek, and a seek cancels a subtitle segment's load ahead of it;
// a connection the proxy dropped is a "fragLoadError"). Those go to
// window.playerAborts, which playerErrors logs.
var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html><html><head><meta charset="utf-8"><title>{{.Title}}</title>
<script>window.playerErrors = [];</script>{{end}}

{{define "hlsjs"}}{{template "head" .}}
<script src="/lib/hls.js/dist/hls.min.js"></script></head><body>
<video id="v" muted autoplay playsinline></video>
<script>
const v = document.getElementById("v");
window.playhead = () => v.currentTime;
v.addEventListener("playing", () => { window.playingAt = window.playingAt || performance.now(); });
v.addEventListener("error", () => playerErrors.push("video element: " + (v.error && v.error.message)));
const hls = new Hls({xhrSetup: xhr => { xhr.withCredentials = true; }});
window.playerAborts = [];
hls.on(Hls.Events.ERROR, (ev, d) => {
  const what = "hls.js " + d.type + " " + d.details +
    (d.response ? " HTTP " + d.response.code + " " + (d.response.text || "") : "") + (d.fatal ? " (fatal)" : "") +
    (d.frag ? " " + d.frag.url : "");
  if (d.details === "bufferSeekOverHole") return;
  (d.details === "aborted" && !d.fatal ? playerAborts : playerErrors).push(what);
});
hls.loadSource({{.Src}});
hls.attachMedia(v);
v.play().catch(e => playerErrors.push("play: " + e));
</script></body></html>{{end}}

{{define "videojs"}}{{template "head" .}}
<link rel="stylesheet" href="/lib/video.js/dist/video-js.min.css">
<script src="/lib/video.js/dist/video.min.js"></script></head><body>
<video-js id="v" muted autoplay playsinline></video-js>
<script>
const p = videojs("v", {muted: true, autoplay: true, html5: {vhs: {overrideNative: true, withCredentials: true}}});
window.playhead = () => p.currentTime();
p.on("error", () => playerErrors.push("video.js: " + JSON.stringify(p.error())));
p.src({src: {{.Src}}, type: "application/x-mpegURL", withCredentials: true});
p.play().catch(e => playerErrors.push("play: " + e));
</script></body></html>{{end}}

{{define "dashjs"}}{{template "head" .}}
<script src="/lib/dashjs/dist/modern/umd/dash.all.min.js"></script></head><body>
<video id="v" muted autoplay playsinline></video>
<script>
const v = document.getElementById("v");
window.playhead = () => v.currentTime;
v.addEventListener("error", () => playerErrors.push("video element: " + (v.error && v.error.message)));
const p = dashjs.MediaPlayer().create();
p.on(dashjs.MediaPlayer.events.ERROR, e => playerErrors.push("dash.js " + JSON.stringify(e.error || e)));
p.initialize(v, {{.Src}}, true);
</script></body></html>{{end}}

{{define "shaka"}}{{template "head" .}}
<script src="/lib/shaka-player/dist/shaka-player.compiled.js"></script></head><body>
<video id="v" muted autoplay playsinline></video>
<script>
const v = document.getElementById("v");
window.playhead = () => v.currentTime;
v.addEventListener("error", () => playerErrors.push("video element: " + (v.error && v.error.message)));
shaka.polyfill.installAll();
const p = new shaka.Player();
p.addEventListener("error", e => playerErrors.push("shaka " + (e.detail && e.detail.code) + " " + JSON.stringify(e.detail && e.detail.data)));
p.attach(v).then(() => p.load({{.Src}})).then(() => v.play()).catch(e => playerErrors.push("shaka load: " + (e.code || e)));
</script></body></html>{{end}}
`))

// pageOrigin serves the test pages at /<player>?src=URL and the player
// libraries' files under /lib/.
func pageOrigin(t testing.TB) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/lib/", http.StripPrefix("/lib/", http.FileServer(http.Dir(playersDir))))
	mux.HandleFunc("/{player}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("player")
		if pages.Lookup(name) == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := pages.ExecuteTemplate(w, name, map[string]string{"Title": "Player test: " + name, "Src": r.URL.Query().Get("src")}); err != nil {
			t.Errorf("page %s: %v", name, err)
		}
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// cdn serves a directory of ffmpeg-made HLS under /v/ to the page's origin
// only, as CDNs that guard their streams do: CORS with credentials, and 403
// for a request that carries neither the page's Origin nor its Referer. It
// counts the GET requests per path and query.
type cdn struct {
	srv *httptest.Server
	dir string
	o   cdnOptions

	mu   sync.Mutex
	gets map[string]int // request URI → GETs
	log  []string       // refusals, for the failure message
}

// cdnOptions vary the CDN: the page origin it serves (default pageURL), a
// delay before each segment's answer, and its own certificate (default
// httptest's).
type cdnOptions struct {
	page  string
	delay time.Duration
	cert  *tls.Certificate
	live  bool // a live broadcast: its playlists and manifests change, served with no-store
	// hold keeps the answers to these paths (under /v/) waiting until their channel is closed.
	hold map[string]chan struct{}
}

func newCDN(t testing.TB, dir string) *cdn { return newCDNWith(t, dir, cdnOptions{}) }

func newCDNWith(t testing.TB, dir string, o cdnOptions) *cdn {
	if o.page == "" {
		o.page = pageURL
	}
	c := &cdn{dir: dir, gets: map[string]int{}, o: o}
	files := http.StripPrefix("/v/", http.FileServer(http.Dir(dir)))
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageURL := c.o.page
		origin, referer := r.Header.Get("Origin"), r.Header.Get("Referer")
		fromPage := origin == pageURL || origin == "" && strings.HasPrefix(referer, pageURL+"/")
		if !fromPage {
			c.mu.Lock()
			c.log = append(c.log, fmt.Sprintf("403 %s %s (Origin %q, Referer %q)", r.Method, r.URL.RequestURI(), origin, referer))
			c.mu.Unlock()
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", pageURL)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Vary", "Origin")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD")
			w.Header().Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Access-Control-Expose-Headers", "Content-Length, Content-Range")
		if c.o.live {
			// A live DASH player without internet takes the time from the manifest's Date.
			w.Header().Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Date")
		}
		w.Header().Set("Cache-Control", "max-age=3600")
		if c.o.live && (path.Ext(r.URL.Path) == ".m3u8" || path.Ext(r.URL.Path) == ".mpd") {
			w.Header().Set("Cache-Control", "no-store")
		}
		switch path.Ext(r.URL.Path) {
		case ".m3u8":
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		case ".ts":
			w.Header().Set("Content-Type", "video/mp2t")
		case ".m4s", ".mp4":
			w.Header().Set("Content-Type", "video/mp4")
		case ".mpd":
			w.Header().Set("Content-Type", "application/dash+xml")
		}
		if r.Method == http.MethodGet {
			c.mu.Lock()
			c.gets[r.URL.RequestURI()]++
			c.mu.Unlock()
		}
		if ch := c.o.hold[strings.TrimPrefix(r.URL.Path, "/v/")]; ch != nil && r.Method == http.MethodGet {
			select {
			case <-ch:
			case <-r.Context().Done():
				return
			}
		}
		if ext := path.Ext(r.URL.Path); c.o.delay > 0 && (ext == ".ts" || ext == ".m4s") {
			select {
			case <-time.After(c.o.delay):
			case <-r.Context().Done():
				return
			}
		}
		files.ServeHTTP(w, r)
	}))
	if o.cert != nil {
		c.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*o.cert}}
	}
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	return c
}

// checkOnce fails t unless every file in names (paths under /v/) was fetched
// exactly once, by the browser or the backfill.
func (c *cdn) checkOnce(t testing.TB, names []string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		if got := c.gets["/v/"+n]; got != 1 {
			t.Errorf("the CDN served /v/%s %d times, want exactly once", n, got)
		}
	}
	for _, l := range c.log {
		t.Logf("cdn: %s", l)
	}
}

// playerRig is a rig whose browser loads a page from one origin that plays a
// stream from a CDN on another.
type playerRig struct {
	*rig
	cdn *cdn
}

func newPlayerRig(t testing.TB, dir string) *playerRig { return newPlayerRigWith(t, dir, cdnOptions{}) }

func newPlayerRigWith(t testing.TB, dir string, o cdnOptions) *playerRig {
	t.Helper()
	return newPlayerRigMerge(t, dir, o, recorder.MergeOptions{})
}

// newPlayerRigMerge is newPlayerRigWith whose capture records with merge options m (watch's --audio-lang, …).
func newPlayerRigMerge(t testing.TB, dir string, o cdnOptions, m recorder.MergeOptions) *playerRig {
	t.Helper()
	needPlayers(t)
	page := pageOrigin(t)
	c := newCDNWith(t, dir, o)
	pool := x509.NewCertPool()
	pool.AddCert(page.Certificate())
	pool.AddCert(c.srv.Certificate())
	r := &rig{}
	r.start(t, map[string]string{
		pageHost: must(url.Parse(page.URL)).Host,
		cdnHost:  must(url.Parse(c.srv.URL)).Host,
	}, pool, rigOptions{concurrency: 4, merge: m})
	return &playerRig{rig: r, cdn: c}
}

// play opens the player's page on src and waits until the playhead passes
// minSeconds, failing at the first error the player reports.
func (pr *playerRig) play(t testing.TB, bctx context.Context, player, src string, minSeconds float64) time.Duration {
	t.Helper()
	start := time.Now()
	u := pageURL + "/" + player + "?src=" + url.QueryEscape(src)
	if _, err := chromedp.Run(bctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("navigate %s: %v", u, err)
	}
	pr.playhead(t, bctx, player, minSeconds)
	return time.Since(start)
}

// playhead waits until the page's playhead passes minSeconds, failing at the first error the player
// reports.
func (pr *playerRig) playhead(t testing.TB, bctx context.Context, player string, minSeconds float64) {
	t.Helper()
	for {
		st, err := chromedp.Run(bctx, chromedp.Evaluate[pageState](
			`({at: window.playhead ? window.playhead() : 0, errs: window.playerErrors || []})`))
		at, errs := st.At, st.Errs
		if err != nil {
			t.Fatalf("%s: playhead at %.1fs: %v", player, at, err)
		}
		if len(errs) > 0 {
			t.Fatalf("%s reported errors (playhead at %.1fs):\n  %s", player, at, strings.Join(errs, "\n  "))
		}
		if at > minSeconds {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// playerErrors returns what the page's player has reported so far.
func playerErrors(t testing.TB, bctx context.Context) []string {
	t.Helper()
	errs, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.playerErrors || []`))
	if err != nil {
		t.Fatalf("read the player's errors: %v", err)
	}
	aborts, _ := chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.playerAborts || []`))
	for _, a := range aborts {
		t.Logf("the player cancelled a load of its own (not an error): %s", a)
	}
	return errs
}

// pageState is what play polls from the page.
type pageState struct {
	At   float64  `json:"at"`
	Errs []string `json:"errs"`
}

func TestPlayers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		player string
		spec   testmedia.Spec
	}{
		{"hls.js TS", "hlsjs", testmedia.Small},
		{"hls.js fMP4", "hlsjs", testmedia.SmallFMP4},
		{"video.js TS", "videojs", testmedia.Small},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			media := testmedia.ForTest(t, tc.spec)
			pr := newPlayerRig(t, media.Dir)
			bctx, closeBrowser := pr.browser(t, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")
			playedAfter := pr.play(t, bctx, tc.player, "https://"+cdnHost+"/v/index.m3u8", 2)

			s := waitSession(t, pr.store, "", time.Minute)
			if errs := playerErrors(t, bctx); len(errs) > 0 {
				t.Errorf("%s reported errors:\n  %s", tc.player, strings.Join(errs, "\n  "))
			}
			closeBrowser()
			doneAfter := time.Since(start)
			checkRecording(t, pr.store, s, media.VideoPackets, media.AudioPackets)
			pr.cdn.checkOnce(t, mediaFiles(media))
			t.Logf("%s: played 2 s after %.1fs; recording done %.1fs after the start", tc.name, playedAfter.Seconds(), doneAfter.Seconds())
		})
	}
}

// checkRecording fails t unless s is the only session, done, and its output
// holds the source's packets.
func checkRecording(t *testing.T, st *recorder.Store, s *recorder.Session, video, audio int) {
	t.Helper()
	checkOneDone(t, st, s)
	v, a, err := testmedia.CountPackets(context.Background(), s.Output)
	if err != nil {
		t.Fatal(err)
	}
	if v != video || a != audio {
		t.Errorf("%s: packets video %d audio %d, want %d %d", s.Output, v, a, video, audio)
	}
}

// checkOneDone checks that the page made one recording, s, and that it is done.
func checkOneDone(t *testing.T, st *recorder.Store, s *recorder.Session) {
	t.Helper()
	if list, _ := st.List(); len(list) != 1 {
		for _, x := range list {
			t.Logf("session %s: %s %s %s", x.ID, x.State, x.Input, x.Error)
		}
		t.Fatalf("%d recordings, want one", len(list))
	}
	if s.State != recorder.StateDone {
		t.Fatalf("session %s: state %q (%s), want done", s.ID, s.State, s.Error)
	}
}

// mediaFiles names the segment files (and init segment) of media, relative to its directory.
func mediaFiles(m *testmedia.Media) []string {
	var out []string
	if m.Init != "" {
		out = append(out, filepath.Base(m.Init))
	}
	for _, s := range m.Segments {
		out = append(out, filepath.Base(s))
	}
	return slices.Clip(out)
}

// splitRendition remuxes media (TS) with ffmpeg's hls muxer into a master
// playlist whose audio is a separate rendition: video/ and audio/ media
// playlists of 1 s segments. It returns the directory and the segment files
// relative to it.
func splitRendition(t *testing.T, media *testmedia.Media) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	// The audio is fMP4: an audio-only MPEG-TS rendition made this way makes
	// hls.js report bufferAppendNoProgress, with or without the proxy.
	for _, r := range []struct{ name, stream, ext string }{{"video", "0:v", "ts"}, {"audio", "0:a", "m4s"}} {
		if err := os.Mkdir(filepath.Join(dir, r.name), 0o755); err != nil {
			t.Fatal(err)
		}
		args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
			"-i", media.Playlist, "-map", r.stream, "-c", "copy",
			"-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"}
		if r.ext == "m4s" {
			args = append(args, "-bsf:a", "aac_adtstoasc", "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4")
		}
		args = append(args, "-hls_segment_filename", filepath.Join(dir, r.name, "s_%05d."+r.ext),
			filepath.Join(dir, r.name, "index.m3u8"))
		out, err := exec.Command("ffmpeg", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg %s rendition: %v: %s", r.name, err, out)
		}
	}
	master := `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=600000,RESOLUTION=320x180,AUDIO="aud"
video/index.m3u8
`
	if err := os.WriteFile(filepath.Join(dir, "master.m3u8"), []byte(master), 0o644); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, r := range []string{"video", "audio"} {
		names, _ := filepath.Glob(filepath.Join(dir, r, "*.*"))
		for _, n := range names {
			if filepath.Ext(n) != ".m3u8" {
				files = append(files, r+"/"+filepath.Base(n))
			}
		}
	}
	return dir, files
}

// hls.js playing a master playlist whose audio is a separate rendition: one
// recording with both, each file from the CDN once.
func TestPlayerSeparateAudio(t *testing.T) {
	start := time.Now()
	media := testmedia.ForTest(t, testmedia.Small)
	dir, files := splitRendition(t, media)
	pr := newPlayerRig(t, dir)
	bctx, closeBrowser := pr.browser(t, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")
	playedAfter := pr.play(t, bctx, "hlsjs", "https://"+cdnHost+"/v/master.m3u8", 2)
	s := waitSession(t, pr.store, "", time.Minute)
	if errs := playerErrors(t, bctx); len(errs) > 0 {
		t.Errorf("hls.js reported errors:\n  %s", strings.Join(errs, "\n  "))
	}
	closeBrowser()
	pr.cdn.checkOnce(t, files)
	checkRecording(t, pr.store, s, media.VideoPackets, media.AudioPackets)
	t.Logf("played 2 s after %.1fs; recording done %.1fs after the start", playedAfter.Seconds(), time.Since(start).Seconds())
}
