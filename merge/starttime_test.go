package merge

import (
	"context"
	"math"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// TestStartTime reads where the segments' clock stands at the start of a merge: ffmpeg's MPEG-TS muxer starts
// at 1.4 s and counts on, so segment k starts about k seconds later; fMP4 needs its init segment.
func TestStartTime(t *testing.T) {
	ts := testmedia.ForTest(t, testmedia.Small)
	fm := testmedia.ForTest(t, testmedia.SmallFMP4)
	tests := []struct {
		name       string
		init, path string
		want       float64
	}{
		{name: "first ts segment", path: ts.Segments[0], want: 1.4},
		{name: "third ts segment", path: ts.Segments[2], want: 3.4},
		{name: "third fmp4 segment after its init", init: fm.Init, path: fm.Segments[2], want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := StartTime(context.Background(), Options{}, tt.init, tt.path)
			if err != nil || math.Abs(got-tt.want) > 0.1 {
				t.Fatalf("StartTime(%s): got %.3f, %v; want %.3f ± 0.1", tt.path, got, err, tt.want)
			}
		})
	}
	if _, err := StartTime(context.Background(), Options{}, "", "/nonexistent/seg.ts"); err == nil {
		t.Errorf("StartTime of a missing file: got nil error")
	}
}
