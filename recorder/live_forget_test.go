package recorder

import (
	"testing"

	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/playlist"
)

// A live track forgets what it merged, yet a discontinuity after that still
// starts a new section: an emptied plan would number it from 0 again and
// append it to the unit being merged (section 1 here).
func TestLiveForgetKeepsTheSection(t *testing.T) {
	parse := func(text string) *playlist.Media {
		t.Helper()
		pl, err := playlist.Parse([]byte(text), nil)
		if err != nil || pl.Media == nil {
			t.Fatalf("Parse: %v", err)
		}
		return pl.Media
	}
	first := parse("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:10\n#EXTINF:1,\na.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1,\nb.ts\n#EXTINF:1,\nc.ts\n")
	p, err := plan.FromMedia(first, "https://x/live.m3u8", "video", plan.Video)
	if err != nil {
		t.Fatal(err)
	}
	tr := NewListTrack(p)
	pos := plan.Positions(first)
	tr.Follower = &LiveState{Last: pos[len(pos)-1]}
	s := &Session{Tracks: []*Track{tr}}
	r := &liveRun{s: s, t: tr, o: Options{Progress: NewProgress()}}
	r.forget(2, 3) // every segment merged

	next := parse("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:12\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXTINF:1,\nc.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1,\nd.ts\n")
	up, err := tr.Follow(next, tr.Follower.Last)
	if err != nil || up.Added != 1 {
		t.Fatalf("Follow: added %d, %v; want 1", up.Added, err)
	}
	if got := tr.Segments[len(tr.Segments)-1].Section; got != 2 {
		t.Errorf("the segment after the second discontinuity is in section %d, want 2", got)
	}
}
