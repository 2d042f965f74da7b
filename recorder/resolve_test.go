package recorder

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestResolveSessionRenditions: a master playlist's variant and its audio
// renditions (fetched side by side) become tracks in playlist order; a
// playlist that fails is named in the error.
func TestResolveSessionRenditions(t *testing.T) {
	const master = `#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=YES,URI="en/index.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Français",LANGUAGE="fr",URI="fr/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2000000,AUDIO="aud"
video/index.m3u8
`
	media := func(n int) string {
		var b strings.Builder
		b.WriteString("#EXTM3U\n#EXT-X-TARGETDURATION:4\n")
		for i := range n {
			fmt.Fprintf(&b, "#EXTINF:4,\nseg_%d.ts\n", i)
		}
		return b.String() + "#EXT-X-ENDLIST\n"
	}
	tests := []struct {
		name    string
		missing string // a playlist path answering 404
		wantIDs []string
		wantErr string
	}{
		{name: "all renditions", wantIDs: []string{"video", "audio-en", "audio-fr"}},
		{name: "second rendition missing", missing: "/fr/index.m3u8", wantErr: `audio "fr"`},
		{name: "variant missing", missing: "/video/index.m3u8", wantErr: "/video/index.m3u8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
				switch r.URL.Path {
				case tt.missing:
					http.NotFound(w, r)
				case "/master.m3u8":
					w.Write([]byte(master))
				case "/video/index.m3u8":
					w.Write([]byte(media(3)))
				case "/en/index.m3u8":
					w.Write([]byte(media(4))) // a different length tells the tracks apart
				case "/fr/index.m3u8":
					w.Write([]byte(media(5)))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			s := &Session{Source: "get", Playlist: srv.URL + "/master.m3u8"}
			s.dir = t.TempDir()
			f := &fetcher{client: srv.Client(), maxBytes: 1 << 20}
			err := resolveSession(context.Background(), s, f, MergeOptions{Audio: "all"}, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolveSession: got err %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolveSession: %v", err)
			}
			var ids []string
			var lens []int
			for _, tr := range s.Tracks {
				ids = append(ids, tr.ID)
				lens = append(lens, len(tr.Segments))
			}
			if strings.Join(ids, " ") != strings.Join(tt.wantIDs, " ") || lens[0] != 3 || lens[1] != 4 || lens[2] != 5 {
				t.Errorf("resolveSession: got tracks %v with %v segments, want %v with [3 4 5]", ids, lens, tt.wantIDs)
			}
			if !s.Tracks[1].Default || s.Tracks[2].Default {
				t.Errorf("resolveSession: default audio got en %v, fr %v; want en only", s.Tracks[1].Default, s.Tracks[2].Default)
			}
		})
	}
}
