package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamsnatcher/streamsnatcher/certs"
	"github.com/streamsnatcher/streamsnatcher/proxy"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

func (a *app) watchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch [PAGE-URL]",
		Short: "Run the recording proxy: play a video in a browser pointed at it and get the whole video",
		Long: `Start the MITM proxy (127.0.0.1:8080 by default). Point a browser at it, play a video for a few
seconds: StreamSnatcher learns the stream, keeps what the browser fetched, backfills the rest and merges it.
With --browser it launches Chromium with a temporary profile that uses the proxy and trusts this install's CA
for that browser only: nothing on the system changes. Ctrl-C leaves every session resumable with 'replay'.`,
		Example: `  streamsnatcher watch --browser https://video.example/watch/42
  streamsnatcher watch --listen 127.0.0.1:8181 --out-dir ~/Videos`,
		Args: cobra.MaximumNArgs(1),
		RunE: a.runWatch,
	}
	f := cmd.Flags()
	f.String("listen", proxy.DefaultListen, "proxy address")
	f.Bool("allow-remote", false, "accept clients from other machines (anyone who can reach it can use your proxy)")
	f.Bool("browser", false, "launch an isolated Chromium that uses the proxy (needs a display, or --headless)")
	f.Bool("headless", false, "with --browser: run Chromium without a window (no display needed; nothing to watch)")
	f.String("chromium", "", "Chromium binary for --browser (default: chromium, chromium-browser or google-chrome from PATH)")
	f.String("out-dir", ".", "where finished videos are written")
	addRunFlags(f)
	return cmd
}

func (a *app) runWatch(cmd *cobra.Command, args []string) error {
	ctx := cmd.Context()
	f := cmd.Flags()
	typedEdge := f.Changed("live-edge") // before the config's values count as set flags
	if err := a.applyRunConfig(cmd); err != nil {
		return err
	}
	// The recording settings as get reads them (a usage error before anything is made), and one trust
	// setting for the proxy and the backfill alike.
	rf, err := a.runFlags(f)
	if err != nil {
		return err
	}
	if rf.opts.LiveEdge {
		// The capture maps the URLs of a live playlist's first window by their place in it, which the
		// renumbering from the edge would shift. A live-edge: meant for get in the config is left to get.
		if typedEdge {
			return usageError{errors.New("--live-edge is for get: in watch a live recording starts at the earliest segment the playlist lists")}
		}
		rf.opts.LiveEdge = false
	}
	ca, err := a.loadCA()
	if err != nil {
		return err
	}
	st, err := a.store()
	if err != nil {
		return err
	}
	outDir, _ := f.GetString("out-dir")
	if outDir, err = prepareOutDir(outDir); err != nil {
		return err
	}
	withBrowser, _ := f.GetBool("browser")
	headless, _ := f.GetBool("headless")
	if withBrowser && !headless && !hasDisplay() {
		return hinted(errors.New("--browser: no display (DISPLAY and WAYLAND_DISPLAY are unset), so no Chromium window can open here"),
			"run it in a desktop session, add --headless for a Chromium without a window, or use a browser on another machine with --allow-remote")
	}
	pool, insecure := rf.pool, rf.insecure
	rf.opts.Logger = a.log
	capt := recorder.NewCapture(ctx, st, recorder.CaptureOptions{OutDir: outDir, Run: rf.opts, Merge: rf.mopts})

	listen, _ := f.GetString("listen")
	remote, _ := f.GetBool("allow-remote")
	px, err := proxy.New(proxy.Options{Listen: listen, AllowRemote: remote, CA: ca, UpstreamCAs: pool,
		InsecureUpstream: insecure, Observer: capt, Logger: a.log, Handler: a.dashboard(capt, ca)})
	if err != nil {
		return hinted(err, "the proxy listens on loopback only unless you pass --allow-remote")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return hinted(fmt.Errorf("listen %s: %w", listen, err), "another program uses that port: pick one with --listen 127.0.0.1:8181")
	}
	addr := ln.Addr().String()
	errc := make(chan error, 1)
	go func() { errc <- px.Serve(ctx, ln) }()

	fmt.Fprintf(a.stderr, `streamsnatcher: proxy on http://%[1]s  (dashboard: http://%[1]s/ , CA: http://%[1]s/ca.pem)
`, addr)
	if !withBrowser {
		fmt.Fprintf(a.stderr, `streamsnatcher: point your browser's HTTP and HTTPS proxy at %[1]s and trust the CA (streamsnatcher ca trust),
streamsnatcher: or run: streamsnatcher watch --browser
`, addr)
	}
	fmt.Fprintf(a.stderr, `streamsnatcher: CA %s  SPKI %s
streamsnatcher: play a video for a few seconds; finished videos go to %s. Ctrl-C stops (sessions stay resumable).
`, ca.CertPath(), ca.SPKIHash(), outDir)

	var browser *exec.Cmd
	var profile string
	if withBrowser {
		bin, _ := f.GetString("chromium")
		start := "about:blank"
		if len(args) == 1 {
			if err := checkURL(args[0]); err != nil {
				return err
			}
			start = args[0]
		}
		browser, profile, err = launchChromium(ctx, bin, addr, ca, start, headless)
		if err != nil {
			return err
		}
		how := "a window"
		if headless {
			how = "no window (--headless)"
		}
		fmt.Fprintf(a.stderr, "streamsnatcher: launched %s with a temporary profile and %s\n", browser.Path, how)
	}
	stopRender := a.renderAll(func() []tracked {
		var out []tracked
		for _, st := range capt.Streams() {
			if st.Session.State == recorder.StateDone || st.Session.State == recorder.StateLearning {
				continue // finished, or nothing to show yet
			}
			out = append(out, tracked{label: st.Session.ID, p: st.Progress})
		}
		return out
	}, watchNotes(capt))
	err = <-errc
	stopRender()
	if browser != nil && browser.Process != nil {
		_ = browser.Process.Kill()
		_ = browser.Wait()
	}
	if profile != "" {
		// Only now: Chromium writes to its profile until it has exited.
		os.RemoveAll(profile)
	}
	capt.Wait()
	unfinished := 0
	for _, s := range capt.Streams() {
		fmt.Fprintf(a.stderr, "streamsnatcher: session %s: %s, %d/%d segments %s\n", s.Session.ID, s.Session.State, s.Session.SegmentsDone, s.Session.SegmentsTotal, s.Session.Output)
		if s.Session.State != recorder.StateDone {
			unfinished++
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprintln(a.stderr, "streamsnatcher: stopped")
	if unfinished > 0 {
		fmt.Fprintln(a.stderr, "streamsnatcher: hint: finish the others with: streamsnatcher replay SESSION-ID")
	}
	return nil // Ctrl-C is how watch ends
}

// ChromiumArgs are the flags that make a throwaway Chromium use the proxy and
// trust our CA by its SPKI hash, without touching the system or the user's profile.
func ChromiumArgs(proxyAddr, spki, profile string) []string {
	return []string{
		"--user-data-dir=" + profile,
		"--proxy-server=http://" + proxyAddr,
		"--proxy-bypass-list=<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com",
		"--ignore-certificate-errors-spki-list=" + spki,
		"--no-first-run", "--no-default-browser-check", "--disable-quic",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--autoplay-policy=no-user-gesture-required",
	}
}

func hasDisplay() bool { return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "" }

// prepareOutDir makes watch's --out-dir, and checks it is writable, before
// anything is downloaded: a video must not fail at its merge for want of it.
func prepareOutDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", hinted(fmt.Errorf("--out-dir %s: %w", abs, unwrapPath(err)), "choose a directory you can write to with --out-dir")
	}
	probe, err := os.CreateTemp(abs, ".streamsnatcher-write-test-*")
	if err != nil {
		return "", hinted(fmt.Errorf("--out-dir %s is not writable: %w", abs, unwrapPath(err)), "choose a directory you can write to with --out-dir")
	}
	probe.Close()
	os.Remove(probe.Name())
	return abs, nil
}

// launchChromium starts Chromium with a fresh profile directory, which it
// returns: the caller removes it once Chromium has exited.
func launchChromium(ctx context.Context, bin, proxyAddr string, ca *certs.CA, page string, headless bool) (*exec.Cmd, string, error) {
	if bin == "" {
		for _, c := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
			if p, err := exec.LookPath(c); err == nil {
				bin = p
				break
			}
		}
	}
	if bin == "" {
		return nil, "", hinted(errors.New("--browser: no Chromium found"), "install it (Debian: sudo apt-get update && sudo apt-get install chromium) or pass --chromium PATH")
	}
	profile, err := os.MkdirTemp("", "streamsnatcher-chromium-")
	if err != nil {
		return nil, "", err
	}
	args := ChromiumArgs(proxyAddr, ca.SPKIHash(), profile)
	if os.Geteuid() == 0 {
		args = append(args, "--no-sandbox")
	}
	if headless {
		args = append(args, "--headless")
	}
	cmd := exec.CommandContext(ctx, bin, append(args, page)...)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile)
		return nil, "", fmt.Errorf("--browser: %w", err)
	}
	return cmd, profile, nil
}

// watchNotes returns the lines to print as recordings end: where a finished
// video is, and why one stopped. Each session is announced once per state.
func watchNotes(capt *recorder.Capture) func() []string {
	told := map[string]string{}
	return func() []string {
		var out []string
		for _, st := range capt.Streams() {
			s := st.Session
			if told[s.ID] == s.State {
				continue
			}
			told[s.ID] = s.State
			out = append(out, stateNote(st)...)
		}
		return out
	}
}

// stateNote is what to say when a stream reaches an end state, or nothing.
func stateNote(st recorder.StreamStatus) []string {
	s := st.Session
	why := firstLine(s.Error)
	if why == "" {
		why = st.Reason
	}
	switch s.State {
	case recorder.StateDone:
		line := fmt.Sprintf("streamsnatcher: finished %s: %s (%d segments)", s.ID, s.Output, s.SegmentsDone)
		if len(s.Gaps) > 0 {
			line += fmt.Sprintf(", WITHOUT %d missing: %s", len(s.Gaps), joinInts(s.Gaps))
		}
		return []string{line}
	case recorder.StateIncomplete, recorder.StateFailed:
		return []string{fmt.Sprintf("streamsnatcher: %s %s: %s", s.State, s.ID, why), "streamsnatcher: hint: " + failedHint(st)}
	case recorder.StatePaused:
		return []string{fmt.Sprintf("streamsnatcher: paused %s: %s", s.ID, why), "streamsnatcher: hint: " + pausedHint(st)}
	}
	return nil
}

// failedHint says what may make a failed recording go: retrying, unless the
// URL itself is wrong (retrying a mistyped (*) URL only asks again for
// segments that are not there).
func failedHint(st recorder.StreamStatus) string {
	var ste *recorder.StartError
	if errors.As(st.Err, &ste) {
		return startHint(ste)
	}
	return fmt.Sprintf("the dashboard's resume (or allow gaps) retries it; or later: streamsnatcher replay %s", st.Session.ID)
}

// pausedHint says what lets a paused recording go on. A page's recording takes
// new credentials when the page is reloaded; one from the dashboard's form has
// no page to reload.
func pausedHint(st recorder.StreamStatus) string {
	s := st.Session
	switch {
	case errors.Is(st.Err, recorder.ErrLowDisk):
		return "the disk is nearly full: free some space, then use the dashboard's resume (nothing downloaded is lost)"
	case s.Page == "":
		return fmt.Sprintf("the origin wants headers, a cookie or a fresh token: give the page's address as the form's Referer, or resume with: streamsnatcher replay %s --referer URL -H 'Cookie: …'", s.ID)
	}
	return "reload the page in the browser: its new token and cookies are taken and the download goes on"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
