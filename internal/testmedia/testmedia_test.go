package testmedia

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestGenerate(t *testing.T) {
	tests := []struct {
		name         string
		spec         Spec
		segments     int
		ext          string
		videoPackets int // exact: Seconds × FPS
		wantInit     bool
	}{
		{name: "ts", spec: Small, segments: 8, ext: ".ts", videoPackets: 200},
		{name: "fmp4", spec: SmallFMP4, segments: 8, ext: ".m4s", videoPackets: 200, wantInit: true},
		{name: "aac", spec: Spec{Seconds: 4, SegmentSeconds: 1, Format: FormatAAC}, segments: 4, ext: ".aac"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ForTest(t, tt.spec)
			// ffmpeg's segmenters may add a tiny tail segment; allow one extra.
			if n := len(m.Segments); n < tt.segments || n > tt.segments+1 {
				t.Errorf("Generate(%+v): got %d segments, want %d", tt.spec, n, tt.segments)
			}
			for i, s := range m.Segments {
				if filepath.Ext(s) != tt.ext {
					t.Errorf("segment %d: got %s, want extension %s", i, s, tt.ext)
				}
				if len(m.Bytes(i)) == 0 {
					t.Errorf("segment %d is empty", i)
				}
			}
			if (m.Init != "") != tt.wantInit {
				t.Errorf("Init = %q, want init segment: %v", m.Init, tt.wantInit)
			}
			if math.Abs(m.TotalSeconds-float64(tt.spec.Seconds)) > 0.1 {
				t.Errorf("TotalSeconds = %.3f, want %d", m.TotalSeconds, tt.spec.Seconds)
			}
			if m.VideoPackets != tt.videoPackets {
				t.Errorf("VideoPackets = %d, want %d", m.VideoPackets, tt.videoPackets)
			}
			// AAC frames hold 1024 samples at 48 kHz; the encoder adds a priming frame or so.
			wantAudio := float64(tt.spec.Seconds) * 48000 / 1024
			if math.Abs(float64(m.AudioPackets)-wantAudio) > 3 {
				t.Errorf("AudioPackets = %d, want about %.0f", m.AudioPackets, wantAudio)
			}
			if _, err := os.Stat(m.Playlist); err != nil {
				t.Errorf("playlist: %v", err)
			}

			again, err := Generate(tt.spec)
			if err != nil {
				t.Fatalf("Generate again: %v", err)
			}
			if again.Dir != m.Dir {
				t.Errorf("Generate again: got dir %s, want the cached %s", again.Dir, m.Dir)
			}
		})
	}
}

func TestCountPacketsAndProbe(t *testing.T) {
	m := ForTest(t, Small)
	ctx := context.Background()
	v, a, err := CountPackets(ctx, m.Segments[0])
	if err != nil {
		t.Fatal(err)
	}
	if v != 25 {
		t.Errorf("CountPackets(first 1 s segment): got %d video packets, want 25", v)
	}
	if a < 40 || a > 50 {
		t.Errorf("CountPackets(first 1 s segment): got %d audio packets, want about 47", a)
	}
	d, err := Probe(ctx, m.Segments[1])
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(d-1) > 0.1 {
		t.Errorf("Probe(1 s segment) = %.3f, want about 1", d)
	}
	if _, err := Probe(ctx, filepath.Join(t.TempDir(), "missing.ts")); err == nil {
		t.Error("Probe(missing file): got nil error")
	}
	garbage := filepath.Join(t.TempDir(), "garbage.ts")
	os.WriteFile(garbage, bytes.Repeat([]byte("not media "), 100), 0o644)
	if _, _, err := CountPackets(ctx, garbage); err == nil {
		t.Error("CountPackets(garbage): got nil error")
	}
}

func TestSpecValidation(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
	}{
		{name: "zero seconds", spec: Spec{}},
		{name: "negative seconds", spec: Spec{Seconds: -1}},
		{name: "unknown format", spec: Spec{Seconds: 1, Format: "avi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Generate(tt.spec); err == nil {
				t.Errorf("Generate(%+v): got nil error", tt.spec)
			}
		})
	}
}

func TestCacheKeyDistinguishesSpecs(t *testing.T) {
	a, _ := Small.normalize()
	b := a
	b.VideoBitrate = "500k"
	if cacheKey(a, "v1") == cacheKey(b, "v1") {
		t.Error("specs differing in VideoBitrate share a cache key")
	}
	if cacheKey(a, "v1") == cacheKey(a, "v2") {
		t.Error("different ffmpeg versions share a cache key")
	}
}

// TestConcurrentProcesses runs two test binaries that generate the same spec into the same empty cache at the
// same time: both must get complete media in the same directory and no build directory may be left behind.
func TestConcurrentProcesses(t *testing.T) {
	if os.Getenv("TESTMEDIA_HELPER") == "1" {
		return
	}
	cache := t.TempDir()
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperGenerate$", "-test.v")
			cmd.Env = append(os.Environ(), "TESTMEDIA_HELPER=1", "XDG_CACHE_HOME="+cache, "HOME="+cache)
			out, err := cmd.CombinedOutput()
			outs[i], errs[i] = string(out), err
		}()
	}
	wg.Wait()
	var dirs []string
	for i := range outs {
		if errs[i] != nil {
			t.Fatalf("helper %d: %v\n%s", i, errs[i], outs[i])
		}
		_, after, ok := strings.Cut(outs[i], "DIR=")
		if !ok {
			t.Fatalf("helper %d printed no DIR=:\n%s", i, outs[i])
		}
		dir, _, _ := strings.Cut(after, "\n")
		dirs = append(dirs, dir)
	}
	if dirs[0] != dirs[1] {
		t.Errorf("helpers used different directories: %s and %s", dirs[0], dirs[1])
	}
	if !strings.HasPrefix(dirs[0], cache) {
		t.Errorf("media dir %s is not under the test cache %s", dirs[0], cache)
	}
	entries, err := os.ReadDir(filepath.Join(cache, "streamsnatcher-testmedia"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 {
		t.Errorf("cache holds %v, want exactly the one media directory", names)
	}
}

func TestHelperGenerate(t *testing.T) {
	if os.Getenv("TESTMEDIA_HELPER") != "1" {
		t.Skip("helper for TestConcurrentProcesses")
	}
	m := ForTest(t, Spec{Seconds: 2, SegmentSeconds: 1, Width: 64, Height: 36, FPS: 10})
	if len(m.Segments) < 2 || m.VideoPackets != 20 {
		t.Fatalf("incomplete media: %d segments, %d video packets", len(m.Segments), m.VideoPackets)
	}
	fmt.Printf("DIR=%s\n", m.Dir)
}
