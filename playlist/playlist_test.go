package playlist

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var base = mustURL("https://cdn.example.com/hls/v1/index.m3u8")

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func show(v any) string { return fmt.Sprintf("%+v", v) }

func segs(segments []Segment) string {
	var b strings.Builder
	for _, s := range segments {
		fmt.Fprintf(&b, "\n  {URI:%s Dur:%v Title:%q Seq:%d Disc:%v", s.URI, s.Duration, s.Title, s.Sequence, s.Discontinuity)
		if s.ByteRange != nil {
			fmt.Fprintf(&b, " Range:%+v", *s.ByteRange)
		}
		if s.Key != nil {
			fmt.Fprintf(&b, " Key:%+v", *s.Key)
		}
		if s.Map != nil {
			fmt.Fprintf(&b, " Map:%s", s.Map.URI)
		}
		b.WriteString("}")
	}
	return b.String()
}

func TestParseMedia(t *testing.T) {
	key1 := &Key{Method: "AES-128", URI: "https://keys.example.com/key?id=a,b", IV: "0x00000000000000000000000000001E72"}
	key2 := &Key{Method: "AES-128", URI: "https://cdn.example.com/hls/keys/k2.bin"}
	initMap := &Map{URI: "https://cdn.example.com/hls/v1/init.mp4"}
	rangeMap := &Map{URI: "https://cdn.example.com/hls/v1/main.mp4", ByteRange: &ByteRange{Length: 720}}
	main := "https://cdn.example.com/hls/v1/main.mp4"
	tests := []struct {
		name  string
		file  string
		want  Media
		total float64
	}{
		{
			name: "ffmpeg hls muxer vod",
			file: "ffmpeg_vod.m3u8",
			want: Media{TargetDuration: 4, PlaylistType: "VOD", EndList: true, Segments: []Segment{
				{URI: "https://cdn.example.com/hls/v1/out0.ts", Duration: 4},
				{URI: "https://cdn.example.com/hls/v1/out1.ts", Duration: 4, Sequence: 1},
				{URI: "https://cdn.example.com/hls/v1/out2.ts", Duration: 1.48, Sequence: 2},
			}},
			total: 9.48,
		},
		{
			name: "fmp4 with EXT-X-MAP",
			file: "fmp4_map.m3u8",
			want: Media{TargetDuration: 6, MediaSequence: 1, PlaylistType: "VOD", EndList: true, Map: initMap, Segments: []Segment{
				{URI: "https://cdn.example.com/hls/v1/segment_1.m4s", Duration: 6.006, Sequence: 1, Map: initMap},
				{URI: "https://cdn.example.com/hls/v1/segment_2.m4s", Duration: 6.006, Sequence: 2, Map: initMap},
				{URI: "https://cdn.example.com/hls/v1/segment_3.m4s", Duration: 2.5025, Sequence: 3, Map: initMap},
			}},
			total: 14.5145,
		},
		{
			name: "aes-128 keys, rotation, discontinuity, live",
			file: "aes128_live.m3u8",
			want: Media{TargetDuration: 10, MediaSequence: 7794, Segments: []Segment{
				{URI: "https://cdn.example.com/hls/v1/media_7794.ts", Duration: 10, Sequence: 7794, Key: key1},
				{URI: "https://cdn.example.com/hls/v1/media_7795.ts", Duration: 10, Sequence: 7795, Key: key1},
				{URI: "https://cdn.example.com/hls/v1/media_7796.ts", Duration: 9.5, Title: "Ad break", Sequence: 7796, Key: key2, Discontinuity: true},
				{URI: "https://cdn.example.com/hls/v1/media_7797.ts", Duration: 10, Sequence: 7797},
			}},
			total: 39.5,
		},
		{
			name: "byte ranges with implied offsets",
			file: "byterange.m3u8",
			want: Media{TargetDuration: 10, EndList: true, Map: rangeMap, Segments: []Segment{
				{URI: main, Duration: 10, ByteRange: &ByteRange{75232, 720}, Map: rangeMap},
				{URI: main, Duration: 10, Sequence: 1, ByteRange: &ByteRange{82112, 75952}, Map: rangeMap},
				{URI: main, Duration: 10, Sequence: 2, ByteRange: &ByteRange{69864, 158064}, Map: rangeMap},
				{URI: "https://cdn.example.com/hls/v1/other.mp4", Duration: 10, Sequence: 3, ByteRange: &ByteRange{1000, 0}, Map: rangeMap},
			}},
			total: 40,
		},
		{
			name: "crlf, bom, blank lines, comments, unknown tags, uri forms",
			file: "crlf_bom_uris.m3u8",
			want: Media{TargetDuration: 6, Segments: []Segment{
				{URI: "https://cdn.example.com/abs/seg1.ts", Duration: 5.005, Title: "title, with comma"},
				{URI: "https://cdn2.example.com/seg2.ts", Duration: 5, Sequence: 1},
				{URI: "https://other.example.com/x/seg3.ts?sig=abc", Duration: 5, Sequence: 2},
				{URI: "https://cdn.example.com/up/seg4.ts", Duration: 0, Sequence: 3},
			}},
			total: 15.005,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := Parse(readFile(t, tt.file), base)
			if err != nil {
				t.Fatalf("Parse(%s): got error %v", tt.file, err)
			}
			if pl.Master != nil || pl.Media == nil {
				t.Fatalf("Parse(%s): got %+v, want a media playlist", tt.file, pl)
			}
			got := *pl.Media
			if !reflect.DeepEqual(got.Segments, tt.want.Segments) {
				t.Errorf("Parse(%s) segments: got %s\nwant %s", tt.file, segs(got.Segments), segs(tt.want.Segments))
			}
			got.Segments, tt.want.Segments = nil, nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%s): got %s, want %s", tt.file, show(got), show(tt.want))
			}
			if d := pl.Media.TotalDuration(); math.Abs(d-tt.total) > 1e-9 {
				t.Errorf("TotalDuration(): got %v, want %v", d, tt.total)
			}
		})
	}
}

func TestParseMaster(t *testing.T) {
	pl, err := Parse(readFile(t, "apple_master.m3u8"), base)
	if err != nil {
		t.Fatalf("Parse(apple_master.m3u8): got error %v", err)
	}
	if pl.Media != nil || pl.Master == nil {
		t.Fatalf("Parse(apple_master.m3u8): got %+v, want a master playlist", pl)
	}
	codecs := "avc1.64002a,mp4a.40.2"
	wantV := []Variant{
		{URI: "https://cdn.example.com/hls/v1/v5/prog_index.m3u8", Bandwidth: 2177116, AverageBandwidth: 2168183, Resolution: "960x540", Codecs: "avc1.640020,mp4a.40.2", Audio: "aud1", Subtitles: "sub1"},
		{URI: "https://cdn.example.com/hls/v1/v9/prog_index.m3u8", Bandwidth: 8001098, AverageBandwidth: 7968416, Resolution: "1920x1080", Codecs: codecs, Audio: "aud1", Subtitles: "sub1"},
		{URI: "https://cdn.example.com/hls/v1/v8/prog_index.m3u8", Bandwidth: 6312875, AverageBandwidth: 6170000, Resolution: "1920x1080", Codecs: codecs, Audio: "aud1", Subtitles: "sub1"},
		{URI: "https://cdn.example.com/hls/v1/v2/prog_index.m3u8", Bandwidth: 1054441, AverageBandwidth: 1036748, Resolution: "640x360", Codecs: "avc1.640015,mp4a.40.2", Audio: "aud2", Subtitles: "sub1"},
	}
	wantR := []Rendition{
		{Type: "AUDIO", GroupID: "aud1", Name: "English", Language: "en", Default: true, URI: "https://cdn.example.com/hls/v1/a1/prog_index.m3u8"},
		{Type: "AUDIO", GroupID: "aud2", Name: "English", Language: "en", Default: true, URI: "https://cdn.example.com/hls/v1/a2/prog_index.m3u8"},
		{Type: "SUBTITLES", GroupID: "sub1", Name: "English", Language: "en", Default: true, URI: "https://cdn.example.com/hls/v1/s1/en/prog_index.m3u8"},
		{Type: "CLOSED-CAPTIONS", GroupID: "cc1", Name: "English", Language: "en", Default: true},
	}
	if !reflect.DeepEqual(pl.Master.Variants, wantV) {
		t.Errorf("Parse(apple_master.m3u8) variants: got %s, want %s", show(pl.Master.Variants), show(wantV))
	}
	if !reflect.DeepEqual(pl.Master.Media, wantR) {
		t.Errorf("Parse(apple_master.m3u8) renditions: got %s, want %s", show(pl.Master.Media), show(wantR))
	}

	m := pl.Master
	if b := m.Best(); b == nil || b.URI != wantV[1].URI {
		t.Errorf("Best(): got %+v, want %s", b, wantV[1].URI)
	}
	if (&Master{}).Best() != nil {
		t.Errorf("Best() of no variants: got non-nil")
	}
	picks := []struct {
		sel     string
		want    int    // index into wantV
		wantErr string // substring
	}{
		{sel: "0", want: 0},
		{sel: "3", want: 3},
		{sel: "4", wantErr: `no variant matches "4"; choices: 0: 960x540 2177116 bps, 1: 1920x1080 8001098 bps`},
		{sel: "best", want: 1},
		{sel: "1920x1080", want: 1},
		{sel: "640x360", want: 3},
		{sel: "1080p", want: 1},
		{sel: "1080", want: 1},
		{sel: "540p", want: 0},
		{sel: "360", want: 3},
		{sel: "6312875", want: 2},
		{sel: "720p", wantErr: `no variant matches "720p"; choices:`},
		{sel: "1280x720", wantErr: "3: 640x360 1054441 bps"},
		{sel: "x", wantErr: `no variant matches "x"`},
		{sel: "-1", wantErr: `no variant matches "-1"`},
	}
	for _, p := range picks {
		t.Run("Pick "+p.sel, func(t *testing.T) {
			v, err := m.Pick(p.sel)
			if p.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), p.wantErr) {
					t.Fatalf("Pick(%q): got %+v, %v; want error containing %q", p.sel, v, err, p.wantErr)
				}
				return
			}
			if err != nil || v.URI != wantV[p.want].URI {
				t.Fatalf("Pick(%q): got %+v, %v; want %s", p.sel, v, err, wantV[p.want].URI)
			}
		})
	}
	if _, err := (&Master{}).Pick("0"); err == nil {
		t.Errorf("Pick on no variants: got nil error")
	}
}

func TestParseErrors(t *testing.T) {
	const hdr = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n"
	tests := []struct {
		name string
		in   string
		want string // the whole error message
	}{
		{"empty", "", "playlist: missing #EXTM3U header (empty input)"},
		{"missing header", "#EXTINF:4,\nx.ts\n", `playlist line 1 "#EXTINF:4,": missing #EXTM3U header`},
		{"html", "<html>\n", `playlist line 1 "<html>": missing #EXTM3U header`},
		{"bad duration", hdr + "#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n\n#EXTINF:abc,\nc.ts\n", `playlist line 8 "#EXTINF:abc,": bad duration`},
		{"negative duration", hdr + "#EXTINF:-1,\na.ts\n", `playlist line 3 "#EXTINF:-1,": bad duration`},
		{"NaN duration", hdr + "#EXTINF:NaN,\na.ts\n", `playlist line 3 "#EXTINF:NaN,": bad duration`},
		{"infinite duration", hdr + "#EXTINF:Inf,\na.ts\n", `playlist line 3 "#EXTINF:Inf,": bad duration`},
		{"overflowing duration", hdr + "#EXTINF:1e400,\na.ts\n", `playlist line 3 "#EXTINF:1e400,": bad duration`},
		{"empty duration", hdr + "#EXTINF:\na.ts\n", `playlist line 3 "#EXTINF:": bad duration`},
		{"extinf then extinf", hdr + "#EXTINF:4,\n#EXTINF:4,\nb.ts\n", `playlist line 4 "#EXTINF:4,": #EXTINF without a uri before it`},
		{"uri without extinf", hdr + "a.ts\n", `playlist line 3 "a.ts": uri without a preceding #EXTINF or #EXT-X-STREAM-INF`},
		{"bad uri", hdr + "#EXTINF:4,\n%zz.ts\n", `playlist line 4 "%zz.ts": bad uri "%zz.ts"`},
		{"bad target duration", "#EXTM3U\n#EXT-X-TARGETDURATION:x\n", `playlist line 2 "#EXT-X-TARGETDURATION:x": bad target duration`},
		{"bad media sequence", "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-3\n", `playlist line 2 "#EXT-X-MEDIA-SEQUENCE:-3": bad media sequence`},
		{"media sequence at maxint", "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:9223372036854775807\n", `playlist line 2 "#EXT-X-MEDIA-SEQUENCE:9223372036854775807": media sequence 9223372036854775807 is over 9223372036853727231`},
		{"media sequence one over the bound", "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:9223372036853727232\n", `playlist line 2 "#EXT-X-MEDIA-SEQUENCE:9223372036853727232": media sequence 9223372036853727232 is over 9223372036853727231`},
		{"bad byte range", hdr + "#EXTINF:4,\n#EXT-X-BYTERANGE:12@x\na.ts\n", `playlist line 4 "#EXT-X-BYTERANGE:12@x": bad byte range`},
		{"key without uri", hdr + "#EXT-X-KEY:METHOD=AES-128\n", `playlist line 3 "#EXT-X-KEY:METHOD=AES-128": key without URI`},
		{"key without method", hdr + "#EXT-X-KEY:URI=\"k\"\n", `playlist line 3 "#EXT-X-KEY:URI=\"k\"": key without METHOD`},
		{"unterminated quote", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1\nv.m3u8\n", `playlist line 2 "#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1": unterminated quoted string in attribute CODECS`},
		{"attribute without name", "#EXTM3U\n#EXT-X-STREAM-INF:=1\nv.m3u8\n", `playlist line 2 "#EXT-X-STREAM-INF:=1": bad attribute list`},
		{"garbage after quote", "#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"a\"b,BANDWIDTH=1\nv.m3u8\n", `playlist line 2 "#EXT-X-STREAM-INF:CODECS=\"a\"b,BANDWIDTH=1": bad attribute list after CODECS`},
		{"bad bandwidth", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=fast\nv.m3u8\n", `playlist line 2 "#EXT-X-STREAM-INF:BANDWIDTH=fast": bad BANDWIDTH`},
		{"stream-inf at end", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", `playlist line 2 "#EXT-X-STREAM-INF:BANDWIDTH=1": no uri after #EXT-X-STREAM-INF`},
		{"mixed", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n#EXTINF:4,\na.ts\n", `playlist line 4 "#EXTINF:4,": master and media playlist tags mixed`},
		{"crlf line quoted without cr", "#EXTM3U\r\n#EXTINF:x,\r\na.ts\r\n", `playlist line 2 "#EXTINF:x,": bad duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := Parse([]byte(tt.in), base)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q): got %+v, %v; want a *ParseError", tt.in, pl, err)
			}
			if err.Error() != tt.want {
				t.Fatalf("Parse(%q): got error %s, want %s", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	seg := "#EXTINF:1,\na\n"
	build := func(n int) []byte {
		return []byte("#EXTM3U\n" + strings.Repeat(seg, n))
	}
	if testing.Short() {
		t.Skip("builds 14 MB playlists")
	}
	pl, err := Parse(build(MaxSegments), base)
	if err != nil || len(pl.Media.Segments) != MaxSegments {
		t.Fatalf("Parse(%d segments): got error %v", MaxSegments, err)
	}
	_, err = Parse(build(MaxSegments+1), base)
	if err == nil || !strings.Contains(err.Error(), "more than 1000000 segments") {
		t.Fatalf("Parse(%d segments): got %v, want too many segments", MaxSegments+1, err)
	}
	big := make([]byte, MaxSize+1)
	copy(big, "#EXTM3U\n")
	for i := len("#EXTM3U\n"); i < len(big); i++ {
		big[i] = '\n'
	}
	if _, err := Parse(big[:MaxSize], base); err != nil {
		t.Fatalf("Parse(16 MiB of blank lines): got %v, want success", err)
	}
	_, err = Parse(big, base)
	if want := "playlist: input of 16777217 bytes is larger than 16 MiB"; err == nil || err.Error() != want {
		t.Fatalf("Parse(16 MiB + 1): got %v, want %s", err, want)
	}
}

func TestParseNilBase(t *testing.T) {
	pl, err := Parse([]byte("#EXTM3U\n#EXTINF:2,\nseg/1.ts\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := pl.Media.Segments[0].URI; got != "seg/1.ts" {
		t.Errorf("Parse(nil base): got URI %q, want %q", got, "seg/1.ts")
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"#EXTM3U\n", true},
		{"\ufeff#EXTM3U\r\n", true},
		{" \r\n\t#EXTM3U", true},
		{"\ufeff \n#EXTM3U", true},
		{"#EXTM3", false},
		{"", false},
		{"<html>#EXTM3U", false},
		{"\x47\x40\x00\x10", false}, // an MPEG-TS packet
	}
	for _, tt := range tests {
		if got := Sniff([]byte(tt.in)); got != tt.want {
			t.Errorf("Sniff(%q): got %v, want %v", tt.in, got, tt.want)
		}
	}
}

// Live servers are caught mid-write: a trailing #EXTINF without its URI is
// dropped (as players do), and a comment before #EXTM3U is tolerated.
func TestParseLiveQuirks(t *testing.T) {
	tests := []struct {
		name, in string
		segs     int
	}{
		{"extinf at end", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\na.ts\n#EXTINF:1,\n", 1},
		{"comment before header", "# written by origin\n#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\na.ts\n", 1},
		{"whole", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\na.ts\n#EXTINF:1,\nb.ts\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := Parse([]byte(tt.in), base)
			if err != nil || pl.Media == nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := len(pl.Media.Segments); got != tt.segs {
				t.Errorf("Parse(%q): %d segments, want %d", tt.in, got, tt.segs)
			}
		})
	}
	if _, err := Parse([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n"), base); err == nil {
		t.Error("a master playlist's dangling #EXT-X-STREAM-INF: got no error")
	}
}

func TestParseGapAndDiscontinuitySequence(t *testing.T) {
	in := "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXTINF:1,\na.ts\n#EXT-X-GAP\n#EXTINF:1,\nb.ts\n#EXTINF:1,\nc.ts\n#EXT-X-ENDLIST\n"
	pl, err := Parse([]byte(in), base)
	if err != nil {
		t.Fatal(err)
	}
	md := pl.Media
	if md.DiscontinuitySequence != 3 {
		t.Errorf("DiscontinuitySequence = %d, want 3", md.DiscontinuitySequence)
	}
	var gaps []bool
	for _, s := range md.Segments {
		gaps = append(gaps, s.Gap)
	}
	if !reflect.DeepEqual(gaps, []bool{false, true, false}) {
		t.Errorf("gaps = %v, want [false true false]", gaps)
	}
}

// The largest media sequence accepted still numbers a full playlist without overflow.
func TestMediaSequenceAtTheBound(t *testing.T) {
	base, _ := url.Parse("https://cdn.example/v/index.m3u8")
	pl, err := Parse([]byte(fmt.Sprintf("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:%d\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n", int64(MaxMediaSequence))), base)
	if err != nil {
		t.Fatalf("Parse at MaxMediaSequence: %v", err)
	}
	if got := pl.Media.Segments[1].Sequence; got != MaxMediaSequence+1 {
		t.Errorf("second segment's sequence %d, want %d", got, int64(MaxMediaSequence)+1)
	}
}
