package testmedia

import (
	"bytes"
	"encoding/binary"
	"math"
	"os/exec"
	"strconv"
	"testing"
)

// CheckCleanDecode decodes every video and audio stream of path and fails the test if ffmpeg reports
// anything (`ffmpeg -v error -i path -f null -` must print nothing).
func CheckCleanDecode(tb testing.TB, path string) {
	tb.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path,
		"-map", "0:v?", "-map", "0:a?", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		tb.Errorf("decoding %s: err %v, ffmpeg says:\n%s", path, err, out)
	}
}

// DominantHz decodes seconds of audio stream k of path from start, as mono float samples at 48 kHz, and
// estimates the frequency of its tone (see ToneHz). It returns 0 for silence.
func DominantHz(tb testing.TB, path string, k int, start, seconds float64) float64 {
	tb.Helper()
	const rate = 48000
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
		"-ss", strconv.FormatFloat(start, 'f', 3, 64), "-t", strconv.FormatFloat(seconds, 'f', 3, 64), "-i", path,
		"-map", "0:a:"+strconv.Itoa(k), "-ac", "1", "-ar", strconv.Itoa(rate), "-f", "f32le", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		tb.Fatalf("decode audio of %s: %v: %s", path, err, stderr.String())
	}
	samples := make([]float32, len(raw)/4)
	if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, samples); err != nil {
		tb.Fatal(err)
	}
	if float64(len(samples)) < rate*seconds*0.9 {
		tb.Fatalf("decoded %d samples from %.3fs of %s, want %.0f", len(samples), start, path, rate*seconds)
	}
	return ToneHz(samples, rate)
}

// ToneHz estimates the frequency of a pure tone from its positive-going zero crossings, interpolated between
// samples; 0 for silence (peak below -40 dBFS).
func ToneHz(samples []float32, rate float64) float64 {
	var peak float64
	for _, s := range samples {
		peak = max(peak, math.Abs(float64(s)))
	}
	if peak < 0.01 {
		return 0
	}
	first, last, n := -1.0, -1.0, 0
	for i := 1; i < len(samples); i++ {
		a, b := float64(samples[i-1]), float64(samples[i])
		if a < 0 && b >= 0 {
			at := float64(i-1) + a/(a-b)
			if first < 0 {
				first = at
			}
			last = at
			n++
		}
	}
	if n < 2 {
		return 0
	}
	return float64(n-1) / ((last - first) / rate)
}
