package merge

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// muxSource is one track's generated segments.
type muxSource struct {
	track MuxTrack
	segs  []string
}

// feedMux appends each source's segments from its own goroutine, as the recorder's tracks do, and closes
// the inputs; it returns the first error of each input.
func feedMux(m *Mux, srcs []muxSource) []error {
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Go(func() {
			in := m.Input(i)
			for _, p := range s.segs {
				if err := in.Append(p); err != nil {
					errs[i] = err
					in.Close()
					return
				}
			}
			errs[i] = in.Close()
		})
	}
	wg.Wait()
	return errs
}

func startMux(t *testing.T, ctx context.Context, out string, srcs []muxSource) *Mux {
	t.Helper()
	o := MuxOptions{Output: out, Logger: testLogger(t)}
	for _, s := range srcs {
		o.Tracks = append(o.Tracks, s.track)
	}
	m, err := StartMux(ctx, o)
	if err != nil {
		t.Fatalf("StartMux: %v", err)
	}
	return m
}

func TestMuxSeparateTracks(t *testing.T) {
	for _, fmp4 := range []bool{false, true} {
		name := "mpegts"
		if fmp4 {
			name = "fmp4"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			vInit, video := makeSegments(t, dir, "video", sectionSpec{seconds: 4, width: 320, height: 180}, fmp4)
			enInit, en := makeSegments(t, dir, "en", sectionSpec{seconds: 4, rate: 48000, channels: 2, freq: 440}, fmp4)
			frInit, fr := makeSegments(t, dir, "fr", sectionSpec{seconds: 4, rate: 48000, channels: 2, freq: 660}, fmp4)
			srcs := []muxSource{
				{MuxTrack{Kind: KindVideo, Init: vInit, Expected: 4}, video},
				{MuxTrack{Kind: KindAudio, Language: "en", Name: "English", Init: enInit, Expected: 4}, en},
				{MuxTrack{Kind: KindAudio, Language: "fr", Name: "Français", Default: true, Init: frInit}, fr},
			}
			out := filepath.Join(dir, "out.mp4")
			m := startMux(t, context.Background(), out, srcs)
			for i, err := range feedMux(m, srcs) {
				if err != nil {
					t.Fatalf("input %d: %v", i, err)
				}
			}
			res, err := m.Finish()
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			checkNoLeftovers(t, out, true)
			got := probeStreams(t, out)
			type stream struct {
				kind, lang, name string
				isDefault        int
			}
			// As Join writes them (TestJoinSeparateTracks).
			want := []stream{{"video", "und", "", 1}, {"audio", "eng", "English", 0}, {"audio", "fra", "Français", 1}}
			var gotStreams []stream
			for _, s := range got.streams {
				name := s.Tags.HandlerName
				if !strings.Contains(name, "Engl") && !strings.Contains(name, "Fran") {
					name = ""
				}
				gotStreams = append(gotStreams, stream{s.CodecType, s.Tags.Language, name, s.Disposition.Default})
			}
			if !slices.Equal(gotStreams, want) {
				t.Errorf("output streams:\n got %+v\nwant %+v", gotStreams, want)
			}
			if len(res.Tracks) != 3 || res.Tracks[2].FirstStream != 2 || res.Tracks[2].Expected < 3.9 {
				t.Errorf("Result.Tracks: %+v", res.Tracks)
			}
			if res.Segments != len(video)+len(en)+len(fr) {
				t.Errorf("Result.Segments: got %d, want %d", res.Segments, len(video)+len(en)+len(fr))
			}
		})
	}
}

// TestMuxHole: a video segment left out is a hole the scanner sees (and the listed duration disagrees), unless
// the caller allowed it.
func TestMuxHole(t *testing.T) {
	for _, fmp4 := range []bool{false, true} {
		t.Run(map[bool]string{false: "mpegts", true: "fmp4"}[fmp4], func(t *testing.T) {
			dir := t.TempDir()
			vInit, video := makeSegments(t, dir, "video", sectionSpec{seconds: 6, width: 320, height: 180}, fmp4)
			aInit, audio := makeSegments(t, dir, "audio", sectionSpec{seconds: 6, rate: 48000, channels: 2, freq: 440}, fmp4)
			holed := slices.Delete(slices.Clone(video), 3, 4)
			for _, allow := range []bool{false, true} {
				srcs := []muxSource{
					{MuxTrack{Kind: KindVideo, Init: vInit, Expected: 6}, holed},
					{MuxTrack{Kind: KindAudio, Init: aInit, Expected: 6}, audio},
				}
				out := filepath.Join(dir, "out.mp4")
				m := startMux(t, context.Background(), out, srcs)
				if allow {
					// The recorder says so before Close, once it knows which segments failed.
					srcs[0].track.Expected = 0
				}
				errs := make([]error, 2)
				var wg sync.WaitGroup
				for i, s := range srcs {
					wg.Go(func() {
						in := m.Input(i)
						for _, p := range s.segs {
							if errs[i] = in.Append(p); errs[i] != nil {
								break
							}
						}
						if allow && i == 0 {
							in.AllowGaps()
						}
						if err := in.Close(); errs[i] == nil {
							errs[i] = err
						}
					})
				}
				wg.Wait()
				if errs[0] != nil || errs[1] != nil {
					t.Fatalf("inputs: %v", errs)
				}
				_, err := m.Finish()
				if allow {
					if err != nil {
						t.Fatalf("allowed hole: Finish: %v", err)
					}
					os.Remove(out)
					continue
				}
				t.Logf("hole: %v", err)
				if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "track 0 (video)") {
					t.Fatalf("hole: Finish: got %v, want ErrVerify naming track 0", err)
				}
				if _, serr := os.Stat(out + PartialSuffix); serr != nil {
					t.Errorf("the failed output was not kept for inspection: %v", serr)
				}
				os.Remove(out + PartialSuffix)
			}
		})
	}
}

// TestMuxAbort: an input waiting for the others (ffmpeg has not started) or blocked on its pipe returns when
// the mux is aborted, cancelled, or another input closes empty, and nothing is left behind.
func TestMuxAbort(t *testing.T) {
	dir := t.TempDir()
	_, video := makeSegments(t, dir, "video", sectionSpec{seconds: 2, width: 320, height: 180}, false)
	_, audio := makeSegments(t, dir, "audio", sectionSpec{seconds: 2, rate: 48000, channels: 2, freq: 440}, false)
	tracks := []muxSource{{MuxTrack{Kind: KindVideo}, video}, {MuxTrack{Kind: KindAudio}, audio}}
	out := filepath.Join(dir, "out.mp4")

	waitErr := func(t *testing.T, ch <-chan error) error {
		t.Helper()
		select {
		case err := <-ch:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Append still blocked")
			return nil
		}
	}
	appendFirst := func(m *Mux) <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- m.Input(0).Append(video[0]) }()
		return ch
	}

	t.Run("abort", func(t *testing.T) {
		m := startMux(t, context.Background(), out, tracks)
		ch := appendFirst(m)
		time.Sleep(50 * time.Millisecond) // not synchronisation: the Abort must work either way
		m.Abort()
		if err := waitErr(t, ch); !errors.Is(err, ErrAborted) {
			t.Errorf("Append: got %v, want ErrAborted", err)
		}
		if _, err := m.Finish(); err == nil {
			t.Error("Finish after Abort succeeded")
		}
		checkNoLeftovers(t, out, false)
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		m := startMux(t, ctx, out, tracks)
		ch := appendFirst(m)
		cancel()
		if err := waitErr(t, ch); !errors.Is(err, context.Canceled) {
			t.Errorf("Append: got %v, want context.Canceled", err)
		}
		m.Abort()
		checkNoLeftovers(t, out, false)
	})
	t.Run("empty input", func(t *testing.T) {
		m := startMux(t, context.Background(), out, tracks)
		ch := appendFirst(m)
		if err := m.Input(1).Close(); err == nil || !strings.Contains(err.Error(), "no segments") {
			t.Errorf("Close of an empty input: got %v", err)
		}
		if err := waitErr(t, ch); err == nil || !strings.Contains(err.Error(), "no segments") {
			t.Errorf("Append: got %v, want the empty track's error", err)
		}
		checkNoLeftovers(t, out, false)
	})
	t.Run("abort while running", func(t *testing.T) {
		m := startMux(t, context.Background(), out, tracks)
		audioDone := make(chan error, 1)
		go func() { audioDone <- m.Input(1).Append(audio[0]) }()
		videoDone := make(chan error, 1)
		go func() {
			// More than ffmpeg holds: the input blocks on its pipe once the other input lags far enough.
			for n := 0; ; n++ {
				if err := m.Input(0).Append(video[n%len(video)]); err != nil {
					videoDone <- err
					return
				}
			}
		}()
		if err := waitErr(t, audioDone); err != nil {
			t.Fatalf("audio Append: %v", err)
		}
		m.Abort()
		if err := waitErr(t, videoDone); !errors.Is(err, ErrAborted) {
			t.Errorf("video Append: got %v, want ErrAborted", err)
		}
		checkNoLeftovers(t, out, false)
	})
}

// TestMuxPrepare: ffmpeg starts once every input is prepared, before any segment is appended: from the first
// packets of an MPEG-TS segment, from the init segment of an fMP4 track. A head that says nothing (not
// media, or cut before the PMT) leaves the input to its first Append, and a Prepare after that Append has
// begun is ignored. The output is the same either way.
func TestMuxPrepare(t *testing.T) {
	dir := t.TempDir()
	_, video := makeSegments(t, dir, "video", sectionSpec{seconds: 3, width: 320, height: 180}, false)
	enInit, en := makeSegments(t, dir, "en", sectionSpec{seconds: 3, rate: 48000, channels: 2, freq: 440}, true)
	_, fr := makeSegments(t, dir, "fr", sectionSpec{seconds: 3, rate: 48000, channels: 2, freq: 660}, false)
	srcs := []muxSource{
		{MuxTrack{Kind: KindVideo, Expected: 3}, video},
		{MuxTrack{Kind: KindAudio, Language: "en", Init: enInit, Expected: 3}, en},
		{MuxTrack{Kind: KindAudio, Language: "fr", Expected: 3}, fr},
	}
	head := func(path string, n int) []byte {
		b, err := readHead(path, n)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	started := func(m *Mux) bool {
		select {
		case <-m.started:
			return true
		default:
			return false
		}
	}

	t.Run("all prepared", func(t *testing.T) {
		m := startMux(t, context.Background(), filepath.Join(dir, "prepared.mp4"), srcs)
		m.Input(0).Prepare(head(video[0], 4096))
		m.Input(1).Prepare(nil)
		if started(m) {
			t.Fatal("ffmpeg started before the last input was prepared")
		}
		m.Input(2).Prepare([]byte("<!doctype html>")) // says nothing
		m.Input(2).Prepare(head(fr[0], 100))          // cut inside the first packets
		if started(m) {
			t.Fatal("ffmpeg started on a head that does not tell the streams")
		}
		m.Input(2).Prepare(head(fr[0], 4096))
		if !started(m) {
			t.Fatal("ffmpeg did not start when every input was prepared")
		}
		m.Input(2).Prepare(head(fr[0], 4096)) // twice: ignored
		for i, err := range feedMux(m, srcs) {
			if err != nil {
				t.Fatalf("input %d: %v", i, err)
			}
		}
		if _, err := m.Finish(); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		if got := probeStreams(t, filepath.Join(dir, "prepared.mp4")); len(got.streams) != 3 {
			t.Errorf("output has %d streams, want 3", len(got.streams))
		}
	})

	t.Run("one left to its first Append", func(t *testing.T) {
		out := filepath.Join(dir, "mixed.mp4")
		m := startMux(t, context.Background(), out, srcs)
		m.Input(0).Prepare(head(video[0], 4096))
		m.Input(1).Prepare(nil)
		errs := make(chan error, 1)
		go func() {
			in := m.Input(2)
			for _, p := range fr {
				if err := in.Append(p); err != nil {
					errs <- err
					return
				}
			}
			errs <- in.Close()
		}()
		select {
		case <-m.started:
		case <-time.After(10 * time.Second):
			t.Fatal("ffmpeg did not start on the third input's first Append")
		}
		m.Input(2).Prepare(head(fr[0], 4096)) // too late: ignored
		for i, s := range srcs[:2] {
			for _, p := range s.segs {
				if err := m.Input(i).Append(p); err != nil {
					t.Fatalf("input %d: %v", i, err)
				}
			}
			if err := m.Input(i).Close(); err != nil {
				t.Fatalf("input %d: %v", i, err)
			}
		}
		if err := <-errs; err != nil {
			t.Fatalf("input 2: %v", err)
		}
		if _, err := m.Finish(); err != nil {
			t.Fatalf("Finish: %v", err)
		}
	})
}
