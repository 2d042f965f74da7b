package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamsnatcher/streamsnatcher/certs"
	"github.com/streamsnatcher/streamsnatcher/dashboard"
	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/recorder"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// dashBackend is the dashboard's view of a running capture, as `watch` wires it. StartGet builds a (*) session
// the way `get` does.
type dashBackend struct {
	capt   *recorder.Capture
	ca     *certs.CA
	outDir string
}

func (b *dashBackend) Streams() []recorder.StreamStatus { return b.capt.Streams() }
func (b *dashBackend) Act(id, action string) error      { return b.capt.Act(id, action) }
func (b *dashBackend) CA() dashboard.CAInfo {
	return dashboard.CAInfo{PEM: b.ca.CertPEM(), SPKI: b.ca.SPKIHash(), TrustSteps: certs.TrustInstructions(b.ca)}
}

func (b *dashBackend) StartGet(f dashboard.GetForm) (string, error) {
	t, err := urltemplate.Placeholder(f.URL, f.Pad)
	if err != nil {
		return "", err
	}
	if f.Count <= 0 {
		return "", fmt.Errorf("this test backend needs a count")
	}
	s := &recorder.Session{Source: "get", Input: f.URL, Headers: map[string]string{"Referer": f.Referer}, Page: f.Referer,
		Target: filepath.Join(b.outDir, fmt.Sprintf("get-%d.mp4", time.Now().UnixNano()))}
	tr := recorder.NewTemplateTrack(t, 0)
	tr.Last, tr.EndKnown = (f.Count-1)*t.Step, true
	s.AddTrack(tr)
	if err := b.capt.Add(s); err != nil {
		return "", err
	}
	return s.ID, nil
}

// TestChromiumDashboard opens the dashboard in headless Chromium while the
// proxy captures a video the same browser plays: the stream and its progress
// show up live, pause and resume work from their buttons, the form starts a
// `get` whose session appears, and both end with a download link that serves
// the merged video.
func TestChromiumDashboard(t *testing.T) {
	media := testmedia.ForTest(t, testmedia.Spec{Seconds: 120, SegmentSeconds: 2, Width: 320, Height: 180, FPS: 25})
	// Throttled: the backfill of 60 segments of ~200 kB takes several seconds.
	r := newRig(t, rigOptions{concurrency: 4,
		origin: testorigin.Options{Dir: media.Dir, Prefix: "/v/abc/",
			RequireReferer: "https://" + site + "/watch", PagePath: "/watch", PageHTML: page, ConnRate: 300_000},
		handler: func(r *rig) http.Handler {
			return dashboard.New(dashboard.Options{Backend: &dashBackend{capt: r.capt, ca: r.ca, outDir: r.outDir}})
		},
	})
	st := r.store
	dashURL := "http://" + r.addr + "/"

	// Loopback is not proxied here (Chromium's default), so the dashboard is a direct request to the proxy's
	// own address; with watch --browser's "<-loopback>" the proxy serves it locally too (tested in proxy/).
	vctx, _ := r.browser(t, "*.google.com;*.googleapis.com;*.gstatic.com", chromedp.WindowSize(1280, 800))

	// Tab 1 plays the video through the proxy: the capture starts.
	if _, err := chromedp.Run(vctx, chromedp.Navigate("https://"+site+"/watch")); err != nil {
		t.Fatalf("navigate to the video page: %v", err)
	}
	// Tab 2 is the dashboard.
	dctx, dcancel := chromedp.NewContext(vctx)
	defer dcancel()
	if _, err := chromedp.Run(dctx, chromedp.Steps(chromedp.EmulateViewport(1280, 800), chromedp.Navigate(dashURL))); err != nil {
		t.Fatalf("open the dashboard %s: %v", dashURL, err)
	}
	poll := func(what, expr string) string {
		t.Helper()
		v, err := chromedp.Run(dctx, chromedp.Poll[string](expr, chromedp.WithPollingInterval(50*time.Millisecond),
			chromedp.WithPollingTimeout(60*time.Second)))
		if err != nil {
			body, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.getElementById("list").innerText`))
			t.Fatalf("dashboard: %s: %v\npage shows:\n%s", what, err, body)
		}
		return v
	}
	// The captured stream appears, with its page, template, headers and progress.
	id := poll("the captured stream appears", `(() => {
		const li = document.querySelector("li.stream");
		if (!li || !/\d+ \/ 60/.test(li.querySelector(".segs").textContent)) return "";
		return li.dataset.id; })()`)
	row := fmt.Sprintf(`document.querySelector('li.stream[data-id=%q]')`, id)
	info := poll("the stream's details", row+`.innerText`)
	for _, want := range []string{site, "https://" + site + "/watch", "playlist https://" + site + "/v/abc/index.m3u8", "Referer", "segments"} {
		if !strings.Contains(strings.ToLower(info), strings.ToLower(want)) { // CSS upper-cases some labels
			t.Errorf("the stream's row lacks %q:\n%s", want, info)
		}
	}
	if live := poll("the live badge", `document.getElementById("live").textContent`); live != "live" {
		t.Errorf("live badge %q, want live", live)
	}

	// Pause, then resume, with the row's buttons.
	click := func(action string) {
		t.Helper()
		sel := fmt.Sprintf(`li.stream[data-id=%q] button[data-action=%q]`, id, action)
		poll(action+" button enabled", fmt.Sprintf(`!document.querySelector(%q).disabled ? "yes" : ""`, sel))
		if _, err := chromedp.Run(dctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s: %v", action, err)
		}
	}
	paused := true
	if s := poll("state", row+`.querySelector(".state").textContent`); s == recorder.StateDone {
		paused = false // too fast to pause: the throttle did not hold
		t.Logf("the stream finished before it could be paused")
	} else {
		click(recorder.ActionPause)
		poll("paused", row+`.querySelector(".state").textContent.startsWith("paused") ? "yes" : ""`)
		if r := poll("reason", row+`.querySelector(".reason").textContent`); !strings.Contains(r, "paused by you") {
			t.Errorf("paused stream's reason %q, want paused by you", r)
		}
		click(recorder.ActionResume)
		poll("running again", row+`.className.includes("paused") ? "" : "yes"`)
	}

	// The original script's form starts a get against the origin; its session appears.
	form := fmt.Sprintf(`(() => { const f = document.getElementById("get");
		f.elements.url.value = "https://%[1]s/v/abc/seg_(*).ts"; f.elements.pad.value = "5";
		f.elements.count.value = "60"; f.elements.referer.value = "https://%[1]s/watch"; return "ok"; })()`, site)
	if _, err := chromedp.Run(dctx, chromedp.Steps(chromedp.Evaluate[chromedp.Void](form),
		chromedp.Click(chromedp.CSS(`#get button[type=submit]`)))); err != nil {
		t.Fatalf("submit the form: %v", err)
	}
	msg := poll("the form's answer", `document.getElementById("get-msg").textContent.startsWith("started") || document.getElementById("get-msg").className.includes("err") ? document.getElementById("get-msg").textContent : ""`)
	getID, ok := strings.CutPrefix(msg, "started session ")
	if !ok {
		t.Fatalf("the form answered %q", msg)
	}
	grow := fmt.Sprintf(`document.querySelector('li.stream[data-id=%q]')`, getID)
	poll("the get's session shows progress", `(() => { const li = `+grow+`;
		return li && /[1-9]\d* \/ 60/.test(li.querySelector(".segs").textContent) ? "yes" : ""; })()`)

	png, err := chromedp.Run(dctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shot := os.Getenv("STREAMSNATCHER_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "dashboard.png")
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	// Both finish; their download links serve the merged files.
	for _, sid := range []string{id, getID} {
		li := fmt.Sprintf(`document.querySelector('li.stream[data-id=%q]')`, sid)
		href := poll("download link of "+sid, `(() => { const a = `+li+`.querySelector("a.file");
			return a ? a.getAttribute("href") : ""; })()`)
		s, err := st.Load(sid)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(s.Output)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(strings.TrimSuffix(dashURL, "/") + href)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(got) != len(want) {
			t.Errorf("GET %s: status %d, %d bytes (%v), want %d bytes of %s", href, resp.StatusCode, len(got), err, len(want), s.Output)
		}
		v, a, err := testmedia.CountPackets(context.Background(), s.Output)
		if err != nil || v != media.VideoPackets || a != media.AudioPackets {
			t.Errorf("%s: packets video %d audio %d (%v), want %d %d", s.Output, v, a, err, media.VideoPackets, media.AudioPackets)
		}
	}
	t.Logf("paused and resumed from the dashboard: %v", paused)
}
