package merge

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// benchSpec is about 190 MB of 720p MPEG-TS at 2.5 Mbit/s in 150 four-second segments. The first run
// generates it (about a minute); later runs reuse the cache.
var benchSpec = testmedia.Spec{Seconds: 600, SegmentSeconds: 4, Width: 1280, Height: 720, FPS: 25, VideoBitrate: "2500k"}

// BenchmarkFiles720p merges benchSpec end to end and reports how long Finish takes after the last Append
// (ffmpeg draining, verification, fsync, rename): the part a download cannot hide.
func BenchmarkFiles720p(b *testing.B) {
	for _, fast := range []bool{false, true} {
		name := "plain"
		if fast {
			name = "faststart"
		}
		b.Run(name, func(b *testing.B) {
			m := testmedia.ForTest(b, benchSpec)
			dir := b.TempDir()
			var finish time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out := filepath.Join(dir, "out.mp4")
				mg, err := Start(context.Background(), Options{Output: out, FastStart: fast, Logger: benchLogger()})
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range m.Segments {
					if err := mg.Append(s); err != nil {
						b.Fatal(err)
					}
				}
				t0 := time.Now()
				if _, err := mg.Finish(); err != nil {
					b.Fatal(err)
				}
				finish += time.Since(t0)
				os.Remove(out)
			}
			b.ReportMetric(finish.Seconds()/float64(b.N), "finish-s/op")
			b.SetBytes(sumSize(b, m.Segments))
		})
	}
}

func sumSize(b *testing.B, paths []string) int64 {
	var n int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// benchLogger logs debug timings to stderr when STREAMSNATCHER_BENCH_LOG is set.
func benchLogger() *slog.Logger {
	if os.Getenv("STREAMSNATCHER_BENCH_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
