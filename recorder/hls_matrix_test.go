package recorder

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
)

// TestRunHLSMatrix records every case of the HLS matrix (ffmpeg's own hls muxer output, served with ranges)
// and checks the one output file against what the origin serves: packets per stream, duration within 1 %
// of the playlist, video and audio present, a clean decode; for separate audio the renditions asked for,
// with their language tags; for different sections the film's pitch; for a GAP the hole, reported and
// never fetched.
func TestRunHLSMatrix(t *testing.T) {
	m := testmedia.HLSMatrix(t)
	o := testorigin.Start(t, testorigin.Options{Dir: m.Root, Prefix: "/hls/"})
	tests := []struct {
		name  string
		cse   string
		audio string   // MergeOptions.Audio
		langs []string // audio renditions expected in the output, in order ("" muxed with the video)
		iso   []string // their language tags in the output
	}{
		{name: "ts", cse: testmedia.CaseTS, langs: []string{""}},
		{name: "fmp4", cse: testmedia.CaseFMP4, langs: []string{""}},
		{name: "aes-128 explicit iv", cse: testmedia.CaseAESIV, langs: []string{""}},
		{name: "aes-128 sequence iv from 7", cse: testmedia.CaseAESSeq, langs: []string{""}},
		{name: "separate audio default", cse: testmedia.CaseSeparate, langs: []string{"en"}, iso: []string{"eng"}},
		{name: "separate audio fr", cse: testmedia.CaseSeparate, audio: "fr", langs: []string{"fr"}, iso: []string{"fra"}},
		{name: "separate audio all", cse: testmedia.CaseSeparate, audio: "all", langs: []string{"en", "fr"}, iso: []string{"eng", "fra"}},
		{name: "separate audio fmp4 all", cse: testmedia.CaseSeparateFMP4, audio: "all", langs: []string{"en", "fr"}, iso: []string{"eng", "fra"}},
		{name: "byte ranges ts", cse: testmedia.CaseSingleTS, langs: []string{""}},
		{name: "byte ranges fmp4", cse: testmedia.CaseSingleFMP4, langs: []string{""}},
		{name: "discontinuity same audio", cse: testmedia.CaseDiscSame, langs: []string{""}},
		{name: "discontinuity different audio", cse: testmedia.CaseDiscDiff, langs: []string{""}},
		{name: "gap", cse: testmedia.CaseGap, langs: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := m.Cases[tt.cse]
			st, err := NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			s := &Session{Source: "get", Playlist: o.URL + tt.cse + "/" + c.Entry, Target: filepath.Join(t.TempDir(), "out.mp4")}
			if err := st.Create(s); err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), s, fastOpts(), MergeOptions{Audio: tt.audio})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Output != s.Target {
				t.Fatalf("output %q, want %q", res.Output, s.Target)
			}
			checkMatrixOutput(t, c, res.Output, tt.langs, tt.iso)

			if tt.cse == testmedia.CaseGap {
				if n := o.Hits(tt.cse + "/" + c.Gap); n != 0 {
					t.Errorf("the EXT-X-GAP segment %s was requested %d times, want never", c.Gap, n)
				}
				if len(res.Holes) != 1 || res.Holes[0].Index != int64(c.GapIndex) || !res.Holes[0].ByDesign {
					t.Errorf("holes %+v, want segment %d by design", res.Holes, c.GapIndex)
				}
				saved, err := st.Load(s.ID)
				if err != nil {
					t.Fatal(err)
				}
				if g := saved.Main().Gaps; !slices.Equal(g, []int64{int64(c.GapIndex)}) {
					t.Errorf("saved session: gaps %v, want [%d]", g, c.GapIndex)
				}
				if g := saved.Summary().Gaps; !slices.Equal(g, []int64{int64(c.GapIndex)}) {
					t.Errorf("sessions summary: gaps %v, want [%d]", g, c.GapIndex)
				}
			} else if len(res.Holes) != 0 {
				t.Errorf("holes %+v, want none", res.Holes)
			}
		})
	}
}

// checkMatrixOutput checks a recording of case c whose audio renditions are langs ("" for audio muxed with
// the video) tagged iso (nil: not checked).
func checkMatrixOutput(t *testing.T, c *testmedia.HLSCase, out string, langs, iso []string) {
	t.Helper()
	ss, err := testmedia.StreamPackets(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	v, a := ss.OfType("video"), ss.OfType("audio")
	if len(v) != 1 || len(a) != len(langs) || len(ss) != 1+len(langs) {
		t.Fatalf("output streams %+v, want one video and %d audio", ss, len(langs))
	}

	// Packets: every one the origin served, less what a gap holds. A section re-encoded to the film's
	// sample rate has as many audio frames as its length takes at that rate.
	wantV := c.Video - c.GapVideo
	if v[0].Packets != wantV {
		t.Errorf("video packets %d, want %d", v[0].Packets, wantV)
	}
	for k, lang := range langs {
		want, slack := float64(c.Audio[lang]-c.GapAudio), 0.0
		if c.GapAudio > 0 {
			slack = 2 // a segment's audio frames are split from PES packets that straddle its ends
		}
		if c.Name == testmedia.CaseDiscDiff {
			ad, film := c.Sections[0], c.Sections[1]
			want = float64(film.Audio) + float64(ad.Audio)*float64(film.SampleRate)/float64(ad.SampleRate)
			slack = 2
		}
		if got := float64(a[k].Packets); math.Abs(got-want) > slack {
			t.Errorf("audio %q packets %.0f, want %.0f ± %.0f", lang, got, want, slack)
		}
		if iso != nil && a[k].Language != iso[k] {
			t.Errorf("audio %d language %q, want %q", k, a[k].Language, iso[k])
		}
	}

	// Duration: the playlist's, gaps included (the timestamps keep the hole, so what follows it stays in
	// step with its picture and with any other track). Sections joined back to back also keep what each
	// section's AAC frames hold beyond its EXTINF (the encoder's priming frame and the padded last frame,
	// served by the origin and kept packet for packet), so the file lasts the EXTINF sum plus those
	// overhangs; the picture alone lasts the EXTINF sum.
	want := c.Seconds
	for _, sec := range c.Sections {
		want += max(0, float64(sec.Audio)*1024/float64(sec.SampleRate)-sec.Seconds)
	}
	d, err := testmedia.Probe(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(d-want) > 0.01*want {
		t.Errorf("duration %.3fs, want %.3fs ± 1 %% (EXTINF sum %.3fs)", d, want, c.Seconds)
	}
	if math.Abs(v[0].Seconds-c.Seconds) > 0.01*c.Seconds {
		t.Errorf("video lasts %.3fs, want the EXTINF sum %.3fs ± 1 %%", v[0].Seconds, c.Seconds)
	}
	testmedia.CheckCleanDecode(t, out)

	// The tone of each audio track, in the (last) section that is the film.
	start := 0.5
	if len(c.Sections) > 0 {
		start = c.Sections[0].Seconds + 0.5
	}
	for k, lang := range langs {
		want := c.Tone[lang]
		if hz := testmedia.DominantHz(t, out, k, start, 1); math.Abs(hz-want) > 0.02*want {
			t.Errorf("audio %q: tone at %.1f Hz, want %.0f Hz ± 2 %%", lang, hz, want)
		}
	}
	if c.Name == testmedia.CaseDiscDiff {
		ad := c.Sections[0]
		if hz := testmedia.DominantHz(t, out, 0, 0.3, 1); math.Abs(hz-ad.Tone) > 0.02*ad.Tone {
			t.Errorf("ad part: tone at %.1f Hz, want %.0f Hz ± 2 %%", hz, ad.Tone)
		}
		if v[0].Width != 320 || v[0].Height != 180 || a[0].SampleRate != 48000 || a[0].Channels != 2 {
			t.Errorf("output %dx%d %d Hz %d channels, want the film's 320x180 48000 Hz 2 channels",
				v[0].Width, v[0].Height, a[0].SampleRate, a[0].Channels)
		}
	}
}

// An origin that answers a byte-range request with the whole file (200), or with other bytes than asked
// (a wrong Content-Range), gives a per-segment error that says so, and no output.
func TestRunByteRangeRefused(t *testing.T) {
	m := testmedia.HLSMatrix(t)
	c := m.Cases[testmedia.CaseSingleTS]
	tests := []struct {
		name  string
		serve func(w http.ResponseWriter, r *http.Request, body []byte)
		want  string
	}{
		{name: "200 instead of 206", want: "status 200 instead of 206", serve: func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.Write(body)
		}},
		{name: "wrong content-range", want: "Content-Range", serve: func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-99/%d", len(body)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body[:100])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := os.ReadFile(filepath.Join(c.Dir, path.Base(r.URL.Path)))
				if err != nil {
					http.NotFound(w, r)
					return
				}
				if strings.HasSuffix(r.URL.Path, ".m3u8") {
					w.Write(body)
					return
				}
				tt.serve(w, r, body)
			}))
			defer srv.Close()
			st, err := NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			s := &Session{Source: "get", Playlist: srv.URL + "/index.m3u8", Target: filepath.Join(t.TempDir(), "out.mp4")}
			if err := st.Create(s); err != nil {
				t.Fatal(err)
			}
			o := fastOpts()
			o.Attempts = 1
			_, err = Run(context.Background(), s, o, MergeOptions{})
			if !errors.Is(err, ErrRange) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "all.ts") {
				t.Fatalf("Run: %v, want ErrRange naming the segment and %q", err, tt.want)
			}
			if _, err := os.Stat(s.Target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("an output was written: %v", err)
			}
		})
	}
}

// A recording of video and two audio renditions stopped half way resumes from its saved session into the
// same checked file, fetching again only what was not on disk.
func TestRunSeparateAudioResumes(t *testing.T) {
	m := testmedia.HLSMatrix(t)
	c := m.Cases[testmedia.CaseSeparate]
	o := testorigin.Start(t, testorigin.Options{Dir: m.Root, Prefix: "/hls/", TTFB: 20 * time.Millisecond})
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{Source: "get", Playlist: o.URL + testmedia.CaseSeparate + "/" + c.Entry, Audio: "all",
		Target: filepath.Join(t.TempDir(), "out.mp4")}
	if err := st.Create(s); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts := fastOpts()
	opts.Concurrency = 2
	opts.Progress = NewProgress()
	go func() {
		for opts.Progress.Fetched.Load() < 4 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := Run(ctx, s, opts, MergeOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("first Run: %v, want context.Canceled", err)
	}
	again, err := st.Load(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Tracks) != 3 {
		t.Fatalf("saved session has %d tracks, want video and two audio", len(again.Tracks))
	}
	onDisk := map[string]bool{}
	for _, tr := range again.Tracks {
		for _, i := range tr.Indices() {
			if tr.Have(i) {
				onDisk[path.Base(tr.URL(i))] = true
			}
		}
	}
	if len(onDisk) == 0 {
		t.Fatal("nothing on disk after the cancel")
	}
	res, err := Run(context.Background(), again, fastOpts(), MergeOptions{})
	if err != nil {
		t.Fatalf("resumed Run: %v", err)
	}
	checkMatrixOutput(t, c, res.Output, []string{"en", "fr"}, []string{"eng", "fra"})
	for name := range onDisk {
		if n := o.Completed(testmedia.CaseSeparate + "/" + name); n != 1 {
			t.Errorf("%s was on disk after the cancel but fetched to completion %d times, want 1", name, n)
		}
	}
}

// TestRunSeparateAudioMissingSegment: an audio segment the origin does not have, with tracks muxed live. Without
// --allow-gaps the run ends incomplete naming that segment (not the mux the failure aborted for the video);
// with it the output is made, the hole listed.
func TestRunSeparateAudioMissingSegment(t *testing.T) {
	m := testmedia.HLSMatrix(t)
	c := m.Cases[testmedia.CaseSeparate]
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join(m.Root, testmedia.CaseSeparate))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "stream_1_002.ts")); err != nil {
		t.Fatal(err)
	}
	o := testorigin.Start(t, testorigin.Options{Dir: root, Prefix: "/hls/"})
	for _, allow := range []bool{false, true} {
		st, err := NewStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		s := &Session{Source: "get", Playlist: o.URL + c.Entry, Target: filepath.Join(t.TempDir(), "out.mp4")}
		if err := st.Create(s); err != nil {
			t.Fatal(err)
		}
		opts := fastOpts()
		opts.Attempts = 2
		res, err := Run(context.Background(), s, opts, MergeOptions{AllowGaps: allow})
		if !allow {
			var ie *IncompleteError
			if !errors.As(err, &ie) || len(ie.Failed) != 1 || ie.Failed[0].Index != 2 || ie.Failed[0].Track != "audio-en" {
				t.Fatalf("Run: got %v, want an IncompleteError for audio-en segment 2", err)
			}
			if _, err := os.Stat(s.Target + ".partial"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("partial output left behind: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Run with AllowGaps: %v", err)
		}
		if len(res.Holes) != 1 || res.Holes[0].Track != "audio-en" || res.Holes[0].Index != 2 {
			t.Errorf("Holes: got %+v, want audio-en segment 2", res.Holes)
		}
		if _, err := os.Stat(res.Output); err != nil {
			t.Errorf("output: %v", err)
		}
	}
}
