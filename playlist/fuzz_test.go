package playlist

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; every error is a *ParseError; a parsed media
// playlist has absolute segment URIs (key URIs may be data: or skd: URIs, so
// absolute means having a scheme), finite non-negative durations and
// consecutive sequence numbers; a parsed master has absolute variant URIs.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.m3u8"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("#EXTM3U\n#EXTINF:1,\n#EXT-X-BYTERANGE:10\na\n#EXTINF:1,\n#EXT-X-BYTERANGE:10\na\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=\"1x2\"\n//h/x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pl, err := Parse(data, base)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("Parse: error %v is %T, want *ParseError", err, err)
			}
			return
		}
		if (pl.Master == nil) == (pl.Media == nil) {
			t.Fatalf("Parse: got %+v, want exactly one of Master and Media", pl)
		}
		absolute := func(what, s string) {
			u, err := url.Parse(s)
			if err != nil || !u.IsAbs() {
				t.Fatalf("Parse: %s %q is not an absolute url", what, s)
			}
		}
		if m := pl.Master; m != nil {
			for _, v := range m.Variants {
				absolute("variant uri", v.URI)
			}
			if len(m.Variants) > 0 {
				if _, err := m.Pick("0"); err != nil {
					t.Fatalf("Pick(0): %v", err)
				}
				if m.Best() == nil {
					t.Fatalf("Best(): nil with %d variants", len(m.Variants))
				}
			}
			return
		}
		m := pl.Media
		for i, s := range m.Segments {
			absolute("segment uri", s.URI)
			if s.Duration < 0 || math.IsInf(s.Duration, 0) || math.IsNaN(s.Duration) {
				t.Fatalf("Parse: segment %d duration %v", i, s.Duration)
			}
			if s.Sequence != m.MediaSequence+int64(i) {
				t.Fatalf("Parse: segment %d sequence %d, want %d", i, s.Sequence, m.MediaSequence+int64(i))
			}
			if s.ByteRange != nil && (s.ByteRange.Length < 0 || s.ByteRange.Offset < 0) {
				t.Fatalf("Parse: segment %d byte range %+v", i, *s.ByteRange)
			}
			if s.Key != nil {
				absolute("key uri", s.Key.URI)
			}
		}
		if d := m.TotalDuration(); d < 0 || math.IsNaN(d) {
			t.Fatalf("TotalDuration() = %v", d)
		}
	})
}

// encode writes m as a media playlist, every byte range and key explicit.
func encode(m *Media) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n", m.TargetDuration, m.MediaSequence)
	var key *Key
	for _, s := range m.Segments {
		if s.Discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if s.Key != key {
			if s.Key == nil {
				b.WriteString("#EXT-X-KEY:METHOD=NONE\n")
			} else {
				fmt.Fprintf(&b, "#EXT-X-KEY:METHOD=%s,URI=%q", s.Key.Method, s.Key.URI)
				if s.Key.IV != "" {
					fmt.Fprintf(&b, ",IV=%s", s.Key.IV)
				}
				b.WriteString("\n")
			}
			key = s.Key
		}
		fmt.Fprintf(&b, "#EXTINF:%s,%s\n", strconv.FormatFloat(s.Duration, 'g', -1, 64), s.Title)
		if r := s.ByteRange; r != nil {
			fmt.Fprintf(&b, "#EXT-X-BYTERANGE:%d@%d\n", r.Length, r.Offset)
		}
		b.WriteString(s.URI + "\n")
	}
	if m.EndList {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// FuzzRoundTrip generates a media playlist from the fuzzer's numbers,
// serialises it and checks that Parse gives back the same segment list.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint16(3), uint32(0), "seg_", uint8(0), uint64(4000), true)
	f.Add(uint16(200), uint32(7794), "media-", uint8(0xff), uint64(9009), false)
	f.Add(uint16(0), uint32(1), "", uint8(0x5a), uint64(0), true)
	f.Fuzz(func(t *testing.T, n uint16, seq uint32, name string, flags uint8, millis uint64, end bool) {
		name = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
				return r
			}
			return 'x'
		}, name)
		if len(name) > 30 {
			name = name[:30]
		}
		keys := []*Key{
			nil,
			{Method: "AES-128", URI: "https://keys.example.com/k1?a=1,b=2", IV: "0x0000000000000000000000000000ABCD"},
			{Method: "SAMPLE-AES", URI: "https://cdn.example.com/hls/k2.bin"},
		}
		want := &Media{TargetDuration: 10, MediaSequence: int64(seq), EndList: end}
		var off int64
		for i := 0; i < int(n%500); i++ {
			bit := func(k uint) bool { return flags>>((uint(i)+k)%8)&1 == 1 }
			s := Segment{
				URI:      fmt.Sprintf("https://cdn.example.com/hls/v1/%s%d.ts", name, i),
				Duration: float64((millis+uint64(i)*7919)%20000) / 1000,
				Sequence: int64(seq) + int64(i),
			}
			if bit(0) {
				s.Title = "t, x" + name // commas belong to the title; trailing blanks would not survive
			}
			s.Discontinuity = bit(1)
			s.Key = keys[(int(flags)+i/4)%len(keys)]
			if bit(2) {
				s.URI = "https://cdn.example.com/hls/v1/all.ts"
				s.ByteRange = &ByteRange{Length: int64(1000 + i), Offset: off}
				off += int64(1000 + i)
			}
			want.Segments = append(want.Segments, s)
		}
		pl, err := Parse(encode(want), mustURL("https://elsewhere.example.com/p.m3u8"))
		if err != nil {
			t.Fatalf("Parse(encode(m)): %v\n%s", err, encode(want))
		}
		if pl.Media == nil {
			t.Fatalf("Parse(encode(m)): got master, want media")
		}
		got := pl.Media
		if len(got.Segments) == 0 && len(want.Segments) == 0 {
			got.Segments = nil
		}
		if !reflect.DeepEqual(got.Segments, want.Segments) {
			t.Fatalf("Parse(encode(m)) segments: got %s\nwant %s", segs(got.Segments), segs(want.Segments))
		}
		if got.MediaSequence != want.MediaSequence || got.EndList != want.EndList || got.TargetDuration != 10 {
			t.Fatalf("Parse(encode(m)): got %+v, want %+v", got, want)
		}
	})
}
