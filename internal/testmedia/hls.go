package testmedia

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/playlist"
)

// matrixVersion is part of the matrix's cache key: bump it whenever a command line below or the layout of
// the cached directory changes.
const matrixVersion = "4"

// Names of the HLS matrix cases, each a directory of the matrix.
const (
	CaseTS         = "ts"         // MPEG-TS segments, audio muxed with the video
	CaseFMP4       = "fmp4"       // fMP4 segments behind an EXT-X-MAP
	CaseAESIV      = "aes-iv"     // AES-128, key URI, an explicit IV
	CaseAESSeq     = "aes-seq"    // AES-128, the IV of each segment is its media sequence number (from 7)
	CaseSeparate   = "separate"   // a master with video-only variant and two audio renditions (en default, fr)
	CaseSingleTS   = "single-ts"  // one .ts file, segments as EXT-X-BYTERANGE
	CaseSingleFMP4 = "single-mp4" // one .mp4 file, the init section and segments as byte ranges
	CaseDiscSame   = "disc-same"  // two sections of the same parameters split by EXT-X-DISCONTINUITY
	CaseDiscDiff   = "disc-diff"  // a 44.1 kHz mono 256x144 ad (440 Hz) before a 48 kHz stereo 320x180 film (1000 Hz)
	CaseGap        = "gap"        // CaseTS with its third segment marked EXT-X-GAP (and absent from the directory)
)

// CaseSeparateFMP4 is CaseSeparate in fMP4 segments, each playlist with its init_N.mp4: hls.js plays it,
// while it reports bufferAppendNoProgress on CaseSeparate's audio-only MPEG-TS renditions.
const CaseSeparateFMP4 = "separate-fmp4"

// MatrixCases lists every case in a stable order.
var MatrixCases = []string{CaseTS, CaseFMP4, CaseAESIV, CaseAESSeq, CaseSeparate, CaseSeparateFMP4, CaseSingleTS,
	CaseSingleFMP4, CaseDiscSame, CaseDiscDiff, CaseGap}

// An HLSCase is one stream written by ffmpeg's own hls muxer, as a site would serve it.
type HLSCase struct {
	Name  string `json:"name"`
	Dir   string `json:"-"`     // the case's directory: serve it
	Entry string `json:"entry"` // the playlist to record, relative to Dir (a master for CaseSeparate)
	// Seconds is the sum of the EXTINF durations of the (video) media playlist, gaps included.
	Seconds float64 `json:"seconds"`
	// Video is the number of video packets the origin serves; Audio the audio packets per rendition
	// language ("" for audio muxed with the video).
	Video int            `json:"video"`
	Audio map[string]int `json:"audio"`
	// Tone is the frequency of the test tone per audio rendition language (Hz).
	Tone map[string]float64 `json:"tone"`
	// Sections, for the discontinuity cases, describes each section in play order.
	Sections []Section `json:"sections,omitempty"`
	// Gap, for CaseGap: the segment file marked EXT-X-GAP (relative to Dir, absent from it), its index in
	// the playlist and the packets it held.
	Gap                  string             `json:"gap,omitempty"`
	GapIndex             int                `json:"gap_index,omitempty"`
	GapVideo             int                `json:"gap_video,omitempty"`
	GapAudio             int                `json:"gap_audio,omitempty"`
	GapSeconds           float64            `json:"gap_seconds,omitempty"`
	AudioSeconds         map[string]float64 `json:"audio_seconds"` // EXTINF sums of separate audio playlists
	SampleRate, Channels int                `json:"-"`
}

// A Section is one discontinuity section of a case.
type Section struct {
	Seconds    float64 `json:"seconds"` // EXTINF sum
	Video      int     `json:"video"`   // packets
	Audio      int     `json:"audio"`
	SampleRate int     `json:"sample_rate"`
	Channels   int     `json:"channels"`
	Tone       float64 `json:"tone"`
}

// A Matrix is every HLS case under one root directory.
type Matrix struct {
	Root  string              // serve it: each case is the directory named after it
	Cases map[string]*HLSCase // by name
}

var (
	matrixOnce sync.Once
	matrix     *Matrix
	matrixErr  error
)

// HLSMatrix returns the HLS test matrix, generating it on first use (a few seconds) and caching it per
// ffmpeg version like Generate. It fails the test when ffmpeg is missing or generation fails.
func HLSMatrix(tb testing.TB) *Matrix {
	tb.Helper()
	matrixOnce.Do(func() { matrix, matrixErr = generateMatrix() })
	if matrixErr != nil {
		tb.Fatalf("testmedia: HLS matrix: %v", matrixErr)
	}
	return matrix
}

func generateMatrix() (*Matrix, error) {
	ffmpeg, version, err := lookFFmpeg()
	if err != nil {
		return nil, err
	}
	key := cacheKey(Spec{Seconds: 1, Format: "hls-matrix-" + matrixVersion}, version)
	root, err := os.UserCacheDir()
	if err != nil {
		root = os.TempDir()
	}
	root = filepath.Join(root, "streamsnatcher-testmedia")
	dir := filepath.Join(root, key)
	if m, err := loadMatrix(dir); err == nil {
		return m, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(root, ".building-"+key+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	if err := buildMatrix(ffmpeg, tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if m, lerr := loadMatrix(dir); lerr == nil {
			return m, nil // another process built it first
		}
		os.RemoveAll(dir)
		if err := os.Rename(tmp, dir); err != nil {
			return nil, err
		}
	}
	return loadMatrix(dir)
}

const matrixMeta = "matrix.json"

func loadMatrix(dir string) (*Matrix, error) {
	b, err := os.ReadFile(filepath.Join(dir, matrixMeta))
	if err != nil {
		return nil, err
	}
	m := &Matrix{Root: dir}
	if err := json.Unmarshal(b, &m.Cases); err != nil {
		return nil, err
	}
	for _, name := range MatrixCases {
		c := m.Cases[name]
		if c == nil {
			return nil, fmt.Errorf("matrix %s lacks case %s", dir, name)
		}
		c.Dir = filepath.Join(dir, name)
	}
	return m, nil
}

// builder runs ffmpeg in one directory and stops at the first failure.
type builder struct {
	ffmpeg, dir string
	err         error
}

func (b *builder) run(args ...string) {
	if b.err != nil {
		return
	}
	cmd := exec.Command(b.ffmpeg, append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)...)
	cmd.Dir = b.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		b.err = fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
}

func (b *builder) mkdir(names ...string) {
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(b.dir, n), 0o755); err != nil && b.err == nil {
			b.err = err
		}
	}
}

// source encodes an H.264 + AAC source of seconds with one tone per audio stream; every later HLS output
// stream-copies it, so that what the origin serves is exactly what the hls muxer wrote.
func (b *builder) source(name string, seconds, w, h, rate, channels int, tones ...int) {
	args := []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=25:duration=%d", w, h, seconds)}
	for _, hz := range tones {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=%d:duration=%d", hz, rate, seconds))
	}
	args = append(args, "-map", "0:v")
	for i := range tones {
		args = append(args, "-map", strconv.Itoa(i+1)+":a")
	}
	// A key frame every second: the hls muxer cuts 1-second segments at key frames.
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
		"-keyint_min", "25", "-sc_threshold", "0", "-b:v", "150k",
		"-c:a", "aac", "-b:a", "48k", "-ac", strconv.Itoa(channels), name)
	b.run(args...)
}

// hls stream-copies src into dir/index.m3u8 with the hls muxer and extra options.
func (b *builder) hls(src, dir, segName string, extra ...string) {
	args := []string{"-i", src, "-map", "0", "-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"}
	args = append(args, extra...)
	args = append(args, "-hls_segment_filename", filepath.Join(dir, segName), filepath.Join(dir, "index.m3u8"))
	b.run(args...)
}

func buildMatrix(ffmpeg, dir string) error {
	b := &builder{ffmpeg: ffmpeg, dir: dir}
	b.mkdir(append([]string{"src", "disc-same/a", "disc-same/b", "disc-diff/ad", "disc-diff/film"}, MatrixCases...)...)
	b.source("src/main.mkv", 5, 320, 180, 48000, 2, 440)
	b.source("src/ad.mkv", 2, 256, 144, 44100, 1, 440)
	b.source("src/film.mkv", 4, 320, 180, 48000, 2, 1000)

	b.hls("src/main.mkv", CaseTS, "seg_%03d.ts", "-hls_segment_type", "mpegts")
	b.hls("src/main.mkv", CaseFMP4, "seg_%03d.m4s", "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4")

	// AES-128: the key info file is the key URI, the key file and, optionally, the IV.
	key := []byte("0123456789abcdef")
	for _, c := range []string{CaseAESIV, CaseAESSeq} {
		if err := os.WriteFile(filepath.Join(dir, c, "video.key"), key, 0o644); err != nil {
			return err
		}
	}
	info := func(name, iv string) string {
		s := "video.key\n" + filepath.Join(dir, name, "video.key") + "\n"
		if iv != "" {
			s += iv + "\n"
		}
		p := filepath.Join(dir, "src", name+".keyinfo")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil && b.err == nil {
			b.err = err
		}
		return p
	}
	b.hls("src/main.mkv", CaseAESIV, "seg_%03d.ts", "-hls_key_info_file", info(CaseAESIV, "00112233445566778899aabbccddeeff"))
	// ffmpeg 5 and later write an IV even when the key info file has none: the first segment's sequence
	// number, kept for every segment, unless periodic_rekey makes it start again (and so take the sequence
	// number) at each segment. That is what a sequence-number IV is; the IV attributes are removed from the
	// playlist below (a hand edit) so that the client must derive them.
	b.hls("src/main.mkv", CaseAESSeq, "seg_%03d.ts", "-hls_key_info_file", info(CaseAESSeq, ""),
		"-hls_flags", "periodic_rekey", "-start_number", "7")

	// The master playlist names a variant only when its bit rates are known, which a stream copy does not
	// say: these cases are encoded as they are written.
	for _, sep := range []struct {
		name string
		seg  []string // segment options: the file names, and the type when not MPEG-TS
	}{
		{CaseSeparate, []string{"-hls_segment_filename", filepath.Join(CaseSeparate, "stream_%v_%03d.ts")}},
		{CaseSeparateFMP4, []string{"-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init_%v.mp4",
			"-hls_segment_filename", filepath.Join(CaseSeparateFMP4, "stream_%v_%03d.m4s")}},
	} {
		args := []string{"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=5",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=5",
			"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=5",
			"-map", "0:v", "-map", "1:a", "-map", "2:a",
			"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-keyint_min", "25",
			"-sc_threshold", "0", "-b:v", "150k", "-c:a", "aac", "-b:a", "48k", "-ac", "2",
			"-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
			"-var_stream_map", "v:0,agroup:aud a:0,agroup:aud,language:en,default:yes a:1,agroup:aud,language:fr",
			"-master_pl_name", "master.m3u8"}
		b.run(append(append(args, sep.seg...), filepath.Join(sep.name, "stream_%v.m3u8"))...)
	}

	b.hls("src/main.mkv", CaseSingleTS, "all.ts", "-hls_flags", "single_file")
	b.hls("src/main.mkv", CaseSingleFMP4, "all.mp4", "-hls_flags", "single_file", "-hls_segment_type", "fmp4")

	b.hls("src/main.mkv", "disc-same/a", "a_%03d.ts", "-t", "2")
	b.hls("src/main.mkv", "disc-same/b", "b_%03d.ts")
	b.hls("src/ad.mkv", "disc-diff/ad", "ad_%03d.ts")
	b.hls("src/film.mkv", "disc-diff/film", "film_%03d.ts")

	b.hls("src/main.mkv", CaseGap, "seg_%03d.ts")
	if b.err != nil {
		return b.err
	}
	return describeMatrix(dir)
}

var ivAttr = regexp.MustCompile(`,IV=0[xX][0-9a-fA-F]+`)

// describeMatrix makes the hand edits ffmpeg cannot, counts what each case serves and writes matrix.json.
func describeMatrix(dir string) error {
	ctx := context.Background()
	cases := map[string]*HLSCase{}
	p := func(parts ...string) string { return filepath.Join(append([]string{dir}, parts...)...) }

	// aes-seq: the IVs go, the client derives them from the media sequence.
	seqPl := p(CaseAESSeq, "index.m3u8")
	data, err := os.ReadFile(seqPl)
	if err != nil {
		return err
	}
	if err := os.WriteFile(seqPl, ivAttr.ReplaceAll(data, nil), 0o644); err != nil {
		return err
	}

	for _, name := range []string{CaseTS, CaseFMP4, CaseAESIV, CaseAESSeq, CaseSingleTS, CaseSingleFMP4} {
		c := &HLSCase{Name: name, Entry: "index.m3u8"}
		sec, err := extinfSum(p(name, "index.m3u8"))
		if err != nil {
			return err
		}
		c.Seconds = sec
		st, err := StreamPackets(ctx, p(name, "index.m3u8"))
		if err != nil {
			return err
		}
		c.Video, c.Audio = st.video(), map[string]int{"": st.audio(0)}
		c.Tone = map[string]float64{"": 440}
		cases[name] = c
	}

	// separate: the video playlist, then each rendition's, named by language.
	for _, name := range []string{CaseSeparate, CaseSeparateFMP4} {
		sep := &HLSCase{Name: name, Entry: "master.m3u8", Audio: map[string]int{}, AudioSeconds: map[string]float64{},
			Tone: map[string]float64{"en": 440, "fr": 1000}}
		for i, lang := range []string{"", "en", "fr"} {
			pl := p(name, fmt.Sprintf("stream_%d.m3u8", i))
			sec, err := extinfSum(pl)
			if err != nil {
				return err
			}
			st, err := StreamPackets(ctx, pl)
			if err != nil {
				return err
			}
			if lang == "" {
				sep.Seconds, sep.Video = sec, st.video()
				if len(st) != 1 {
					return fmt.Errorf("%s: the video playlist has %d streams, want video only", name, len(st))
				}
				continue
			}
			sep.Audio[lang], sep.AudioSeconds[lang] = st.audio(0), sec
		}
		cases[name] = sep
	}

	// Discontinuities: two ffmpeg outputs joined by hand with EXT-X-DISCONTINUITY, which ffmpeg's hls
	// muxer never writes for VOD.
	for _, d := range []struct {
		name, a, b   string
		toneA, toneB float64
	}{
		{CaseDiscSame, "a", "b", 440, 440},
		{CaseDiscDiff, "ad", "film", 440, 1000},
	} {
		c := &HLSCase{Name: d.name, Entry: "index.m3u8", Audio: map[string]int{}, Tone: map[string]float64{"": d.toneB}}
		var out strings.Builder
		out.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n")
		for k, part := range []string{d.a, d.b} {
			pl := p(d.name, part, "index.m3u8")
			md, err := readMedia(pl)
			if err != nil {
				return err
			}
			st, err := StreamPackets(ctx, pl)
			if err != nil {
				return err
			}
			sec := Section{Seconds: md.TotalDuration(), Video: st.video(), Audio: st.audio(0), Tone: []float64{d.toneA, d.toneB}[k]}
			if a := st.audioStream(0); a != nil {
				sec.SampleRate, sec.Channels = a.SampleRate, a.Channels
			}
			c.Sections = append(c.Sections, sec)
			c.Seconds += sec.Seconds
			c.Video += sec.Video
			c.Audio[""] += sec.Audio
			if k > 0 {
				out.WriteString("#EXT-X-DISCONTINUITY\n")
			}
			for _, s := range md.Segments {
				fmt.Fprintf(&out, "#EXTINF:%.6f,\n%s/%s\n", s.Duration, part, s.URI)
			}
		}
		out.WriteString("#EXT-X-ENDLIST\n")
		if err := os.WriteFile(p(d.name, "index.m3u8"), []byte(out.String()), 0o644); err != nil {
			return err
		}
		cases[d.name] = c
	}

	// gap: the third segment is marked EXT-X-GAP by hand (ffmpeg never writes it) and removed, so a
	// fetch of it would fail.
	gap := &HLSCase{Name: CaseGap, Entry: "index.m3u8", Tone: map[string]float64{"": 440}, GapIndex: 2}
	pl := p(CaseGap, "index.m3u8")
	st, err := StreamPackets(ctx, pl)
	if err != nil {
		return err
	}
	gap.Video, gap.Audio = st.video(), map[string]int{"": st.audio(0)}
	md, err := readMedia(pl)
	if err != nil {
		return err
	}
	gap.Seconds = md.TotalDuration()
	gap.Gap = md.Segments[gap.GapIndex].URI
	gap.GapSeconds = md.Segments[gap.GapIndex].Duration
	gst, err := StreamPackets(ctx, p(CaseGap, gap.Gap))
	if err != nil {
		return err
	}
	gap.GapVideo, gap.GapAudio = gst.video(), gst.audio(0)
	data, err = os.ReadFile(pl)
	if err != nil {
		return err
	}
	data = bytes.Replace(data, []byte("\n"+gap.Gap+"\n"), []byte("\n#EXT-X-GAP\n"+gap.Gap+"\n"), 1)
	if err := os.WriteFile(pl, data, 0o644); err != nil {
		return err
	}
	if err := os.Remove(p(CaseGap, gap.Gap)); err != nil {
		return err
	}
	cases[CaseGap] = gap

	b, err := json.MarshalIndent(cases, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, matrixMeta), b, 0o644)
}

func readMedia(path string) (*playlist.Media, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pl, err := playlist.Parse(data, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if pl.Media == nil {
		return nil, fmt.Errorf("%s: not a media playlist", path)
	}
	return pl.Media, nil
}

func extinfSum(path string) (float64, error) {
	md, err := readMedia(path)
	if err != nil {
		return 0, err
	}
	return md.TotalDuration(), nil
}

// A Stream is one stream of a file as ffprobe reads it, with its packets counted.
type Stream struct {
	Type       string // "video", "audio", …
	Codec      string
	Packets    int
	Language   string // the language tag, "" when absent
	SampleRate int
	Channels   int
	Width      int
	Height     int
	Seconds    float64 // the stream's duration; 0 when ffprobe gives none
	Default    bool
}

// Streams are a file's streams in order.
type Streams []Stream

func (ss Streams) video() int {
	n := 0
	for _, s := range ss {
		if s.Type == "video" {
			n += s.Packets
		}
	}
	return n
}

func (ss Streams) audioStream(k int) *Stream {
	for i := range ss {
		if ss[i].Type == "audio" {
			if k == 0 {
				return &ss[i]
			}
			k--
		}
	}
	return nil
}

func (ss Streams) audio(k int) int {
	if a := ss.audioStream(k); a != nil {
		return a.Packets
	}
	return 0
}

// OfType returns the streams of one type, in order.
func (ss Streams) OfType(typ string) Streams {
	var out Streams
	for _, s := range ss {
		if s.Type == typ {
			out = append(out, s)
		}
	}
	return out
}

// StreamPackets describes every stream of path (a media file or a playlist; keys of local encrypted
// playlists are allowed) and counts its packets.
func StreamPackets(ctx context.Context, path string) (Streams, error) {
	args := []string{"-count_packets", "-show_entries",
		"stream=codec_type,codec_name,nb_read_packets,sample_rate,channels,width,height,duration:stream_tags=language:stream_disposition=default",
		"-of", "json"}
	if strings.HasSuffix(path, ".m3u8") {
		args = append(args, "-allowed_extensions", "ALL")
	}
	out, err := ffprobe(ctx, append(args, path)...)
	if err != nil {
		return nil, err
	}
	var res struct {
		Streams []struct {
			CodecType     string `json:"codec_type"`
			CodecName     string `json:"codec_name"`
			NbReadPackets string `json:"nb_read_packets"`
			SampleRate    string `json:"sample_rate"`
			Channels      int    `json:"channels"`
			Width         int    `json:"width"`
			Height        int    `json:"height"`
			Duration      string `json:"duration"`
			Tags          struct {
				Language string `json:"language"`
			} `json:"tags"`
			Disposition struct {
				Default int `json:"default"`
			} `json:"disposition"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	var ss Streams
	for _, s := range res.Streams {
		n, err := strconv.Atoi(s.NbReadPackets)
		if err != nil {
			return nil, fmt.Errorf("ffprobe %s: packet count %q: %w", path, s.NbReadPackets, err)
		}
		rate, _ := strconv.Atoi(s.SampleRate)
		sec, _ := strconv.ParseFloat(s.Duration, 64)
		ss = append(ss, Stream{Type: s.CodecType, Codec: s.CodecName, Packets: n, Language: s.Tags.Language,
			SampleRate: rate, Channels: s.Channels, Width: s.Width, Height: s.Height, Seconds: sec,
			Default: s.Disposition.Default == 1})
	}
	return ss, nil
}
