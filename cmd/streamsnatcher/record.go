package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// store opens the session store in the configured data dir.
func (a *app) store() (*recorder.Store, error) {
	dir := a.config().DataDir
	st, err := recorder.NewStore(dir)
	if err != nil {
		return nil, hinted(err, "choose another place with --data-dir or STREAMSNATCHER_DATA_DIR")
	}
	return st, nil
}

// loadSession loads a session by id or path from the configured data dir.
func (a *app) loadSession(idOrPath string) (*recorder.Session, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	return st.Load(idOrPath)
}

// record saves the session (when new) and runs it to the end, rendering progress.
func (a *app) record(cmd *cobra.Command, s *recorder.Session, create bool) error {
	if err := a.applyRunConfig(cmd); err != nil {
		return err
	}
	// The flags first: a usage error leaves no session behind.
	rf, err := a.runFlags(cmd.Flags())
	if err != nil {
		return err
	}
	st, err := a.store()
	if err != nil {
		return err
	}
	if create {
		if err := st.Create(s); err != nil {
			return err
		}
		if !a.config().Quiet {
			fmt.Fprintf(a.stderr, "streamsnatcher: session %s\n", s.ID)
		}
	}
	if a.held != s.Dir() {
		unlock, err := a.lockSession(s, cmd.Name())
		if err != nil {
			return err
		}
		defer unlock()
	}
	prog := recorder.NewProgress()
	opts, mopts := rf.opts, rf.mopts
	opts.Logger, opts.Progress = a.log, prog

	var first0 int64
	var total0 int
	var counted bool
	if t := s.Main(); t != nil {
		first0, total0, counted = t.First, t.Total(), t.EndKnown
	}
	stopRender := a.renderProgress(prog)
	res, err := recorder.Run(cmd.Context(), s, opts, mopts)
	stopRender()
	a.rangeNotes(s.Main(), first0, total0, counted)
	if res != nil && res.Retries != "" && !a.config().Quiet {
		fmt.Fprintf(a.stderr, "streamsnatcher: %s\n", res.Retries)
	}
	if err != nil {
		return &sessionError{id: s.ID, err: untrustedHint(err)}
	}
	a.warnHoles(res.Holes)
	if res.Live && !res.Stopped && !a.config().Quiet {
		fmt.Fprintf(a.stderr, "streamsnatcher: live: recorded %.0f s; it ended because %s\n", res.Recorded, res.Why)
	}
	if res.Concat {
		fmt.Fprintf(a.stderr, "streamsnatcher: ffmpeg was not found: wrote %s by joining the segments\n", res.Output)
		fmt.Fprintf(a.stderr, "streamsnatcher: hint: install ffmpeg (Debian: sudo apt-get update && sudo apt-get install ffmpeg), then run: streamsnatcher replay %s\n", s.ID)
	}
	fmt.Fprintln(a.stdout, res.Output)
	if !a.config().Quiet {
		for _, p := range res.Subtitles {
			fmt.Fprintf(a.stderr, "streamsnatcher: subtitles: %s\n", p)
		}
	}
	if res.Stopped {
		// Ctrl-C ends a live recording on purpose: the output is whole, yet the
		// exit code says it was interrupted, as every interrupt does.
		return &stoppedError{output: res.Output, seconds: res.Recorded}
	}
	return nil
}

// warnHoles names every segment the output lacks: the playlist's EXT-X-GAPs
// and the missing segments the person allowed.
func (a *app) warnHoles(holes []recorder.Hole) {
	var gaps, missing []string
	for _, h := range holes {
		name := fmt.Sprint(h.Index)
		if h.Track != "video" {
			name = h.Track + " " + name
		}
		if u, err := url.Parse(h.URL); err == nil && path.Base(u.Path) != "." && path.Base(u.Path) != "/" {
			name += " (" + path.Base(u.Path) + ")" // the file name only: no host, no token
		}
		if h.ByDesign {
			gaps = append(gaps, name)
		} else {
			missing = append(missing, name)
		}
	}
	if len(gaps) > 0 {
		fmt.Fprintf(a.stderr, "streamsnatcher: warning: the playlist marks %d segment(s) as gaps (EXT-X-GAP); the output has a hole there: %s\n", len(gaps), strings.Join(gaps, ", "))
	}
	if len(missing) > 0 {
		fmt.Fprintf(a.stderr, "streamsnatcher: warning: merged WITHOUT %d missing segment(s): %s\n", len(missing), strings.Join(missing, ", "))
	}
}

// rangeNotes says how Run corrected the range the person typed: where the
// numbering starts, and where the video ends when the count was too high.
func (a *app) rangeNotes(t *recorder.Track, first0 int64, total0 int, counted bool) {
	if t == nil {
		return
	}
	if t.First != first0 {
		fmt.Fprintf(a.stderr, "streamsnatcher: the numbering starts at %d (segment %d is not there)\n", t.First, first0)
	}
	if counted && t.EndKnown && t.Total() < total0 {
		fmt.Fprintf(a.stderr, "streamsnatcher: the video ends at segment %d: %d segment(s), not %d\n", t.Last, t.Total(), total0)
	}
}

func joinInts(a []int64) string {
	parts := make([]string, len(a))
	for i, v := range a {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, " ")
}

func (a *app) replayCmd() *cobra.Command {
	var fresh string
	cmd := &cobra.Command{
		Use:   "replay SESSION|FILE.har",
		Short: "Finish a saved session headlessly: fetch only what is missing, then merge",
		Long: `Resume a session after Ctrl-C, a crash, a full disk or an expired token. SESSION is a session id
(see 'streamsnatcher sessions') or the path of its directory. New headers, a cookie or a fresh segment URL
(--url) replace the saved ones. A .har file (the browser DevTools' "Save all as HAR") is read instead: each
stream it shows becomes a new session, and the segments it carries are not fetched again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if isHAR(args[0]) {
				return a.replayHAR(cmd, args[0])
			}
			s, err := a.loadSession(args[0])
			if err != nil {
				return err
			}
			unlock, err := a.lockSession(s, "replay")
			if err != nil {
				return err
			}
			defer unlock()
			a.held = s.Dir()
			if s, err = a.loadSession(s.Dir()); err != nil { // as the last holder left it
				return err
			}
			h, err := headerFlags(cmd.Flags(), false)
			if err != nil {
				return err
			}
			for k, v := range h {
				if s.Headers == nil {
					s.Headers = map[string]string{}
				}
				s.Headers[k] = v
			}
			if fresh != "" {
				if err := checkURL(fresh); err != nil {
					return err
				}
				if err := s.Refresh(fresh); err != nil {
					return hinted(err, "give a segment URL of the same stream, as the browser requests it now")
				}
			}
			if o, _ := cmd.Flags().GetString("output"); o != "" {
				if s.Target, err = outputPath(o, ""); err != nil {
					return err
				}
			}
			if s.State == recorder.StateDone && s.Output != "" && fileExistsCLI(s.Output) && strings.HasSuffix(s.Output, ".mp4") {
				fmt.Fprintln(a.stdout, s.Output)
				return nil
			}
			return a.record(cmd, s, false)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fresh, "url", "", "a fresh segment URL of the same stream (new token)")
	f.StringP("output", "o", "", "write the result here instead")
	addHeaderFlags(f)
	addRunFlags(f)
	return cmd
}

// runSettings are the settings of the recording commands' flags (addRunFlags), checked.
type runSettings struct {
	opts     recorder.Options      // Concurrency, Attempts, LiveFor, LiveEdge and a Client that trusts as asked
	mopts    recorder.MergeOptions // AllowGaps, KeepSegments, Variant, Audio, Subtitles, FFmpeg
	pool     *x509.CertPool        // the upstream CAs trusted besides the system's (--upstream-ca); nil: none
	insecure bool                  // --insecure-upstream
}

// runFlags reads and checks the flags addRunFlags registers, after applyRunConfig: get, replay and watch
// read them the same way. A bad value is a usage error.
func (a *app) runFlags(f *pflag.FlagSet) (runSettings, error) {
	var rs runSettings
	conc, _ := f.GetInt("concurrency")
	if a.v.IsSet("concurrency") {
		conc = a.v.GetInt("concurrency")
	}
	tries, _ := f.GetInt("retries")
	allowGaps, _ := f.GetBool("allow-gaps")
	keep, _ := f.GetBool("keep-segments")
	variant, _ := f.GetString("variant")
	audio, _ := f.GetString("audio")
	if lang, _ := f.GetString("audio-lang"); lang != "" {
		if audio != "" {
			return rs, usageError{errors.New("give --audio-lang or --audio, not both")}
		}
		audio = lang
	} else if audio != "" && !strings.EqualFold(audio, "all") {
		return rs, usageError{fmt.Errorf("--audio %q: the only value is 'all' (--audio-lang picks one language)", audio)}
	}
	subs, _ := f.GetString("subs")
	if subs = strings.TrimSpace(subs); subs == "" {
		return rs, usageError{errors.New("--subs: give all, none or a language")}
	}
	ffmpeg, _ := f.GetString("ffmpeg")
	if ffmpeg != "" {
		ffmpeg, _ = filepath.Abs(ffmpeg)
	}
	liveFor, _ := f.GetDuration("live-for")
	if liveFor < 0 {
		return rs, usageError{fmt.Errorf("--live-for %s: must be positive", liveFor)}
	}
	liveEdge, _ := f.GetBool("live-edge")
	minFreeFlag, _ := f.GetString("min-free")
	minFree, err := parseSize(minFreeFlag)
	if err != nil {
		return rs, usageError{fmt.Errorf("--min-free %q: %w", minFreeFlag, err)}
	}
	if minFree == 0 {
		minFree = -1 // recorder.Options: < 0 is no floor, 0 the default
	}
	pool, insecure, err := a.upstreamTrust(f)
	if err != nil {
		return rs, err
	}
	rs.pool, rs.insecure = pool, insecure
	rs.opts = recorder.Options{Concurrency: conc, Attempts: tries, Client: fetchClient(pool, insecure, max(conc, 1)),
		LiveFor: liveFor, LiveEdge: liveEdge, MinFreeBytes: minFree}
	rs.mopts = recorder.MergeOptions{AllowGaps: allowGaps, KeepSegments: keep, Variant: variant, Audio: audio,
		Subtitles: subs, FFmpeg: ffmpeg}
	return rs, nil
}

// parseSize reads a size such as 512MiB, 200MB, 2G or 1048576 (bytes): decimal units (kB, MB, GB, TB) are
// powers of 1000, binary ones (KiB, MiB, GiB, TiB) and the bare letters (K, M, G, T) powers of 1024.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, errors.New("not a size: give a number and a unit, e.g. 200MB or 2GiB")
	}
	mult, ok := sizeUnits[strings.ToLower(unit)]
	switch {
	case !ok:
		return 0, fmt.Errorf("unknown unit %q (use MB, GB, MiB, GiB, or bytes)", unit)
	case v*mult > math.MaxInt64/2:
		return 0, errors.New("too large")
	}
	return int64(v * mult), nil
}

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}
