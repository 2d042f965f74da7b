package merge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// sectionSpec describes one discontinuity section to generate: what a recorder gets from one stretch of a
// playlist between #EXT-X-DISCONTINUITY tags.
type sectionSpec struct {
	seconds        int
	width, height  int // 0: no video
	rate, channels int // 0: no audio
	freq           int // sine tone, Hz
	preset         string
	x264           []string // more libx264 options
}

// makeSection generates spec as one-second MPEG-TS segments with ffmpeg's HLS muxer and merges them with a
// Merger into dir/name.mp4, as the recorder does for each section.
func makeSection(t *testing.T, dir, name string, s sectionSpec) string {
	t.Helper()
	_, segs := makeSegments(t, dir, name, s, false)
	out := filepath.Join(dir, name+".mp4")
	if _, err := Files(context.Background(), segs, Options{Output: out}); err != nil {
		t.Fatalf("merge section %s: %v", name, err)
	}
	return out
}

// makeSegments generates spec as one-second segments with ffmpeg's HLS muxer in dir/name-hls: MPEG-TS, or
// with fmp4 an init segment (returned) and fragmented MP4 segments.
func makeSegments(t *testing.T, dir, name string, s sectionSpec, fmp4 bool) (init string, segs []string) {
	t.Helper()
	hls := filepath.Join(dir, name+"-hls")
	if err := os.Mkdir(hls, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}
	var maps []string
	if s.width > 0 {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=25:duration=%d", s.width, s.height, s.seconds))
		preset := s.preset
		if preset == "" {
			preset = "ultrafast"
		}
		maps = append(maps, "-map", "0:v", "-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p",
			"-force_key_frames", "expr:gte(t,n_forced*1)")
		maps = append(maps, s.x264...)
	}
	if s.rate > 0 {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=%d:duration=%d", s.freq, s.rate, s.seconds))
		input := "0"
		if s.width > 0 {
			input = "1"
		}
		maps = append(maps, "-map", input+":a", "-c:a", "aac", "-b:a", "64k", "-ac", strconv.Itoa(s.channels))
	}
	args = append(args, maps...)
	ext := ".ts"
	args = append(args, "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod")
	if fmp4 {
		ext = ".m4s"
		init = filepath.Join(hls, "init.mp4")
		args = append(args, "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4")
	}
	args = append(args, "-hls_segment_filename", filepath.Join(hls, "seg_%03d"+ext), filepath.Join(hls, "index.m3u8"))
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("generate section %s: %v: %s", name, err, out)
	}
	segs, err := filepath.Glob(filepath.Join(hls, "seg_*"+ext))
	if err != nil || len(segs) == 0 {
		t.Fatalf("generate section %s: no segments (%v)", name, err)
	}
	slices.Sort(segs)
	return init, segs
}

// probeStreams returns ffprobe's view of path's streams and container duration.
func probeStreams(t *testing.T, path string) *sectionInfo {
	t.Helper()
	fp, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatal(err)
	}
	j := &joiner{ctx: context.Background(), ffprobe: fp}
	si, err := j.probeFile(path)
	if err != nil {
		t.Fatalf("probe %s: %v", path, err)
	}
	return si
}

// testLogger logs at debug level through t.Log, which shows only for failing tests or with -v.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// checkNoLeftovers asserts that only out (if wantOut) and what was there before is in dir.
func checkNoLeftovers(t *testing.T, out string, wantOut bool) {
	t.Helper()
	if _, err := os.Stat(out); (err == nil) != wantOut {
		t.Errorf("output %s exists: %v, want %v", out, err == nil, wantOut)
	}
	if _, err := os.Stat(out + PartialSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial output left behind: %v", err)
	}
	work, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".join-*"))
	if len(work) > 0 {
		t.Errorf("intermediate files left behind: %v", work)
	}
}

func TestJoinSameParameters(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Spec{Seconds: 2, SegmentSeconds: 1, Width: 320, Height: 180})
	// A quote and a space in the path must survive the concat list.
	dir := filepath.Join(t.TempDir(), "it's a dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var sections []string
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("section %d.mp4", i))
		if _, err := Files(context.Background(), m.Segments, Options{Output: p, ExpectedDuration: m.TotalSeconds}); err != nil {
			t.Fatal(err)
		}
		sections = append(sections, p)
	}
	tests := []struct {
		name     string
		sections []string
	}{
		{name: "one section", sections: sections[:1]},
		{name: "two sections", sections: sections[:2]},
		{name: "three sections", sections: sections},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, tt.name+".mp4")
			var expected []float64
			for range tt.sections {
				expected = append(expected, m.TotalSeconds)
			}
			res, err := Join(context.Background(), JoinOptions{
				Output: out, Logger: testLogger(t),
				Tracks: []JoinTrack{{Kind: KindVideo, Language: "en", Sections: tt.sections, Expected: expected}},
			})
			if err != nil {
				t.Fatalf("Join: %v", err)
			}
			checkNoLeftovers(t, out, true)
			var want float64
			for _, s := range tt.sections {
				want += probeStreams(t, s).duration
			}
			got := probeStreams(t, out)
			if math.Abs(got.duration-want) > 0.01*want {
				t.Errorf("output lasts %.3fs, want %.3fs ± 1%%", got.duration, want)
			}
			if res.Duration != got.duration || res.Segments != len(tt.sections) {
				t.Errorf("Result: Duration %.3f Segments %d, want %.3f %d", res.Duration, res.Segments, got.duration, len(tt.sections))
			}
			v, a, err := testmedia.CountPackets(context.Background(), out)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(tt.sections); v != n*m.VideoPackets || a != n*m.AudioPackets {
				t.Errorf("output packets: video %d audio %d, want the sections' %d and %d", v, a, n*m.VideoPackets, n*m.AudioPackets)
			}
			if c := res.Tracks[0].Converted; len(c) != 0 {
				t.Errorf("sections %v were re-encoded, want all copied", c)
			}
			testmedia.CheckCleanDecode(t, out)
		})
	}
}

// TestJoinDifferentParameters joins an "ad" section whose parameters differ from the film's. Sizes are kept
// small (320x180 ad, 640x360 film) for speed; what matters is that they differ.
func TestJoinDifferentParameters(t *testing.T) {
	film := sectionSpec{seconds: 2, width: 640, height: 360, rate: 48000, channels: 2, freq: 1000, preset: "veryfast"}
	tests := []struct {
		name          string
		ad            sectionSpec
		wantAdHz      float64 // 0: silence
		wantConverted []int
	}{
		{
			name:          "44.1 kHz mono 320x180 ad",
			ad:            sectionSpec{seconds: 1, width: 320, height: 180, rate: 44100, channels: 1, freq: 440},
			wantAdHz:      440,
			wantConverted: []int{0},
		},
		{
			name:          "ad without audio",
			ad:            sectionSpec{seconds: 1, width: 320, height: 180},
			wantConverted: []int{0},
		},
		{
			name:          "ad at the film's size, other audio",
			ad:            sectionSpec{seconds: 1, width: 640, height: 360, rate: 44100, channels: 1, freq: 440, preset: "veryfast"},
			wantAdHz:      440,
			wantConverted: []int{0},
		},
		{
			// Same codec, profile and size, but other encoder settings (CAVLC, where the film has CABAC): the
			// copy stays decodable only because each section's parameter sets travel with its frames.
			name: "ad from another encoder configuration",
			ad: sectionSpec{seconds: 1, width: 640, height: 360, rate: 48000, channels: 2, freq: 440, preset: "veryfast",
				x264: []string{"-coder", "cavlc"}},
			wantAdHz: 440,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ad := makeSection(t, dir, "ad", tt.ad)
			main := makeSection(t, dir, "film", film)
			adInfo, mainInfo := probeStreams(t, ad), probeStreams(t, main)
			out := filepath.Join(dir, "out.mp4")
			res, err := Join(context.Background(), JoinOptions{
				Output: out, Logger: testLogger(t),
				Tracks: []JoinTrack{{Kind: KindVideo, Sections: []string{ad, main}}},
			})
			if err != nil {
				t.Fatalf("Join: %v", err)
			}
			checkNoLeftovers(t, out, true)
			if c := res.Tracks[0].Converted; !slices.Equal(c, tt.wantConverted) {
				t.Errorf("converted sections %v, want %v", c, tt.wantConverted)
			}
			got := probeStreams(t, out)
			want := adInfo.duration + mainInfo.duration
			if math.Abs(got.duration-want) > 0.01*want {
				t.Errorf("output lasts %.3fs, want %.3fs ± 1%% (ad %.3fs + film %.3fs)", got.duration, want, adInfo.duration, mainInfo.duration)
			}
			var kinds []string
			for _, s := range got.streams {
				kinds = append(kinds, s.CodecType)
				switch s.CodecType {
				case "video":
					if s.Width != 640 || s.Height != 360 {
						t.Errorf("video is %dx%d, want the film's 640x360", s.Width, s.Height)
					}
				case "audio":
					if s.SampleRate != "48000" || s.Channels != 2 {
						t.Errorf("audio is %s Hz %d channels, want the film's 48000 Hz 2 channels", s.SampleRate, s.Channels)
					}
				}
			}
			if !slices.Equal(kinds, []string{"video", "audio"}) {
				t.Errorf("output streams %v, want [video audio]", kinds)
			}
			testmedia.CheckCleanDecode(t, out)

			// The film's tone must keep its pitch, and so must the ad's: a sample rate taken for another
			// would shift it.
			if hz := testmedia.DominantHz(t, out, 0, adInfo.duration+0.3, 1); math.Abs(hz-1000) > 0.02*1000 {
				t.Errorf("film part: tone at %.1f Hz, want 1000 Hz ± 2%%", hz)
			}
			adHz := testmedia.DominantHz(t, out, 0, 0.2, 0.6)
			if tt.wantAdHz == 0 {
				if adHz != 0 {
					t.Errorf("ad part: tone at %.1f Hz, want silence", adHz)
				}
			} else if math.Abs(adHz-tt.wantAdHz) > 0.02*tt.wantAdHz {
				t.Errorf("ad part: tone at %.1f Hz, want %.0f Hz ± 2%%", adHz, tt.wantAdHz)
			}
		})
	}
}

// TestJoinSeparateTracks muxes a video-only track, two audio renditions and subtitles, each in two sections,
// into one file with languages, names and the chosen default audio.
func TestJoinSeparateTracks(t *testing.T) {
	dir := t.TempDir()
	video := []string{
		makeSection(t, dir, "video0", sectionSpec{seconds: 1, width: 320, height: 180}),
		makeSection(t, dir, "video1", sectionSpec{seconds: 2, width: 320, height: 180}),
	}
	en := []string{
		makeSection(t, dir, "en0", sectionSpec{seconds: 1, rate: 48000, channels: 2, freq: 440}),
		makeSection(t, dir, "en1", sectionSpec{seconds: 2, rate: 48000, channels: 2, freq: 440}),
	}
	fr := []string{
		makeSection(t, dir, "fr0", sectionSpec{seconds: 1, rate: 48000, channels: 2, freq: 660}),
		makeSection(t, dir, "fr1", sectionSpec{seconds: 2, rate: 48000, channels: 2, freq: 660}),
	}
	subs := []string{filepath.Join(dir, "subs0.vtt"), filepath.Join(dir, "subs1.vtt")}
	os.WriteFile(subs[0], []byte("WEBVTT\n\n00:00:00.100 --> 00:00:00.800\nad\n"), 0o644)
	os.WriteFile(subs[1], []byte("WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nfilm\n"), 0o644)

	out := filepath.Join(dir, "out.mp4")
	res, err := Join(context.Background(), JoinOptions{
		Output: out, Logger: testLogger(t),
		Tracks: []JoinTrack{
			{Kind: KindVideo, Sections: video, Expected: []float64{1, 2}},
			{Kind: KindAudio, Language: "en", Name: "English", Sections: en},
			{Kind: KindAudio, Language: "fr", Name: "Français", Default: true, Sections: fr},
			{Kind: KindSubtitles, Language: "fr-CA", Sections: subs},
		},
	})
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	checkNoLeftovers(t, out, true)
	got := probeStreams(t, out)
	type stream struct {
		kind, lang, name string
		isDefault        int
	}
	want := []stream{
		{"video", "und", "", 1},
		{"audio", "eng", "English", 0},
		{"audio", "fra", "Français", 1},
		{"subtitle", "fra", "", 1}, // the MP4 muxer enables the only subtitle track
	}
	var gotStreams []stream
	for _, s := range got.streams {
		name := s.Tags.HandlerName
		if !strings.Contains(name, "Engl") && !strings.Contains(name, "Fran") {
			name = "" // ffmpeg's default handler name
		}
		gotStreams = append(gotStreams, stream{s.CodecType, s.Tags.Language, name, s.Disposition.Default})
	}
	if !slices.Equal(gotStreams, want) {
		t.Errorf("output streams:\n got %+v\nwant %+v", gotStreams, want)
	}
	for i, tr := range res.Tracks {
		if tr.FirstStream != i || tr.Streams != 1 {
			t.Errorf("Result.Tracks[%d]: first stream %d, %d streams; want %d, 1", i, tr.FirstStream, tr.Streams, i)
		}
	}
	if hz := testmedia.DominantHz(t, out, 0, 1.5, 1); math.Abs(hz-440) > 0.02*440 {
		t.Errorf("first audio track: tone at %.1f Hz, want 440", hz)
	}
	testmedia.CheckCleanDecode(t, out)

	// The second section's cue starts 0.5 s into it: after the first video section.
	cues, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "s", "-show_entries", "packet=pts_time,size",
		"-of", "csv=p=0", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	shift := probeStreams(t, video[0]).duration
	var starts []float64
	for line := range strings.Lines(string(cues)) {
		pts, size, _ := strings.Cut(strings.TrimSpace(line), ",")
		if size == "2" { // mov_text writes an empty sample for each gap between cues
			continue
		}
		v, _ := strconv.ParseFloat(pts, 64)
		starts = append(starts, v)
	}
	if len(starts) != 2 || math.Abs(starts[0]-0.1) > 0.01 || math.Abs(starts[1]-(shift+0.5)) > 0.01 {
		t.Errorf("subtitle cues start at %v, want [0.100 %.3f]", starts, shift+0.5)
	}
}

// TestJoinFailures covers joins that must fail: with the right error, no output, no partial output, and
// nothing of theirs left behind.
func TestJoinFailures(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Spec{Seconds: 2, SegmentSeconds: 1, Width: 320, Height: 180})
	base := t.TempDir()
	good := filepath.Join(base, "good.mp4")
	if _, err := Files(context.Background(), m.Segments, Options{Output: good}); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(base, "text.mp4")
	os.WriteFile(text, bytes.Repeat([]byte("this is not media\n"), 2000), 0o644)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name     string
		ctx      context.Context
		tracks   []JoinTrack
		cancelAt string // cancel the context when Join logs this message
		wantErr  error  // nil: want an *FFmpegError
		wantText string // in the error
	}{
		{
			name:     "section is not media",
			tracks:   []JoinTrack{{Kind: KindVideo, Sections: []string{good, text}}},
			wantErr:  ErrVerify,
			wantText: "track 0 (video) section 1 " + text,
		},
		{
			name:     "section missing",
			tracks:   []JoinTrack{{Kind: KindVideo, Sections: []string{good, filepath.Join(base, "nope.mp4")}}},
			wantErr:  os.ErrNotExist,
			wantText: "section 1",
		},
		{
			name:     "section shorter than the playlist says",
			tracks:   []JoinTrack{{Kind: KindVideo, Language: "de", Sections: []string{good, good}, Expected: []float64{m.TotalSeconds, m.TotalSeconds + 3}}},
			wantErr:  ErrVerify,
			wantText: fmt.Sprintf("track 0 (video de) section 1 %s: lasts %.3fs, want %.3fs ± 1.000s", good, probeStreams(t, good).duration, m.TotalSeconds+3),
		},
		{
			name:     "audio track without audio",
			tracks:   []JoinTrack{{Kind: KindAudio, Sections: []string{makeSection(t, base, "mute", sectionSpec{seconds: 1, width: 64, height: 36})}}},
			wantErr:  ErrVerify,
			wantText: "has no audio stream",
		},
		{
			name:     "cancelled",
			ctx:      cancelled,
			tracks:   []JoinTrack{{Kind: KindVideo, Sections: []string{good, good}}},
			wantErr:  context.Canceled,
			wantText: "",
		},
		{
			name:     "cancelled as ffmpeg starts",
			cancelAt: "starting ffmpeg",
			tracks:   []JoinTrack{{Kind: KindVideo, Sections: []string{good, good}}},
			wantErr:  context.Canceled,
		},
		{
			name:     "expected durations do not match sections",
			tracks:   []JoinTrack{{Kind: KindVideo, Sections: []string{good, good}, Expected: []float64{2}}},
			wantText: "1 expected durations for 2 sections",
		},
		{
			name:     "unknown kind",
			tracks:   []JoinTrack{{Kind: "captions", Sections: []string{good}}},
			wantText: `unknown kind "captions"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			log := testLogger(t)
			if tt.cancelAt != "" {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				log = slog.New(cancelOn{log.Handler(), tt.cancelAt, cancel})
			}
			out := filepath.Join(t.TempDir(), "out.mp4")
			_, err := Join(ctx, JoinOptions{Output: out, Tracks: tt.tracks, Logger: log})
			t.Logf("error: %v", err)
			switch {
			case err == nil:
				t.Fatal("Join: got nil error")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Join: got %v, want %v", err, tt.wantErr)
			case !strings.Contains(err.Error(), tt.wantText):
				t.Errorf("Join: error %q does not say %q", err, tt.wantText)
			}
			checkNoLeftovers(t, out, false)
		})
	}
}

// cancelOn is a log handler that cancels a context when a message is logged.
type cancelOn struct {
	slog.Handler
	msg    string
	cancel context.CancelFunc
}

func (c cancelOn) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == c.msg {
		c.cancel()
	}
	return c.Handler.Handle(ctx, r)
}

// TestJoinVerifyFailure makes the final check fail (a track said to be far longer than its sections, but each
// section within its own tolerance) and checks that the partial output and intermediate files are kept and
// named, and that the message gives the numbers.
func TestJoinVerifyFailure(t *testing.T) {
	dir := t.TempDir()
	var sections []string
	var expected []float64
	for i := range 3 {
		sections = append(sections, makeSection(t, dir, fmt.Sprintf("s%d", i), sectionSpec{seconds: 1, width: 64, height: 36}))
		expected = append(expected, 1.9) // each within 1 s of its 1 s, together 2.7 s too long
	}
	out := filepath.Join(dir, "out.mp4")
	_, err := Join(context.Background(), JoinOptions{Output: out, Tracks: []JoinTrack{{Kind: KindVideo, Sections: sections, Expected: expected}}})
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("Join: got %v, want ErrVerify", err)
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"track 0 (video): output video stream 0 lasts 3.000s, want 5.700s ± 1.000s", out + PartialSuffix, ".join-"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output exists after a failed verification: %v", err)
	}
	if _, err := os.Stat(out + PartialSuffix); err != nil {
		t.Errorf("partial output not kept for inspection: %v", err)
	}
}

func TestQuoteConcat(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain", in: "/a/b.mp4", want: `'/a/b.mp4'`},
		{name: "space", in: "/a b/c.mp4", want: `'/a b/c.mp4'`},
		{name: "quote", in: "/it's.mp4", want: `'/it'\''s.mp4'`},
		{name: "backslash", in: `/a\b.mp4`, want: `'/a\b.mp4'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quoteConcat(tt.in); got != tt.want {
				t.Errorf("quoteConcat(%q): got %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestISO639(t *testing.T) {
	tests := []struct {
		name, tag, want string
	}{
		{name: "two letters", tag: "en", want: "eng"},
		{name: "region", tag: "pt-BR", want: "por"},
		{name: "script", tag: "zh-Hans", want: "zho"},
		{name: "three letters", tag: "deu", want: "deu"},
		{name: "empty", tag: "", want: "und"},
		{name: "und", tag: "und", want: "und"},
		{name: "unknown", tag: "xx", want: "und"},
		{name: "garbage", tag: "not a tag", want: "und"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := iso639(tt.tag); got != tt.want {
				t.Errorf("iso639(%q): got %q, want %q", tt.tag, got, tt.want)
			}
		})
	}
}
