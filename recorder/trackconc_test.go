package recorder

import (
	"testing"

	"github.com/streamsnatcher/streamsnatcher/plan"
)

func TestTrackConcurrency(t *testing.T) {
	video := &Track{Track: plan.Track{ID: "video", Kind: plan.Video}}
	audio := &Track{Track: plan.Track{ID: "audio-en", Kind: plan.Audio}}
	subs := &Track{Track: plan.Track{ID: "subtitles-en", Kind: plan.Subtitles}}
	tests := []struct {
		name          string
		total, tracks int
		t             *Track
		want          int
	}{
		{name: "one track has them all", total: 32, tracks: 1, t: audio, want: 32},
		{name: "video of two", total: 32, tracks: 2, t: video, want: 32},
		{name: "audio of two, default", total: 32, tracks: 2, t: audio, want: 8},
		{name: "subtitles of three", total: 32, tracks: 3, t: subs, want: 8},
		{name: "audio, a quarter just above the floor", total: 12, tracks: 2, t: audio, want: 3},
		{name: "audio, a quarter at the floor", total: 8, tracks: 2, t: audio, want: 2},
		{name: "audio, a quarter below the floor", total: 4, tracks: 2, t: audio, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := trackConcurrency(tt.total, tt.t, tt.tracks); got != tt.want {
				t.Errorf("trackConcurrency(%d, %s, %d): got %d, want %d", tt.total, tt.t.Kind, tt.tracks, got, tt.want)
			}
		})
	}
}
