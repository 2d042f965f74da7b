package recorder

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// muxDASHTwoVideos writes ffmpeg's dash muxer output of two video
// representations (320x180 as stream0, 160x90 as stream1) and one audio
// (stream2), $Number$ template, 4 s in 1-second segments.
func muxDASHTwoVideos(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-map", "0:v", "-map", "0:v", "-map", "1:a", "-t", "4",
		"-c:v", "libx264", "-g", "25", "-b:v:0", "400k", "-b:v:1", "100k", "-s:v:1", "160x90", "-c:a", "aac",
		"-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "0",
		"-adaptation_sets", "id=0,streams=v id=1,streams=a", filepath.Join(dir, "out.mpd")).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
}

func readT(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A manifest seen in the browser makes one recording of the representation
// the player plays (here the smaller one, as players start low), with the
// audio; what the browser fetched is kept, nothing is learned from the
// segment URLs of any representation, and the other video representation is
// never fetched.
func TestCaptureDASHManifest(t *testing.T) {
	dir := t.TempDir()
	muxDASHTwoVideos(t, dir)
	o := dashOrigin(t, dir)
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts()})
	h := map[string]string{"Referer": testReferer, "Cookie": testCookie}
	browse(t, c, o.URL+"out.mpd", readT(t, filepath.Join(dir, "out.mpd")), h)
	s := onlySession(t, st)
	if s.State == StateDone || s.State == StateDownloading {
		t.Fatalf("the recording started (%s) before the player chose a representation", s.State)
	}
	fetched := []string{"init-stream2.m4s", "init-stream1.m4s", "chunk-stream1-00001.m4s", "chunk-stream2-00001.m4s"}
	for _, name := range fetched {
		browse(t, c, o.URL+name, readT(t, filepath.Join(dir, name)), h)
	}
	s = waitState(t, st, s.ID, StateDone)
	// The player switches up: its segments are another representation's, not a new stream.
	browse(t, c, o.URL+"chunk-stream0-00003.m4s", readT(t, filepath.Join(dir, "chunk-stream0-00003.m4s")), h)
	c.Wait()
	if list, _ := st.List(); len(list) != 1 {
		t.Fatalf("%d sessions, want the manifest's one", len(list))
	}
	if v := s.Track("video"); v == nil || !strings.Contains(v.Segments[0].URL, "chunk-stream1-") {
		t.Fatalf("video track %+v, want the 160x90 representation (stream1) the player chose", v)
	}
	d := streamDurations(t, s.Output)
	if len(d) != 2 || d["video"] < 3.96 || d["audio"] < 3.96 {
		t.Errorf("output streams %v, want video and audio of 4 s", d)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.m4s"))
	for _, f := range files {
		name := filepath.Base(f)
		want := 1
		switch {
		case strings.Contains(name, "stream0"), name == "chunk-stream2-00005.m4s": // not played, past the end
			want = 0
		case name == "init-stream2.m4s":
			want = 0 // the browser's copy, fetched before the recording started, was kept
		case contains(fetched, name):
			// The browser's copy was kept, or the backfill got there first and
			// the browser was answered from disk: once from the origin either way.
			if got := o.Hits(name); got > 1 {
				t.Errorf("%s: origin asked %d times, want at most once", name, got)
			}
			continue
		}
		if got := o.Hits(name); got != want {
			t.Errorf("%s: origin asked %d times, want %d", name, got, want)
		}
	}
}

// Without a manifest, ffmpeg's .m4s names are learned per stream: the number
// after "stream" is never the segment number.
func TestCaptureDASHNamesWithoutManifest(t *testing.T) {
	dir := t.TempDir()
	muxDASH(t, dir, "-use_template", "1", "-use_timeline", "0")
	o := dashOrigin(t, dir)
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts()})
	h := map[string]string{"Referer": testReferer, "Cookie": testCookie}
	for _, name := range []string{"init-stream0.m4s", "init-stream1.m4s", "chunk-stream0-00001.m4s", "chunk-stream1-00001.m4s",
		"chunk-stream0-00002.m4s", "chunk-stream1-00002.m4s"} {
		browse(t, c, o.URL+name, readT(t, filepath.Join(dir, name)), h)
	}
	list, err := st.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("%d sessions (%v), want one per stream", len(list), err)
	}
	for _, s := range list {
		s = waitState(t, st, s.ID, StateDone)
		tm := s.Main().Template
		stream := "stream0"
		if strings.Contains(tm.String(), "stream1") {
			stream = "stream1"
		}
		if want := o.URL + "chunk-" + stream + "-{index:05d}.m4s"; !strings.HasPrefix(tm.String(), want) {
			t.Errorf("template %s, want %s", tm, want)
		}
		if in := s.Main().Inits; len(in) != 1 || !strings.HasSuffix(in[0].URL, "init-"+stream+".m4s") {
			t.Errorf("%s: inits %+v, want init-%s.m4s", stream, in, stream)
		}
	}
	c.Wait()
	for _, name := range []string{"init-stream2.m4s", "chunk-stream2-00001.m4s"} {
		if n := o.Hits(name); n > 0 {
			t.Errorf("%s asked %d times: a stream number was taken for a segment number", name, n)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
