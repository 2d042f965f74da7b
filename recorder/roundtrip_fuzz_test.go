package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/streamsnatcher/streamsnatcher/plan"
	"net/url"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/playlist"
)

// FuzzPlaylistSessionRoundTrip: whatever playlist the capture turns into a
// session (playlist.Parse, then useMedia, as onPlaylist does) is a session
// DecodeSession accepts: the process can always read back what it writes.
func FuzzPlaylistSessionRoundTrip(f *testing.F) {
	for _, s := range []string{
		"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:9223372036854775807\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n",
		fmt.Sprintf("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:%d\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n", int64(playlist.MaxMediaSequence)),
		"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-KEY:METHOD=AES-128,URI=\"k.key\",IV=0x01\n#EXTINF:4,\na.ts\n",
		"#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4,\na.m4s\n#EXTINF:4,\nb.m4s\n#EXT-X-ENDLIST\n",
		"#EXTM3U\n#EXTINF:4,\nhttps://other.example/%2e%2e/a.ts?token=x\n",
		"#EXTM3U\n#EXTINF:4,\na.ts/../../b\n",
	} {
		f.Add([]byte(s))
	}
	base, _ := url.Parse("https://cdn.example/v/index.m3u8")
	f.Fuzz(func(t *testing.T, data []byte) {
		pl, err := playlist.Parse(data, base)
		if err != nil || pl.Media == nil {
			return
		}
		s := &Session{ID: "20261125-184100-3fa9c2", Source: "watch", State: StateNew, Input: base.String()}
		p, err := plan.FromMedia(pl.Media, base.String(), "video", plan.Video)
		if err != nil {
			return
		}
		s.AddTrack(NewListTrack(p))
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeSession(enc); err != nil {
			t.Fatalf("a session made from an accepted playlist does not read back: %v\nplaylist %q", err, data)
		}
	})
}

// The hostile playlist of issue 10 (media sequence 9223372036854775807) is
// refused where it enters: no session is written that the dashboard and
// replay would then refuse to read.
func TestCaptureRefusesOverflowingMediaSequence(t *testing.T) {
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, st, CaptureOptions{Run: fastOpts()})
	browse(t, c, "https://cdn.example/v/index.m3u8",
		[]byte("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:9223372036854775807\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n#EXT-X-ENDLIST\n"), nil)
	list, err := st.List()
	if err != nil || len(list) != 0 {
		t.Fatalf("sessions after a hostile playlist: %d (%v), want none and no unreadable one", len(list), err)
	}
}

// Save refuses what DecodeSession would refuse, so a bad session never lands on disk.
func TestSaveRefusesWhatLoadRefuses(t *testing.T) {
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := listedURLs(&Session{Source: "get"}, "https://x/a.ts")
	s.Main().Segments[0].Sequence = -1
	if err := st.Create(s); err == nil {
		t.Fatalf("Create saved a session with media sequence -1")
	}
	if list, err := st.List(); len(list) != 0 || err != nil {
		t.Errorf("after a refused Create: %d sessions, %v; want nothing left", len(list), err)
	}
}
