// Package merge builds one output file from ordered segment files: it streams them through ffmpeg (-c copy into
// MP4) while they are still being downloaded, verifies the result, and falls back to plain byte concatenation
// when ffmpeg is absent. Join then muxes such outputs, one per track and discontinuity section, into the one
// MP4 of a presentation.
//
// Verification of MPEG-TS input costs one read of the output's moov whatever the length: while the segments
// pass through on their way to ffmpeg, a scanner counts the video frames and follows the timestamps (expected
// duration, holes), and the output's frame count and duration (from the MP4 sample tables, read in Go as
// ffprobe would report them; see outputInfo) must match. Other
// input (fMP4, ADTS audio), or TS the scanner cannot follow, is verified by probing the first and last segments
// and every packet timestamp of the output.
package merge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/streamsnatcher/streamsnatcher/media"
)

// Sentinel errors callers branch on.
var (
	// ErrNoFFmpeg means ffmpeg or ffprobe could not be found; Concat still works. See Hint.
	ErrNoFFmpeg = errors.New("ffmpeg not found")
	// ErrVerify means ffmpeg succeeded but the output does not match the input: duration, video frame count,
	// a hole in the timestamps, or readability.
	ErrVerify = errors.New("merged output failed verification")
	// ErrAborted is returned by Append and Finish after Abort.
	ErrAborted = errors.New("merge aborted")
)

// Hint tells users without ffmpeg how to get an .mp4.
const Hint = "install ffmpeg (Debian: sudo apt-get update && sudo apt-get install ffmpeg) and run replay again"

// PartialSuffix is appended to Options.Output while ffmpeg writes it.
const PartialSuffix = ".partial"

// Options configure a merge.
type Options struct {
	FFmpeg, FFprobe string // executables; "" looks them up in PATH (FFprobe: next to FFmpeg first)
	Output          string // final path, e.g. video.mp4; the container is always MP4
	Init            string // optional init segment (fMP4), streamed before the first segment
	Logger          *slog.Logger
	// ExpectedDuration in seconds is what the output must last (within max(1 s, 2 %)). 0 derives it from the
	// timestamps of the appended segments (not possible for raw ADTS audio, which has none: then only a
	// positive duration is required).
	ExpectedDuration float64
	// FastStart moves the MP4 index to the front (-movflags +faststart), which costs a second pass over the
	// whole output; players on local files do not need it.
	FastStart bool
	// Progressive writes the .partial as fragmented MP4, flushed fragment by fragment, so that it plays at any
	// moment: a live recording killed mid-way (SIGKILL, power cut) leaves a file holding everything appended so
	// far. ffmpeg is not killed with this process: it reads the end of its input and closes the file. Finish
	// rewrites it into a normal MP4 (one more pass over the file); Abort keeps it, since it may be the only
	// copy of a broadcast.
	Progressive bool
}

// Result describes a finished merge.
type Result struct {
	Output        string  // final path
	Duration      float64 // the output's duration per ffprobe, seconds
	Expected      float64 // the duration it was checked against; 0 if none could be derived
	Bytes         int64   // size of the output
	Segments      int     // files appended, not counting Options.Init
	FFmpegSeconds float64 // wall time ffmpeg ran
}

// FFmpegError is ffmpeg exiting unsuccessfully. It unwraps to syscall.ENOSPC when ffmpeg reported a full disk.
type FFmpegError struct {
	ExitCode int    // -1 if killed by a signal
	Stderr   string // the last few KB of ffmpeg's stderr
}

func (e *FFmpegError) Error() string {
	return fmt.Sprintf("ffmpeg failed (exit %d): %s", e.ExitCode, lastLine(e.Stderr))
}

func (e *FFmpegError) Unwrap() error {
	if strings.Contains(e.Stderr, "No space left on device") {
		return syscall.ENOSPC
	}
	return nil
}

func lookTools(ffmpeg, ffprobe string) (string, string, error) {
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	ff, err := exec.LookPath(ffmpeg)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrNoFFmpeg, err)
	}
	if ffprobe == "" {
		// Prefer the ffprobe installed alongside the chosen ffmpeg.
		if p, err := exec.LookPath(filepath.Join(filepath.Dir(ff), "ffprobe")); err == nil && filepath.IsAbs(ff) {
			ffprobe = p
		} else {
			ffprobe = "ffprobe"
		}
	}
	fp, err := exec.LookPath(ffprobe)
	if err != nil {
		return "", "", fmt.Errorf("%w: ffprobe: %v", ErrNoFFmpeg, err)
	}
	return ff, fp, nil
}

// Merger streams segments into one running ffmpeg. Append and Finish must be called from one goroutine, in
// segment order; Abort may be called at any time from any goroutine.
type Merger struct {
	ctx             context.Context
	opts            Options
	ffmpeg, ffprobe string
	partial         string
	log             *slog.Logger

	mu      sync.Mutex // guards the fields below against Abort
	cmd     *exec.Cmd
	stdin   *os.File // write end of ffmpeg's stdin pipe
	stderr  *tailBuffer
	done    chan struct{} // closed when ffmpeg has exited; waitErr is then set
	waitErr error
	started time.Time
	ran     time.Duration
	aborted bool
	err     error // sticky failure of Append

	// Owned by the Append/Finish goroutine.
	format    string          // ffmpeg input format (media.Format.Demuxer): mpegts, mov, aac, mp3, or "" (let ffmpeg probe)
	heads     []string        // the first two appended paths, for deriving the expected duration by probing
	firstSpan chan spanResult // the first segment's timestamps, probed in the background
	ts        *tsScanner      // follows MPEG-TS input; nil for other formats
	last      string
	segments  int
	finished  bool
	allowGaps bool
}

// AllowGaps tells Finish that the caller left segments out on purpose (the
// user allowed holes): jumps in the output's timestamps are then expected and
// not an error. Call it before Finish.
func (m *Merger) AllowGaps() { m.allowGaps = true }

// Start checks the tools and the output directory and prepares a merge into opts.Output. ffmpeg starts with
// the init segment if there is one, otherwise with the first Append (whose bytes choose the input format).
func Start(ctx context.Context, opts Options) (*Merger, error) {
	if opts.Output == "" {
		return nil, errors.New("merge: no output path")
	}
	ff, fp, err := lookTools(opts.FFmpeg, opts.FFprobe)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	if err := checkDir(filepath.Dir(opts.Output)); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Merger{
		ctx:     ctx,
		opts:    opts,
		ffmpeg:  ff,
		ffprobe: fp,
		partial: opts.Output + PartialSuffix,
		log:     log,
	}
	if opts.Init != "" {
		f, err := os.Open(opts.Init)
		if err != nil {
			return nil, fmt.Errorf("merge: init segment: %w", err)
		}
		defer f.Close()
		if err := m.startFFmpeg(media.FormatMP4.Demuxer()); err != nil {
			return nil, err
		}
		if _, err := io.Copy(m.stdin, f); err != nil {
			err = m.failure(fmt.Errorf("init segment %s", opts.Init), err)
			m.Abort()
			return nil, err
		}
	}
	return m, nil
}

// checkDir reports a missing, non-directory or unwritable output directory, naming it.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("output directory %s: not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".streamsnatcher-write-check-*")
	if err != nil {
		return fmt.Errorf("output directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

func (m *Merger) startFFmpeg(format string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.aborted {
		return ErrAborted
	}
	m.format = format
	args := []string{"-hide_banner", "-loglevel", "error", "-nostats", "-y"}
	if m.opts.Progressive {
		// A live source trickles in: ffmpeg must not wait for its default 5 s of input before writing.
		args = append(args, "-analyzeduration", "1000000")
	}
	if format != "" {
		args = append(args, "-f", format)
	}
	// Only audio and video: MP4 cannot carry MPEG-TS data streams such as timed ID3.
	args = append(args, "-i", "pipe:0", "-map", "0:v?", "-map", "0:a?", "-c", "copy")
	if format == "mpegts" || format == "aac" {
		args = append(args, "-bsf:a", "aac_adtstoasc")
	}
	switch {
	case m.opts.Progressive:
		args = append(args, "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-flush_packets", "1")
	case m.opts.FastStart:
		args = append(args, "-movflags", "+faststart")
	}
	args = append(args, "-f", "mp4", m.partial)

	cmd := exec.CommandContext(m.ctx, m.ffmpeg, args...)
	if !m.opts.Progressive {
		dieWithParent(cmd)
	}
	cmd.WaitDelay = 5 * time.Second
	m.stderr = &tailBuffer{max: 4 << 10}
	cmd.Stderr = m.stderr
	// Our own pipe rather than cmd.StdinPipe, whose wrapper hides the *os.File: writes go straight to the fd.
	r, stdin, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	growPipe(stdin)
	cmd.Stdin = r
	m.log.Debug("starting ffmpeg", "args", args)
	err = cmd.Start()
	r.Close() // ffmpeg holds the read end; ours would keep writes from failing when it exits
	if err != nil {
		stdin.Close()
		return fmt.Errorf("merge: start ffmpeg: %w", err)
	}
	m.cmd, m.stdin, m.started = cmd, stdin, time.Now()
	m.done = make(chan struct{})
	go func() {
		err := cmd.Wait()
		m.mu.Lock()
		m.waitErr, m.ran = err, time.Since(m.started)
		m.mu.Unlock()
		close(m.done)
	}()
	if !m.opts.Progressive {
		go writeback(m.partial, m.done) // a progressive output is rewritten whole by defragment
	}
	return nil
}

// Append streams the file at path into ffmpeg. Segments must come in index order. After an error the merge
// cannot continue: call Abort.
func (m *Merger) Append(path string) error {
	if err := m.usable(); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return m.fail(fmt.Errorf("merge: segment %d: %w", m.segments, err))
	}
	defer f.Close()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	// The bytes pass through here anyway for the scanner; a large buffer keeps the syscalls few.
	for first := true; ; first = false {
		n, rerr := io.ReadFull(f, buf)
		if rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF) && !errors.Is(rerr, io.EOF) {
			return m.fail(fmt.Errorf("merge: segment %d %s: %w", m.segments, path, rerr))
		}
		if first && m.cmd == nil {
			head := buf[:min(n, 1024)]
			format := media.Sniff(head).Demuxer()
			m.log.Debug("input format", "format", format, "first", path)
			if err := m.startFFmpeg(format); err != nil {
				return m.fail(err)
			}
			if format == "mpegts" {
				m.ts = newTSScanner(head)
			}
		}
		if n > 0 {
			if m.ts != nil {
				m.ts.segment = m.segments
				m.ts.Write(buf[:n])
			}
			if _, err := m.stdin.Write(buf[:n]); err != nil {
				return m.fail(m.failure(fmt.Errorf("segment %d %s", m.segments, path), err))
			}
		}
		if rerr != nil {
			break
		}
	}
	if len(m.heads) < 2 {
		m.heads = append(m.heads, path)
	}
	if m.segments == 0 && m.opts.ExpectedDuration == 0 && m.ts == nil {
		m.probeFirst(path)
	}
	m.last = path
	m.segments++
	return nil
}

func (m *Merger) usable() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.aborted:
		return ErrAborted
	case m.err != nil:
		return m.err
	case m.finished:
		return errors.New("merge: already finished")
	}
	return nil
}

func (m *Merger) fail(err error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err == nil {
		m.err = err
	}
	return err
}

// failure explains a failed copy into ffmpeg: usually ffmpeg has exited and its own error is the story.
func (m *Merger) failure(what error, err error) error {
	return explainWrite(m.ctx, m.done, m.ffmpegErr, "merge", what, err)
}

// ffmpegErr converts ffmpeg's exit into an error; call only after done is closed.
func (m *Merger) ffmpegErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.aborted {
		return ErrAborted
	}
	return ffmpegExit(m.waitErr, m.stderr)
}

// explainWrite explains a failed write into ffmpeg's input: when the pipe broke because ffmpeg exited (done),
// ffmpeg's own error (exitErr) is the story. who prefixes the error ("merge", "mux").
func explainWrite(ctx context.Context, done <-chan struct{}, exitErr func() error, who string, what, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", who, cerr)
	}
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed) {
		select {
		case <-done:
			if ferr := exitErr(); ferr != nil {
				return fmt.Errorf("%s: %v: %w", who, what, ferr)
			}
		case <-time.After(5 * time.Second):
		}
	}
	return fmt.Errorf("%s: %v: %w", who, what, err)
}

// ffmpegExit converts ffmpeg's exit (what cmd.Wait returned) into an error: nil for a clean exit, an
// *FFmpegError with the tail of its stderr for a failure.
func ffmpegExit(waitErr error, stderr *tailBuffer) error {
	if waitErr == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		return &FFmpegError{ExitCode: ee.ExitCode(), Stderr: stderr.String()}
	}
	return fmt.Errorf("ffmpeg: %w", waitErr)
}

// Finish ends the input, waits for ffmpeg, verifies the output and renames it to Options.Output. When ffmpeg
// fails the partial output is removed; when verification fails it is kept for inspection (the error names it)
// and the error wraps ErrVerify.
func (m *Merger) Finish() (*Result, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	m.finished = true
	if m.segments == 0 {
		m.Abort()
		return nil, errors.New("merge: no segments appended")
	}
	m.stdin.Close()
	t0 := time.Now()
	<-m.done
	m.log.Debug("ffmpeg drained", "seconds", time.Since(t0).Seconds())
	if err := m.ctx.Err(); err != nil {
		os.Remove(m.partial)
		return nil, fmt.Errorf("merge: %w", err)
	}
	if err := m.ffmpegErr(); err != nil {
		os.Remove(m.partial)
		return nil, fmt.Errorf("merge %d segments into %s: %w", m.segments, m.opts.Output, err)
	}
	res := &Result{Output: m.opts.Output, Segments: m.segments, FFmpegSeconds: m.ran.Seconds()}
	var fragmented string
	if m.opts.Progressive {
		fragmented = m.partial
		if err := m.defragment(); err != nil {
			return nil, err
		}
	}

	// The checks and the fsync are independent and mostly wait on I/O: run them together.
	t0 = time.Now()
	var (
		wg         sync.WaitGroup
		vErr, sErr error
	)
	wg.Go(func() { res.Bytes, sErr = syncFile(m.partial) })
	if m.ts != nil {
		if why := m.ts.counted(); why != nil {
			m.log.Debug("cannot follow the MPEG-TS input; probing instead", "reason", why)
			m.ts = nil
		}
	}
	if m.ts != nil {
		vErr = m.verifyCounted(res)
	} else {
		vErr = m.verifyProbed(res)
	}
	wg.Wait()
	m.log.Debug("verified", "seconds", time.Since(t0).Seconds())
	if vErr != nil {
		return nil, vErr
	}
	if sErr != nil {
		return nil, fmt.Errorf("merge: %w", sErr)
	}
	if err := os.Rename(m.partial, m.opts.Output); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	if fragmented != "" {
		os.Remove(fragmented)
	}
	syncDir(filepath.Dir(m.opts.Output))
	m.log.Info("merged", "output", res.Output, "segments", res.Segments, "duration", res.Duration,
		"expected", res.Expected, "bytes", res.Bytes, "ffmpeg_seconds", res.FFmpegSeconds)
	return res, nil
}

// Abort stops ffmpeg and removes the partial output. Segment files are never touched. It is safe to call more
// than once, concurrently with Append, and after Finish (a finished output is kept). A Progressive merge's
// partial output is kept: ffmpeg is given the end of its input to close it, and it plays.
func (m *Merger) Abort() {
	m.mu.Lock()
	if m.aborted {
		m.mu.Unlock()
		return
	}
	m.aborted = true
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if m.opts.Progressive {
		if cmd != nil {
			m.stdin.Close()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			m.log.Warn("kept the recording so far", "file", m.partial)
		}
		return
	}
	if cmd != nil {
		cmd.Process.Kill()
		<-done
		m.stdin.Close() // an Append blocked on the pipe has already failed with EPIPE
	}
	os.Remove(m.partial)
}

// defragment rewrites the fragmented partial output of a Progressive merge into a normal MP4 next to it, which
// becomes the partial output that is verified and renamed; the fragmented file is removed only after that.
func (m *Merger) defragment() error {
	out := m.opts.Output + ".defrag" + PartialSuffix
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", m.partial, "-map", "0", "-c", "copy"}
	if m.opts.FastStart {
		args = append(args, "-movflags", "+faststart")
	}
	cmd := exec.CommandContext(m.ctx, m.ffmpeg, append(args, "-f", "mp4", out)...)
	dieWithParent(cmd)
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		os.Remove(out)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = &FFmpegError{ExitCode: ee.ExitCode(), Stderr: stderr.String()}
		}
		return fmt.Errorf("merge: rewriting %s as a normal MP4 (the fragmented file is kept): %w", m.partial, err)
	}
	m.partial = out
	return nil
}

// Files merges paths, in order, into opts.Output: Start, Append each, Finish.
func Files(ctx context.Context, paths []string, opts Options) (*Result, error) {
	m, err := Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if err := m.Append(p); err != nil {
			m.Abort()
			return nil, err
		}
	}
	return m.Finish()
}

// verifyCounted checks the output against what the scanner saw go in: the same number of video frames, as
// long as the timestamps said, and (unless the caller allowed gaps) no hole in them. Only the output's
// header is read.
func (m *Merger) verifyCounted(res *Result) error {
	info, err := m.probeHeader()
	if err != nil {
		return fmt.Errorf("%w: %s (kept for inspection): %v", ErrVerify, m.partial, err)
	}
	res.Duration = info.duration
	res.Expected = m.opts.ExpectedDuration
	if res.Expected == 0 {
		res.Expected = m.ts.span()
	}
	if err := m.checkDuration(res); err != nil {
		return err
	}
	if m.ts.videoPID >= 0 {
		// ffmpeg's stream copy drops the frames before the first key frame.
		want := m.ts.frames - m.ts.leading
		switch {
		case info.videoFrames < 0:
			return fmt.Errorf("%w: %s has no video stream, fed %d video frames (kept for inspection)",
				ErrVerify, m.partial, want)
		case abs(float64(info.videoFrames-want)) > 1:
			return fmt.Errorf("%w: %s has %d video frames, fed %d: frames were lost (kept for inspection)",
				ErrVerify, m.partial, info.videoFrames, want)
		}
	}
	if m.ts.gap > 0 && !m.allowGaps {
		kind := "video"
		if m.ts.videoPID < 0 {
			kind = "audio"
		}
		return fmt.Errorf("%w: %s: %s jumps %.3fs at %.3fs, resuming in segment %d: a segment before it is missing or corrupt (kept for inspection)",
			ErrVerify, m.partial, kind, m.ts.gap, m.ts.gapAt, m.ts.gapSeg)
	}
	return nil
}

// headerInfo is what the output's header says.
type headerInfo struct {
	duration    float64
	videoFrames int64 // of the first video stream; -1 if there is none
}

// probeHeader reads the output's header only (see outputInfo): for MP4 the durations and frame counts come
// from the sample tables, so the cost does not grow with the length.
func (m *Merger) probeHeader() (headerInfo, error) {
	info := headerInfo{duration: -1, videoFrames: -1}
	out, err := outputInfo(m.ctx, m.ffprobe, m.partial, m.log)
	if err != nil {
		return info, err
	}
	info.duration = out.duration
	for _, st := range out.streams {
		if st.CodecType != "video" {
			continue
		}
		if info.videoFrames = st.frames(); info.videoFrames < 0 {
			return info, fmt.Errorf("no video frame count (%q)", st.NbFrames)
		}
		break
	}
	if info.duration < 0 {
		return info, errors.New("no duration")
	}
	return info, nil
}

// checkDuration compares res.Duration with res.Expected.
func (m *Merger) checkDuration(res *Result) error {
	if res.Expected == 0 {
		m.log.Warn("cannot derive the expected duration from the segments; checking only that the output plays",
			"format", m.format)
	}
	tolerance := max(1, 0.02*res.Expected)
	if res.Duration <= 0 || (res.Expected > 0 && abs(res.Duration-res.Expected) > tolerance) {
		return fmt.Errorf("%w: %s lasts %.3fs, want %.3fs ± %.3fs (kept for inspection)",
			ErrVerify, m.partial, res.Duration, res.Expected, tolerance)
	}
	return nil
}

// verifyProbed is the check for input the scanner cannot follow: the expected duration from ffprobe on the
// first and last segments, and a scan of every packet timestamp of the output for holes. Its cost grows with
// the output's length.
func (m *Merger) verifyProbed(res *Result) error {
	if res.Expected = m.opts.ExpectedDuration; res.Expected == 0 && m.firstSpan == nil {
		m.probeFirst(m.heads[0])
	}
	var (
		wg                     sync.WaitGroup
		durErr, expErr, gapErr error
	)
	wg.Go(func() { res.Duration, gapErr, durErr = m.inspectOutput() })
	if res.Expected == 0 {
		wg.Go(func() { res.Expected, expErr = m.deriveExpected() })
	}
	wg.Wait()
	switch {
	case durErr != nil:
		return fmt.Errorf("%w: %s (kept for inspection): %v", ErrVerify, m.partial, durErr)
	case expErr != nil:
		return fmt.Errorf("%w: expected duration from the segments: %v (output kept at %s)", ErrVerify, expErr, m.partial)
	}
	if err := m.checkDuration(res); err != nil {
		return err
	}
	if gapErr != nil && !m.allowGaps {
		return fmt.Errorf("%w: %s: %v (kept for inspection)", ErrVerify, m.partial, gapErr)
	}
	return nil
}

// inspectOutput returns the partial output's duration and, as gapErr, the first hole in the timestamps of its
// first video stream (else its first audio stream) much longer than the typical packet interval: what a missing,
// truncated or garbage segment in the middle leaves behind, since the duration alone only sees the ends.
func (m *Merger) inspectOutput() (duration float64, gapErr, err error) {
	kind := "video"
	duration, pts, err := m.probeOutput("v:0")
	if err == nil && len(pts) == 0 {
		kind = "audio"
		duration, pts, err = m.probeOutput("a:0")
	}
	if err != nil {
		return 0, nil, err
	}
	if at, gap := findGap(pts); gap > 0 {
		gapErr = fmt.Errorf("%s jumps %.3fs at %.3fs: a segment is missing or corrupt", kind, gap, at)
	}
	return duration, gapErr, nil
}

// probeOutput runs one ffprobe for the output's duration and the timestamps of the selected stream.
func (m *Merger) probeOutput(stream string) (duration float64, pts []float64, err error) {
	out, err := m.probe(nil, "-select_streams", stream, "-show_entries", "format=duration:packet=pts_time",
		"-of", "compact=nk=1", m.partial)
	if err != nil {
		return 0, nil, err
	}
	duration = -1
	for line := range strings.Lines(string(out)) {
		section, value, _ := strings.Cut(strings.TrimSpace(line), "|")
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue // N/A
		}
		switch section {
		case "packet":
			pts = append(pts, v)
		case "format":
			duration = v
		}
	}
	if duration < 0 {
		return 0, nil, errors.New("ffprobe reports no duration")
	}
	return duration, pts, nil
}

// findGap returns the position and length of the first interval between consecutive timestamps (in any order;
// pts is sorted in place) longer than max(0.5 s, 4 × the median interval), or 0, 0.
func findGap(pts []float64) (at, gap float64) {
	if len(pts) < 3 {
		return 0, 0
	}
	slices.Sort(pts)
	deltas := make([]float64, len(pts)-1)
	for i := range deltas {
		deltas[i] = pts[i+1] - pts[i]
	}
	sorted := slices.Clone(deltas)
	slices.Sort(sorted)
	limit := max(0.5, 4*sorted[len(sorted)/2])
	for i, d := range deltas {
		if d > limit {
			return pts[i], d
		}
	}
	return 0, 0
}

// spanResult is the timestamp range of one segment file.
type spanResult struct {
	start, end float64
	err        error
}

// probeFirst starts measuring the first segment in the background, so that Finish only has the last to do.
func (m *Merger) probeFirst(path string) {
	if m.format == "aac" || m.format == "mp3" {
		return // raw ADTS or MPEG audio: every file restarts at 0; nothing to derive
	}
	ch := make(chan spanResult, 1)
	m.firstSpan = ch
	go func() {
		start, end, err := m.span(m.opts.Init, path)
		ch <- spanResult{start, end, err}
	}()
}

// deriveExpected computes last.end - first.start from the packet timestamps of the first and last segments.
// It returns 0 when the input has no usable timestamps.
func (m *Merger) deriveExpected() (float64, error) {
	if m.firstSpan == nil {
		return 0, nil
	}
	first := <-m.firstSpan
	if first.err != nil {
		return 0, first.err
	}
	// fMP4 segments are only readable after their init segment: Options.Init, or else the first file, which
	// then holds no packets itself.
	prefix := m.opts.Init
	if m.format == "mov" && prefix == "" {
		prefix = m.heads[0]
		if first.start < 0 && len(m.heads) > 1 {
			first.start, _, first.err = m.span(prefix, m.heads[1])
			if first.err != nil {
				return 0, first.err
			}
		}
	}
	if first.start < 0 {
		return 0, nil
	}
	_, end, err := m.span(prefix, m.last)
	if err != nil {
		return 0, err
	}
	if end <= first.start {
		return 0, nil
	}
	return end - first.start, nil
}

// span returns the earliest packet start and the latest packet end of path (read after prefix, if any, and if
// different from path); start is -1 when there are no timed packets.
func (m *Merger) span(prefix, path string) (start, end float64, err error) {
	args := []string{"-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0"}
	var stdin io.Reader
	if prefix != "" && prefix != path {
		pf, err := os.Open(prefix)
		if err != nil {
			return 0, 0, err
		}
		defer pf.Close()
		f, err := os.Open(path)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		stdin = io.MultiReader(pf, f)
		args = append(args, "-i", "pipe:0")
	} else {
		args = append(args, path)
	}
	out, err := m.probe(stdin, args...)
	if err != nil {
		return 0, 0, err
	}
	start, end = -1, 0
	for line := range strings.Lines(string(out)) {
		ptsS, durS, _ := strings.Cut(strings.TrimSpace(line), ",")
		pts, err := strconv.ParseFloat(ptsS, 64)
		if err != nil {
			continue // N/A
		}
		dur, _ := strconv.ParseFloat(strings.TrimSuffix(durS, ","), 64)
		if start < 0 || pts < start {
			start = pts
		}
		end = max(end, pts+dur)
	}
	return start, end, nil
}

func (m *Merger) probe(stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(m.ctx, m.ffprobe, append([]string{"-v", "error"}, args...)...)
	cmd.Stdin = stdin
	var stderr tailBuffer
	stderr.max = 4 << 10
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ffprobe: %w: %s", err, lastLine(stderr.String()))
	}
	return out, nil
}

// Concat byte-concatenates paths into output (via output.partial, fsynced, then renamed): the fallback without
// ffmpeg. MPEG-TS segments give a playable .ts; init + fMP4 segments give a playable fragmented .mp4.
func Concat(paths []string, output string) (err error) {
	if err := checkDir(filepath.Dir(output)); err != nil {
		return fmt.Errorf("concat: %w", err)
	}
	partial := output + PartialSuffix
	out, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("concat: %w", err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(partial)
		}
	}()
	for i, p := range paths {
		if err := appendFile(out, p); err != nil {
			return fmt.Errorf("concat: segment %d: %w", i, err)
		}
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("concat: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("concat: %w", err)
	}
	if err := os.Rename(partial, output); err != nil {
		return fmt.Errorf("concat: %w", err)
	}
	syncDir(filepath.Dir(output))
	return nil
}

func appendFile(dst *os.File, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(dst, f) // copy_file_range between regular files
	return err
}

// copyBufs holds the buffers Append streams segments through.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 512<<10); return &b }}

func syncFile(path string) (size int64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), f.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// lastLine returns the last meaningful line of ffmpeg's stderr. When that line is only a generic epilogue
// ("Error initializing output stream 0:0 --", "Conversion failed!"), the line before it, which holds the cause,
// comes first.
func lastLine(s string) string {
	var lines []string
	for l := range strings.Lines(s) {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "Last message repeated") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "(no message)"
	}
	last := lines[len(lines)-1]
	generic := strings.HasSuffix(last, "--") || last == "Conversion failed!"
	last = strings.TrimSpace(strings.TrimSuffix(last, "--"))
	if generic && len(lines) > 1 {
		return lines[len(lines)-2] + " (" + last + ")"
	}
	return last
}

// StartTime is the timestamp, in seconds, that a merge starting with the segment at path puts at 0 in its
// output: the input's start time as ffmpeg reads it (the earliest start of any stream), read after init (an
// fMP4 init segment) when init is not "". Subtitles timed on the segments' clock are placed with it.
func StartTime(ctx context.Context, o Options, init, path string) (float64, error) {
	_, fp, err := lookTools(o.FFmpeg, o.FFprobe)
	if err != nil {
		return 0, err
	}
	args := []string{"-show_entries", "format=start_time", "-of", "csv=p=0"}
	var stdin io.Reader
	if init != "" {
		pf, err := os.Open(init)
		if err != nil {
			return 0, err
		}
		defer pf.Close()
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		stdin = io.MultiReader(pf, f)
		args = append(args, "-i", "pipe:0")
	} else {
		args = append(args, path)
	}
	cmd := exec.CommandContext(ctx, fp, append([]string{"-v", "error"}, args...)...)
	cmd.Stdin = stdin
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("start time of %s: ffprobe: %w: %s", path, err, lastLine(stderr.String()))
	}
	v := strings.TrimSpace(string(out))
	start, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("start time of %s: ffprobe says %q", path, v)
	}
	return start, nil
}
