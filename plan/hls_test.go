package plan

import (
	"errors"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/playlist"
)

// TestFromMediaSubtitles: a subtitle track's segments are stored as .vtt whatever the origin names them, and
// subtitles in fMP4 are refused as unsupported.
func TestFromMediaSubtitles(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		kind    string
		wantExt string
		wantErr error
	}{
		{name: "vtt names", kind: Subtitles, wantExt: ".vtt", text: "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\nsub0.vtt\n#EXT-X-ENDLIST\n"},
		{name: "opaque names", kind: Subtitles, wantExt: ".vtt", text: "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\nsub?n=0\n#EXT-X-ENDLIST\n"},
		{name: "ts names for video stay ts", kind: Video, wantExt: ".ts", text: "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\nseg0.ts\n#EXT-X-ENDLIST\n"},
		{name: "fmp4 subtitles", kind: Subtitles, wantErr: ErrUnsupported,
			text: "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:6,\nsub0.m4s\n#EXT-X-ENDLIST\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := playlist.Parse([]byte(tt.text), nil)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := FromMedia(pl.Media, "https://cdn.example.com/subs.m3u8", "subs-en", tt.kind)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("FromMedia: got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || tr.Ext != tt.wantExt {
				t.Fatalf("FromMedia: got ext %q, %v; want %q", extOf(tr), err, tt.wantExt)
			}
		})
	}
}

func extOf(t *Track) string {
	if t == nil {
		return ""
	}
	return t.Ext
}
