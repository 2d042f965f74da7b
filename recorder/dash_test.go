package recorder

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
)

// These tests record what ffmpeg's own dash muxer writes (4 s of 320x180
// H.264 and a 48 kHz AAC sine, 1-second segments), served by a test origin
// that demands a Referer and a cookie, and check the one .mp4 Run makes
// against what ffmpeg itself reads from the same files.

// dashSource encodes the 4-second source once per test binary.
var dashSource struct {
	path string
	err  error
}

func dashSourceFile(t *testing.T) string {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("these tests need the real ffmpeg: %v", err)
	}
	if dashSource.path == "" && dashSource.err == nil {
		dir, err := os.MkdirTemp("", "streamsnatcher-dash-src-")
		if err == nil {
			p := filepath.Join(dir, "src.mp4")
			out, cerr := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
				"-f", "lavfi", "-i", "testsrc=size=320x180:rate=25",
				"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
				"-t", "4", "-c:v", "libx264", "-g", "25", "-c:a", "aac", p).CombinedOutput()
			if cerr != nil {
				err = fmt.Errorf("%v: %s", cerr, out)
			}
			dashSource.path = p
		}
		dashSource.err = err
	}
	if dashSource.err != nil {
		t.Fatalf("encoding the DASH source: %v", dashSource.err)
	}
	return dashSource.path
}

// muxDASH runs ffmpeg's dash muxer on the source into dir/out.mpd.
func muxDASH(t *testing.T, dir string, extra ...string) []byte {
	t.Helper()
	src := dashSourceFile(t)
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-i", src, "-map", "0", "-c", "copy",
		"-f", "dash", "-seg_duration", "1"}
	args = append(append(args, extra...), filepath.Join(dir, "out.mpd"))
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg dash %s: %v\n%s", strings.Join(extra, " "), err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "out.mpd"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// counts is what ffprobe reads of a file or manifest.
type counts struct{ video, audio int }

func countPackets(t *testing.T, path string) counts {
	t.Helper()
	v, a, err := testmedia.CountPackets(context.Background(), path)
	if err != nil {
		t.Fatalf("counting packets of %s: %v", path, err)
	}
	return counts{v, a}
}

// streamDurations returns each stream's duration by its codec type.
func streamDurations(t *testing.T, path string) map[string]float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var res struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			Duration  string `json:"duration"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	d := map[string]float64{}
	for _, s := range res.Streams {
		d[s.CodecType], _ = strconv.ParseFloat(s.Duration, 64)
	}
	return d
}

// checkDASHOutput asserts one .mp4 with one video and one audio stream, each
// of the length wanted (within 1 %), the packets wanted, and a clean decode.
func checkDASHOutput(t *testing.T, out string, want counts, seconds float64) {
	t.Helper()
	if got := countPackets(t, out); got != want {
		t.Errorf("output packets: video %d audio %d, want video %d audio %d", got.video, got.audio, want.video, want.audio)
	}
	d := streamDurations(t, out)
	if len(d) != 2 {
		t.Errorf("output streams %v, want one video and one audio", d)
	}
	for _, k := range []string{"video", "audio"} {
		if math.Abs(d[k]-seconds) > seconds/100 {
			t.Errorf("output %s lasts %.3fs, want %.1fs ± 1%%", k, d[k], seconds)
		}
	}
	msg, err := exec.Command("ffmpeg", "-v", "error", "-i", out, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(msg)) > 0 {
		t.Errorf("decoding the output: %v: %s", err, msg)
	}
}

// dashOrigin serves dir like a CDN that demands the fixture's Referer and cookie.
func dashOrigin(t *testing.T, dir string) *testorigin.Origin {
	t.Helper()
	return testorigin.Start(t, testorigin.Options{Dir: dir, Prefix: "/dash/abc/",
		RequireReferer: testReferer, RequireCookie: testCookie})
}

// runManifest records the manifest at u in a new session and returns the output.
func runManifest(t *testing.T, u string, m MergeOptions) (*Session, *Result, error) {
	t.Helper()
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{Source: "get", Playlist: u, Headers: map[string]string{"Referer": testReferer, "Cookie": testCookie},
		Target: filepath.Join(t.TempDir(), "out.mp4")}
	if err := st.Create(s); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), s, fastOpts(), m)
	return s, res, err
}

// checkOnce asserts every file of dir except the manifest was requested at
// most once (the audio chunk past the manifest's end not at all).
func checkOnce(t *testing.T, o *testorigin.Origin, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.m4s"))
	for _, f := range files {
		if n := o.Hits(filepath.Base(f)); n > 1 {
			t.Errorf("%s requested %d times, want at most once", filepath.Base(f), n)
		}
	}
}

func TestRunDASHNumberTemplate(t *testing.T) {
	dir := t.TempDir()
	muxDASH(t, dir, "-use_template", "1", "-use_timeline", "0")
	o := dashOrigin(t, dir)
	s, res, err := runManifest(t, o.URL+"out.mpd", MergeOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(s.Tracks) != 2 || s.Tracks[0].Kind != "video" || s.Tracks[1].Kind != "audio" {
		t.Fatalf("tracks %v, want video and audio", trackIDs(s))
	}
	checkDASHOutput(t, res.Output, templateCounts(t, dir), 4)
	checkOnce(t, o, dir)
}

func TestRunDASHTimeline(t *testing.T) {
	dir := t.TempDir()
	muxDASH(t, dir, "-use_template", "1", "-use_timeline", "1")
	o := dashOrigin(t, dir)
	_, res, err := runManifest(t, o.URL+"out.mpd", MergeOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The timeline lists every chunk ffmpeg wrote: every packet of the source.
	checkDASHOutput(t, res.Output, countPackets(t, dashSourceFile(t)), 4)
	checkOnce(t, o, dir)
}

var segmentListRE = regexp.MustCompile(`(?s)<SegmentList.*?</SegmentList>`)

// TestRunDASHSingleFile records -single_file 1 output: as ffmpeg lists it (a
// SegmentList of byte ranges) and as on-demand sites list the same files
// (SegmentBase with indexRange: the sidx is fetched first, then the ranges).
func TestRunDASHSingleFile(t *testing.T) {
	dir := t.TempDir()
	mpd := muxDASH(t, dir, "-single_file", "1", "-global_sidx", "1")
	files, _ := filepath.Glob(filepath.Join(dir, "out-stream*.mp4"))
	lists := segmentListRE.FindAll(mpd, -1)
	if len(files) != 2 || len(lists) != 2 {
		t.Fatalf("ffmpeg wrote %v and %d SegmentLists, want two single files", files, len(lists))
	}
	var want counts
	base := string(mpd)
	for i, f := range files {
		c := countPackets(t, f)
		want.video += c.video
		want.audio += c.audio
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		off, size := sidxOf(t, b)
		base = strings.Replace(base, string(lists[i]), fmt.Sprintf(
			`<SegmentBase indexRange="%d-%d"><Initialization range="0-%d"/></SegmentBase>`, off, off+size-1, off-1), 1)
	}
	if err := os.WriteFile(filepath.Join(dir, "base.mpd"), []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	o := dashOrigin(t, dir)
	for _, name := range []string{"out.mpd", "base.mpd"} {
		t.Run(strings.TrimSuffix(name, ".mpd"), func(t *testing.T) {
			_, res, err := runManifest(t, o.URL+name, MergeOptions{})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			checkDASHOutput(t, res.Output, want, 4)
		})
	}
}

// sidxOf finds the top-level sidx box of an MP4 file.
func sidxOf(t *testing.T, b []byte) (off, size int64) {
	t.Helper()
	for off := int64(0); off+8 <= int64(len(b)); {
		size := int64(binary.BigEndian.Uint32(b[off:]))
		if size < 8 {
			break
		}
		if string(b[off+4:off+8]) == "sidx" {
			return off, size
		}
		off += size
	}
	t.Fatal("no sidx in the single file")
	return 0, 0
}

var periodRE = regexp.MustCompile(`(?s)<Period[^>]*>(.*)</Period>`)

// TestRunDASHTwoPeriods joins two ffmpeg outputs as two Periods (a
// SegmentTimeline, then $Number$ with other representation ids): one .mp4 of
// both, 8 s long.
func TestRunDASHTwoPeriods(t *testing.T) {
	dir := t.TempDir()
	var want counts
	var inner [2]string
	for k, extra := range [][]string{{"-use_timeline", "1"}, {"-use_timeline", "0"}} {
		pdir := filepath.Join(dir, fmt.Sprintf("p%d", k))
		if err := os.Mkdir(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		mpd := muxDASH(t, pdir, append([]string{"-use_template", "1"}, extra...)...)
		c := countPackets(t, dashSourceFile(t))
		if k == 1 {
			c = templateCounts(t, pdir)
		}
		want.video += c.video
		want.audio += c.audio
		m := periodRE.FindSubmatch(mpd)
		if m == nil {
			t.Fatalf("no Period in ffmpeg's manifest:\n%s", mpd)
		}
		inner[k] = string(m[1])
	}
	for _, id := range []string{"0", "1"} {
		inner[1] = strings.Replace(inner[1], fmt.Sprintf(`<Representation id="%s"`, id), fmt.Sprintf(`<Representation id="p1-%s"`, id), 1)
		inner[1] = strings.Replace(inner[1], "$RepresentationID$", id, 2) // this representation's two templates
	}
	mpd := `<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" mediaPresentationDuration="PT8.0S" minBufferTime="PT2.0S">
	<Period id="main" start="PT0.0S"><BaseURL>p0/</BaseURL>` + inner[0] + `</Period>
	<Period id="next" start="PT4.0S"><BaseURL>p1/</BaseURL>` + inner[1] + `</Period>
</MPD>`
	if err := os.WriteFile(filepath.Join(dir, "two.mpd"), []byte(mpd), 0o644); err != nil {
		t.Fatal(err)
	}
	o := dashOrigin(t, dir)
	s, res, err := runManifest(t, o.URL+"two.mpd", MergeOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, tr := range s.Tracks {
		if tr.Sections() != 2 {
			t.Errorf("track %s: %d sections, want one per Period", tr.ID, tr.Sections())
		}
	}
	checkDASHOutput(t, res.Output, want, 8)
}

// A manifest with DRM, or a live one that cannot be placed on the clock, is
// refused before anything is fetched, with an error that says so.
func TestRunDASHRefuses(t *testing.T) {
	dir := t.TempDir()
	mpd := string(muxDASH(t, dir, "-use_template", "1", "-use_timeline", "0"))
	drm := strings.Replace(mpd, `<Representation id="0"`, `<ContentProtection schemeIdUri="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"/><Representation id="0"`, 1)
	// Live, on the wall clock, but not saying when it started.
	live := strings.Replace(mpd, `type="static"`, `type="dynamic"`, 1)
	for name, body := range map[string]string{"drm.mpd": drm, "live.mpd": live} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := dashOrigin(t, dir)
	for _, tc := range []struct {
		name string
		want error
		msg  string
	}{
		{"drm.mpd", ErrDRM, "Widevine"},
		{"live.mpd", ErrLiveDASH, "availabilityStartTime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, err := runManifest(t, o.URL+tc.name, MergeOptions{})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Run: got %v, want %v naming %q", err, tc.want, tc.msg)
			}
			if s.State != StateFailed {
				t.Errorf("state %q, want failed", s.State)
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.m4s"))
	for _, f := range files {
		if n := o.Hits(filepath.Base(f)); n > 0 {
			t.Errorf("%s fetched %d times for a refused manifest", filepath.Base(f), n)
		}
	}
}

// templateCounts is what a $Number$ manifest of ffmpeg's presents: the
// source's packets but for the last audio chunk. ffmpeg writes
// mediaPresentationDuration="PT4.0S" while AAC priming makes the audio
// ~4.02 s, so a fifth chunk of one packet lies past the end the manifest
// gives (dash.js and shaka stop there too).
func templateCounts(t *testing.T, dir string) counts {
	t.Helper()
	c := countPackets(t, dashSourceFile(t))
	chunks, _ := filepath.Glob(filepath.Join(dir, "chunk-stream1-*.m4s"))
	if len(chunks) != 5 {
		t.Fatalf("ffmpeg wrote %d audio chunks, want 4 and the one past the end", len(chunks))
	}
	init, err := os.ReadFile(filepath.Join(dir, "init-stream1.m4s"))
	if err != nil {
		t.Fatal(err)
	}
	last, err := os.ReadFile(chunks[4])
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "last.mp4")
	if err := os.WriteFile(p, append(init, last...), 0o644); err != nil {
		t.Fatal(err)
	}
	c.audio -= countPackets(t, p).audio
	return c
}

func trackIDs(s *Session) []string {
	var ids []string
	for _, t := range s.Tracks {
		ids = append(ids, t.ID)
	}
	return ids
}
