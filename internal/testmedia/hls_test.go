package testmedia

import (
	"math"
	"testing"
)

// The matrix is what the recorder and CLI matrices trust as the source: check it says what it should.
func TestHLSMatrix(t *testing.T) {
	m := HLSMatrix(t)
	for _, name := range MatrixCases {
		c := m.Cases[name]
		if c.Video == 0 || c.Seconds < 4 {
			t.Errorf("%s: %d video packets over %.3fs, want a few seconds of video", name, c.Video, c.Seconds)
		}
		for lang, n := range c.Audio {
			if n == 0 {
				t.Errorf("%s: no audio packets for %q", name, lang)
			}
		}
	}
	for _, name := range []string{CaseSeparate, CaseSeparateFMP4} {
		if c := m.Cases[name]; len(c.Audio) != 2 || c.Audio["en"] == 0 || c.Audio["fr"] == 0 {
			t.Errorf("%s: audio %v, want en and fr", name, c.Audio)
		}
	}
	if c := m.Cases[CaseDiscDiff]; len(c.Sections) != 2 || c.Sections[0].SampleRate != 44100 || c.Sections[1].SampleRate != 48000 ||
		c.Sections[0].Channels != 1 || c.Sections[1].Channels != 2 {
		t.Errorf("disc-diff: sections %+v, want 44.1 kHz mono then 48 kHz stereo", c.Sections)
	}
	if c := m.Cases[CaseGap]; c.Gap == "" || c.GapVideo == 0 {
		t.Errorf("gap: %+v, want a gap segment with video", c)
	}
}

func TestToneHz(t *testing.T) {
	tests := []struct {
		name string
		hz   float64
	}{
		{name: "440", hz: 440},
		{name: "1000", hz: 1000},
		{name: "silence", hz: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := make([]float32, 48000/2)
			for i := range s {
				s[i] = float32(0.5 * math.Sin(2*math.Pi*tt.hz*float64(i)/48000+0.3))
			}
			if got := ToneHz(s, 48000); math.Abs(got-tt.hz) > 0.001*max(tt.hz, 1) {
				t.Errorf("ToneHz(%.0f Hz sine): got %.3f", tt.hz, got)
			}
		})
	}
}
