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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streamsnatcher/streamsnatcher/media"
)

// MuxQueue is the -thread_queue_size of each of a Mux's inputs: how many packets ffmpeg's demuxer thread for
// an input may read ahead of the muxer. ffmpeg 5.1's default of 8 made a two-input mux of the 600 s benchmark
// video 30 times slower (18.7 s instead of 0.6 s): the muxer, interleaving by timestamp, keeps waiting for
// the input that is behind while the other's queue is full. At 4096 packets an input can run about two
// minutes ahead (25 fps video) before ffmpeg stops reading it.
const MuxQueue = 4096

// A MuxTrack is one track of a live mux: one ffmpeg input whose segments arrive, in order, through its
// MuxInput.
type MuxTrack struct {
	Kind     string // KindVideo (its video and any muxed audio) or KindAudio (its audio)
	Language string // as JoinTrack
	Name     string
	Default  bool
	Init     string // fMP4 init segment, streamed before the first segment; "" for MPEG-TS
	// Expected is the seconds each of the track's streams must last (the listed durations' sum), within
	// max(1 s, 2 %); 0 uses what the timestamps of the segments span.
	Expected float64
}

// MuxOptions configure a Mux.
type MuxOptions struct {
	FFmpeg, FFprobe string // executables; "" looks them up as Options does
	Output          string // the final .mp4, written as Output+PartialSuffix and renamed after verification
	Tracks          []MuxTrack
	Logger          *slog.Logger // nil discards
}

// Mux muxes several tracks into one MP4 with one ffmpeg while their segments download: one input pipe per
// track (MPEG-TS or fragmented MP4), every stream copied, so that the tracks are written once, not merged
// each on its own and then joined (Join) in a second pass over the whole file.
//
// Each track's segments are appended through its own MuxInput, from one goroutine per input; inputs never
// wait for each other once ffmpeg runs (see Append). The output is verified as a Merger's is, per input: a
// scanner follows the bytes on their way into ffmpeg (video frames, timestamps, holes), and the output's
// header (its moov, see outputInfo) must show each track's streams with the frames and duration it was fed.
//
// ffmpeg starts when every input has its first segment, or earlier, on the first bytes of it or on the init
// segment, for the inputs a caller prepares (MuxInput.Prepare). The track's streams are read from the PMT of the
// first MPEG-TS segment or the moov of the init segment by the input's scanner and mapped by stream id (PID,
// track ID); only when the scanner cannot tell a stream's kind is the first segment (after the init segment)
// probed with ffprobe, and its streams mapped by index like Join maps a section's.
type Mux struct {
	ctx             context.Context
	o               MuxOptions
	ffmpeg, ffprobe string
	partial         string
	log             *slog.Logger
	inputs          []*MuxInput
	started         chan struct{} // closed once ffmpeg runs
	aborted         chan struct{} // closed by Abort

	mu        sync.Mutex // guards the fields below
	ready     int        // inputs whose first segment is probed
	cmd       *exec.Cmd
	stderr    *tailBuffer
	done      chan struct{} // closed when ffmpeg has exited; waitErr is then set
	waitErr   error
	startedAt time.Time
	ran       time.Duration
	closed    int       // inputs closed
	lastClose time.Time // when the last input was closed
	err       error     // why the mux was aborted from inside (a failed start, an input without segments)
	abortOnce sync.Once

	// readEnds guards the inputs' read ends between ffmpeg's start, which hands them to ffmpeg and then
	// closes ours, and an abort before that, which closes them itself: never both, never during the start.
	readEnds       sync.Mutex
	readEndsClosed bool
}

// A MuxInput is one track's way into a Mux. Append, AllowGaps and Close must be called from one goroutine
// at a time (the track's), in that order.
type MuxInput struct {
	m    *Mux
	n    int
	t    MuxTrack
	r, w *os.File // the pipe: ffmpeg reads r as fd 3+n, Append writes w

	// Owned by the input's goroutine.
	format    string // ffmpeg demuxer: mpegts or mov
	layout    []streamInfo
	ts        *tsScanner
	mp4       *fmp4Scanner
	segments  int
	bytes     int64
	writing   time.Duration // spent in writes to the pipe: waiting for ffmpeg to read
	allowGaps bool
	closed    bool
	err       error // sticky

	prep     sync.Mutex // guards format, layout, prepared and begun until the first Append has begun
	prepared bool       // Prepare learned format and layout and counted the input ready
	begun    bool       // the first Append has begun: Prepare is too late
}

// StartMux checks the tools and the output directory and prepares a mux of o.Tracks into o.Output.
func StartMux(ctx context.Context, o MuxOptions) (*Mux, error) {
	if o.Output == "" {
		return nil, errors.New("mux: no output path")
	}
	if len(o.Tracks) == 0 {
		return nil, errors.New("mux: no tracks")
	}
	for i, t := range o.Tracks {
		if t.Kind != KindVideo && t.Kind != KindAudio {
			return nil, fmt.Errorf("mux: track %d: kind %q cannot be muxed live (want %q or %q)", i, t.Kind, KindVideo, KindAudio)
		}
	}
	ff, fp, err := lookTools(o.FFmpeg, o.FFprobe)
	if err != nil {
		return nil, fmt.Errorf("mux: %w", err)
	}
	if err := checkDir(filepath.Dir(o.Output)); err != nil {
		return nil, fmt.Errorf("mux: %w", err)
	}
	m := &Mux{ctx: ctx, o: o, ffmpeg: ff, ffprobe: fp, partial: o.Output + PartialSuffix, log: o.Logger,
		started: make(chan struct{}), aborted: make(chan struct{})}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	for i, t := range o.Tracks {
		r, w, err := os.Pipe()
		if err != nil {
			for _, in := range m.inputs {
				in.r.Close()
				in.w.Close()
			}
			return nil, fmt.Errorf("mux: %w", err)
		}
		growPipe(w)
		m.inputs = append(m.inputs, &MuxInput{m: m, n: i, t: t, r: r, w: w})
	}
	return m, nil
}

// Input is track i's input.
func (m *Mux) Input(i int) *MuxInput { return m.inputs[i] }

func (in *MuxInput) name() string {
	s := fmt.Sprintf("track %d (%s", in.n, in.t.Kind)
	if in.t.Language != "" {
		s += " " + in.t.Language
	}
	return s + ")"
}

func (in *MuxInput) fail(err error) error {
	if in.err == nil {
		in.err = err
	}
	return err
}

// Append streams the segment file at path into the track's input. Segments must come in index order. The
// first Append probes the segment and waits until every input has its first segment and ffmpeg has started
// (or the mux is aborted, or ctx ends). After that an Append only ever waits for ffmpeg to read its own pipe:
// ffmpeg reads each input in its own thread, and its main thread takes packets from whichever input has them
// (it never waits for a lagging input while another's are queued), so a track whose download is slow or
// stuck holds up no other track's writes beyond what the muxer's interleaving needs (the other input's queue
// of MuxQueue packets filling). After an error the mux cannot continue: call Abort.
func (in *MuxInput) Append(path string) error {
	switch {
	case in.err != nil:
		return in.err
	case in.closed:
		return errors.New("mux: input already closed")
	}
	f, err := os.Open(path)
	if err != nil {
		return in.fail(fmt.Errorf("mux: %s segment %d: %w", in.name(), in.segments, err))
	}
	defer f.Close()
	if in.segments == 0 {
		if err := in.begin(path); err != nil {
			return in.fail(err)
		}
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	if err := in.copy(f, *bp, path); err != nil {
		return in.fail(err)
	}
	in.segments++
	return nil
}

// Prepare lets ffmpeg start before the track's first segment is complete, so that its start-up (about 0.1 s
// of loading libraries) overlaps the download rather than following it. head is the beginning of the first
// segment (a few packets of MPEG-TS carry the PAT and PMT), or nil for a track with an init segment, whose
// moov is on disk already. When the head tells the input's format and every stream, the input counts as
// ready, and the last input ready starts ffmpeg; otherwise Prepare does nothing and the first Append learns
// them as it would have. It may be called once from any goroutine, before or while the first Append runs; it
// does not keep head.
func (in *MuxInput) Prepare(head []byte) {
	in.prep.Lock()
	defer in.prep.Unlock()
	if in.prepared || in.begun {
		return
	}
	if in.t.Init != "" {
		var err error
		if head, err = readHead(in.t.Init, layoutHead); err != nil {
			return
		}
	}
	format := media.Sniff(head)
	if format != media.FormatMPEGTS && format != media.FormatMP4 {
		return
	}
	layout, ok := in.layoutOf(format, head)
	if !ok {
		return
	}
	in.format, in.layout, in.prepared = format.Demuxer(), layout, true
	in.m.log.Debug("mux input ready", "track", in.n, "format", in.format, "streams", len(in.layout), "layout", "prepared")
	in.m.countReady() // a failed start aborts the mux, which the first Append reports
}

// begin learns the input's format and streams from its first segment (unless Prepare did), waits for ffmpeg
// and streams the init segment, if any.
func (in *MuxInput) begin(first string) error {
	in.prep.Lock()
	in.begun = true
	prepared := in.prepared
	in.prep.Unlock()
	sniffed := in.t.Init
	if sniffed == "" {
		sniffed = first
	}
	head, err := readHead(sniffed, 1024)
	if err != nil {
		return fmt.Errorf("mux: %s: %w", in.name(), err)
	}
	f := media.Sniff(head)
	switch {
	case prepared && f.Demuxer() != in.format:
		return fmt.Errorf("mux: %s: the first segment is %v, its first bytes said %s", in.name(), f, in.format)
	case f == media.FormatMPEGTS:
		in.ts = newTSScanner(head)
	case f == media.FormatMP4:
		in.mp4 = newFMP4Scanner()
	default:
		return fmt.Errorf("mux: %s: segments are %v, which a live mux cannot verify (only MPEG-TS and fragmented MP4)",
			in.name(), f)
	}
	if !prepared {
		in.format = f.Demuxer() // a prepared input's is set, and another input's goroutine may be reading it
		t0 := time.Now()
		how := "scanned"
		if !in.scanLayout(sniffed) {
			how = "probed"
			if err := in.probe(first); err != nil {
				return err
			}
		}
		in.m.log.Debug("mux input ready", "track", in.n, "format", in.format, "streams", len(in.layout),
			"layout", how, "seconds", time.Since(t0).Seconds())
		in.m.countReady()
	}
	if err := in.m.waitStarted(); err != nil {
		return err
	}
	if in.t.Init != "" {
		f, err := os.Open(in.t.Init)
		if err != nil {
			return fmt.Errorf("mux: %s: init segment: %w", in.name(), err)
		}
		defer f.Close()
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		if err := in.copy(f, *bp, in.t.Init); err != nil {
			return err
		}
	}
	return nil
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:k], nil
}

// layoutHead is how much of an MPEG-TS first segment, or of an fMP4 init segment, is scanned for the
// stream layout: a PAT and PMT come in the first packets, a moov is the init segment.
const layoutHead = 256 << 10

// scanLayout learns the input's streams without ffprobe, from the PMT at the start of the first MPEG-TS
// segment or from the moov of the init segment (sniffed), with a scanner of its own (the input's counts what
// goes into ffmpeg). It reports false when the scanner cannot tell every stream's kind: then probe must.
func (in *MuxInput) scanLayout(sniffed string) bool {
	head, err := readHead(sniffed, layoutHead)
	if err != nil {
		return false
	}
	format := media.FormatMPEGTS
	if in.mp4 != nil {
		format = media.FormatMP4
	}
	l, ok := in.layoutOf(format, head)
	if ok {
		in.layout = l
	}
	return ok
}

// layoutOf scans head, the start of an MPEG-TS segment or an fMP4 init segment, for the track's streams; ok is
// false when the scanner cannot tell every stream's kind, or the track's kind of stream is not there.
func (in *MuxInput) layoutOf(format media.Format, head []byte) (l []streamInfo, ok bool) {
	var all []streamInfo
	switch format {
	case media.FormatMPEGTS:
		s := newTSScanner(head)
		s.Write(head)
		all, ok = s.layout()
	case media.FormatMP4:
		s := newFMP4Scanner()
		s.Write(head)
		all, ok = s.layout()
	}
	if !ok {
		return nil, false
	}
	l = layoutOf(in.t.Kind, &sectionInfo{streams: all})
	if len(l) == 0 || in.t.Kind == KindVideo && !hasType(l, "video") {
		return nil, false // let the probe say what is there, or fail as it does
	}
	return l, true
}

// probe reads the streams of the first segment (after the init segment) into the input's layout.
func (in *MuxInput) probe(first string) error {
	input, stdin := first, io.Reader(nil)
	if in.t.Init != "" {
		pf, err := os.Open(in.t.Init)
		if err != nil {
			return fmt.Errorf("mux: %s: init segment: %w", in.name(), err)
		}
		defer pf.Close()
		f, err := os.Open(first)
		if err != nil {
			return fmt.Errorf("mux: %s: %w", in.name(), err)
		}
		defer f.Close()
		input, stdin = "pipe:0", io.MultiReader(pf, f)
	}
	out, err := runProbe(in.m.ctx, in.m.ffprobe, stdin, probeStreamArgs(input)...)
	if err == nil {
		var si *sectionInfo
		if si, err = parseProbe(first, out); err == nil {
			in.layout = layoutOf(in.t.Kind, si)
		}
	}
	switch {
	case in.m.ctx.Err() != nil:
		return fmt.Errorf("mux: %w", in.m.ctx.Err())
	case err != nil:
		return fmt.Errorf("mux: %w: %s first segment %s is not readable media: %v", ErrVerify, in.name(), first, err)
	case len(in.layout) == 0 || in.t.Kind == KindVideo && !hasType(in.layout, "video"):
		return fmt.Errorf("mux: %w: %s first segment %s has no %s stream", ErrVerify, in.name(), first, in.t.Kind)
	}
	return nil
}

// copy streams f through the input's scanner into its pipe.
func (in *MuxInput) copy(f *os.File, buf []byte, path string) error {
	if in.ts != nil {
		in.ts.segment = in.segments
	}
	if in.mp4 != nil {
		in.mp4.segment = in.segments
	}
	for {
		n, rerr := io.ReadFull(f, buf)
		if rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF) && !errors.Is(rerr, io.EOF) {
			return fmt.Errorf("mux: %s segment %d %s: %w", in.name(), in.segments, path, rerr)
		}
		if n > 0 {
			if in.ts != nil {
				in.ts.Write(buf[:n])
			} else {
				in.mp4.Write(buf[:n])
			}
			t0 := time.Now()
			_, err := in.w.Write(buf[:n])
			in.writing += time.Since(t0)
			in.bytes += int64(n)
			if err != nil {
				return in.m.failure(fmt.Errorf("%s segment %d %s", in.name(), in.segments, path), err)
			}
		}
		if rerr != nil {
			return nil
		}
	}
}

// AllowGaps tells the mux that the caller left segments of this track out on purpose: jumps in its
// timestamps are expected, and its length is checked against what the timestamps span rather than
// MuxTrack.Expected (which counts the missing segments). Call it before Close.
func (in *MuxInput) AllowGaps() {
	in.allowGaps = true
	in.t.Expected = 0
}

// Close ends the track's input: ffmpeg sees the end of its pipe. An input closed without a segment aborts the
// mux, since ffmpeg could never start.
func (in *MuxInput) Close() error {
	if in.closed {
		return nil
	}
	in.closed = true
	m := in.m
	if in.segments == 0 && in.err == nil {
		in.err = fmt.Errorf("mux: %s: no segments", in.name())
		m.abortWith(in.err)
	}
	err := in.w.Close()
	m.mu.Lock()
	m.closed++
	m.lastClose = time.Now()
	m.mu.Unlock()
	m.log.Debug("mux input closed", "track", in.n, "segments", in.segments, "bytes", in.bytes,
		"write_seconds", in.writing.Seconds())
	if in.err != nil {
		return in.err
	}
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("mux: %s: %w", in.name(), err)
	}
	return nil
}

// countReady counts an input as ready and, for the last one, starts ffmpeg; a failed start aborts the mux.
func (m *Mux) countReady() {
	m.mu.Lock()
	m.ready++
	last := m.ready == len(m.inputs)
	m.mu.Unlock()
	if last {
		if err := m.start(); err != nil {
			m.abortWith(err)
		}
	}
}

// waitStarted waits until ffmpeg runs, the mux is aborted or its context ends.
func (m *Mux) waitStarted() error {
	select {
	case <-m.started:
		return nil
	case <-m.aborted:
		return m.abortErr()
	case <-m.ctx.Done():
		return fmt.Errorf("mux: %w", m.ctx.Err())
	}
}

func (m *Mux) abortErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	return ErrAborted
}

// args builds the ffmpeg command: one pipe input per track, each track's streams mapped in order and copied,
// with language, name and disposition as Join writes them.
func (m *Mux) args() []string {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostats", "-nostdin", "-y"}
	for i, in := range m.inputs {
		args = append(args, "-thread_queue_size", strconv.Itoa(MuxQueue), "-f", in.format, "-i", "pipe:"+strconv.Itoa(3+i))
	}
	var (
		layouts [][]streamInfo
		tracks  []JoinTrack
		bsf     []string
	)
	n := 0
	for i, in := range m.inputs {
		for _, st := range in.layout {
			if st.mapID != 0 {
				args = append(args, "-map", fmt.Sprintf("%d:i:%d", i, st.mapID))
			} else {
				args = append(args, "-map", fmt.Sprintf("%d:%d", i, st.Index))
			}
			if st.CodecType == "audio" && in.format == "mpegts" {
				// ADTS in MPEG-TS; MP4 wants the AudioSpecificConfig.
				bsf = append(bsf, "-bsf:"+strconv.Itoa(n), "aac_adtstoasc")
			}
			n++
		}
		layouts = append(layouts, in.layout)
		tracks = append(tracks, JoinTrack{Kind: in.t.Kind, Language: in.t.Language, Name: in.t.Name, Default: in.t.Default})
	}
	args = append(args, "-c", "copy")
	args = append(args, bsf...)
	args = append(args, streamMeta(tracks, layouts)...)
	return append(args, "-f", "mp4", m.partial)
}

// start runs ffmpeg with the read end of every input's pipe.
func (m *Mux) start() error {
	args := m.args()
	cmd := exec.CommandContext(m.ctx, m.ffmpeg, args...)
	dieWithParent(cmd)
	cmd.WaitDelay = 5 * time.Second
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	for _, in := range m.inputs {
		cmd.ExtraFiles = append(cmd.ExtraFiles, in.r)
	}
	m.log.Debug("starting ffmpeg", "job", "live mux", "args", args)
	m.readEnds.Lock()
	select {
	case <-m.aborted:
		m.readEnds.Unlock()
		return m.abortErr()
	default:
	}
	err := cmd.Start()
	m.closeReadEnds() // ffmpeg holds them; ours would keep writes from failing when it exits
	m.readEnds.Unlock()
	if err != nil {
		return fmt.Errorf("mux: start ffmpeg: %w", err)
	}
	done := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.stderr, m.done, m.startedAt = cmd, stderr, done, time.Now()
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		m.mu.Lock()
		m.waitErr, m.ran = err, time.Since(m.startedAt)
		m.mu.Unlock()
		close(done)
	}()
	go writeback(m.partial, done)
	close(m.started)
	select {
	case <-m.aborted: // aborted while ffmpeg started: Abort may have missed it
		m.kill()
	default:
	}
	return nil
}

// failure explains a failed write into ffmpeg: usually ffmpeg has exited and its own error is the story.
func (m *Mux) failure(what error, err error) error {
	if cerr := m.ctx.Err(); cerr != nil {
		return fmt.Errorf("mux: %w", cerr)
	}
	select {
	case <-m.aborted:
		return m.abortErr()
	default:
	}
	return explainWrite(m.ctx, m.done, m.ffmpegErr, "mux", what, err)
}

// ffmpegErr converts ffmpeg's exit into an error; call only after done is closed.
func (m *Mux) ffmpegErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return ffmpegExit(m.waitErr, m.stderr)
}

// Abort stops ffmpeg, closes every input's pipe (an Append blocked on one returns) and removes the partial
// output. Segment files are never touched. It is safe to call more than once, from any goroutine, and after
// Finish (a finished output is kept).
func (m *Mux) Abort() { m.abortWith(nil) }

// abortWith aborts, keeping err (if the first) as the reason the inputs report.
func (m *Mux) abortWith(err error) {
	m.mu.Lock()
	if m.err == nil && err != nil {
		m.err = err
	}
	m.mu.Unlock()
	m.abortOnce.Do(func() {
		close(m.aborted)
		m.kill()
		for _, in := range m.inputs {
			in.w.Close()
		}
		m.readEnds.Lock()
		m.closeReadEnds() // unless ffmpeg's start did
		m.readEnds.Unlock()
		os.Remove(m.partial)
	})
}

// closeReadEnds closes our copies of the inputs' read ends, once; call with readEnds held.
func (m *Mux) closeReadEnds() {
	if m.readEndsClosed {
		return
	}
	m.readEndsClosed = true
	for _, in := range m.inputs {
		in.r.Close()
	}
}

// kill ends a running ffmpeg and waits for it.
func (m *Mux) kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-done
	}
}

// Finish waits for ffmpeg once every input is closed, verifies the output and renames it to o.Output. When
// ffmpeg fails the partial output is removed; when verification fails it is kept for inspection (the error
// names it) and the error wraps ErrVerify.
func (m *Mux) Finish() (*JoinResult, error) {
	select {
	case <-m.aborted:
		return nil, m.abortErr()
	default:
	}
	for _, in := range m.inputs {
		if !in.closed {
			m.Abort()
			return nil, fmt.Errorf("mux: finish before %s was closed", in.name())
		}
		if in.err != nil {
			m.Abort()
			return nil, in.err
		}
	}
	m.mu.Lock()
	done, lastClose := m.done, m.lastClose
	m.mu.Unlock()
	<-done
	m.log.Debug("ffmpeg drained", "seconds", time.Since(lastClose).Seconds())
	if err := m.ctx.Err(); err != nil {
		os.Remove(m.partial)
		return nil, fmt.Errorf("mux: %w", err)
	}
	if err := m.ffmpegErr(); err != nil {
		os.Remove(m.partial)
		return nil, fmt.Errorf("mux %d tracks into %s: %w", len(m.inputs), m.o.Output, err)
	}
	res := &JoinResult{Result: Result{Output: m.o.Output, FFmpegSeconds: m.ran.Seconds()}}
	for _, in := range m.inputs {
		res.Segments += in.segments
	}
	t0 := time.Now()
	var (
		wg   sync.WaitGroup
		sErr error
	)
	wg.Go(func() { res.Bytes, sErr = syncFile(m.partial) })
	vErr := m.verify(res)
	wg.Wait()
	m.log.Debug("verified", "seconds", time.Since(t0).Seconds())
	if vErr != nil {
		return nil, fmt.Errorf("%w: %v (kept for inspection at %s)", ErrVerify, vErr, m.partial)
	}
	if sErr != nil {
		return nil, fmt.Errorf("mux: %w", sErr)
	}
	if err := os.Rename(m.partial, m.o.Output); err != nil {
		return nil, fmt.Errorf("mux: %w", err)
	}
	syncDir(filepath.Dir(m.o.Output))
	m.log.Info("muxed", "output", res.Output, "tracks", len(m.inputs), "segments", res.Segments,
		"duration", res.Duration, "expected", res.Expected, "bytes", res.Bytes, "ffmpeg_seconds", res.FFmpegSeconds)
	return res, nil
}

// verify checks the partial output against what each input's scanner saw go in: every track's streams in
// place, each as long as the track (its listed duration, else its timestamps' span), the video as many frames
// as were fed, and no hole in the timestamps unless allowed. Only the output's header is read; an input the
// scanner could not follow costs an ffprobe that reads its packet timestamps.
func (m *Mux) verify(res *JoinResult) error {
	info, err := outputInfo(m.ctx, m.ffprobe, m.partial, m.log)
	if err != nil {
		return fmt.Errorf("output not readable: %v", err)
	}
	res.Duration = info.duration
	n := 0
	for _, in := range m.inputs {
		jt, err := in.verify(info, n)
		if err != nil {
			return err
		}
		res.Expected = max(res.Expected, jt.Expected)
		res.Tracks = append(res.Tracks, jt)
		n += len(in.layout)
	}
	if n != len(info.streams) {
		return fmt.Errorf("output has %d streams, want %d", len(info.streams), n)
	}
	return nil
}

// fed is what the input's scanner counted: the video frames ffmpeg copies (-1 without video), what the
// timestamps span, and the first hole.
type fed struct {
	frames     int64
	span       float64
	gap, gapAt float64
	gapSeg     int
	followed   error  // why the scanner could not follow the input, or nil
	kind       string // of the stream whose holes count
}

func (in *MuxInput) fed() fed {
	f := fed{frames: -1, kind: "video"}
	switch {
	case in.ts != nil:
		s := in.ts
		f.followed, f.span = s.counted(), s.span()
		if s.videoPID >= 0 {
			f.frames = s.frames - s.leading
		} else {
			f.kind = "audio"
		}
		f.gap, f.gapAt, f.gapSeg = s.gap, s.gapAt, s.gapSeg
	case in.mp4 != nil:
		s := in.mp4
		f.followed, f.span = s.counted(), s.span()
		if v := s.video(); v != nil {
			f.frames = v.samples - v.leading
		} else {
			f.kind = "audio"
		}
		f.gap, f.gapAt, f.gapSeg = s.gap, s.gapAt, s.gapSeg
	}
	return f
}

// verify checks the input's streams, which start at output stream first.
func (in *MuxInput) verify(out *sectionInfo, first int) (JoinedTrack, error) {
	jt := JoinedTrack{FirstStream: first, Streams: len(in.layout)}
	f := in.fed()
	if f.followed != nil {
		in.m.log.Debug("cannot follow the input; probing the output instead", "track", in.n, "reason", f.followed)
	}
	want := in.t.Expected
	if want == 0 {
		if f.followed != nil {
			return jt, fmt.Errorf("%s: no listed duration and its timestamps could not be followed: %v", in.name(), f.followed)
		}
		want = f.span
	}
	jt.Expected = want
	frames := int64(-1)
	for i, l := range in.layout {
		n := first + i
		if n >= len(out.streams) {
			return jt, fmt.Errorf("%s: output has %d streams, the track's %s stream %d is missing",
				in.name(), len(out.streams), l.CodecType, i)
		}
		st := out.streams[n]
		if st.CodecType != l.CodecType {
			return jt, fmt.Errorf("%s: output stream %d is %s, want %s", in.name(), n, st.CodecType, l.CodecType)
		}
		d := st.seconds()
		jt.Durations = append(jt.Durations, d)
		if err := checkLength(d, want); err != nil {
			return jt, fmt.Errorf("%s: output %s stream %d %v", in.name(), st.CodecType, n, err)
		}
		if st.CodecType == "video" && frames < 0 {
			frames = st.frames()
		}
	}
	if f.followed != nil {
		return jt, in.probeGaps(first)
	}
	if f.frames >= 0 && abs(float64(frames-f.frames)) > 1 {
		// ffmpeg's stream copy drops the frames before the first key frame: the scanners count them apart.
		return jt, fmt.Errorf("%s: output video stream %d has %d frames, fed %d: frames were lost",
			in.name(), first, frames, f.frames)
	}
	if f.gap > 0 && !in.allowGaps {
		return jt, fmt.Errorf("%s: %s jumps %.3fs at %.3fs, resuming in segment %d: a segment before it is missing or corrupt",
			in.name(), f.kind, f.gap, f.gapAt, f.gapSeg)
	}
	return jt, nil
}

// probeGaps looks for a hole in the timestamps of the track's first stream in the output, for an input the
// scanner could not follow. Its cost grows with the output's length.
func (in *MuxInput) probeGaps(stream int) error {
	if in.allowGaps {
		return nil
	}
	out, err := runProbe(in.m.ctx, in.m.ffprobe, nil, "-select_streams", strconv.Itoa(stream),
		"-show_entries", "packet=pts_time", "-of", "csv=p=0", in.m.partial)
	if err != nil {
		return fmt.Errorf("%s: %v", in.name(), err)
	}
	var pts []float64
	for line := range strings.Lines(string(out)) {
		if v, err := strconv.ParseFloat(strings.TrimRight(strings.TrimSpace(line), ","), 64); err == nil {
			pts = append(pts, v)
		}
	}
	if at, gap := findGap(pts); gap > 0 {
		return fmt.Errorf("%s: %s stream %d jumps %.3fs at %.3fs: a segment is missing or corrupt",
			in.name(), in.layout[0].CodecType, stream, gap, at)
	}
	return nil
}
