package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/streamsnatcher/streamsnatcher/dash"
	"github.com/streamsnatcher/streamsnatcher/media"
	"github.com/streamsnatcher/streamsnatcher/merge"
	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/playlist"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
	"golang.org/x/sync/errgroup"
)

// MergeOptions say how a run builds its output.
type MergeOptions struct {
	FFmpeg, FFprobe string // "" looks them up in PATH
	AllowGaps       bool   // merge even when segments are missing, listing them
	KeepSegments    bool   // keep segment files after a verified merge
	NoMerge         bool   // download only
	Variant         string // master playlists: which variant ("" = highest bandwidth)
	Audio           string // master playlists: "" the default audio rendition, "all", or a language
	// Subtitles chooses a master playlist's WebVTT renditions: "" or "all" every language, "none", or a
	// language. They are muxed as mov_text tracks and also written beside the output as NAME.LANG.vtt.
	Subtitles string
}

// Result is what a run achieved.
type Result struct {
	Output    string   // the file written, if any
	Subtitles []string // WebVTT files written beside Output, one per subtitle track
	Concat    bool     // ffmpeg was missing: Output is a byte-concatenated .ts
	Duration  float64  // seconds, as ffprobe measured the output
	Gaps      []int64  // indices of the main track left out (EXT-X-GAP, or missing with AllowGaps)
	Holes     []Hole   // every segment the output lacks, of every track
	Fetched   int64    // segments downloaded in this run
	Bytes     int64
	Retries   string  // e.g. "7 retries (500: 3, reset: 4)"
	Live      bool    // the source was live
	Recorded  float64 // live: seconds of the main track recorded, over every run
	Stopped   bool    // live: stopped by the caller (ctx), and the output finalised
	Why       string  // live: why the recording ended
}

// An IncompleteError lists the segments still missing after every retry.
type IncompleteError struct {
	Failed []*SegmentError
}

func (e *IncompleteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d segment(s) missing after every retry: segment %d: %v", len(e.Failed), e.Failed[0].Index, e.Failed[0].Err)
	for i, f := range e.Failed[1:] {
		if i == 20 {
			fmt.Fprintf(&b, "\n  … and %d more", len(e.Failed)-21)
			break
		}
		fmt.Fprintf(&b, "\n  segment %d: %v", f.Index, f.Err) // f.Err names the URL
	}
	return b.String()
}

// Unwrap exposes each segment's error, so errors.Is finds the causes.
func (e *IncompleteError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f
	}
	return out
}

// Indices lists the missing indices.
func (e *IncompleteError) Indices() []int64 {
	out := make([]int64, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f.Index
	}
	return out
}

// Run completes a session: it reads the playlist into tracks, finds each
// template track's range, fetches what is not on disk for every track at once,
// merges each track section by section while it downloads, joins the tracks
// into one file and verifies it. It saves the session as it goes, so a stop at
// any moment can be resumed by calling Run again.
func Run(ctx context.Context, s *Session, o Options, m MergeOptions) (*Result, error) {
	o.fill()
	if o.Guard != nil {
		o.Client = o.Guard.client(o.Client)
	}
	p := o.Progress
	res := &Result{}
	f := &fetcher{client: o.Client, headers: s.header(), idleTimeout: o.IdleTimeout, maxBytes: o.MaxSegmentBytes,
		minFree: o.MinFreeBytes, minRate: o.MinRate, rateWindow: o.RateWindow, inflight: &p.InFlight,
		answers: o.Claim != nil} // only a capture claims segments, and answers the browser from them

	if s.State == StateDone && s.Output != "" && fileExists(s.Output) && (strings.HasSuffix(s.Output, ".mp4") || m.NoMerge) {
		res.Output = s.Output
		return res, nil
	}

	fail := func(state string, err error) (*Result, error) {
		s.State = state
		s.Error = err.Error()
		switch {
		case errors.Is(err, context.Canceled):
			s.State, s.Error = StateInterrupted, ""
		case errors.Is(err, ErrExpired), errors.Is(err, ErrLowDisk):
			s.State = StatePaused // new credentials, or free space, will let it go on
		}
		for _, t := range s.Tracks {
			t.Missing = t.MissingNow()
		}
		if serr := s.Save(); serr != nil {
			err = errors.Join(err, serr)
		}
		p.SetState(s.State)
		return res, err
	}

	// Where the segments are and where the video ends.
	if len(s.Tracks) == 0 {
		p.SetState("reading playlist")
		if err := resolveSession(ctx, s, f, m, o.Logger); err != nil {
			return fail(StateFailed, err)
		}
	}
	for _, t := range s.Tracks {
		if t.Template == nil && len(t.Segments) == 0 && t.Follower == nil {
			if err := resolveTrack(ctx, t, f); err != nil {
				return fail(StateFailed, fmt.Errorf("%s track: %w", t.ID, err))
			}
		}
		if err := os.MkdirAll(t.SegmentDir(), 0o700); err != nil {
			return nil, fmt.Errorf("session %s: %w", s.ID, err)
		}
		removePartials(t.SegmentDir())
	}
	for _, t := range s.Tracks {
		if t.Template == nil {
			continue
		}
		pr := &prober{s: t, f: f, budget: o.MaxProbes, cache: map[int64]bool{}, claim: o.Claim}
		if s.Source == "get" && t.Done() == 0 {
			// The range is what the person typed: check it before the backfill.
			p.SetState(StateProbing)
			was, err := pr.checkRange(ctx)
			var se *StartError
			switch {
			case errors.As(err, &se) || ctx.Err() != nil:
				return fail(StateFailed, err)
			case err != nil:
				// A 5xx or reset proves nothing: the backfill retries with backoff.
				o.Logger.Info("could not check the range; fetching it as given", "err", err)
			}
			if was >= 0 {
				o.Logger.Info("the video ends before the range given", "last", t.Last, "given", was)
			}
		}
		if !t.EndKnown {
			s.State = StateProbing
			p.SetState(StateProbing)
			_ = s.Save()
			if err := probeRange(ctx, t, pr, &o); err != nil {
				return fail(StateFailed, err)
			}
		}
	}
	for _, t := range s.Tracks {
		if !t.EndKnown {
			return fail(StateFailed, fmt.Errorf("%s track: the end of the video is unknown", t.ID))
		}
	}
	total := 0
	for _, t := range s.Tracks {
		total += t.Total()
	}
	p.Total.Store(int64(total))
	p.Done.Store(0)
	s.State, s.Error = StateDownloading, ""
	p.SetState(StateDownloading)
	if err := s.Save(); err != nil {
		return nil, err
	}

	target := s.Target
	if target == "" {
		target = filepath.Join(s.dir, "output.mp4")
	}
	// One track of one section merges straight into the target; anything else
	// merges each section of each track on its own and then joins them.
	// Subtitles need the join, and ffmpeg to place them.
	direct := len(s.Tracks) == 1 && s.Tracks[0].units() == 1
	subtitles := 0
	for _, t := range s.Tracks {
		if t.Kind == plan.Subtitles {
			subtitles++
		}
	}
	mopts := merge.Options{FFmpeg: m.FFmpeg, FFprobe: m.FFprobe, Logger: o.Logger}
	haveFFmpeg := !m.NoMerge
	if haveFFmpeg {
		if err := merge.Check(mopts, target); err != nil {
			if !errors.Is(err, merge.ErrNoFFmpeg) {
				return fail(StateFailed, err)
			}
			haveFFmpeg = false
			if len(s.Tracks) == 1+subtitles && s.Tracks[0].units() == 1 && subtitles > 0 {
				// The video alone can still be concatenated; the subtitles wait for a replay with ffmpeg.
				o.Logger.Warn("without ffmpeg the subtitles are not placed; their segments are kept", "tracks", subtitles)
				direct = true
			}
			if !direct {
				return fail(StateFailed, fmt.Errorf("%w: a recording of %d tracks needs ffmpeg to be joined", err, len(s.Tracks)))
			}
		}
	}

	if main := s.Main(); main.Live && main.Follower != nil {
		return runLive(ctx, s, o, m, f, target, haveFFmpeg, res, fail)
	}

	// The tracks download side by side; the first that cannot go on stops the others.
	runs := make([]*trackRun, len(s.Tracks))
	tctx, stopTracks := context.WithCancel(ctx)
	defer stopTracks()
	defer func() {
		for _, tr := range runs {
			tr.abort() // a merge still running after a failure
		}
	}()
	// Several tracks of one section each, MPEG-TS or fMP4: one ffmpeg muxes
	// them all as they download, and there is nothing to join.
	var mux *merge.Mux
	if haveFFmpeg && !m.NoMerge && liveMuxable(s.Tracks) {
		mo := merge.MuxOptions{FFmpeg: m.FFmpeg, FFprobe: m.FFprobe, Output: target, Logger: o.Logger}
		for _, t := range s.Tracks {
			mo.Tracks = append(mo.Tracks, muxTrack(t))
		}
		var err error
		if mux, err = merge.StartMux(tctx, mo); err != nil {
			return fail(StateFailed, err)
		}
		o.Logger.Debug("muxing the tracks live", "tracks", len(s.Tracks))
	}
	var wg sync.WaitGroup
	refused := newHalt()
	// A yield halts new requests; once the downloads are over, it stops the merge.
	var downloaded atomic.Bool
	mctx, stopMerge := context.WithCancel(ctx)
	defer stopMerge()
	go func() {
		select {
		case <-o.Yield:
			refused.stop(ErrYielded)
			if downloaded.Load() {
				stopTracks()
				stopMerge()
			}
		case <-mctx.Done():
		}
	}()
	for n, t := range s.Tracks {
		tr := &trackRun{s: s, t: t, o: o, mopts: mopts, merge: haveFFmpeg && t.Kind != plan.Subtitles, allowGaps: m.AllowGaps,
			halt: refused}
		if direct && n == 0 {
			tr.direct = target
		}
		if mux != nil {
			tr.mux, tr.input = mux, mux.Input(n)
		}
		tr.o.Concurrency = trackConcurrency(o.Concurrency, t, len(s.Tracks))
		tf := *f // the same client, headers, limits and guard; its own keys
		tf.subtitles = t.Kind == plan.Subtitles
		tr.f = &tf
		runs[n] = tr
		wg.Go(func() {
			tr.run(tctx)
			if errors.Is(tr.err, ErrExpired) {
				refused.stop(tr.err)
				return // the halt stops the others' new requests; what they fetch lands
			}
			if errors.Is(tr.err, ErrYielded) {
				return // the others land what they fetch, too
			}
			if tr.err != nil || len(tr.failed) > 0 {
				stopTracks()
			}
		})
	}
	wg.Wait()
	downloaded.Store(true)

	res.Fetched, res.Bytes, res.Retries = p.Fetched.Load(), p.Bytes.Load(), p.RetrySummary()
	// failMerge fails the merge, unless a yield stopped it.
	failMerge := func(err error) (*Result, error) {
		if errors.Is(refused.err(), ErrYielded) {
			return fail(StateInterrupted, ErrYielded)
		}
		return fail(StateFailed, err)
	}
	if errors.Is(refused.err(), ErrYielded) {
		return fail(StateInterrupted, ErrYielded)
	}
	if err := firstError(ctx, runs); err != nil {
		switch {
		case errors.Is(err, ErrExpired):
			return fail(StatePaused, fmt.Errorf("paused: %w", err))
		case errors.Is(err, ErrUntrusted):
			return fail(StateFailed, err)
		case errors.Is(err, context.Canceled) || diskFull(err):
			return fail(StateInterrupted, err)
		}
		return fail(StateFailed, err)
	}
	var failed []*SegmentError
	for _, tr := range runs {
		failed = append(failed, tr.failed...)
	}
	if len(failed) > 0 {
		return fail(StateIncomplete, &IncompleteError{Failed: failed})
	}
	for _, tr := range runs {
		tr.t.Gaps = tr.gaps
		for _, i := range tr.gaps {
			res.Holes = append(res.Holes, Hole{Track: tr.t.ID, Index: i, URL: tr.t.URL(i), ByDesign: tr.t.IsGap(i)})
		}
	}
	res.Gaps = s.Tracks[0].Gaps
	if m.NoMerge {
		for _, tr := range runs {
			tr.abort()
		}
		s.State = StateDone
		return res, s.Save()
	}

	s.State = StateMerging
	p.SetState(StateMerging)
	_ = s.Save()
	// Each track's last merge drains, verifies and syncs on its own: side by side.
	finished := make([]error, len(runs))
	var fg sync.WaitGroup
	for n, tr := range runs {
		fg.Go(func() { finished[n] = tr.finish() })
	}
	fg.Wait()
	for _, err := range finished {
		if err != nil {
			return failMerge(err)
		}
	}
	if haveFFmpeg {
		for _, tr := range runs {
			if tr.t.Kind == plan.Subtitles {
				if err := tr.buildSubtitles(mctx, runs[0]); err != nil {
					return failMerge(err)
				}
			}
		}
	}
	switch {
	case !haveFFmpeg:
		t := s.Tracks[0]
		var paths []string
		for _, i := range t.Indices() {
			if t.Have(i) {
				paths = append(paths, t.SegmentPath(i))
			}
		}
		ts := strings.TrimSuffix(target, filepath.Ext(target)) + ".ts"
		if err := merge.Concat(paths, ts); err != nil {
			return failMerge(err)
		}
		res.Output, res.Concat = ts, true
		s.State, s.Output, s.Error = StateDone, ts, ""
		t.Missing = t.Gaps
		return res, s.Save() // segments kept: a replay with ffmpeg makes the .mp4
	case direct:
		res.Output, res.Duration = runs[0].result.Output, runs[0].result.Duration
	case mux != nil:
		mres, err := mux.Finish()
		if err != nil {
			return failMerge(err)
		}
		res.Output, res.Duration = mres.Output, mres.Duration
	default:
		jo := merge.JoinOptions{FFmpeg: m.FFmpeg, FFprobe: m.FFprobe, Output: target, Logger: o.Logger}
		for _, tr := range runs {
			jo.Tracks = append(jo.Tracks, tr.joinTrack())
		}
		jres, err := merge.Join(mctx, jo)
		if err != nil {
			return failMerge(err)
		}
		res.Output, res.Duration = jres.Output, jres.Duration
		if subtitles > 0 {
			res.Subtitles, err = writeSubtitlesBeside(mctx, mopts, res.Output, runs, jres.Tracks)
			if err != nil {
				return failMerge(err)
			}
		}
	}
	s.State, s.Output, s.Error = StateDone, res.Output, ""
	for _, t := range s.Tracks {
		t.Missing = t.Gaps // what the output lacks
	}
	p.SetState(StateDone)
	if err := s.Save(); err != nil {
		return res, err
	}
	if !m.KeepSegments {
		s.removeWork(res.Output, o.Logger.Warn)
	}
	return res, nil
}

// firstError is the error that stopped the tracks: one of their own before
// the cancellation it caused in the others, and ctx's when the caller stopped.
func firstError(ctx context.Context, runs []*trackRun) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var canceled error
	for _, tr := range runs {
		switch {
		case tr.err == nil:
		case errors.Is(tr.err, context.Canceled), errors.Is(tr.err, merge.ErrAborted):
			// Stopped because another track failed (a live mux is aborted for all).
			canceled = tr.err
		default:
			return tr.err
		}
	}
	for _, tr := range runs {
		if len(tr.failed) > 0 {
			return nil // the failed segments are the story, not the cancellation
		}
	}
	return canceled
}

// A Hole is a segment the output lacks: an EXT-X-GAP, or one the user allowed to miss.
type Hole struct {
	Track    string
	Index    int64
	URL      string
	ByDesign bool // EXT-X-GAP in the playlist
}

// trackConcurrency shares the connections between the tracks: the video gets
// most, each separate audio or subtitle track a quarter as many. Their segments
// are small, so their downloads are bound by the time to first byte, not the
// link: a rendition has as many segments as the video, each taking about a
// quarter of a video segment's time (bench/: 30 ms to first byte, 1.2 MB
// video and 36 KB audio segments at 8 MB/s), and with fewer connections it
// finishes after the video (an eighth took 1.6 s to the video's 0.95 s).
func trackConcurrency(total int, t *Track, tracks int) int {
	if tracks == 1 || t.Kind == plan.Video {
		return total
	}
	return max(2, total/4)
}

// probeRange finds the first (when asked) and last index of a template track.
func probeRange(ctx context.Context, t *Track, pr *prober, o *Options) error {
	ok, err := pr.has(ctx, t.First)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("segment %d %s: %w (the first segment is not there)", t.First, redactURL(t.URL(t.First)), ErrNotFound)
	}
	if t.ProbeStart {
		first, err := pr.findStart(ctx, t.First)
		if err != nil {
			return err
		}
		t.First = first
	}
	known := max(t.First, t.Template.Last)
	last, err := pr.findEnd(ctx, known)
	if err != nil {
		return err
	}
	t.Last, t.EndKnown = last, true
	o.Logger.Info("found the end by probing", "track", t.ID, "first", t.First, "last", t.Last, "requests", pr.used)
	return nil
}

func (s *Session) header() map[string][]string {
	h := make(map[string][]string, len(s.Headers))
	for k, v := range s.Headers {
		h[canonicalHeader(k)] = []string{v}
	}
	return h
}

// resolveSession reads s.Playlist into tracks: a media playlist is the video
// track; a master gives the chosen variant, its audio renditions and its
// subtitles; a DASH manifest (known by its first bytes, whatever its name) its
// chosen video and audio representations.
func resolveSession(ctx context.Context, s *Session, f *fetcher, m MergeOptions, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	variant, audio, subtitles := m.Variant, m.Audio, m.Subtitles
	if variant == "" {
		variant = s.Variant
	}
	if audio == "" {
		audio = s.Audio
	}
	if subtitles == "" {
		subtitles = s.Subtitles
	}
	u := s.Playlist
	for hop := 0; hop < 3; hop++ {
		data, final, date, err := f.getDated(ctx, u, nil, max(playlist.MaxSize, dash.MaxSize), true)
		if hop == 0 && errors.Is(err, errMediaBody) {
			// A URL with no telling name (get's guess) is a segment after all.
			return resolveSegmentURL(s, u)
		}
		if err != nil {
			return fmt.Errorf("playlist: %w", err)
		}
		if hop == 0 && media.Sniff(data) == media.FormatDASH {
			return resolveDASH(ctx, s, f, data, final, date, variant, audio)
		}
		pl, err := parsePlaylist(data, u, final)
		if err != nil {
			return err
		}
		if pl.Media != nil {
			t, err := plan.FromMedia(pl.Media, final, "video", plan.Video)
			if err != nil {
				return fmt.Errorf("playlist %s: %w", redactURL(u), wrapUnsupported(err))
			}
			s.AddTrack(mediaTrack(pl.Media, t))
			return nil
		}
		v := pl.Master.Best()
		if variant != "" {
			if v, err = pl.Master.Pick(variant); err != nil {
				return fmt.Errorf("playlist %s: %w", redactURL(u), err)
			}
		}
		if v == nil {
			return fmt.Errorf("playlist %s: master playlist lists no variants", redactURL(u))
		}
		audios, err := pl.Master.AudioFor(v, audio)
		if err != nil {
			return fmt.Errorf("playlist %s: %w", redactURL(u), err)
		}
		subs, err := pl.Master.SubtitlesFor(v, subtitles)
		if err != nil {
			return fmt.Errorf("playlist %s: %w", redactURL(u), err)
		}
		if len(audios) == 0 && len(subs) == 0 {
			u = v.URI // the variant carries its own audio (or is itself a master)
			continue
		}
		// The variant's and the renditions' playlists are independent: fetch them a few at a time, each
		// a round trip before the download can start. Tracks and errors are kept in playlist order.
		tracks := make([]*Track, 1+len(audios)+len(subs))
		errs := make([]error, len(tracks))
		var g errgroup.Group
		g.SetLimit(playlistParallel)
		g.Go(func() error {
			tracks[0], errs[0] = resolveVariant(ctx, f, v.URI)
			return nil
		})
		for n, r := range audios {
			g.Go(func() error {
				t := &Track{Track: plan.Track{ID: audioTrackID(r.Language), Kind: plan.Audio, Language: r.Language,
					Name: r.Name, Default: r.Default || len(audios) == 1, Source: r.URI}}
				if err := resolveTrack(ctx, t, f); err != nil {
					errs[1+n] = fmt.Errorf("audio %q: %w", r.Language, err)
					return nil
				}
				tracks[1+n] = t
				return nil
			})
		}
		for n, r := range subs {
			g.Go(func() error {
				t := subtitleTrack(r)
				err := resolveTrack(ctx, t, f)
				switch {
				case errors.Is(err, ErrUnsupported):
					log.Warn("subtitles left out", "language", r.Language, "name", r.Name, "err", err)
				case err != nil:
					errs[1+len(audios)+n] = fmt.Errorf("subtitles %q: %w", r.Language, err)
				default:
					tracks[1+len(audios)+n] = t
				}
				return nil
			})
		}
		g.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		for _, t := range tracks {
			if t != nil {
				s.AddTrack(t)
			}
		}
		return nil
	}
	return fmt.Errorf("playlist %s: too many nested master playlists", redactURL(u))
}

// playlistParallel is how many media playlists resolveSession fetches at once.
const playlistParallel = 4

// resolveVariant reads a variant's media playlist into the video track.
func resolveVariant(ctx context.Context, f *fetcher, u string) (*Track, error) {
	pl, final, err := fetchPlaylist(ctx, f, u)
	if err != nil {
		return nil, err
	}
	if pl.Media == nil {
		return nil, fmt.Errorf("playlist %s: a variant is itself a master playlist", redactURL(u))
	}
	vt, err := plan.FromMedia(pl.Media, final, "video", plan.Video)
	if err != nil {
		return nil, fmt.Errorf("playlist %s: %w", redactURL(u), wrapUnsupported(err))
	}
	return mediaTrack(pl.Media, vt), nil
}

// resolveSegmentURL makes the session's one track from a segment URL: its
// numbering is learned, and its start and end found by probing.
func resolveSegmentURL(s *Session, u string) error {
	tm, err := urltemplate.Learn([]string{u})
	if err != nil {
		return err
	}
	s.AddTrack(&Track{Track: plan.Track{ID: "video", Kind: plan.Video, Template: tm, Ext: segmentExt(u)},
		First: tm.First, ProbeStart: true})
	s.Playlist = ""
	return nil
}

// resolveTrack reads a track's media playlist (t.Source) into its segment list.
func resolveTrack(ctx context.Context, t *Track, f *fetcher) error {
	pl, final, err := fetchPlaylist(ctx, f, t.Source)
	if err != nil {
		return err
	}
	if pl.Media == nil {
		return fmt.Errorf("playlist %s: a master playlist where a media playlist was expected", redactURL(t.Source))
	}
	p, err := plan.FromMedia(pl.Media, final, t.ID, t.Kind)
	if err != nil {
		return fmt.Errorf("playlist %s: %w", redactURL(t.Source), wrapUnsupported(err))
	}
	p.Language, p.Name, p.Default = t.Language, t.Name, t.Default
	nt := mediaTrack(pl.Media, p)
	nt.Dir, nt.dir = t.Dir, t.dir
	*t = *nt
	return nil
}

// mediaTrack makes the track of a plan read from md; a live one starts its
// follower at md's last segment.
func mediaTrack(md *playlist.Media, p *plan.Track) *Track {
	t := NewListTrack(p)
	if p.Live {
		pos := plan.Positions(md)
		t.Follower = &LiveState{Last: pos[len(pos)-1]}
	}
	return t
}

func fetchPlaylist(ctx context.Context, f *fetcher, u string) (*playlist.Playlist, string, error) {
	data, final, err := f.get(ctx, u, playlist.MaxSize)
	if err != nil {
		return nil, "", fmt.Errorf("playlist: %w", err)
	}
	pl, err := parsePlaylist(data, u, final)
	return pl, final, err
}

// parsePlaylist parses a playlist fetched from u, final after redirects.
func parsePlaylist(data []byte, u, final string) (*playlist.Playlist, error) {
	base, _ := url.Parse(final)
	pl, err := playlist.Parse(data, base)
	if err != nil {
		return nil, fmt.Errorf("playlist %s: %w", redactURL(u), err)
	}
	return pl, nil
}

func wrapUnsupported(err error) error {
	if errors.Is(err, plan.ErrUnsupported) {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return err
}

// audioTrackID names an audio track by its language.
func audioTrackID(lang string) string {
	if id := "audio-" + SafeName(lang); lang != "" && plan.SafeID(id) {
		return id
	}
	return "audio"
}

func segmentExt(raw string) string {
	if e := media.ExtOf(urlPath(raw)); e != "" {
		return e
	}
	return ".ts"
}

func urlPath(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Path
	}
	return raw
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func removePartials(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".partial") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
