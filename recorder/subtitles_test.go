package recorder

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/webvtt"
)

// sourceCues are the subtitles the test media is made with.
var sourceCues = testmedia.SubtitleCues

// frenchText is what the French rendition says instead of the English.
func frenchText(s string) string { return strings.ReplaceAll(s, "cue", "repère") }

// subtitleMedia writes, under root, three HLS presentations of a 5 s video (1 s segments) with WebVTT
// subtitles, as origins serve them:
//
//   - plain: what ffmpeg's hls muxer writes (-var_stream_map "v:0,a:0,s:0,sgroup:subs"): cue times with no
//     X-TIMESTAMP-MAP, relative to the stream's start. ffmpeg cannot put two subtitle streams in one
//     group (a variant may not share its video with another), so the French rendition is the English
//     segments with their text changed and an EXT-X-MEDIA line added to the master by hand.
//   - mapped: the same, each segment with an X-TIMESTAMP-MAP tying LOCAL 00:00:10.000 to the video's first
//     timestamp (MPEGTS 126000: ffmpeg's MPEG-TS muxer starts at 1.4 s) and every cue 10 s later, as
//     packagers that keep their own subtitle clock write them.
//   - disc: the video and the English subtitles played twice, an EXT-X-DISCONTINUITY between.
func subtitleMedia(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	plain := filepath.Join(root, "plain")
	if err := os.Mkdir(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	testmedia.SubtitledHLS(t, plain)
	master := readText(t, filepath.Join(plain, "master.m3u8"))
	en := regexp.MustCompile(`(?m)^#EXT-X-MEDIA:TYPE=SUBTITLES.*$`).FindString(master)
	if en == "" || !strings.Contains(master, `SUBTITLES="subs"`) {
		t.Fatalf("ffmpeg's master playlist has no subtitle group:\n%s", master)
	}
	fr := strings.NewReplacer(`NAME="subtitle_0"`, `NAME="Français"`, `DEFAULT=YES`, `DEFAULT=NO`,
		`LANGUAGE="en"`, `LANGUAGE="fr"`, "out_0_vtt.m3u8", "fr_vtt.m3u8").Replace(en)
	writeText(t, filepath.Join(plain, "master.m3u8"), strings.Replace(master, en, en+"\n"+fr, 1))
	list := readText(t, filepath.Join(plain, "out_0_vtt.m3u8"))
	writeText(t, filepath.Join(plain, "fr_vtt.m3u8"), strings.ReplaceAll(list, "out_0", "fr_0"))
	vtts, _ := filepath.Glob(filepath.Join(plain, "out_0*.vtt"))
	if len(vtts) != 5 {
		t.Fatalf("ffmpeg wrote %d subtitle segments, want 5", len(vtts))
	}
	for _, p := range vtts {
		writeText(t, filepath.Join(plain, strings.Replace(filepath.Base(p), "out_0", "fr_0", 1)), frenchText(readText(t, p)))
	}

	mapped := filepath.Join(root, "mapped")
	if err := os.CopyFS(mapped, os.DirFS(plain)); err != nil {
		t.Fatal(err)
	}
	vtts, _ = filepath.Glob(filepath.Join(mapped, "*.vtt"))
	for _, p := range vtts {
		f, err := webvtt.Parse([]byte(readText(t, p)))
		if err != nil {
			t.Fatal(err)
		}
		for i := range f.Cues {
			f.Cues[i].Start += 10 * time.Second
			f.Cues[i].End += 10 * time.Second
		}
		body := strings.Replace(string(webvtt.Marshal(f.Cues)), "WEBVTT\n", "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:10.000\n", 1)
		writeText(t, p, body)
	}

	disc := filepath.Join(root, "disc")
	if err := os.CopyFS(disc, os.DirFS(plain)); err != nil {
		t.Fatal(err)
	}
	writeText(t, filepath.Join(disc, "master.m3u8"), master) // English only
	for _, name := range []string{"out_0.m3u8", "out_0_vtt.m3u8"} {
		l := readText(t, filepath.Join(disc, name))
		head, rest, _ := strings.Cut(l, "#EXTINF")
		body := "#EXTINF" + strings.TrimSuffix(strings.TrimSpace(rest), "#EXT-X-ENDLIST")
		writeText(t, filepath.Join(disc, name), head+body+"#EXT-X-DISCONTINUITY\n"+body+"#EXT-X-ENDLIST\n")
	}
	return root
}

func readText(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeText(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunHLSSubtitles records ffmpeg's own HLS output with WebVTT renditions and checks that the .mp4 has a
// mov_text stream per language chosen, tagged with it, whose cues fall where the source put them (within
// 0.1 s, on the video's clock, whatever the segments' own clock); that each language is also beside the
// output as out.LANG.vtt with the same cues; and that the video and audio keep every packet.
func TestRunHLSSubtitles(t *testing.T) {
	root := subtitleMedia(t)
	src, err := testmedia.StreamPackets(context.Background(), filepath.Join(root, "plain", "out_0.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	srcV, srcA := src.OfType("video"), src.OfType("audio")
	if len(srcV) != 1 || len(srcA) != 1 {
		t.Fatalf("source streams %+v, want one video and one audio", src)
	}
	o := testorigin.Start(t, testorigin.Options{Dir: root, Prefix: "/hls/"})
	tests := []struct {
		name     string
		dir      string
		subs     string   // MergeOptions.Subtitles
		langs    []string // subtitle tracks expected, in order
		iso      []string // their language tags in the .mp4
		sections int      // times the source plays
	}{
		{name: "every language by default", dir: "plain", langs: []string{"en", "fr"}, iso: []string{"eng", "fra"}, sections: 1},
		{name: "one language", dir: "plain", subs: "fr", langs: []string{"fr"}, iso: []string{"fra"}, sections: 1},
		{name: "none", dir: "plain", subs: "none", sections: 1},
		{name: "X-TIMESTAMP-MAP on the subtitles' own clock", dir: "mapped", subs: "all", langs: []string{"en", "fr"}, iso: []string{"eng", "fra"}, sections: 1},
		{name: "discontinuity", dir: "disc", langs: []string{"en"}, iso: []string{"eng"}, sections: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			outDir := t.TempDir()
			s := &Session{Source: "get", Playlist: o.URL + tt.dir + "/master.m3u8", Target: filepath.Join(outDir, "out.mp4")}
			if err := st.Create(s); err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), s, fastOpts(), MergeOptions{Subtitles: tt.subs})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			ss, err := testmedia.StreamPackets(context.Background(), res.Output)
			if err != nil {
				t.Fatal(err)
			}
			v, a, subs := ss.OfType("video"), ss.OfType("audio"), ss.OfType("subtitle")
			if len(v) != 1 || len(a) != 1 || len(subs) != len(tt.langs) {
				t.Fatalf("output streams %+v, want one video, one audio and %d subtitle", ss, len(tt.langs))
			}
			if want := srcV[0].Packets * tt.sections; v[0].Packets != want {
				t.Errorf("video packets %d, want %d", v[0].Packets, want)
			}
			if want := srcA[0].Packets * tt.sections; a[0].Packets != want {
				t.Errorf("audio packets %d, want %d", a[0].Packets, want)
			}
			// Where the second play starts on the output's clock: the first section's length as muxed.
			sectionLength := 0.0
			if tt.sections > 1 {
				sectionLength = v[0].Seconds / float64(tt.sections)
			}
			var wantFiles []string
			for k, lang := range tt.langs {
				if subs[k].Language != tt.iso[k] || subs[k].Codec != "mov_text" {
					t.Errorf("subtitle stream %d: %s tagged %q, want mov_text tagged %q", k, subs[k].Codec, subs[k].Language, tt.iso[k])
				}
				muxed := filepath.Join(t.TempDir(), "muxed.vtt")
				if out, err := exec.Command("ffmpeg", "-v", "error", "-i", res.Output, "-map", fmt.Sprintf("0:s:%d", k), muxed).CombinedOutput(); err != nil {
					t.Fatalf("ffmpeg extracting subtitle stream %d: %v\n%s", k, err, out)
				}
				checkCues(t, "the .mp4's "+lang+" stream", muxed, lang, tt.sections, sectionLength)
				beside := filepath.Join(outDir, "out."+lang+".vtt")
				checkCues(t, "the file beside it", beside, lang, tt.sections, sectionLength)
				wantFiles = append(wantFiles, beside)
			}
			if strings.Join(res.Subtitles, " ") != strings.Join(wantFiles, " ") {
				t.Errorf("Result.Subtitles %q, want %q", res.Subtitles, wantFiles)
			}
			left, _ := filepath.Glob(filepath.Join(outDir, "*"))
			if len(left) != 1+len(tt.langs) {
				t.Errorf("output directory holds %q, want out.mp4 and the %d .vtt files", left, len(tt.langs))
			}
		})
	}
}

// checkCues reads the WebVTT file p and compares its cues with sourceCues in language lang, played sections
// times, each play sectionLength seconds after the one before.
func checkCues(t *testing.T, what, p, lang string, sections int, sectionLength float64) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	f, err := webvtt.Parse(data)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	var got []webvtt.Cue
	for _, c := range f.Cues {
		if strings.TrimSpace(c.Text) != "" {
			got = append(got, c)
		}
	}
	if len(got) != len(sourceCues)*sections {
		t.Errorf("%s: %d cues, want %d:\n%s", what, len(got), len(sourceCues)*sections, data)
		return
	}
	for k, c := range got {
		src := sourceCues[k%len(sourceCues)]
		shift := float64(k/len(sourceCues)) * sectionLength
		text := src.Text
		if lang == "fr" {
			text = frenchText(text)
		}
		if start, end := c.Start.Seconds(), c.End.Seconds(); math.Abs(start-src.Start-shift) > 0.1 ||
			math.Abs(end-src.End-shift) > 0.1 || c.Text != text {
			t.Errorf("%s: cue %d %.3f–%.3f %q, want %.3f–%.3f %q ± 0.1 s", what, k, start, end, c.Text,
				src.Start+shift, src.End+shift, text)
		}
	}
}
