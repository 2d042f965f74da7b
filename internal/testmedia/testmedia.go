// Package testmedia generates real HLS media (H.264 + AAC segments and a playlist) with ffmpeg for tests, and
// caches it per spec and ffmpeg version so that each spec is encoded once per machine.
package testmedia

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/playlist"
)

// generatorVersion is part of the cache key: bump it whenever the ffmpeg command line or the layout of a cached
// directory changes, so stale caches are not reused.
const generatorVersion = "1"

// Formats of generated segments.
const (
	FormatTS   = "ts"   // MPEG-TS segments (seg_00000.ts …), the default
	FormatFMP4 = "fmp4" // fragmented MP4: init.mp4 plus seg_00000.m4s …
	FormatAAC  = "aac"  // audio only, raw ADTS segments (seg_00000.aac …)
)

// Spec describes the media to generate. Zero fields take the defaults noted.
type Spec struct {
	Seconds        int    // total length; required
	SegmentSeconds int    // target segment length; a keyframe starts every segment (default 2)
	Width, Height  int    // video size (default 320x180)
	FPS            int    // frame rate (default 25)
	Format         string // FormatTS (default), FormatFMP4 or FormatAAC
	VideoBitrate   string // e.g. "2500k"; "" lets x264 choose (CRF)
	SampleRate     int    // audio sample rate (default 48000); lower is cheaper to encode
}

// Small is a fast spec (well under a second to generate) with 8 one-second segments.
var Small = Spec{Seconds: 8, SegmentSeconds: 1, Width: 320, Height: 180, FPS: 25}

// SmallFMP4 is Small as fragmented MP4.
var SmallFMP4 = Spec{Seconds: 8, SegmentSeconds: 1, Width: 320, Height: 180, FPS: 25, Format: FormatFMP4}

// Media is generated media on disk. Treat the files as read-only: they are shared through the cache.
type Media struct {
	Spec         Spec
	Dir          string    // directory holding everything below
	Playlist     string    // path of index.m3u8
	Segments     []string  // segment paths in playback order
	Init         string    // init segment path (FormatFMP4 only)
	Durations    []float64 // per-segment durations from the playlist
	VideoPackets int       // video packets in the whole stream, as ffprobe counts them
	AudioPackets int       // audio packets in the whole stream
	TotalSeconds float64   // sum of Durations
}

// meta is what a cache directory records about its media; paths are relative to the directory.
type meta struct {
	Segments     []string  `json:"segments"`
	Init         string    `json:"init,omitempty"`
	Durations    []float64 `json:"durations"`
	VideoPackets int       `json:"video_packets"`
	AudioPackets int       `json:"audio_packets"`
}

const metaFile = "media.json"

// ErrNoFFmpeg means ffmpeg or ffprobe is not in PATH.
var ErrNoFFmpeg = errors.New("ffmpeg/ffprobe not found in PATH")

// ForTest returns the media for spec, generating it on first use. It fails the test (never skips it) when
// ffmpeg is missing or generation fails.
func ForTest(tb testing.TB, spec Spec) *Media {
	tb.Helper()
	m, err := Generate(spec)
	if errors.Is(err, ErrNoFFmpeg) {
		tb.Fatalf("testmedia: %v; these tests need the real ffmpeg: install it (Debian: sudo apt-get update && sudo apt-get install ffmpeg)", err)
	}
	if err != nil {
		tb.Fatalf("testmedia: %v", err)
	}
	return m
}

// keyLocks serialises generation of the same spec inside one process; across processes the atomic rename of
// the finished directory decides.
var keyLocks sync.Map // cache key → *sync.Mutex

// lookFFmpeg finds ffmpeg and ffprobe (ErrNoFFmpeg without either) and returns ffmpeg's path and the first
// line of its -version, which the cache keys carry: media made by another ffmpeg is made again.
func lookFFmpeg() (ffmpeg, version string, err error) {
	if ffmpeg, err = exec.LookPath("ffmpeg"); err != nil {
		return "", "", ErrNoFFmpeg
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		return "", "", ErrNoFFmpeg
	}
	out, err := exec.Command(ffmpeg, "-version").Output()
	if err != nil {
		return "", "", fmt.Errorf("ffmpeg -version: %w", err)
	}
	firstLine, _, _ := bytes.Cut(out, []byte("\n"))
	return ffmpeg, string(firstLine), nil
}

// Generate returns the media for spec from the cache, generating it first if needed.
func Generate(spec Spec) (*Media, error) {
	spec, err := spec.normalize()
	if err != nil {
		return nil, err
	}
	ffmpeg, version, err := lookFFmpeg()
	if err != nil {
		return nil, err
	}
	key := cacheKey(spec, version)

	root, err := os.UserCacheDir()
	if err != nil {
		root = os.TempDir()
	}
	root = filepath.Join(root, "streamsnatcher-testmedia")
	dir := filepath.Join(root, key)

	mu, _ := keyLocks.LoadOrStore(key, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()

	if m, err := load(dir, spec); err == nil {
		return m, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("testmedia cache: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".building-"+key+"-")
	if err != nil {
		return nil, fmt.Errorf("testmedia cache: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	if err := build(ffmpeg, tmp, spec); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process finished the same spec first: use its copy.
		if m, lerr := load(dir, spec); lerr == nil {
			return m, nil
		}
		// A damaged directory without media.json: replace it.
		os.RemoveAll(dir)
		if err := os.Rename(tmp, dir); err != nil {
			return nil, fmt.Errorf("testmedia cache: %w", err)
		}
	}
	return load(dir, spec)
}

func (s Spec) normalize() (Spec, error) {
	if s.Seconds <= 0 {
		return s, fmt.Errorf("testmedia: spec needs Seconds > 0, got %d", s.Seconds)
	}
	if s.SegmentSeconds <= 0 {
		s.SegmentSeconds = 2
	}
	if s.Format == "" {
		s.Format = FormatTS
	}
	switch s.Format {
	case FormatTS, FormatFMP4:
		if s.Width <= 0 || s.Height <= 0 {
			s.Width, s.Height = 320, 180
		}
		if s.FPS <= 0 {
			s.FPS = 25
		}
	case FormatAAC:
		s.Width, s.Height, s.FPS, s.VideoBitrate = 0, 0, 0, ""
	default:
		return s, fmt.Errorf("testmedia: unknown format %q (want %q, %q or %q)", s.Format, FormatTS, FormatFMP4, FormatAAC)
	}
	if s.SampleRate <= 0 {
		s.SampleRate = 48000
	}
	return s, nil
}

func cacheKey(s Spec, ffmpegVersion string) string {
	h := sha256.New()
	fmt.Fprintf(h, "v%s\n%s\n%+v\n", generatorVersion, ffmpegVersion, s)
	return fmt.Sprintf("%s-%ds-%s", s.Format, s.Seconds, hex.EncodeToString(h.Sum(nil))[:16])
}

// build runs ffmpeg into dir and records media.json.
func build(ffmpeg, dir string, s Spec) error {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}
	if s.Format != FormatAAC {
		args = append(args, "-f", "lavfi", "-i",
			fmt.Sprintf("testsrc2=size=%dx%d:rate=%d:duration=%d", s.Width, s.Height, s.FPS, s.Seconds))
	}
	args = append(args, "-f", "lavfi", "-i",
		fmt.Sprintf("sine=frequency=440:sample_rate=%d:duration=%d", s.SampleRate, s.Seconds))
	if s.Format != FormatAAC {
		args = append(args, "-map", "0:v", "-map", "1:a",
			"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
			"-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%d)", s.SegmentSeconds))
		if s.VideoBitrate != "" {
			args = append(args, "-b:v", s.VideoBitrate, "-maxrate", s.VideoBitrate, "-bufsize", s.VideoBitrate)
		}
	}
	args = append(args, "-c:a", "aac", "-b:a", "64k")
	seg := func(ext string) string { return filepath.Join(dir, "seg_%05d."+ext) }
	playlist := filepath.Join(dir, "index.m3u8")
	switch s.Format {
	case FormatTS:
		args = append(args, "-f", "hls", "-hls_time", strconv.Itoa(s.SegmentSeconds), "-hls_playlist_type", "vod",
			"-hls_segment_filename", seg("ts"), playlist)
	case FormatFMP4:
		args = append(args, "-f", "hls", "-hls_time", strconv.Itoa(s.SegmentSeconds), "-hls_playlist_type", "vod",
			"-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
			"-hls_segment_filename", seg("m4s"), playlist)
	case FormatAAC:
		args = append(args, "-f", "segment", "-segment_format", "adts", "-segment_time", strconv.Itoa(s.SegmentSeconds),
			"-segment_list", playlist, "-segment_list_type", "m3u8", seg("aac"))
	}
	cmd := exec.Command(ffmpeg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("testmedia: generate %+v: ffmpeg: %w: %s", s, err, strings.TrimSpace(stderr.String()))
	}

	md, err := readPlaylist(playlist)
	if err != nil {
		return err
	}
	if s.Format == FormatFMP4 {
		md.Init = "init.mp4"
	}
	md.VideoPackets, md.AudioPackets, err = CountPackets(context.Background(), playlist)
	if err != nil {
		return fmt.Errorf("testmedia: count packets of generated media: %w", err)
	}
	b, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, metaFile), b, 0o644)
}

// readPlaylist takes segment names and durations from a media playlist written by ffmpeg.
func readPlaylist(path string) (meta, error) {
	var md meta
	data, err := os.ReadFile(path)
	if err != nil {
		return md, fmt.Errorf("testmedia: %w", err)
	}
	pl, err := playlist.Parse(data, nil) // nil base: URIs stay as written, relative to the playlist
	if err != nil {
		return md, fmt.Errorf("testmedia: %s: %w", path, err)
	}
	if pl.Media == nil || len(pl.Media.Segments) == 0 {
		return md, fmt.Errorf("testmedia: %s: no segments", path)
	}
	for _, seg := range pl.Media.Segments {
		md.Segments = append(md.Segments, seg.URI)
		md.Durations = append(md.Durations, seg.Duration)
	}
	return md, nil
}

// load reads a finished cache directory.
func load(dir string, spec Spec) (*Media, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var md meta
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("testmedia: %s: %w", dir, err)
	}
	m := &Media{
		Spec:         spec,
		Dir:          dir,
		Playlist:     filepath.Join(dir, "index.m3u8"),
		Durations:    md.Durations,
		VideoPackets: md.VideoPackets,
		AudioPackets: md.AudioPackets,
	}
	if md.Init != "" {
		m.Init = filepath.Join(dir, md.Init)
	}
	for i, s := range md.Segments {
		m.Segments = append(m.Segments, filepath.Join(dir, s))
		m.TotalSeconds += md.Durations[i]
	}
	for _, p := range append([]string{m.Playlist}, m.Segments...) {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("testmedia: cache %s is incomplete: %w", dir, err)
		}
	}
	return m, nil
}

// Bytes returns the content of segment i. It panics if the file cannot be read: the cache is corrupt.
func (m *Media) Bytes(i int) []byte {
	b, err := os.ReadFile(m.Segments[i])
	if err != nil {
		panic(fmt.Sprintf("testmedia: segment %d: %v", i, err))
	}
	return b
}

// CopyTo copies the segments (and init segment, if any) into dir, which tests may then modify freely, and
// returns the copies' paths in order and the copied init path ("" if none).
func (m *Media) CopyTo(dir string) (segments []string, init string, err error) {
	cp := func(src string) (string, error) {
		b, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		dst := filepath.Join(dir, filepath.Base(src))
		return dst, os.WriteFile(dst, b, 0o644)
	}
	if m.Init != "" {
		if init, err = cp(m.Init); err != nil {
			return nil, "", fmt.Errorf("testmedia: copy: %w", err)
		}
	}
	for _, s := range m.Segments {
		p, err := cp(s)
		if err != nil {
			return nil, "", fmt.Errorf("testmedia: copy: %w", err)
		}
		segments = append(segments, p)
	}
	return segments, init, nil
}

// CountPackets counts the video and audio packets ffprobe reads from path (a media file or a playlist).
func CountPackets(ctx context.Context, path string) (video, audio int, err error) {
	out, err := ffprobe(ctx, "-count_packets", "-show_entries", "stream=codec_type,nb_read_packets", "-of", "json", path)
	if err != nil {
		return 0, 0, err
	}
	var res struct {
		Streams []struct {
			CodecType     string `json:"codec_type"`
			NbReadPackets string `json:"nb_read_packets"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, 0, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	for _, s := range res.Streams {
		n, err := strconv.Atoi(s.NbReadPackets)
		if err != nil {
			return 0, 0, fmt.Errorf("ffprobe %s: packet count %q: %w", path, s.NbReadPackets, err)
		}
		switch s.CodecType {
		case "video":
			video += n
		case "audio":
			audio += n
		}
	}
	return video, audio, nil
}

// Probe returns the container duration of path in seconds, as ffprobe reports it.
func Probe(ctx context.Context, path string) (duration float64, err error) {
	out, err := ffprobe(ctx, "-show_entries", "format=duration", "-of", "default=noprint_wrappers=1:nokey=1", path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(out))
	d, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("ffprobe %s: duration %q: %w", path, s, err)
	}
	return d, nil
}

func ffprobe(ctx context.Context, args ...string) ([]byte, error) {
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		return nil, ErrNoFFmpeg
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"-v", "error"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ffprobe %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
