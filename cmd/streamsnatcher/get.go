package main

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/streamsnatcher/streamsnatcher/media"
	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/recorder"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// getOptions are the flags of `get`.
type getOptions struct {
	pad            int
	start          int64
	count          int64
	duration       string
	segmentSeconds float64
	output         string
	init           string
	startGiven     bool // --start was given: do not look for the start
}

const defaultUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"

func (a *app) getCmd() *cobra.Command {
	var o getOptions
	cmd := &cobra.Command{
		Use:   "get URL...",
		Short: "Download every segment of a stream and merge them into an .mp4",
		Long: `Download a whole video from:
  - a URL with (*) where the segment number goes (--pad, --start, --count or --duration with --segment-seconds),
  - a plain segment URL (or several): the numbering is learned and the end found by probing,
  - a media or master .m3u8 playlist URL (master: highest bandwidth unless --variant),
  - a DASH .mpd manifest URL: the best video and audio (or --variant, --audio-lang, --audio all) in one .mp4.
A URL without an extension is read first, and is taken for what its bytes are.`,
		Example: `  streamsnatcher get 'https://cdn.example.com/v/seg_(*).ts' --pad 5 --count 150 --referer https://example.com/
  streamsnatcher get 'https://cdn.example.com/v/720p/000012.ts?token=abc'
  streamsnatcher get https://cdn.example.com/v/master.m3u8 -o film.mp4
  streamsnatcher get https://cdn.example.com/v/manifest.mpd --audio-lang en`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.startGiven = cmd.Flags().Changed("start")
			s, err := o.session(args)
			if err != nil {
				return err
			}
			headers, err := headerFlags(cmd.Flags(), true)
			if err != nil {
				return err
			}
			s.Headers = headers
			if s.Target, err = outputPath(o.output, args[0]); err != nil {
				return err
			}
			return a.record(cmd, s, true)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.pad, "pad", 0, "(*) mode: zero-pad the number to this many digits")
	f.Int64Var(&o.start, "start", 0, "(*) mode: the first segment number (default 0, or 1 when the site numbers from 1)")
	f.Int64Var(&o.count, "count", 0, "(*) mode: how many segments")
	f.StringVar(&o.duration, "duration", "", "(*) mode: the video's length, hh:mm:ss (with --segment-seconds)")
	f.Float64Var(&o.segmentSeconds, "segment-seconds", 0, "(*) mode: seconds per segment (with --duration)")
	f.StringVarP(&o.output, "output", "o", "", "write the result exactly here (default: a name derived from the URL)")
	f.StringVar(&o.init, "init", "", "fMP4 segments: the URL of the init segment (EXT-X-MAP) they need")
	addHeaderFlags(f)
	addRunFlags(f)
	return cmd
}

func addHeaderFlags(f *pflag.FlagSet) {
	f.StringArrayP("header", "H", nil, "send this header with every request, 'Name: value' (repeatable)")
	f.String("referer", "", "the Referer header (the page the video plays on)")
	f.String("cookie", "", "the Cookie header")
	f.String("user-agent", "", "the User-Agent header")
}

func addRunFlags(f *pflag.FlagSet) {
	f.Int("concurrency", recorder.DefaultConcurrency, "parallel segment downloads")
	f.Int("retries", 6, "tries per segment before the final pass")
	f.Bool("allow-gaps", false, "merge even when segments are missing (they are listed)")
	f.Bool("keep-segments", false, "keep the segment files after a verified merge")
	f.String("variant", "", "master playlists: which variant (index, 1280x720, 720p or bandwidth); DASH: 720p or a Representation id")
	f.String("audio-lang", "", "master playlists and DASH: the audio language to record (default: the DEFAULT rendition, DASH's main audio)")
	f.String("audio", "", "master playlists and DASH: 'all' records every audio language as a separate track")
	f.String("subs", "all", "master playlists: WebVTT subtitles to record: all, none, or a language (muxed, and kept beside the output as NAME.LANG.vtt)")
	f.String("ffmpeg", "", "path of ffmpeg (default: from PATH)")
	f.String("min-free", "512MiB", "free space to leave on the sessions' disk: downloads pause below it (e.g. 200MB, 2GiB; 0: none)")
	addTrustFlags(f)
	f.Duration("live-for", 0, "live playlists: stop recording after this long (e.g. 90m); default: until the playlist ends or Ctrl-C")
	f.Bool("live-edge", false, "live playlists: start at the live edge (the last 3 segments) instead of the earliest still listed")
}

// session builds a new session from what the person typed.
func (o *getOptions) session(args []string) (*recorder.Session, error) {
	raw := args[0]
	s := &recorder.Session{Source: "get", Input: raw}
	var t *recorder.Track
	switch {
	case strings.Contains(raw, "(*)"):
		if len(args) > 1 {
			return nil, usageError{errors.New("a (*) URL stands alone: give one argument")}
		}
		tm, err := urltemplate.Placeholder(raw, o.pad)
		if err != nil {
			return nil, err
		}
		t = &recorder.Track{Track: plan.Track{ID: "video", Kind: plan.Video, Template: tm}, First: o.start,
			ProbeStart: !o.startGiven} // 0 or 1: Run looks
		n, err := o.segmentCount()
		if err != nil {
			return nil, err
		}
		if n > 0 {
			t.Last, t.EndKnown = o.start+(n-1)*tm.Step, true
		}
	case isPlaylistURL(raw) || len(args) == 1 && noExtension(raw):
		// A URL with no extension is read first: a playlist or manifest by its
		// bytes, else a segment whose numbering is learned.
		if err := checkURL(raw); err != nil {
			return nil, err
		}
		s.Playlist = raw
	default:
		for _, u := range args {
			if err := checkURL(u); err != nil {
				return nil, err
			}
		}
		if err := distinctURLs(args); err != nil {
			return nil, err
		}
		tm, err := urltemplate.Learn(args)
		if err != nil {
			return nil, err
		}
		t = &recorder.Track{Track: plan.Track{ID: "video", Kind: plan.Video, Template: tm}, First: tm.First, ProbeStart: true}
	}
	if t != nil {
		t.Ext = extOf(t.Template.URL(t.First))
		if o.init != "" {
			if err := checkURL(o.init); err != nil {
				return nil, err
			}
			t.Inits, t.Init = []plan.Init{{URL: o.init}}, 1
			if t.Ext == ".ts" {
				t.Ext = ".m4s"
			}
		}
		s.AddTrack(t)
	}
	return s, nil
}

func (o *getOptions) segmentCount() (int64, error) {
	switch {
	case o.count < 0:
		return 0, usageError{fmt.Errorf("--count %d: must be positive", o.count)}
	case o.count > 0 && o.duration != "":
		return 0, usageError{errors.New("give --count or --duration, not both")}
	case o.count > 0:
		return o.count, nil
	case o.duration == "":
		if o.segmentSeconds != 0 {
			return 0, usageError{errors.New("--segment-seconds needs --duration")}
		}
		return 0, nil
	}
	d, err := parseDuration(o.duration)
	if err != nil {
		return 0, hinted(usageError{fmt.Errorf("--duration %q: %w", o.duration, err)}, "write the length as hh:mm:ss, mm:ss or seconds, e.g. --duration 1:02:03")
	}
	if o.segmentSeconds <= 0 {
		return 0, hinted(usageError{errors.New("--duration needs --segment-seconds")}, "the seconds per segment are in the playlist's #EXT-X-TARGETDURATION, often 2, 4, 6 or 10")
	}
	return int64(math.Ceil(d.Seconds()/o.segmentSeconds - 1e-9)), nil
}

// parseDuration reads hh:mm:ss, mm:ss or seconds.
func parseDuration(s string) (time.Duration, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) > 3 || s == "" {
		return 0, errors.New("not hh:mm:ss")
	}
	var total float64
	for i, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || (i > 0 && v >= 60) {
			return 0, errors.New("not hh:mm:ss")
		}
		total = total*60 + v
	}
	if total <= 0 || total > 1e7 {
		return 0, errors.New("not a usable length")
	}
	return time.Duration(total * float64(time.Second)), nil
}

// isPlaylistURL reports whether raw names an HLS playlist or a DASH manifest.
func isPlaylistURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	k := media.Classify(u.Path, "")
	return k == media.KindPlaylist || k == media.KindManifest
}

// noExtension reports whether raw's last path element has no extension, so
// only its Content-Type and bytes can say what it is.
func noExtension(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && path.Ext(path.Base(u.Path)) == ""
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: %w", raw, urltemplate.ErrBadURL)
	}
	return nil
}

func extOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ".ts"
	}
	if e := media.ExtOf(u.Path); e != "" {
		return e
	}
	return ".ts"
}

// headerFlags collects -H, --referer, --cookie and --user-agent.
func headerFlags(f *pflag.FlagSet, defaultUA bool) (map[string]string, error) {
	h := map[string]string{}
	hs, _ := f.GetStringArray("header")
	for _, kv := range hs {
		k, v, ok := strings.Cut(kv, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, usageError{fmt.Errorf("-H %q: want 'Name: value'", recorder.RedactHeader(k, kv))}
		}
		h[k] = strings.TrimSpace(v)
	}
	for flag, name := range map[string]string{"referer": "Referer", "cookie": "Cookie", "user-agent": "User-Agent"} {
		if v, _ := f.GetString(flag); v != "" {
			if strings.ContainsAny(v, "\r\n") {
				return nil, usageError{fmt.Errorf("--%s: a header value cannot hold a line break", flag)}
			}
			h[name] = v
		}
	}
	if _, ok := h["User-Agent"]; !ok && defaultUA {
		h["User-Agent"] = defaultUserAgent
	}
	return h, nil
}

// sanitizeName makes a file name from anything: no separators, no "..", no leading dot.
func sanitizeName(s string) string { return recorder.SafeName(s) }

// outputPath is -o exactly, or a sanitized name from the URL in the current directory.
// It checks the directory is writable before anything is downloaded.
func outputPath(flag, raw string) (string, error) {
	out := flag
	if out == "" {
		out = derivedName(raw)
		for i := 1; fileExistsCLI(out); i++ {
			out = fmt.Sprintf("%s-%d.mp4", strings.TrimSuffix(derivedName(raw), ".mp4"), i)
		}
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(abs)
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return "", hinted(fmt.Errorf("output %s is a directory", abs), "give a file name with -o, e.g. -o %s", filepath.Join(out, "video.mp4"))
	}
	probe, err := os.CreateTemp(dir, ".streamsnatcher-write-test-*")
	if err != nil {
		return "", hinted(fmt.Errorf("output directory %s is not writable: %w", dir, unwrapPath(err)), "choose another place with -o PATH")
	}
	probe.Close()
	os.Remove(probe.Name())
	return abs, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// derivedName: the last path element that is not just the segment file, plus .mp4.
func derivedName(raw string) string {
	u, err := url.Parse(strings.ReplaceAll(raw, "(*)", "0"))
	if err != nil {
		return "video.mp4"
	}
	elems := strings.Split(strings.Trim(u.Path, "/"), "/")
	name := ""
	if len(elems) >= 2 {
		name = strings.Join(elems[max(0, len(elems)-3):len(elems)-1], "-")
	}
	if name == "" {
		name = u.Hostname()
	}
	return sanitizeName(name) + ".mp4"
}
