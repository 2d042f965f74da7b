package recorder

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeSession: DecodeSession never panics, and whatever it accepts
// survives a round trip (encoding the session and decoding it again gives the
// same session) and can be used: Indices and URL do not panic or run away, and
// an encrypted one has a valid IV for its indices.
func FuzzDecodeSession(f *testing.F) {
	seeds := []string{
		`{"id":"20261125-184100-3fa9c2","source":"get","ext":".ts","first":0,"last":7,"end_known":true,"state":"new",
		  "template":{"parts":[{"lit":"https://cdn.example.com/v/seg_"},{"field":{"width":5,"mul":1,"add":0}},{"lit":".ts?token=T"}],"step":1,"first":0,"last":7}}`,
		`{"id":"a","source":"har","segments":["https://x/a.ts","https://x/b.ts"],"durations":[4,4],"first":0,"last":1,"end_known":true,"ext":".ts"}`,
		`{"id":"b","playlist_url":"https://x/index.m3u8","headers":{"Cookie":"s=1","Referer":"https://x/"},"state":"paused"}`,
		`{"id":"c","template":{"parts":[{"lit":"https://x/"},{"field":{"width":3}}],"step":2},"first":4,"last":40,"end_known":true,"missing":[6,8],"gaps":[]}`,
		`{"id":"..","playlist_url":"x"}`,
		`{"id":"d","template":{"parts":[]}}`,
		`{"id":"e","template":{"parts":[{"field":{"width":1000000000}}]},"first":0,"last":0,"end_known":true}`,
		`{"id":"f","template":{"parts":[{"field":{}}],"step":1},"first":9223372036854775806,"last":9223372036854775807,"end_known":true}`,
		`{"id":"g","segments":["u"],"first":0,"last":5,"end_known":true}`,
		`{}`, `null`, `[]`, `{"id":"h","ext":"../x","playlist_url":"p"}`,
		`{"id":"k","segments":["https://x/a.ts","https://x/b.ts"],"first":0,"last":1,"end_known":true,"media_sequence":7,
		  "key":{"method":"AES-128","uri":"https://x/k.key","iv":"0x0102"}}`,
		`{"id":"l","segments":["a","b"],"first":0,"last":1,"end_known":true,"key":{"method":"AES-128","uri":"k"},"ivs":["0x1",""]}`,
		`{"id":"m","segments":["a"],"key":{"method":"SAMPLE-AES","uri":"k"}}`,
		`{"id":"n","segments":["a"],"key":{"method":"AES-128","uri":"k","iv":"0xZZ"}}`,
		`{"id":"o","segments":["a","b"],"key":{"method":"AES-128","uri":"k"},"ivs":["0x1"]}`,
		`{"id":"p","segments":["a"],"media_sequence":-1}`,
		`{"version":2,"id":"q","state":"new","tracks":[{"id":"video","kind":"video","ext":".ts","first":0,"last":1,"end_known":true,
		  "segments":[{"url":"https://x/a.ts","dur":4},{"url":"https://x/b.ts","dur":4,"seq":1,"section":1,"gap":true}]},
		  {"id":"audio-en","kind":"audio","language":"en","ext":".m4s","first":0,"last":0,"end_known":true,
		  "inits":[{"url":"https://x/init.mp4","range":{"offset":0,"length":700}}],
		  "segments":[{"url":"https://x/a.m4s","dur":4,"init":1,"range":{"offset":700,"length":1000}}]}]}`,
		`{"version":2,"id":"r","playlist":"https://x/master.m3u8","audio":"all"}`,
		`{"version":2,"id":"s","tracks":[{"id":"video","kind":"video","keys":[{"method":"AES-128","uri":"k"}],"first":0,"last":0,"end_known":true,
		  "segments":[{"url":"a","key":1,"iv":"0x1","seq":9223372036854775807}]}]}`,
		`{"version":3,"id":"t"}`,
		`{"version":2,"id":"u","tracks":[{"id":"video","kind":"video"},{"id":"video","kind":"audio"}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSession(data)
		if err != nil {
			return
		}
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("Marshal(DecodeSession(%q)): %v", data, err)
		}
		s2, err := DecodeSession(enc)
		if err != nil {
			t.Fatalf("DecodeSession(Marshal(s)) = %v; encoded %s", err, enc)
		}
		enc2, err := json.Marshal(s2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the session:\n first %s\nsecond %s", enc, enc2)
		}
		for _, tr := range s.Tracks {
			idx := tr.Indices()
			if tr.EndKnown && len(idx) != tr.Total() {
				t.Fatalf("Indices() has %d entries, Total() %d", len(idx), tr.Total())
			}
			for k, i := range idx {
				if k > 0 && i <= idx[k-1] {
					t.Fatalf("Indices() not increasing at %d: %d after %d", k, i, idx[k-1])
				}
				if k < 4 || k >= len(idx)-4 {
					_ = tr.URL(i)
					_ = tr.SegmentPath(i)
					// An accepted encrypted segment has a usable IV.
					if tr.KeyOf(i) != nil {
						if _, err := tr.IV(i); err != nil {
							t.Fatalf("accepted session: IV(%d): %v", i, err)
						}
					}
				}
			}
			_ = tr.URL(tr.First)
			_ = tr.URL(tr.Last)
		}
	})
}
