package merge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

var (
	aacSpec  = testmedia.Spec{Seconds: 6, SegmentSeconds: 1, Format: testmedia.FormatAAC}
	manySpec = testmedia.Spec{Seconds: 2000, SegmentSeconds: 1, Width: 64, Height: 36, FPS: 5, SampleRate: 8000}
)

// checkMerged asserts what every successful merge must satisfy: the output holds exactly the source's packets,
// lasts as long as the source, and nothing partial is left.
func checkMerged(t *testing.T, res *Result, m *testmedia.Media, out string) {
	t.Helper()
	if res.Output != out {
		t.Errorf("Result.Output = %s, want %s", res.Output, out)
	}
	v, a, err := testmedia.CountPackets(context.Background(), out)
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	if v != m.VideoPackets || a != m.AudioPackets {
		t.Errorf("output packets: got video %d audio %d, want the source's video %d audio %d",
			v, a, m.VideoPackets, m.AudioPackets)
	}
	// The output ends with the last audio frame, up to one frame (128 ms at 8 kHz) past the playlist's sum.
	if math.Abs(res.Duration-m.TotalSeconds) > 0.2 {
		t.Errorf("Result.Duration = %.3f, want %.3f", res.Duration, m.TotalSeconds)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != fi.Size() {
		t.Errorf("Result.Bytes = %d, file has %d", res.Bytes, fi.Size())
	}
	if _, err := os.Stat(out + PartialSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial output left behind: %v", err)
	}
}

func TestFiles(t *testing.T) {
	tests := []struct {
		name         string
		spec         testmedia.Spec
		initOption   bool    // pass the init segment as Options.Init (else as the first path, if any)
		wantExpected float64 // -1: about the source's length
	}{
		{name: "ts", spec: testmedia.Small, wantExpected: -1},
		{name: "fmp4 init option", spec: testmedia.SmallFMP4, initOption: true, wantExpected: -1},
		{name: "fmp4 init as first path", spec: testmedia.SmallFMP4, wantExpected: -1},
		{name: "adts audio has no timestamps to derive from", spec: aacSpec, wantExpected: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testmedia.ForTest(t, tt.spec)
			out := filepath.Join(t.TempDir(), "out.mp4")
			opts := Options{Output: out}
			paths := m.Segments
			if m.Init != "" {
				if tt.initOption {
					opts.Init = m.Init
				} else {
					paths = append([]string{m.Init}, paths...)
				}
			}
			res, err := Files(context.Background(), paths, opts)
			if err != nil {
				t.Fatalf("Files: %v", err)
			}
			checkMerged(t, res, m, out)
			if res.Segments != len(paths) {
				t.Errorf("Result.Segments = %d, want %d", res.Segments, len(paths))
			}
			want := tt.wantExpected
			if want < 0 {
				want = m.TotalSeconds
			}
			if math.Abs(res.Expected-want) > 0.1 {
				t.Errorf("Result.Expected = %.3f, want %.3f", res.Expected, want)
			}
		})
	}
}

// TestAppendIncrementally merges segments handed over one at a time, the way downloads complete, with the
// expected duration given, and overwrites an existing output.
func TestAppendIncrementally(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	out := filepath.Join(t.TempDir(), "out.mp4")
	os.WriteFile(out, []byte("old"), 0o644)
	mg, err := Start(context.Background(), Options{Output: out, ExpectedDuration: m.TotalSeconds})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range m.Segments {
		if err := mg.Append(s); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
	res, err := mg.Finish()
	if err != nil {
		t.Fatal(err)
	}
	checkMerged(t, res, m, out)
	if res.Expected != m.TotalSeconds {
		t.Errorf("Result.Expected = %.3f, want the given %.3f", res.Expected, m.TotalSeconds)
	}
	if err := mg.Append(m.Segments[0]); err == nil {
		t.Error("Append after Finish: got nil error")
	}
	mg.Abort() // must keep the finished output
	if _, err := os.Stat(out); err != nil {
		t.Errorf("Abort after Finish removed the output: %v", err)
	}
}

func hashFiles(t *testing.T, paths []string) []string {
	t.Helper()
	var sums []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		sums = append(sums, string(sum[:]))
	}
	return sums
}

// TestBadInput covers inputs that must not produce an output: each failure must wrap the named error, leave
// no file at Output, and leave every segment file as it was.
func TestBadInput(t *testing.T) {
	garbage := bytes.Repeat([]byte("this is not media\n"), 2000)
	tests := []struct {
		name        string
		corrupt     func(segs []string)
		expected    func(m *testmedia.Media) float64
		wantErr     error // nil: want an *FFmpegError
		wantPartial bool  // verification failures keep the partial output for inspection
	}{
		{
			name:    "garbage middle segment",
			corrupt: func(segs []string) { os.WriteFile(segs[3], garbage, 0o644) },
			wantErr: ErrVerify, wantPartial: true,
		},
		{
			name: "missing middle segment",
			corrupt: func(segs []string) {
				os.WriteFile(segs[4], nil, 0o644)
			},
			wantErr: ErrVerify, wantPartial: true,
		},
		{
			name:    "truncated middle segment",
			corrupt: func(segs []string) { os.Truncate(segs[2], 20*188) },
			wantErr: ErrVerify, wantPartial: true,
		},
		{
			name:     "shorter than the playlist says",
			corrupt:  func(segs []string) {},
			expected: func(m *testmedia.Media) float64 { return m.TotalSeconds + 3 },
			wantErr:  ErrVerify, wantPartial: true,
		},
		{
			name:    "garbage first segment",
			corrupt: func(segs []string) { os.WriteFile(segs[0], garbage, 0o644) },
		},
		{
			name:    "no media at all",
			corrupt: func(segs []string) { os.WriteFile(segs[0], garbage, 0o644) },
		},
	}
	m := testmedia.ForTest(t, testmedia.Small)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			segs, _, err := m.CopyTo(dir)
			if err != nil {
				t.Fatal(err)
			}
			tt.corrupt(segs)
			if tt.name == "no media at all" {
				segs = segs[:1]
			}
			before := hashFiles(t, segs)
			out := filepath.Join(dir, "out.mp4")
			opts := Options{Output: out}
			if tt.expected != nil {
				opts.ExpectedDuration = tt.expected(m)
			}
			_, err = Files(context.Background(), segs, opts)
			if tt.wantErr == nil {
				var fe *FFmpegError
				if !errors.As(err, &fe) {
					t.Fatalf("Files: got %v, want an *FFmpegError", err)
				}
				if !strings.HasPrefix(fe.Error(), "ffmpeg failed (exit 1): ") || strings.Contains(fe.Error(), "\n") {
					t.Errorf("FFmpegError = %q, want one line starting %q", fe.Error(), "ffmpeg failed (exit 1): ")
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Files: got %v, want %v", err, tt.wantErr)
			}
			t.Logf("error: %v", err)
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output exists after a failed merge: %v", err)
			}
			_, perr := os.Stat(out + PartialSuffix)
			if gotPartial := perr == nil; gotPartial != tt.wantPartial {
				t.Errorf("partial output kept: %v, want %v", gotPartial, tt.wantPartial)
			}
			if tt.wantPartial && !strings.Contains(err.Error(), out+PartialSuffix) {
				t.Errorf("error %q does not say where the partial output is", err)
			}
			if after := hashFiles(t, segs); !slicesEqual(before, after) {
				t.Error("segment files changed")
			}
		})
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNoFFmpeg(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-ffmpeg")
	tests := []struct {
		name string
		opts Options
	}{
		{name: "ffmpeg", opts: Options{FFmpeg: missing}},
		{name: "ffprobe", opts: Options{FFprobe: missing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Output = filepath.Join(t.TempDir(), "out.mp4")
			_, err := Start(context.Background(), tt.opts)
			if !errors.Is(err, ErrNoFFmpeg) {
				t.Fatalf("Start: got %v, want ErrNoFFmpeg", err)
			}
			if !strings.Contains(err.Error(), missing) {
				t.Errorf("error %q does not name %s", err, missing)
			}
		})
	}
	t.Run("PATH", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		if _, err := Start(context.Background(), Options{Output: filepath.Join(t.TempDir(), "x.mp4")}); !errors.Is(err, ErrNoFFmpeg) {
			t.Errorf("Start with empty PATH: got %v, want ErrNoFFmpeg", err)
		}
	})
}

func TestOutputDir(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o644)
	// root may write anywhere chmod forbids; /proc refuses new files even to root.
	readOnly := filepath.Join(base, "ro")
	os.Mkdir(readOnly, 0o500)
	if os.Geteuid() == 0 {
		readOnly = "/proc"
	}
	tests := []struct {
		name, dir, want string
	}{
		{name: "missing", dir: filepath.Join(base, "nope"), want: "no such file"},
		{name: "not a directory", dir: file, want: "not a directory"},
		{name: "not writable", dir: readOnly, want: "not writable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(tt.dir, "out.mp4")
			_, err := Start(context.Background(), Options{Output: out})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.dir) {
				t.Errorf("Start(%s): got %v, want an error naming the directory and saying %q", out, err, tt.want)
			}
			if err := Concat(nil, out); err == nil || !strings.Contains(err.Error(), tt.dir) {
				t.Errorf("Concat(%s): got %v, want an error naming the directory", out, err)
			}
		})
	}
}

func TestAbort(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	out := filepath.Join(t.TempDir(), "out.mp4")
	before := hashFiles(t, m.Segments)
	mg, err := Start(context.Background(), Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Segments {
		if err := mg.Append(s); err != nil {
			t.Fatal(err)
		}
	}
	// Let ffmpeg finish writing, as if Finish were about to verify, so that there is a partial output for
	// Abort to remove (ffmpeg opens it only after probing seconds of input).
	mg.stdin.Close()
	<-mg.done
	if _, err := os.Stat(out + PartialSuffix); err != nil {
		t.Fatalf("no partial output: %v", err)
	}
	mg.Abort()
	mg.Abort() // idempotent
	for _, p := range []string{out, out + PartialSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after Abort: %v", p, err)
		}
	}
	if err := mg.Append(m.Segments[4]); !errors.Is(err, ErrAborted) {
		t.Errorf("Append after Abort: got %v, want ErrAborted", err)
	}
	if _, err := mg.Finish(); !errors.Is(err, ErrAborted) {
		t.Errorf("Finish after Abort: got %v, want ErrAborted", err)
	}
	if after := hashFiles(t, m.Segments); !slicesEqual(before, after) {
		t.Error("Abort changed segment files")
	}
}

func TestCancel(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	out := filepath.Join(t.TempDir(), "out.mp4")
	ctx, cancel := context.WithCancel(context.Background())
	mg, err := Start(ctx, Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if err := mg.Append(m.Segments[0]); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := mg.Finish(); !errors.Is(err, context.Canceled) {
		t.Errorf("Finish after cancel: got %v, want context.Canceled", err)
	}
	for _, p := range []string{out, out + PartialSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after cancel: %v", p, err)
		}
	}
}

func TestFinishWithoutSegments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.mp4")
	mg, err := Start(context.Background(), Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mg.Finish(); err == nil {
		t.Error("Finish with no segments: got nil error")
	}
}

func TestConcat(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.ts")
	if err := Concat(m.Segments, out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range m.Segments {
		want = append(want, m.Bytes(i)...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Concat: output (%d bytes) is not the segments' bytes in order (%d bytes)", len(got), len(want))
	}
	v, a, err := testmedia.CountPackets(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if v != m.VideoPackets || a != m.AudioPackets {
		t.Errorf("concatenated .ts packets: got video %d audio %d, want %d %d", v, a, m.VideoPackets, m.AudioPackets)
	}

	t.Run("missing segment", func(t *testing.T) {
		out := filepath.Join(dir, "broken.ts")
		paths := append(append([]string{}, m.Segments[:2]...), filepath.Join(dir, "missing.ts"))
		err := Concat(paths, out)
		if err == nil || !strings.Contains(err.Error(), "segment 2") {
			t.Fatalf("Concat with a missing file: got %v, want an error naming segment 2", err)
		}
		for _, p := range []string{out, out + PartialSuffix} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists after a failed Concat: %v", p, err)
			}
		}
	})
}

// TestManySegments proves there is no limit on the number of segments (no argv or list file involved).
func TestManySegments(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and merges 2000 segments")
	}
	m := testmedia.ForTest(t, manySpec)
	if len(m.Segments) < 2000 {
		t.Fatalf("spec gave %d segments, want 2000", len(m.Segments))
	}
	out := filepath.Join(t.TempDir(), "out.mp4")
	res, err := Files(context.Background(), m.Segments, Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	checkMerged(t, res, m, out)
}

func TestFindGap(t *testing.T) {
	tests := []struct {
		name    string
		pts     []float64
		wantAt  float64
		wantGap float64
	}{
		{name: "steady", pts: []float64{0, 0.04, 0.08, 0.12, 0.16}, wantGap: 0},
		{name: "out of order (B-frames)", pts: []float64{0.08, 0, 0.04, 0.16, 0.12}, wantGap: 0},
		{name: "one second hole", pts: []float64{0, 0.04, 0.08, 1.08, 1.12}, wantAt: 0.08, wantGap: 1},
		{name: "slow frame rate is not a hole", pts: []float64{0, 1, 2, 3, 4}, wantGap: 0},
		{name: "two intervals", pts: []float64{0, 0.04, 0.08}, wantGap: 0},
		{name: "too few", pts: []float64{0, 5}, wantGap: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, gap := findGap(slices.Clone(tt.pts))
			if math.Abs(at-tt.wantAt) > 1e-9 || math.Abs(gap-tt.wantGap) > 1e-9 {
				t.Errorf("findGap(%v): got %.2f at %.2f, want %.2f at %.2f", tt.pts, gap, at, tt.wantGap, tt.wantAt)
			}
		})
	}
}

func TestFFmpegError(t *testing.T) {
	tests := []struct {
		name      string
		stderr    string
		wantMsg   string
		wantNoSpc bool
	}{
		{name: "last line", stderr: "first\nsecond line\n\n", wantMsg: "ffmpeg failed (exit 1): second line"},
		{name: "empty", stderr: "", wantMsg: "ffmpeg failed (exit 1): (no message)"},
		{
			name:    "generic epilogue",
			stderr:  "[mp4 @ 0x1] sample rate not set\nCould not write header: Invalid argument\nError initializing output stream 0:0 -- \n",
			wantMsg: "ffmpeg failed (exit 1): Could not write header: Invalid argument (Error initializing output stream 0:0)",
		},
		{
			name:    "repeat notice skipped",
			stderr:  "pipe:0: Invalid data found when processing input\n    Last message repeated 3 times\n",
			wantMsg: "ffmpeg failed (exit 1): pipe:0: Invalid data found when processing input",
		},
		{name: "disk full", stderr: "out.mp4.partial: No space left on device\n", wantMsg: "ffmpeg failed (exit 1): out.mp4.partial: No space left on device", wantNoSpc: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &FFmpegError{ExitCode: 1, Stderr: tt.stderr}
			if e.Error() != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", e.Error(), tt.wantMsg)
			}
			if got := errors.Is(e, syscall.ENOSPC); got != tt.wantNoSpc {
				t.Errorf("errors.Is(ENOSPC) = %v, want %v", got, tt.wantNoSpc)
			}
		})
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 8}
	tb.Write([]byte("0123456"))
	tb.Write([]byte("789abc"))
	if got := tb.String(); got != "56789abc" {
		t.Errorf("tailBuffer: got %q, want the last 8 bytes %q", got, "56789abc")
	}
}

// TestPackedAudioWithID3 merges HLS packed audio: ADTS segments that each start with an ID3 tag carrying the
// transport stream timestamp, as Apple's segmenter writes them.
func TestPackedAudioWithID3(t *testing.T) {
	m := testmedia.ForTest(t, aacSpec)
	owner := "com.apple.streaming.transportStreamTimestamp\x00"
	frame := "PRIV" + string([]byte{0, 0, 0, byte(len(owner) + 8), 0, 0}) + owner + string(make([]byte, 8))
	tag := "ID3\x04\x00\x00" + string([]byte{0, 0, 0, byte(len(frame))}) + frame
	dir := t.TempDir()
	var paths []string
	for i := range m.Segments {
		p := filepath.Join(dir, filepath.Base(m.Segments[i]))
		if err := os.WriteFile(p, append([]byte(tag), m.Bytes(i)...), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out := filepath.Join(dir, "out.m4a")
	res, err := Files(context.Background(), paths, Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	checkMerged(t, res, m, out)
}
