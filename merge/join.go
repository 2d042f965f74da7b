package merge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/text/language"
)

// Track kinds of a JoinTrack.
const (
	KindVideo     = "video"     // video, and any audio muxed with it in the same section files
	KindAudio     = "audio"     // audio only; video in its files (cover art) is ignored
	KindSubtitles = "subtitles" // text subtitles (WebVTT, SubRip, mov_text), written as mov_text
)

// A JoinTrack is one track of the final file: its section files in play order. A section is a stretch between
// discontinuities (#EXT-X-DISCONTINUITY, a DASH Period) where timestamps restart and stream parameters may
// change, typically an ad before the film.
type JoinTrack struct {
	Kind     string // KindVideo, KindAudio or KindSubtitles
	Language string // BCP-47 tag from the playlist ("en", "pt-BR"); written as ISO 639-2 ("eng", "por"); "" is und
	Name     string // human name ("English (AD)"), written as the stream's handler name; optional
	Default  bool   // the player's initial choice for its kind; see JoinOptions
	// Sections are the section files in play order: MP4 written by a Merger for video and audio, or
	// subtitle files (WebVTT) whose cue times are relative to the start of their section.
	Sections []string
	// Expected is optional: per section, the seconds it must last (the EXTINF sum), 0 if unknown. It must be
	// nil or as long as Sections.
	Expected []float64
}

// JoinOptions configure a Join.
type JoinOptions struct {
	FFmpeg, FFprobe string // executables; "" looks them up as Options does
	// Output is the final .mp4. It is written as Output+PartialSuffix and renamed after verification.
	Output string
	// Tracks in output order. Each stream of a track gets the track's language and name. The default
	// disposition goes, per kind of stream, to the first stream of a Default track, or else to the first
	// video and the first audio stream; subtitles are never made default unless asked (the MP4 muxer still
	// enables the first subtitle track when none is).
	Tracks []JoinTrack
	Logger *slog.Logger // nil discards
}

// JoinResult describes a finished Join.
type JoinResult struct {
	// Result.Duration is the output's container duration, Result.Expected the longest track's expected
	// duration, Result.Segments the number of section files, Result.FFmpegSeconds the wall time of every
	// ffmpeg run (re-encodes and the final mux).
	Result
	Tracks []JoinedTrack // per JoinOptions.Tracks
}

// JoinedTrack says where a track ended up in the output and what had to be done to it.
type JoinedTrack struct {
	FirstStream int       // index of the track's first stream in the output
	Streams     int       // its number of streams in the output
	Durations   []float64 // per stream, seconds, as ffprobe reads the output
	Expected    float64   // what each stream was checked against: the sections' Expected, or else probed, lengths
	// Converted lists the sections whose parameters differed from the track's main (longest) section and
	// that were re-encoded, or completed with silence or black, to match it.
	Converted []int
}

// Join joins the sections of each track and muxes the tracks into one MP4 at o.Output.
//
// Per track, the longest section is the main one. Sections whose streams match it (codec, profile, size,
// pixel format, sample rate, channels, time base, per stream, in the same order) are joined by stream copy
// with continuous timestamps (ffmpeg's concat demuxer), keeping every packet. A section that differs is first
// rewritten to match: only the differing streams are re-encoded (video with libx264 scaled and padded to the
// main size, same pixel format and profile; audio with the main codec at its sample rate and channel layout,
// so it keeps its pitch and length), the others copied; a stream the main section has and this section lacks
// is generated (silence, or black frames) for the section's length; streams the main section lacks are
// dropped. Only H.264 video and AAC (LC), AC-3, E-AC-3, MP3, Opus or FLAC audio can be re-encoded; a section
// needing anything else fails the Join. Subtitle sections are shifted by the length of the preceding sections
// of the first video or audio track with as many sections (else by Expected) and converted to mov_text.
//
// The output is verified with ffprobe: every track's streams are there, each stream lasts the sum of its
// track's Expected values (or, where 0, of the sections' probed lengths) within max(1 s, 2 %), and each video
// and audio stream holds as many packets as its sections together. A failure wraps ErrVerify and keeps the
// partial output and the intermediate files, naming them; an ffmpeg failure is an *FFmpegError and leaves no
// output. On success the intermediate files are removed; the section files are never touched.
func Join(ctx context.Context, o JoinOptions) (*JoinResult, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	ff, fp, err := lookTools(o.FFmpeg, o.FFprobe)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if err := checkDir(filepath.Dir(o.Output)); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	j := &joiner{ctx: ctx, o: o, ffmpeg: ff, ffprobe: fp, log: o.Logger, partial: o.Output + PartialSuffix}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	res, err := j.run()
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted: nothing to inspect.
			os.Remove(j.partial)
			j.keepWork = false
		}
		if j.work != "" && !j.keepWork {
			os.RemoveAll(j.work)
		}
		return nil, fmt.Errorf("join %s: %w", o.Output, err)
	}
	return res, nil
}

func (o *JoinOptions) validate() error {
	if o.Output == "" {
		return errors.New("no output path")
	}
	if len(o.Tracks) == 0 {
		return errors.New("no tracks")
	}
	for i, t := range o.Tracks {
		switch t.Kind {
		case KindVideo, KindAudio, KindSubtitles:
		default:
			return fmt.Errorf("track %d: unknown kind %q (want %q, %q or %q)", i, t.Kind, KindVideo, KindAudio, KindSubtitles)
		}
		if len(t.Sections) == 0 {
			return fmt.Errorf("track %d (%s): no sections", i, t.Kind)
		}
		if t.Expected != nil && len(t.Expected) != len(t.Sections) {
			return fmt.Errorf("track %d (%s): %d expected durations for %d sections", i, t.Kind, len(t.Expected), len(t.Sections))
		}
		for k, p := range t.Sections {
			if strings.ContainsAny(p, "\n\r") {
				return fmt.Errorf("track %d section %d: path %q has a line break, which a concat list cannot hold", i, k, p)
			}
		}
	}
	return nil
}

// joiner holds the state of one Join.
type joiner struct {
	ctx             context.Context
	o               JoinOptions
	ffmpeg, ffprobe string
	log             *slog.Logger
	partial         string
	work            string // directory of intermediate files, created on first need
	keepWork        bool   // something in work is worth inspecting after a failure
	ran             time.Duration
	tracks          []*trackPlan
}

// trackPlan is what Join learns about a track before writing anything.
type trackPlan struct {
	index    int
	t        JoinTrack
	sections []*sectionInfo
	main     int          // index of the longest section
	layout   []streamInfo // the main section's streams of the track's kind, in order
	files    []string     // per section, the file that goes into the concat (the section or its rewrite)
	offsets  []float64    // subtitles only: per section, the length to shift the following sections by
	want     float64      // seconds each stream must last
	packets  []int64      // per layout stream, the packets the sections hold together
}

// sectionInfo is ffprobe's view of one section file.
type sectionInfo struct {
	path     string
	duration float64 // container duration, seconds
	streams  []streamInfo
}

// streamInfo is one stream as ffprobe describes it.
type streamInfo struct {
	Index         int    `json:"index"`
	CodecType     string `json:"codec_type"`
	CodecName     string `json:"codec_name"`
	Profile       string `json:"profile"`
	Width         int    `json:"width"`
	Height        int    `json:"height"`
	PixFmt        string `json:"pix_fmt"`
	SampleRate    string `json:"sample_rate"`
	Channels      int    `json:"channels"`
	ChannelLayout string `json:"channel_layout"`
	TimeBase      string `json:"time_base"`
	FrameRate     string `json:"avg_frame_rate"`
	BitRate       string `json:"bit_rate"`
	Duration      string `json:"duration"`
	NbFrames      string `json:"nb_frames"`
	Tags          struct {
		Language    string `json:"language"`
		HandlerName string `json:"handler_name"`
	} `json:"tags"`
	Disposition struct {
		Default int `json:"default"`
	} `json:"disposition"`

	// mapID, when not 0, is the stream's id in its input (an MPEG-TS PID, an MP4 track ID), by which a mux
	// maps it: a layout read by a scanner, not ffprobe, knows the ids for certain and the indexes only as
	// ffmpeg's demuxers usually number streams.
	mapID int
}

// differs names the first parameter in which s differs from main such that a stream copy of both into one
// track would be invalid, or returns "".
func (s streamInfo) differs(main streamInfo) string {
	type param struct {
		name      string
		got, want any
	}
	ps := []param{{"codec", s.CodecName, main.CodecName}, {"profile", s.Profile, main.Profile}}
	switch s.CodecType {
	case "video":
		ps = append(ps, param{"size", fmt.Sprintf("%dx%d", s.Width, s.Height), fmt.Sprintf("%dx%d", main.Width, main.Height)},
			param{"pixel format", s.PixFmt, main.PixFmt})
	case "audio":
		ps = append(ps, param{"sample rate", s.SampleRate, main.SampleRate}, param{"channels", s.Channels, main.Channels})
	}
	// The concat demuxer does not rescale timestamps between files.
	ps = append(ps, param{"time base", s.TimeBase, main.TimeBase})
	for _, p := range ps {
		if p.got != p.want {
			return fmt.Sprintf("%s %v, main section has %v", p.name, p.got, p.want)
		}
	}
	return ""
}

func (s streamInfo) seconds() float64 {
	d, err := strconv.ParseFloat(s.Duration, 64)
	if err != nil {
		return -1
	}
	return d
}

func (s streamInfo) frames() int64 {
	n, err := strconv.ParseInt(s.NbFrames, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// kindTypes says which ffprobe codec types a track of each kind takes from its files.
var kindTypes = map[string][]string{
	KindVideo:     {"video", "audio"},
	KindAudio:     {"audio"},
	KindSubtitles: {"subtitle"},
}

// layoutOf returns the streams of s a track of kind takes, in file order.
func layoutOf(kind string, s *sectionInfo) []streamInfo {
	var l []streamInfo
	for _, st := range s.streams {
		for _, typ := range kindTypes[kind] {
			if st.CodecType == typ {
				l = append(l, st)
			}
		}
	}
	return l
}

func (j *joiner) run() (*JoinResult, error) {
	t0 := time.Now()
	if err := j.probeSections(); err != nil {
		return nil, err
	}
	j.log.Debug("probed sections", "seconds", time.Since(t0).Seconds())
	for _, tp := range j.tracks {
		if err := j.plan(tp); err != nil {
			return nil, err
		}
	}
	var err error
	if j.work, err = os.MkdirTemp(filepath.Dir(j.o.Output), "."+filepath.Base(j.o.Output)+".join-"); err != nil {
		return nil, err
	}
	for _, tp := range j.tracks {
		if err := j.conform(tp); err != nil {
			return nil, err
		}
	}
	if err := j.subtitleOffsets(); err != nil {
		return nil, err
	}
	args, err := j.muxArgs()
	if err != nil {
		return nil, err
	}
	if err := j.ffmpegRun("mux", args); err != nil {
		os.Remove(j.partial)
		return nil, err
	}
	res := &JoinResult{Result: Result{Output: j.o.Output, FFmpegSeconds: j.ran.Seconds()}}
	for _, tp := range j.tracks {
		res.Segments += len(tp.sections)
	}
	// The check and the fsync are independent and mostly wait on I/O: run them together, as Finish does.
	t1 := time.Now()
	var (
		wg   sync.WaitGroup
		sErr error
	)
	wg.Go(func() { res.Bytes, sErr = syncFile(j.partial) })
	vErr := j.verify(res)
	wg.Wait()
	j.log.Debug("verified", "seconds", time.Since(t1).Seconds())
	if vErr != nil {
		j.keepWork = true
		return nil, fmt.Errorf("%w: %v (output kept at %s, intermediate files at %s)", ErrVerify, vErr, j.partial, j.work)
	}
	if sErr != nil {
		return nil, sErr
	}
	if err := os.Rename(j.partial, j.o.Output); err != nil {
		return nil, err
	}
	syncDir(filepath.Dir(j.o.Output))
	os.RemoveAll(j.work)
	j.log.Info("joined", "output", res.Output, "tracks", len(res.Tracks), "sections", res.Segments,
		"duration", res.Duration, "expected", res.Expected, "bytes", res.Bytes,
		"ffmpeg_seconds", res.FFmpegSeconds, "seconds", time.Since(t0).Seconds())
	return res, nil
}

// probeParallel is how many ffprobes probeSections runs at once: each is a process start and a header read,
// mostly waiting.
const probeParallel = 4

// probeSections runs ffprobe on every section file, a few at a time; an error is the first section's in order.
func (j *joiner) probeSections() error {
	type job struct {
		tp *trackPlan
		k  int
	}
	var jobs []job
	for i, t := range j.o.Tracks {
		tp := &trackPlan{index: i, t: t, sections: make([]*sectionInfo, len(t.Sections))}
		for k := range t.Sections {
			jobs = append(jobs, job{tp, k})
		}
		j.tracks = append(j.tracks, tp)
	}
	errs := make([]error, len(jobs))
	var g errgroup.Group
	g.SetLimit(probeParallel)
	for n, jb := range jobs {
		g.Go(func() error {
			jb.tp.sections[jb.k], errs[n] = j.probeFile(jb.tp.t.Sections[jb.k])
			return nil
		})
	}
	g.Wait()
	if err := j.ctx.Err(); err != nil {
		return err
	}
	for n, err := range errs {
		tp, k := jobs[n].tp, jobs[n].k
		switch {
		case errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("%s section %d: %w", tp.name(), k, err)
		case err != nil:
			return fmt.Errorf("%w: %s section %d %s is not readable media: %v", ErrVerify, tp.name(), k, tp.t.Sections[k], err)
		}
	}
	return nil
}

func (tp *trackPlan) name() string {
	s := fmt.Sprintf("track %d (%s", tp.index, tp.t.Kind)
	if tp.t.Language != "" {
		s += " " + tp.t.Language
	}
	return s + ")"
}

func (j *joiner) probeFile(path string) (*sectionInfo, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	out, err := runProbe(j.ctx, j.ffprobe, nil, probeStreamArgs(path)...)
	if err != nil {
		return nil, err
	}
	return parseProbe(path, out)
}

// probeStreamArgs ask ffprobe about input for what a sectionInfo holds.
func probeStreamArgs(input string) []string {
	return []string{"-show_entries",
		"format=duration:stream=index,codec_type,codec_name,profile,width,height,pix_fmt,sample_rate,channels," +
			"channel_layout,time_base,avg_frame_rate,bit_rate,duration,nb_frames:stream_tags=language,handler_name:" +
			"stream_disposition=default",
		"-of", "json", input}
}

// parseProbe reads ffprobe's JSON answer to probeStreamArgs about path.
func parseProbe(path string, out []byte) (*sectionInfo, error) {
	var v struct {
		Streams []streamInfo `json:"streams"`
		Format  struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("ffprobe output: %w", err)
	}
	si := &sectionInfo{path: path, streams: v.Streams, duration: -1}
	if d, err := strconv.ParseFloat(v.Format.Duration, 64); err == nil {
		si.duration = d
	}
	return si, nil
}

// runProbe runs ffprobe with args, stdin (nil: none) as its input when args name pipe:0.
func runProbe(ctx context.Context, ffprobe string, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, ffprobe, append([]string{"-v", "error"}, args...)...)
	cmd.Stdin = stdin
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, fmt.Errorf("ffprobe: %w: %s", err, lastLine(stderr.String()))
	}
	return out, nil
}

// plan picks the main section, checks each section's length against Expected and has every section
// contain the streams the track needs.
func (j *joiner) plan(tp *trackPlan) error {
	for k, s := range tp.sections {
		if len(layoutOf(tp.t.Kind, s)) == 0 && tp.t.Kind == KindSubtitles {
			return fmt.Errorf("%w: %s section %d %s: no subtitle stream", ErrVerify, tp.name(), k, s.path)
		}
		if s.duration > tp.sections[tp.main].duration {
			tp.main = k
		}
		// A subtitle file ends with its last cue, which says nothing about the section's length.
		if exp := tp.expected(k); exp > 0 && tp.t.Kind != KindSubtitles {
			if err := checkLength(s.duration, exp); err != nil {
				return fmt.Errorf("%w: %s section %d %s: %v", ErrVerify, tp.name(), k, s.path, err)
			}
		}
	}
	main := tp.sections[tp.main]
	tp.layout = layoutOf(tp.t.Kind, main)
	switch {
	case len(tp.layout) == 0:
		return fmt.Errorf("%w: %s: its longest section %s has no %s stream", ErrVerify, tp.name(), main.path,
			strings.Join(kindTypes[tp.t.Kind], " or "))
	case tp.t.Kind == KindVideo && !hasType(tp.layout, "video"):
		return fmt.Errorf("%w: %s: its longest section %s has no video stream", ErrVerify, tp.name(), main.path)
	}
	if tp.t.Kind == KindSubtitles {
		tp.layout = tp.layout[:1]
		for k, s := range tp.sections {
			if st := layoutOf(tp.t.Kind, s)[0]; !textSubtitle(st.CodecName) {
				return fmt.Errorf("%s section %d %s: %s subtitles cannot be written as mov_text", tp.name(), k, s.path, st.CodecName)
			}
		}
	}
	for k, s := range tp.sections {
		if tp.t.Expected != nil && tp.t.Expected[k] > 0 {
			tp.want += tp.t.Expected[k]
		} else {
			tp.want += max(s.duration, 0)
		}
	}
	return nil
}

func (tp *trackPlan) expected(k int) float64 {
	if tp.t.Expected == nil {
		return 0
	}
	return tp.t.Expected[k]
}

func hasType(l []streamInfo, typ string) bool {
	for _, s := range l {
		if s.CodecType == typ {
			return true
		}
	}
	return false
}

func textSubtitle(codec string) bool {
	switch codec {
	case "webvtt", "subrip", "mov_text", "ass", "ssa", "text":
		return true
	}
	return false
}

// checkLength compares a duration with what it should be, within max(1 s, 2 %).
func checkLength(got, want float64) error {
	tolerance := max(1, 0.02*want)
	switch {
	case got <= 0:
		return fmt.Errorf("has no duration, want %.3fs ± %.3fs", want, tolerance)
	case abs(got-want) > tolerance:
		return fmt.Errorf("lasts %.3fs, want %.3fs ± %.3fs", got, want, tolerance)
	}
	return nil
}

// conform decides per section whether it can go into the concat as it is, and otherwise rewrites it to match
// the main section. It also sums the packets each output stream must hold.
func (j *joiner) conform(tp *trackPlan) error {
	tp.packets = make([]int64, len(tp.layout))
	for k, s := range tp.sections {
		file := s.path
		layout := layoutOf(tp.t.Kind, s)
		if tp.t.Kind != KindSubtitles {
			if why := tp.mismatch(layout); why != "" {
				j.log.Info("rewriting a section to match the track's main section", "track", tp.index,
					"kind", tp.t.Kind, "section", k, "file", s.path, "main", tp.main, "why", why)
				var err error
				if file, err = j.rewrite(tp, k); err != nil {
					return err
				}
				rs, err := j.probeFile(file)
				if err != nil {
					return fmt.Errorf("%w: %s section %d rewritten as %s: %v", ErrVerify, tp.name(), k, file, err)
				}
				layout = layoutOf(tp.t.Kind, rs)
				if why := tp.mismatch(layout); why != "" {
					return fmt.Errorf("%w: %s section %d rewritten as %s still differs from the main section: %s",
						ErrVerify, tp.name(), k, file, why)
				}
				for i, st := range layout {
					if err := checkLength(st.seconds(), s.duration); err != nil {
						return fmt.Errorf("%w: %s section %d rewritten as %s: %s stream %d %v (the section's length)",
							ErrVerify, tp.name(), k, file, st.CodecType, i, err)
					}
				}
			}
			for i := range tp.layout {
				tp.packets[i] += layout[i].frames()
			}
		}
		tp.files = append(tp.files, file)
	}
	return nil
}

// mismatch says why a section whose track-kind streams are layout cannot be stream-copied next to the main
// section, or returns "".
func (tp *trackPlan) mismatch(layout []streamInfo) string {
	if len(layout) != len(tp.layout) {
		return fmt.Sprintf("%d streams, main section has %d", len(layout), len(tp.layout))
	}
	for i, st := range layout {
		// The concat demuxer pairs streams by index, so the track's streams must come first in every file.
		if st.Index != i {
			return fmt.Sprintf("%s stream at index %d, want %d", st.CodecType, st.Index, i)
		}
		if st.CodecType != tp.layout[i].CodecType {
			return fmt.Sprintf("stream %d is %s, main section has %s", i, st.CodecType, tp.layout[i].CodecType)
		}
		if why := st.differs(tp.layout[i]); why != "" {
			return fmt.Sprintf("%s stream %d: %s", st.CodecType, i, why)
		}
	}
	return ""
}

// audioEncoders names the ffmpeg encoder that writes each audio codec, with the profile it writes ("" any).
var audioEncoders = map[string]struct{ encoder, profile string }{
	"aac":  {"aac", "LC"},
	"ac3":  {"ac3", ""},
	"eac3": {"eac3", ""},
	"mp3":  {"libmp3lame", ""},
	"opus": {"libopus", ""},
	"flac": {"flac", ""},
}

// x264Profiles maps ffprobe's H.264 profile names to libx264's.
var x264Profiles = map[string]string{
	"Constrained Baseline":  "baseline",
	"Baseline":              "baseline",
	"Main":                  "main",
	"High":                  "high",
	"High 10":               "high10",
	"High 4:2:2":            "high422",
	"High 4:4:4 Predictive": "high444",
}

// rewrite writes section k of tp into the work directory with the main section's streams, in its order:
// matching streams copied, differing ones re-encoded, missing ones generated.
func (j *joiner) rewrite(tp *trackPlan, k int) (string, error) {
	s := tp.sections[k]
	out := filepath.Join(j.work, fmt.Sprintf("track%d_section%d.mp4", tp.index, k))
	args := []string{"-hide_banner", "-loglevel", "error", "-nostats", "-nostdin", "-y", "-i", s.path}
	layout := layoutOf(tp.t.Kind, s)
	inputs := 1
	var maps, enc []string
	used := map[string]int{} // per codec type, the streams of s already paired
	for i, m := range tp.layout {
		var src *streamInfo
		n := 0
		for _, st := range layout {
			if st.CodecType == m.CodecType {
				if n == used[m.CodecType] {
					src = &st
					break
				}
				n++
			}
		}
		used[m.CodecType]++
		oi := strconv.Itoa(i)
		if src == nil {
			gen, err := generator(m, s.duration)
			if err != nil {
				return "", fmt.Errorf("%s section %d %s has no %s stream %d and %v", tp.name(), k, s.path, m.CodecType, i, err)
			}
			args = append(args, "-f", "lavfi", "-t", fmt.Sprintf("%.6f", s.duration), "-i", gen)
			maps = append(maps, "-map", strconv.Itoa(inputs)+":0")
			inputs++
		} else {
			maps = append(maps, "-map", "0:"+strconv.Itoa(src.Index))
			if src.differs(m) == "" {
				enc = append(enc, "-c:"+oi, "copy")
				continue
			}
		}
		e, err := encoderArgs(oi, m)
		if err != nil {
			return "", fmt.Errorf("%s section %d %s: %v", tp.name(), k, s.path, err)
		}
		enc = append(enc, e...)
	}
	args = append(append(args, maps...), enc...)
	if v := videoOf(tp.layout); v != nil {
		if num, den, ok := strings.Cut(v.TimeBase, "/"); ok && num == "1" {
			args = append(args, "-video_track_timescale", den)
		}
	}
	args = append(args, "-f", "mp4", out)
	j.keepWork = true
	if err := j.ffmpegRun(fmt.Sprintf("%s section %d %s", tp.name(), k, s.path), args); err != nil {
		return "", err
	}
	return out, nil
}

func videoOf(l []streamInfo) *streamInfo {
	for i := range l {
		if l[i].CodecType == "video" {
			return &l[i]
		}
	}
	return nil
}

// generator returns the lavfi source of a stream like m: silence or black.
func generator(m streamInfo, seconds float64) (string, error) {
	if seconds <= 0 {
		return "", errors.New("its length is unknown, so it cannot be filled")
	}
	switch m.CodecType {
	case "audio":
		layout := m.ChannelLayout
		if layout == "" {
			layout = strconv.Itoa(m.Channels) + "c"
		}
		return fmt.Sprintf("anullsrc=r=%s:cl=%s", m.SampleRate, layout), nil
	case "video":
		rate := m.FrameRate
		if rate == "" || strings.HasPrefix(rate, "0") {
			rate = "25"
		}
		return fmt.Sprintf("color=c=black:s=%dx%d:r=%s", m.Width, m.Height, rate), nil
	}
	return "", fmt.Errorf("no way to generate a %s stream", m.CodecType)
}

// encoderArgs returns the output options that encode output stream oi like m.
func encoderArgs(oi string, m streamInfo) ([]string, error) {
	switch m.CodecType {
	case "video":
		profile, ok := x264Profiles[m.Profile]
		if m.CodecName != "h264" || !ok {
			return nil, fmt.Errorf("cannot re-encode video to match the main section's %s (%s): only H.264 is supported",
				m.CodecName, m.Profile)
		}
		fit := fmt.Sprintf("scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,setsar=1,format=%s",
			m.Width, m.Height, m.Width, m.Height, m.PixFmt)
		return []string{"-c:" + oi, "libx264", "-preset:" + oi, "veryfast", "-crf:" + oi, "20",
			"-profile:" + oi, profile, "-filter:" + oi, fit, "-fps_mode:" + oi, "passthrough"}, nil
	case "audio":
		e, ok := audioEncoders[m.CodecName]
		if !ok || (e.profile != "" && e.profile != m.Profile) {
			return nil, fmt.Errorf("cannot re-encode audio to match the main section's %s (%s)", m.CodecName, m.Profile)
		}
		layout := m.ChannelLayout
		if layout == "" {
			layout = strconv.Itoa(m.Channels) + "c"
		}
		args := []string{"-c:" + oi, e.encoder,
			"-filter:" + oi, fmt.Sprintf("aformat=sample_rates=%s:channel_layouts=%s", m.SampleRate, layout)}
		if br, err := strconv.Atoi(m.BitRate); err == nil && br > 0 {
			args = append(args, "-b:"+oi, strconv.Itoa(br))
		}
		return args, nil
	}
	return nil, fmt.Errorf("cannot re-encode a %s stream", m.CodecType)
}

// subtitleOffsets sets, for subtitle tracks with several sections, how long each section lasts: as long as
// the same section of the first video or audio track with as many sections, so that cues stay in step with
// the picture, or else its Expected length.
func (j *joiner) subtitleOffsets() error {
	for _, tp := range j.tracks {
		if tp.t.Kind != KindSubtitles {
			continue
		}
		var ref *trackPlan
		for _, r := range j.tracks {
			if r.t.Kind != KindSubtitles && len(r.sections) == len(tp.sections) {
				ref = r
				break
			}
		}
		tp.want = 0
		for k, s := range tp.sections {
			d := tp.expected(k)
			if ref != nil {
				d = ref.sections[k].duration
			}
			if d <= 0 && k < len(tp.sections)-1 {
				return fmt.Errorf("%s section %d: unknown length: set Expected, or join it with a video or audio track of %d sections",
					tp.name(), k, len(tp.sections))
			}
			if d <= 0 {
				d = s.duration // the end of the last cue: the best there is for the last section
			}
			tp.offsets = append(tp.offsets, d)
			tp.want += max(d, 0)
		}
	}
	return nil
}

// concatList writes the concat demuxer's list of tp's files.
func (j *joiner) concatList(tp *trackPlan) (string, error) {
	var b strings.Builder
	b.WriteString("ffconcat version 1.0\n")
	for k, f := range tp.files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return "", err
		}
		b.WriteString("file " + quoteConcat(abs) + "\n")
		if tp.offsets != nil && tp.offsets[k] > 0 {
			fmt.Fprintf(&b, "duration %.6f\n", tp.offsets[k])
		}
	}
	name := filepath.Join(j.work, fmt.Sprintf("track%d.ffconcat", tp.index))
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	return name, nil
}

// quoteConcat quotes s for a concat list: inside single quotes everything is literal, and a single quote is
// written as '\”.
func quoteConcat(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// muxArgs builds the final ffmpeg command: one concat input per track, every track's streams mapped in
// order, copied (subtitles converted to mov_text), with language, name and disposition per stream.
func (j *joiner) muxArgs() ([]string, error) {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostats", "-nostdin", "-y"}
	for _, tp := range j.tracks {
		list, err := j.concatList(tp)
		if err != nil {
			return nil, err
		}
		// auto_convert (the default, spelled out because correctness rests on it) puts each file's H.264
		// parameter sets in front of its key frames, so sections from differently configured encoders decode.
		args = append(args, "-f", "concat", "-safe", "0", "-auto_convert", "1", "-i", list)
	}
	var layouts [][]streamInfo
	for ti, tp := range j.tracks {
		for i := range tp.layout {
			args = append(args, "-map", fmt.Sprintf("%d:%d", ti, i))
		}
		layouts = append(layouts, tp.layout)
	}
	meta := streamMeta(j.o.Tracks, layouts)
	args = append(args, "-c:v", "copy", "-c:a", "copy", "-c:s", "mov_text")
	args = append(args, meta...)
	return append(args, "-f", "mp4", j.partial), nil
}

// streamMeta returns the language, handler name and disposition options of the output streams of tracks,
// whose streams (layouts, per track) are numbered consecutively in the output in track order. The default
// disposition goes, per kind of stream, to the first stream of a Default track, or else to the first video and
// the first audio stream; subtitles only when a Default track has them.
func streamMeta(tracks []JoinTrack, layouts [][]streamInfo) []string {
	var meta []string
	defaults := map[string]int{} // codec type → output stream that is default
	n := 0
	for ti, t := range tracks {
		if t.Default {
			for i, st := range layouts[ti] {
				if _, ok := defaults[st.CodecType]; !ok {
					defaults[st.CodecType] = n + i
				}
			}
		}
		n += len(layouts[ti])
	}
	n = 0
	for ti, t := range tracks {
		for _, st := range layouts[ti] {
			if _, ok := defaults[st.CodecType]; !ok && st.CodecType != "subtitle" {
				defaults[st.CodecType] = n
			}
			sn := strconv.Itoa(n)
			meta = append(meta, "-metadata:s:"+sn, "language="+iso639(t.Language))
			if t.Name != "" {
				meta = append(meta, "-metadata:s:"+sn, "handler_name="+t.Name)
			}
			disp := "0"
			if defaults[st.CodecType] == n {
				disp = "default"
			}
			meta = append(meta, "-disposition:"+sn, disp)
			n++
		}
	}
	return meta
}

// iso639 turns a BCP-47 tag into the ISO 639-2/T code MP4 stores ("en-US" → "eng"); "und" when unknown.
func iso639(tag string) string {
	t, err := language.Parse(tag)
	if err != nil {
		return "und"
	}
	base, conf := t.Base()
	if conf != language.Exact {
		return "und"
	}
	return base.ISO3()
}

// ffmpegRun runs ffmpeg with args; what names the job in errors.
func (j *joiner) ffmpegRun(what string, args []string) error {
	cmd := exec.CommandContext(j.ctx, j.ffmpeg, args...)
	dieWithParent(cmd)
	cmd.WaitDelay = 5 * time.Second
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	j.log.Debug("starting ffmpeg", "job", what, "args", args)
	t0 := time.Now()
	err := cmd.Run()
	j.ran += time.Since(t0)
	if cerr := j.ctx.Err(); cerr != nil {
		return cerr
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("%s: %w", what, &FFmpegError{ExitCode: ee.ExitCode(), Stderr: stderr.String()})
	}
	if err != nil {
		return fmt.Errorf("%s: ffmpeg: %w", what, err)
	}
	return nil
}

// verify checks the partial output: every track's streams, their lengths and their packet counts.
func (j *joiner) verify(res *JoinResult) error {
	out, err := outputInfo(j.ctx, j.ffprobe, j.partial, j.log)
	if err != nil {
		return err
	}
	res.Duration = out.duration
	n := 0
	for _, tp := range j.tracks {
		jt := JoinedTrack{FirstStream: n, Streams: len(tp.layout), Expected: tp.want}
		res.Expected = max(res.Expected, tp.want)
		for i, want := range tp.layout {
			if n >= len(out.streams) {
				return fmt.Errorf("%s: output has %d streams, the track's %s stream %d is missing",
					tp.name(), len(out.streams), want.CodecType, i)
			}
			st := out.streams[n]
			if st.CodecType != want.CodecType {
				return fmt.Errorf("%s: output stream %d is %s, want %s", tp.name(), n, st.CodecType, want.CodecType)
			}
			d := st.seconds()
			jt.Durations = append(jt.Durations, d)
			if tp.t.Kind == KindSubtitles {
				// A subtitle track ends with its last cue, which may come well before the end.
				if tol := max(1, 0.02*tp.want); tp.want > 0 && d > tp.want+tol {
					return fmt.Errorf("%s: subtitle stream %d lasts %.3fs, want at most %.3fs ± %.3fs", tp.name(), n, d, tp.want, tol)
				}
			} else {
				if err := checkLength(d, tp.want); err != nil {
					return fmt.Errorf("%s: output %s stream %d %v (sections: %s)", tp.name(), st.CodecType, n, err, tp.sectionLengths())
				}
				if got := st.frames(); got != tp.packets[i] {
					return fmt.Errorf("%s: output %s stream %d has %d packets, the sections together %d",
						tp.name(), st.CodecType, n, got, tp.packets[i])
				}
			}
			n++
		}
		for k, f := range tp.files {
			if f != tp.sections[k].path {
				jt.Converted = append(jt.Converted, k)
			}
		}
		res.Tracks = append(res.Tracks, jt)
	}
	if n != len(out.streams) {
		return fmt.Errorf("output has %d streams, want %d", len(out.streams), n)
	}
	return nil
}

// sectionLengths describes the sections' lengths for an error: "1.045s (expected 1.000s) + 2.027s".
func (tp *trackPlan) sectionLengths() string {
	var parts []string
	for k, s := range tp.sections {
		p := fmt.Sprintf("%.3fs", s.duration)
		if exp := tp.expected(k); exp > 0 {
			p += fmt.Sprintf(" (expected %.3fs)", exp)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " + ")
}

// ExtractSubtitles writes stream (an index among all of input's streams, as JoinedTrack.FirstStream counts)
// of input as a WebVTT file at output, via output+PartialSuffix: the cues as muxed, so a player that ignores
// the MP4's subtitle track can show the same ones from beside the file.
func ExtractSubtitles(ctx context.Context, o Options, input string, stream int, output string) error {
	ff, _, err := lookTools(o.FFmpeg, o.FFprobe)
	if err != nil {
		return err
	}
	j := &joiner{ctx: ctx, ffmpeg: ff, log: o.Logger}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	partial := output + PartialSuffix
	args := []string{"-hide_banner", "-loglevel", "error", "-nostats", "-nostdin", "-y", "-i", input,
		"-map", "0:" + strconv.Itoa(stream), "-c:s", "webvtt", "-f", "webvtt", partial}
	if err := j.ffmpegRun(fmt.Sprintf("subtitles of %s stream %d", input, stream), args); err != nil {
		os.Remove(partial)
		return err
	}
	if _, err := syncFile(partial); err != nil {
		os.Remove(partial)
		return err
	}
	return os.Rename(partial, output)
}
