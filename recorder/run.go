package recorder

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/streamsnatcher/streamsnatcher/merge"
	"github.com/streamsnatcher/streamsnatcher/playlist"
)

// MergeOptions say how a run builds its output.
type MergeOptions struct {
	FFmpeg, FFprobe string // "" looks them up in PATH
	AllowGaps       bool   // merge even when segments are missing, listing them
	KeepSegments    bool   // keep segment files after a verified merge
	NoMerge         bool   // download only
	Variant         string // master playlists: which variant ("" = highest bandwidth)
}

// Result is what a run achieved.
type Result struct {
	Output   string  // the file written, if any
	Concat   bool    // ffmpeg was missing: Output is a byte-concatenated .ts
	Duration float64 // seconds, as ffprobe measured the output
	Gaps     []int64 // indices left out (only with AllowGaps)
	Fetched  int64   // segments downloaded in this run
	Bytes    int64
	Retries  string // e.g. "7 retries (500: 3, reset: 4)"
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

// Run completes a session: it finds the segment list or the range, fetches what
// is not on disk, merges in index order and verifies the output. It saves the
// session as it goes, so a stop at any moment can be resumed by calling Run again.
func Run(ctx context.Context, s *Session, o Options, m MergeOptions) (*Result, error) {
	o.fill()
	p := o.Progress
	res := &Result{}
	f := &fetcher{client: o.Client, headers: s.header(), idleTimeout: o.IdleTimeout, maxBytes: o.MaxSegmentBytes, inflight: &p.InFlight}

	if s.State == StateDone && s.Output != "" && fileExists(s.Output) && (strings.HasSuffix(s.Output, ".mp4") || m.NoMerge) {
		res.Output = s.Output
		return res, nil
	}
	if err := os.MkdirAll(s.SegmentDir(), 0o700); err != nil {
		return nil, fmt.Errorf("session %s: %w", s.ID, err)
	}
	removePartials(s.SegmentDir())

	fail := func(state string, err error) (*Result, error) {
		s.State = state
		s.Error = err.Error()
		switch {
		case errors.Is(err, context.Canceled):
			s.State, s.Error = StateInterrupted, ""
		case errors.Is(err, ErrExpired):
			s.State = StatePaused // new credentials will let it go on
		}
		s.Missing = s.MissingNow()
		if serr := s.Save(); serr != nil {
			err = errors.Join(err, serr)
		}
		p.SetState(s.State)
		return res, err
	}

	// Where the segments are and where the video ends.
	if s.PlaylistURL != "" && len(s.Segments) == 0 {
		p.SetState("reading playlist")
		if err := resolvePlaylist(ctx, s, f, m.Variant); err != nil {
			return fail(StateFailed, err)
		}
	}
	pr := &prober{s: s, f: f, budget: o.MaxProbes, cache: map[int64]bool{}}
	if s.Template != nil && s.Source == "get" && s.Done() == 0 {
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
			o.Logger.Info("the video ends before the range given", "last", s.Last, "given", was)
		}
	}
	if s.Template != nil && !s.EndKnown {
		s.State = StateProbing
		p.SetState(StateProbing)
		_ = s.Save()
		ok, err := pr.has(ctx, s.First)
		if err != nil {
			return fail(StateFailed, err)
		}
		if !ok {
			return fail(StateFailed, fmt.Errorf("segment %d %s: %w (the first segment is not there)", s.First, redactURL(s.URL(s.First)), ErrNotFound))
		}
		if s.ProbeStart {
			first, err := pr.findStart(ctx, s.First)
			if err != nil {
				return fail(StateFailed, err)
			}
			s.First = first
		}
		known := max(s.First, s.Template.Last)
		last, err := pr.findEnd(ctx, known)
		if err != nil {
			return fail(StateFailed, err)
		}
		s.Last, s.EndKnown = last, true
		o.Logger.Info("found the end by probing", "first", s.First, "last", s.Last, "requests", pr.used)
	}
	if !s.EndKnown {
		return fail(StateFailed, errors.New("the end of the video is unknown"))
	}
	idx := s.Indices()
	p.Total.Store(int64(len(idx)))
	s.State, s.Error = StateDownloading, ""
	p.SetState(StateDownloading)
	if err := s.Save(); err != nil {
		return nil, err
	}

	target := s.Target
	if target == "" {
		target = filepath.Join(s.dir, "output.mp4")
	}
	block, err := loadKey(ctx, s, f)
	if err != nil {
		return fail(StateFailed, err)
	}
	f.block = block
	init := ""
	if s.InitURL != "" {
		init = filepath.Join(s.dir, "init"+filepath.Ext(urlPath(s.InitURL)))
		if !fileExists(init) {
			if _, err := f.fetch(ctx, s.InitURL, init, true); err != nil {
				return fail(StateFailed, fmt.Errorf("init segment: %w", err))
			}
		}
	}

	// The merge runs alongside the download, fed in index order.
	// The expected duration is derived from the first and last segments'
	// timestamps, which holds with or without gaps the user allowed. Without
	// ffmpeg (merge.Start looks for it) the segments are joined into a .ts.
	var merger *merge.Merger
	mopts := merge.Options{FFmpeg: m.FFmpeg, FFprobe: m.FFprobe, Output: target, Init: init, Logger: o.Logger}
	if !m.NoMerge {
		merger, err = merge.Start(ctx, mopts)
		if err != nil && !errors.Is(err, merge.ErrNoFFmpeg) {
			return fail(StateFailed, err)
		}
	}
	abort := func() {
		if merger != nil {
			merger.Abort()
		}
	}
	sink := func(int64) error { return nil }
	if merger != nil {
		sink = func(i int64) error { return merger.Append(s.SegmentPath(i)) }
	}
	fd := newFeed(s.First, s.Step(), len(idx), sink)
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	feedDone := make(chan error, 1)
	go func() { feedDone <- fd.run(feedCtx) }()

	failed, err := backfill(ctx, s, idx, f, &o, fd)
	res.Fetched, res.Bytes, res.Retries = p.Fetched.Load(), p.Bytes.Load(), p.RetrySummary()
	if err != nil {
		stopFeed()
		<-feedDone
		abort()
		if errors.Is(err, ErrExpired) {
			return fail(StatePaused, fmt.Errorf("paused: %w", err))
		}
		return fail(StateInterrupted, err)
	}
	if len(failed) > 0 {
		if !m.AllowGaps {
			stopFeed()
			<-feedDone
			abort()
			return fail(StateIncomplete, &IncompleteError{Failed: failed})
		}
		for _, fe := range failed {
			res.Gaps = append(res.Gaps, fe.Index)
			fd.mark(fe.Index, skipped)
		}
		if merger != nil {
			merger.AllowGaps()
		}
	}
	ferr := <-feedDone
	if m.NoMerge {
		s.State = StateDone
		s.Missing = nil
		return res, s.Save()
	}

	s.State = StateMerging
	p.SetState(StateMerging)
	_ = s.Save()
	var paths []string
	for _, i := range idx {
		if s.Have(i) {
			paths = append(paths, s.SegmentPath(i))
		}
	}
	var mres *merge.Result
	switch {
	case merger != nil && ferr == nil:
		mres, err = merger.Finish()
	case merger != nil:
		// The streaming merge broke (ffmpeg died early); try once more from the files.
		merger.Abort()
		o.Logger.Warn("streaming merge failed; merging from the files", "err", ferr)
		mres, err = mergeFiles(ctx, paths, mopts, len(res.Gaps) > 0)
	default:
		ts := strings.TrimSuffix(target, filepath.Ext(target)) + ".ts"
		if err := merge.Concat(paths, ts); err != nil {
			return fail(StateFailed, err)
		}
		res.Output, res.Concat = ts, true
		s.State, s.Output, s.Gaps, s.Missing, s.Error = StateDone, ts, res.Gaps, nil, ""
		return res, s.Save() // segments kept: a replay with ffmpeg makes the .mp4
	}
	if err != nil {
		return fail(StateFailed, err)
	}
	res.Output, res.Duration = mres.Output, mres.Duration
	s.State, s.Output, s.Gaps, s.Missing, s.Error = StateDone, mres.Output, res.Gaps, nil, ""
	p.SetState(StateDone)
	if err := s.Save(); err != nil {
		return res, err
	}
	if !m.KeepSegments {
		if err := os.RemoveAll(s.SegmentDir()); err != nil {
			o.Logger.Warn("could not remove segments", "err", err)
		}
		os.RemoveAll(filepath.Join(s.dir, "tee"))
		if init != "" {
			os.Remove(init)
		}
	}
	return res, nil
}

func (s *Session) header() map[string][]string {
	h := make(map[string][]string, len(s.Headers))
	for k, v := range s.Headers {
		h[canonicalHeader(k)] = []string{v}
	}
	return h
}

func resolvePlaylist(ctx context.Context, s *Session, f *fetcher, variant string) error {
	u := s.PlaylistURL
	for hop := 0; hop < 3; hop++ {
		data, final, err := f.get(ctx, u, 16<<20)
		if err != nil {
			return fmt.Errorf("playlist: %w", err)
		}
		base, _ := url.Parse(final)
		pl, err := playlist.Parse(data, base)
		if err != nil {
			return fmt.Errorf("playlist %s: %w", redactURL(u), err)
		}
		if pl.Master != nil {
			v := pl.Master.Best()
			if variant != "" {
				if v, err = pl.Master.Pick(variant); err != nil {
					return fmt.Errorf("playlist %s: %w", redactURL(u), err)
				}
			}
			if v == nil {
				return fmt.Errorf("playlist %s: master playlist lists no variants", redactURL(u))
			}
			u = v.URI
			continue
		}
		return s.useMedia(pl.Media, u)
	}
	return fmt.Errorf("playlist %s: too many nested master playlists", redactURL(u))
}

// useMedia takes the exact segment list of a media playlist.
func (s *Session) useMedia(md *playlist.Media, u string) error {
	if len(md.Segments) == 0 {
		return fmt.Errorf("playlist %s: no segments", redactURL(u))
	}
	key, ivs, err := playlistKey(md)
	if err != nil {
		return fmt.Errorf("playlist %s: %w", redactURL(u), err)
	}
	s.Segments = s.Segments[:0]
	s.Durations = s.Durations[:0]
	for _, seg := range md.Segments {
		if seg.ByteRange != nil {
			return fmt.Errorf("playlist %s: byte-range segments are not supported yet", redactURL(u))
		}
		s.Segments = append(s.Segments, seg.URI)
		s.Durations = append(s.Durations, seg.Duration)
	}
	if md.Map != nil {
		s.InitURL = md.Map.URI
	}
	s.Key, s.IVs, s.MediaSequence = key, ivs, md.Segments[0].Sequence
	s.Ext = segmentExt(s.Segments[0])
	s.Template = nil
	s.First, s.Last, s.EndKnown = 0, int64(len(s.Segments)-1), true
	s.PlaylistURL = u
	return nil
}

// playlistKey returns the one AES-128 key of an encrypted media playlist, and
// each segment's explicit IV when they differ ("" where a segment has none).
// It returns nil for a clear playlist and refuses what cannot be recorded:
// SAMPLE-AES (and any other method), keys that change between segments, a mix
// of clear and encrypted segments, encrypted fMP4.
func playlistKey(md *playlist.Media) (*Key, []string, error) {
	first := md.Segments[0].Key
	ivs := make([]string, len(md.Segments))
	sameIV := true
	for i, seg := range md.Segments {
		k := seg.Key
		if k != nil && strings.EqualFold(k.Method, "NONE") {
			k = nil
		}
		if k != nil && k.Method != MethodAES128 {
			return nil, nil, fmt.Errorf("segment %d: %s encryption: %w (only whole-segment AES-128 is)", i, k.Method, ErrUnsupported)
		}
		switch {
		case (k == nil) != (first == nil):
			return nil, nil, fmt.Errorf("segment %d: a mix of clear and encrypted segments: key rotation is %w", i, ErrUnsupported)
		case k == nil:
			continue
		case k.URI != first.URI:
			return nil, nil, fmt.Errorf("segment %d: key rotation is %w (key %s after %s)", i, ErrUnsupported, redactURL(k.URI), redactURL(first.URI))
		}
		if k.IV != "" {
			if _, err := parseIV(k.IV); err != nil {
				return nil, nil, fmt.Errorf("segment %d: %w", i, err)
			}
		}
		ivs[i] = k.IV
		sameIV = sameIV && k.IV == first.IV
	}
	if first == nil {
		return nil, nil, nil
	}
	if md.Map != nil {
		return nil, nil, fmt.Errorf("encrypted fMP4 (EXT-X-MAP with AES-128) is %w", ErrUnsupported)
	}
	key := &Key{Method: MethodAES128, URI: first.URI}
	if sameIV {
		key.IV = first.IV
		ivs = nil
	}
	return key, ivs, nil
}

func segmentExt(raw string) string {
	switch e := strings.ToLower(filepath.Ext(urlPath(raw))); e {
	case ".ts", ".m4s", ".aac", ".mp4", ".m4a", ".m4v", ".mp3", ".cmfv", ".cmfa":
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

// mergeFiles merges finished segment files in one go.
func mergeFiles(ctx context.Context, paths []string, o merge.Options, gaps bool) (*merge.Result, error) {
	m, err := merge.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	if gaps {
		m.AllowGaps()
	}
	for _, p := range paths {
		if err := m.Append(p); err != nil {
			m.Abort()
			return nil, err
		}
	}
	return m.Finish()
}
