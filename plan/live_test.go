package plan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/playlist"
)

// window builds a live media playlist listing sequences first..last, with a
// discontinuity tag before each sequence in disc and disc sequence d.
func window(t *testing.T, d, first, last int64, disc map[int64]bool, end bool) *playlist.Media {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", first, d)
	for q := first; q <= last; q++ {
		if disc[q] {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		fmt.Fprintf(&b, "#EXTINF:1.0,\nhttps://cdn.example/s%d.ts\n", q)
	}
	if end {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	pl, err := playlist.Parse([]byte(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	return pl.Media
}

func TestFollow(t *testing.T) {
	tests := []struct {
		name        string
		d           int64
		first, last int64
		disc        map[int64]bool
		end         bool
		wantAdded   int
		wantSkipped int64
		wantSeqs    string // sequences appended, g for a gap
		wantSection int    // of the last segment
		wantReset   bool
	}{
		{name: "unchanged", first: 10, last: 14, wantSeqs: ""},
		{name: "one new", first: 11, last: 15, wantAdded: 1, wantSeqs: "15"},
		{name: "slid by the window's length", first: 15, last: 19, wantAdded: 5, wantSeqs: "15 16 17 18 19"},
		{name: "stalled: one left unseen", first: 16, last: 20, wantAdded: 6, wantSkipped: 1, wantSeqs: "g15 16 17 18 19 20"},
		{name: "ended", first: 12, last: 16, end: true, wantAdded: 2, wantSeqs: "15 16"},
		{name: "discontinuity in view", first: 12, last: 16, disc: map[int64]bool{16: true}, wantAdded: 2, wantSeqs: "15 16", wantSection: 1},
		{name: "discontinuity scrolled out", d: 1, first: 17, last: 19, wantAdded: 5, wantSkipped: 2, wantSeqs: "g15 g16 17 18 19", wantSection: 1},
		{name: "server restarted", first: 0, last: 4, wantReset: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := FromMedia(window(t, 0, 10, 14, nil, false), "https://cdn.example/live.m3u8", "video", Video)
			if err != nil {
				t.Fatal(err)
			}
			up, err := tr.Follow(window(t, tt.d, tt.first, tt.last, tt.disc, tt.end), Position{Seq: 14})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range tr.Segments[5:] {
				if s.Gap {
					got = append(got, fmt.Sprintf("g%d", s.Sequence))
				} else {
					got = append(got, fmt.Sprint(s.Sequence))
				}
			}
			if g := strings.Join(got, " "); g != tt.wantSeqs || up.Added != tt.wantAdded || up.Skipped != tt.wantSkipped ||
				up.Ended != tt.end || up.Reset != tt.wantReset {
				t.Errorf("Follow: got %q added %d skipped %d ended %v reset %v, want %q %d %d %v %v",
					g, up.Added, up.Skipped, up.Ended, up.Reset, tt.wantSeqs, tt.wantAdded, tt.wantSkipped, tt.end, tt.wantReset)
			}
			if s := tr.Segments[len(tr.Segments)-1].Section; s != tt.wantSection {
				t.Errorf("Follow: last section %d, want %d", s, tt.wantSection)
			}
			if err := tr.Check(); err != nil {
				t.Errorf("Follow left a bad plan: %v", err)
			}
		})
	}
}

func TestKeepLast(t *testing.T) {
	tr, err := FromMedia(window(t, 0, 10, 14, map[int64]bool{12: true}, false), "u", "video", Video)
	if err != nil {
		t.Fatal(err)
	}
	tr.KeepLast(3)
	if len(tr.Segments) != 3 || tr.Segments[0].Sequence != 12 || tr.Segments[0].Section != 0 {
		t.Errorf("KeepLast(3): got %+v", tr.Segments)
	}
}
