package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/dashboard"
	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
)

// A watching is a `watch` running in the test.
type watching struct {
	addr   string
	stderr *syncBuffer
	cancel context.CancelFunc
	exited chan int
}

// startWatch runs watch with args (plus --listen 127.0.0.1:0) in a fresh home
// and waits until it says where it listens.
func startWatch(t *testing.T, args ...string) *watching {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, ".data"))
	ctx, cancel := context.WithCancel(context.Background())
	w := &watching{stderr: &syncBuffer{}, cancel: cancel, exited: make(chan int, 1)}
	var stdout syncBuffer
	go func() {
		w.exited <- run(ctx, append([]string{"watch", "--listen", "127.0.0.1:0"}, args...), &stdout, w.stderr)
	}()
	t.Cleanup(func() { w.stop(t) })
	m := w.waitFor(t, regexp.MustCompile(`proxy on http://(127\.0\.0\.1:\d+)`))
	w.addr = m[1]
	return w
}

// waitFor waits until stderr matches re, failing if watch exits first.
func (w *watching) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; {
		if m := re.FindStringSubmatch(w.stderr.String()); m != nil {
			return m
		}
		select {
		case code := <-w.exited:
			w.exited <- code
			t.Fatalf("watch exited with %d before saying %q:\n%s", code, re, w.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch did not say %q:\n%s", re, w.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postGet sends the dashboard's get form as its page does (Origin, token) and
// fails unless a recording is made of it.
func (w *watching) postGet(t *testing.T, form dashboard.GetForm) {
	t.Helper()
	resp, err := http.Get("http://" + w.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := regexp.MustCompile(`name="streamsnatcher-token" content="([^"]+)"`).FindSubmatch(page)
	if tok == nil {
		t.Fatalf("no token in the dashboard page")
	}
	body, _ := json.Marshal(form)
	req, _ := http.NewRequest(http.MethodPost, "http://"+w.addr+"/api/get", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://"+w.addr)
	req.Header.Set(dashboard.TokenHeader, string(tok[1]))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/get %s: %d %s", form.URL, resp.StatusCode, answer)
	}
}

// stop is Ctrl-C; it returns the exit code.
func (w *watching) stop(t *testing.T) int {
	w.cancel()
	select {
	case code := <-w.exited:
		w.exited <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("watch did not stop on Ctrl-C")
	}
	return -1
}

// A new user's watch: --out-dir that does not exist yet is made at start; the
// dashboard's form on a site numbering from 1 finds the start by itself; the
// terminal says when the video is finished and where it is.
func TestWatchFormFindsStartAndSaysFinished(t *testing.T) {
	media := testmedia.ForTest(t, testmedia.Small)
	o := testorigin.Start(t, testorigin.Options{Dir: renumberFromOne(t, media), Prefix: "/v/one/"})
	outDir := filepath.Join(t.TempDir(), "not", "yet")
	w := startWatch(t, "--out-dir", outDir)
	if fi, err := os.Stat(outDir); err != nil || !fi.IsDir() {
		t.Fatalf("--out-dir %s not made at start: %v", outDir, err)
	}

	w.postGet(t, dashboard.GetForm{URL: o.URL + "seg_(*).ts", Pad: 5, Count: int64(len(media.Segments))})

	m := w.waitFor(t, regexp.MustCompile(`streamsnatcher: finished (\S+): (\S+\.mp4) \((\d+) segments\)`))
	if m[3] != fmt.Sprint(len(media.Segments)) || filepath.Dir(m[2]) != outDir {
		t.Errorf("finished line %q: want %d segments in %s", m[0], len(media.Segments), outDir)
	}
	v, a, err := testmedia.CountPackets(context.Background(), m[2])
	if err != nil || v != media.VideoPackets || a != media.AudioPackets {
		t.Errorf("%s: video %d audio %d (%v), want %d %d", m[2], v, a, err, media.VideoPackets, media.AudioPackets)
	}
	if code := w.stop(t); code != 0 {
		t.Errorf("watch exited %d on Ctrl-C", code)
	}
	if n := strings.Count(w.stderr.String(), "streamsnatcher: finished "); n != 1 {
		t.Errorf("said finished %d times, want once:\n%s", n, w.stderr.String())
	}
}

// An --out-dir that cannot be made is refused at start, before anything is downloaded.
func TestWatchRefusesUnwritableOutDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runIsolated(t, "watch", "--listen", "127.0.0.1:0", "--out-dir", filepath.Join(file, "videos"))
	if code != exitError || !strings.Contains(stderr, "streamsnatcher: error: --out-dir ") || strings.Contains(stderr, "proxy on") {
		t.Errorf("watch --out-dir under a file: exit %d\n%s", code, stderr)
	}
}

// --browser with no display says so instead of starting an invisible Chromium.
func TestWatchBrowserWithoutDisplay(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	code, _, stderr := runIsolated(t, "watch", "--listen", "127.0.0.1:0", "--browser", "--chromium", "/bin/true")
	if code != exitError || !strings.Contains(stderr, "no display") || !strings.Contains(stderr, "--headless") {
		t.Errorf("watch --browser without a display: exit %d\n%s", code, stderr)
	}
}

// The temporary Chromium profile is removed when Chromium cannot start, and
// when it still writes at Ctrl-C; the start text does not suggest --browser
// to someone who gave it.
func TestWatchChromiumProfileRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	profiles := func() []string {
		m, _ := filepath.Glob(filepath.Join(tmp, "streamsnatcher-chromium-*"))
		return m
	}

	notExec := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(notExec, []byte("not a program"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runIsolated(t, "watch", "--listen", "127.0.0.1:0", "--browser", "--headless", "--chromium", notExec)
	if code == exitOK || !strings.Contains(stderr, "--browser: ") {
		t.Errorf("a Chromium that cannot start: exit %d\n%s", code, stderr)
	}
	if p := profiles(); len(p) != 0 {
		t.Errorf("profiles left after a failed start: %v", p)
	}

	// A "Chromium" that fills its profile and runs until killed.
	fake := filepath.Join(t.TempDir(), "chromium")
	script := `#!/bin/sh
for a; do case "$a" in --user-data-dir=*) d="${a#--user-data-dir=}";; esac; done
mkdir -p "$d/Default" && echo x > "$d/Default/Cookies" && echo started > "$d/../fake-started"
exec sleep 600
`
	if err := os.WriteFile(fake, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, "--browser", "--headless", "--chromium", fake)
	w.waitFor(t, regexp.MustCompile(`launched .* with a temporary profile and no window`))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(tmp, "fake-started")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake Chromium did not start")
		}
	}
	if strings.Contains(w.stderr.String(), "or run: streamsnatcher watch --browser") {
		t.Errorf("suggests --browser to someone who gave it:\n%s", w.stderr.String())
	}
	if code := w.stop(t); code != 0 {
		t.Errorf("watch exited %d on Ctrl-C:\n%s", code, w.stderr.String())
	}
	if p := profiles(); len(p) != 0 {
		t.Errorf("profiles left after Ctrl-C: %v", p)
	}
}

// The terminal says why a recording stopped, and what to do, once: a mistyped
// (*) URL fails (its first segments are not there), and one the origin refuses
// (403: it wants a Referer the form did not give) pauses.
func TestWatchSaysFailedAndPaused(t *testing.T) {
	media := testmedia.ForTest(t, testmedia.Small)
	open := testorigin.Start(t, testorigin.Options{Dir: media.Dir, Prefix: "/v/open/"})
	guarded := testorigin.Start(t, testorigin.Options{Dir: media.Dir, Prefix: "/v/guarded/", RequireReferer: "https://video.example/watch"})
	w := startWatch(t, "--out-dir", t.TempDir())
	n := int64(len(media.Segments))

	w.postGet(t, dashboard.GetForm{URL: open.URL + "nothing_(*).ts", Pad: 5, Count: n})
	failed := w.waitFor(t, regexp.MustCompile(`(?m)^streamsnatcher: failed (\S+): (.*)\nstreamsnatcher: hint: (.*)$`))
	if want := "segment 0 " + open.URL + "nothing_00000.ts: no such segment, nor segment 1: the first segments are not there"; failed[2] != want {
		t.Errorf("failed line gives the reason %q, want %q", failed[2], want)
	}
	if !strings.Contains(failed[3], "check the URL") {
		t.Errorf("hint under the failed line: %q, want one that says to check the URL", failed[3])
	}

	w.postGet(t, dashboard.GetForm{URL: guarded.URL + "seg_(*).ts", Pad: 5, Count: n})
	paused := w.waitFor(t, regexp.MustCompile(`(?m)^streamsnatcher: paused (\S+): (.*)\nstreamsnatcher: hint: (.*)$`))
	if !regexp.MustCompile(regexp.QuoteMeta(guarded.URL) + `seg_\d{5}\.ts: status 403 Forbidden$`).MatchString(paused[2]) {
		t.Errorf("paused line gives the reason %q, want a segment's URL and the 403", paused[2])
	}
	if !strings.Contains(paused[3], "Referer") {
		t.Errorf("hint under the paused line: %q, want one that names what to give", paused[3])
	}
	if failed[1] == paused[1] {
		t.Errorf("both lines name session %s", failed[1])
	}

	if code := w.stop(t); code != 0 {
		t.Errorf("watch exited %d on Ctrl-C", code)
	}
	out := w.stderr.String()
	for _, line := range []string{failed[0], paused[0]} {
		if n := strings.Count(out, line); n != 1 {
			t.Errorf("said %q %d times, want once:\n%s", line, n, out)
		}
	}
	if strings.Contains(out, "streamsnatcher: finished ") {
		t.Errorf("says finished for a recording that did not:\n%s", out)
	}
}
