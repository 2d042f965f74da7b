package urltemplate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// seq renders format with each of the given numbers.
func seq(format string, ns ...int) []string {
	var out []string
	for _, n := range ns {
		out = append(out, fmt.Sprintf(format, n))
	}
	return out
}

func TestLearn(t *testing.T) {
	tests := []struct {
		name    string
		urls    []string
		want    string // Template.String()
		wantErr string // substring of the error; want is ignored when set
	}{
		{
			name: "ffmpeg segment_000",
			urls: seq("https://cdn.example.com/live/segment_%03d.ts", 0, 1, 2),
			want: "https://cdn.example.com/live/segment_{index:03d}.ts (step 1, seen 0..2)",
		},
		{
			name: "nginx-vod seg-N-v1-a1",
			urls: seq("https://vod.example.com/hls/movie.mp4/seg-%d-v1-a1.ts", 12, 13, 15),
			want: "https://vod.example.com/hls/movie.mp4/seg-{index}-v1-a1.ts (step 1, seen 12..15)",
		},
		{
			name: "wowza media_w_b_N",
			urls: seq("https://wowza.example.com/vod/_definst_/mp4:v.mp4/media_w123_b2500000_%d.ts", 7, 8),
			want: "https://wowza.example.com/vod/_definst_/mp4:v.mp4/media_w123_b2500000_{index}.ts (step 1, seen 7..8)",
		},
		{
			name: "token query and 720p path number",
			urls: seq("https://cdn.example.com/v/abc/720p/%06d.ts?token=T9x", 15, 12, 13, 14, 13),
			want: "https://cdn.example.com/v/abc/720p/{index:06d}.ts?token=T9x (step 1, seen 12..15)",
		},
		{
			name: "index as directory",
			urls: seq("https://cdn.example.com/stream/%d/video.ts", 12, 13, 14),
			want: "https://cdn.example.com/stream/{index}/video.ts (step 1, seen 12..14)",
		},
		{
			name: "index as directory and file name",
			urls: []string{
				"https://cdn.example.com/s/12/12.ts", "https://cdn.example.com/s/13/13.ts",
				"https://cdn.example.com/s/14/14.ts",
			},
			want: "https://cdn.example.com/s/{index}/{index}.ts (step 1, seen 12..14)",
		},
		{
			name: "lockstep seg12_part24",
			urls: []string{
				"https://cdn.example.com/a/seg12_part24.ts", "https://cdn.example.com/a/seg13_part26.ts",
				"https://cdn.example.com/a/seg15_part30.ts",
			},
			want: "https://cdn.example.com/a/seg{index}_part{index*2}.ts (step 1, seen 12..15)",
		},
		{
			name: "lockstep with offset, two urls",
			urls: []string{"https://cdn.example.com/a/12/seg13.ts", "https://cdn.example.com/a/13/seg14.ts"},
			want: "https://cdn.example.com/a/{index-1}/seg{index}.ts (step 1, seen 13..14)",
		},
		{
			name: "byte offset linear in the index",
			urls: seq("https://cdn.example.com/v.ts?seg=%[1]d&start=%[1]d000", 3, 4, 5),
			want: "https://cdn.example.com/v.ts?seg={index}&start={index*1000} (step 1, seen 3..5)",
		},
		{
			name: "constant numbers after the index",
			urls: seq("https://cdn.example.com/v/%d_2500_48000.ts?v=3", 4, 5, 6),
			want: "https://cdn.example.com/v/{index}_2500_48000.ts?v=3 (step 1, seen 4..6)",
		},
		{
			name: "unpadded growth 99 to 100",
			urls: seq("https://cdn.example.com/v/seg%d.ts", 98, 99, 100, 101),
			want: "https://cdn.example.com/v/seg{index}.ts (step 1, seen 98..101)",
		},
		{
			name: "padded growth past the width",
			urls: []string{"https://c.example.com/s/0998.ts", "https://c.example.com/s/0999.ts", "https://c.example.com/s/1000.ts"},
			want: "https://c.example.com/s/{index:04d}.ts (step 1, seen 998..1000)",
		},
		{
			name: "same length without leading zero is unpadded",
			urls: seq("https://cdn.example.com/v/%d.ts", 120, 121),
			want: "https://cdn.example.com/v/{index}.ts (step 1, seen 120..121)",
		},
		{
			name: "akamai segment12_3_av",
			urls: seq("https://akamai.example.com/i/v_1@1/segment%d_3_av.ts?null=0", 12, 13, 14),
			want: "https://akamai.example.com/i/v_1@1/segment{index}_3_av.ts?null=0 (step 1, seen 12..14)",
		},
		{
			name: "step of 10 (time-based names)",
			urls: seq("https://cdn.example.com/v/t%d.ts", 0, 10, 20, 50),
			want: "https://cdn.example.com/v/t{index}.ts (step 10, seen 0..50)",
		},
		{
			name: "sparse but with neighbours",
			urls: seq("https://cdn.example.com/v/%d.ts", 10, 11, 40, 41),
			want: "https://cdn.example.com/v/{index}.ts (step 1, seen 10..41)",
		},
		{
			name: "two urls: the difference is the step",
			urls: seq("https://cdn.example.com/v/%d.ts", 0, 16),
			want: "https://cdn.example.com/v/{index}.ts (step 16, seen 0..16)",
		},
		{
			name: "closest two indices 16 steps apart",
			urls: seq("https://cdn.example.com/v/%d.ts", 0, 16, 33),
			want: "https://cdn.example.com/v/{index}.ts (step 1, seen 0..33)",
		},
		{
			name: "duplicates only",
			urls: []string{"https://cdn.example.com/v/000012.ts?token=T", "https://cdn.example.com/v/000012.ts?token=T"},
			want: "https://cdn.example.com/v/{index:06d}.ts?token=T (step 1, seen 12..12, tentative guess)",
		},
		{
			name: "fragment ignored",
			urls: []string{"https://cdn.example.com/v/1.ts#x", "https://cdn.example.com/v/2.ts"},
			want: "https://cdn.example.com/v/{index}.ts (step 1, seen 1..2)",
		},

		// One URL: a tentative guess.
		{
			name: "one url ffmpeg",
			urls: []string{"https://cdn.example.com/live/segment_000.ts"},
			want: "https://cdn.example.com/live/segment_{index:03d}.ts (step 1, seen 0..0, tentative guess)",
		},
		{
			name: "one url nginx-vod prefers the standalone run",
			urls: []string{"https://vod.example.com/hls/seg-12-v1-a1.ts"},
			want: "https://vod.example.com/hls/seg-{index}-v1-a1.ts (step 1, seen 12..12, tentative guess)",
		},
		{
			name: "one url wowza",
			urls: []string{"https://w.example.com/vod/media_w123_b2500000_12.ts"},
			want: "https://w.example.com/vod/media_w123_b2500000_{index}.ts (step 1, seen 12..12, tentative guess)",
		},
		{
			name: "one url akamai prefers segment word",
			urls: []string{"https://a.example.com/i/segment12_3_av.ts?null=0"},
			want: "https://a.example.com/i/segment{index}_3_av.ts?null=0 (step 1, seen 12..12, tentative guess)",
		},
		{
			name: "one url apple fileSequence",
			urls: []string{"https://a.example.com/gear1/fileSequence7.ts"},
			want: "https://a.example.com/gear1/fileSequence{index}.ts (step 1, seen 7..7, tentative guess)",
		},
		{
			name: "one url 720p path and padded name",
			urls: []string{"https://cdn.example.com/v/720p/000012.ts?token=T1"},
			want: "https://cdn.example.com/v/720p/{index:06d}.ts?token=T1 (step 1, seen 12..12, tentative guess)",
		},
		{
			name: "one url resolution glued to unit loses to plain run",
			urls: []string{"https://cdn.example.com/v/index_720p_5.ts"},
			want: "https://cdn.example.com/v/index_720p_{index}.ts (step 1, seen 5..5, tentative guess)",
		},
		{
			name: "one url index directory",
			urls: []string{"https://cdn.example.com/v/720p/12/video.ts"},
			want: "https://cdn.example.com/v/720p/{index}/video.ts (step 1, seen 12..12, tentative guess)",
		},
		{
			name:    "one url without digits in the path",
			urls:    []string{"https://cdn.example.com/v/video.ts?n=3"},
			wantErr: `no digits in the path of "https://cdn.example.com/v/video.ts?n=3"`,
		},

		// Negatives.
		{name: "no urls", urls: nil, wantErr: "no urls"},
		// ffmpeg's dash muxer names streams by number: init-stream0.m4s, chunk-stream0-00001.m4s.
		{
			name:    "dash init segment alone",
			urls:    []string{"https://cdn.example.com/d/init-stream0.m4s"},
			wantErr: "is an init segment: it has no segment number",
		},
		{
			name: "dash chunk alone: the segment number, not the stream",
			urls: []string{"https://cdn.example.com/d/chunk-stream0-00007.m4s"},
			want: "https://cdn.example.com/d/chunk-stream0-{index:05d}.m4s (step 1, seen 7..7, tentative guess)",
		},
		{
			name: "dash chunks of one stream",
			urls: []string{"https://cdn.example.com/d/chunk-stream1-00001.m4s", "https://cdn.example.com/d/chunk-stream1-00002.m4s"},
			want: "https://cdn.example.com/d/chunk-stream1-{index:05d}.m4s (step 1, seen 1..2)",
		},
		{
			name:    "dash chunks of two streams are not segments 0 and 1",
			urls:    []string{"https://cdn.example.com/d/chunk-stream0-00001.m4s", "https://cdn.example.com/d/chunk-stream1-00001.m4s"},
			wantErr: "names a stream (a representation), not a segment",
		},
		{
			name:    "dash chunks of two streams, three urls",
			urls:    []string{"https://cdn.example.com/d/chunk-stream0-00001.m4s", "https://cdn.example.com/d/chunk-stream1-00001.m4s", "https://cdn.example.com/d/chunk-stream2-00001.m4s"},
			wantErr: "names a stream (a representation), not a segment",
		},
		{
			name: "stream number in a directory still counts",
			urls: []string{"https://cdn.example.com/stream1/seg.ts", "https://cdn.example.com/stream2/seg.ts"},
			want: "https://cdn.example.com/stream{index}/seg.ts (step 1, seen 1..2)",
		},
		{
			name: "rep id glued to a word is kept",
			urls: []string{"https://cdn.example.com/d/rep3/segment-11.m4s", "https://cdn.example.com/d/rep3/segment-12.m4s"},
			want: "https://cdn.example.com/d/rep3/segment-{index}.m4s (step 1, seen 11..12)",
		},
		{
			name:    "not a url",
			urls:    []string{"/relative/1.ts", "/relative/2.ts"},
			wantErr: `not an absolute http(s) url: "/relative/1.ts"`,
		},
		{
			name:    "content hash names",
			urls:    []string{"https://cdn.example.com/v/3f9a1c0e.ts", "https://cdn.example.com/v/a81b22f0.ts"},
			wantErr: `path element "3f9a1c0e.ts" looks like a content hash`,
		},
		{
			name: "content hash names with the same letters",
			urls: []string{
				"https://cdn.example.com/v/3f9a1c0e.ts", "https://cdn.example.com/v/7f2a5c9e.ts",
				"https://cdn.example.com/v/1f1a1c1e.ts",
			},
			wantErr: "looks like a content hash",
		},
		{
			name: "per-segment signature",
			urls: []string{
				"https://cdn.example.com/v/seg1.ts?sig=abcQ", "https://cdn.example.com/v/seg2.ts?sig=zzXy",
			},
			wantErr: `query parameter "sig" changes between segments`,
		},
		{
			name: "per-segment numeric signature",
			urls: []string{
				"https://cdn.example.com/v/seg1.ts?sig=8812", "https://cdn.example.com/v/seg2.ts?sig=1277",
				"https://cdn.example.com/v/seg3.ts?sig=9001",
			},
			wantErr: `query parameter "sig" changes between segments but not in step with the index`,
		},
		{
			name: "jittered timestamps",
			urls: []string{
				"https://cdn.example.com/v/seg12.ts?t=1700000000123", "https://cdn.example.com/v/seg13.ts?t=1700000004127",
				"https://cdn.example.com/v/seg14.ts?t=1700000008098",
			},
			wantErr: `query parameter "t" changes between segments but not in step with the index`,
		},
		{
			name: "jittered timestamps alone",
			urls: []string{
				"https://cdn.example.com/v/live.ts?t=1700000000123", "https://cdn.example.com/v/live.ts?t=1700000004127",
				"https://cdn.example.com/v/live.ts?t=1700000008099",
			},
			wantErr: `query parameter "t" changes between segments but not by a steady step`,
		},
		{
			name:    "closest two indices 17 steps apart",
			urls:    seq("https://cdn.example.com/v/%d.ts", 0, 17, 35),
			wantErr: `path element "0.ts" changes between segments but not by a steady step (values 0, 17, 35)`,
		},
		{
			name: "byte ranges not linear",
			urls: []string{
				"https://cdn.example.com/v.mp4?range=0-188411", "https://cdn.example.com/v.mp4?range=188412-377002",
				"https://cdn.example.com/v.mp4?range=377003-561227",
			},
			wantErr: `query parameter "range" changes between segments`,
		},
		{
			name: "byte ranges with index not linear",
			urls: []string{
				"https://cdn.example.com/v/seg1.ts?o=0", "https://cdn.example.com/v/seg2.ts?o=188411",
				"https://cdn.example.com/v/seg3.ts?o=377002",
			},
			wantErr: `query parameter "o" changes between segments but not in step with the index`,
		},
		{
			name:    "two urls, lockstep with both offset and ratio",
			urls:    []string{"https://cdn.example.com/v/seg1.ts?t=1700000000123", "https://cdn.example.com/v/seg2.ts?t=1700000004127"},
			wantErr: `query parameter "t" changes between segments but not in step`,
		},
		{
			name:    "differing text",
			urls:    []string{"https://cdn.example.com/v/seg1-abc.ts", "https://cdn.example.com/v/seg2-xyz.ts"},
			wantErr: `path element "seg1-abc.ts" changes between segments`,
		},
		{
			name:    "different hosts",
			urls:    []string{"https://a.example.com/v/1.ts", "https://b.example.com/v/2.ts"},
			wantErr: `host changes between segments`,
		},
		{
			name:    "missing query parameter",
			urls:    []string{"https://a.example.com/v/1.ts?a=b", "https://a.example.com/v/2.ts?a=b&c=d"},
			wantErr: `query parameter "c" is missing from some segments`,
		},
		{
			name:    "inconsistent padding",
			urls:    []string{"https://a.example.com/v/01.ts", "https://a.example.com/v/002.ts"},
			wantErr: "zero-padded to different widths",
		},
		{
			name: "run counting down is not a field",
			urls: []string{
				"https://a.example.com/v/1_9.ts", "https://a.example.com/v/2_8.ts", "https://a.example.com/v/3_7.ts",
			},
			wantErr: "not in step with the index",
		},
		{
			name:    "negative numbers are not indices",
			urls:    seq("https://a.example.com/v/live.ts?shift=-%d", 3, 4, 5),
			wantErr: `query parameter "shift" changes between segments but holds negative numbers`,
		},
		{
			name:    "negative directory",
			urls:    seq("https://a.example.com/v/-%d/a.ts", 3, 4),
			wantErr: `path element "-3" changes between segments but holds negative numbers`,
		},
		{
			name: "digit run too long",
			urls: []string{
				"https://a.example.com/v/1234567890123456789012.ts", "https://a.example.com/v/1234567890123456789013.ts",
			},
			wantErr: "too long for a number",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := Learn(tt.urls)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Learn(urls): got %v, want error containing %q", tpl, tt.wantErr)
				}
				if !errors.Is(err, ErrNoTemplate) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Learn(urls): got error %q, want one wrapping ErrNoTemplate containing %q", err, tt.wantErr)
				}
				if err.Error() != strings.ToLower(err.Error()[:1])+err.Error()[1:] {
					t.Errorf("Learn(urls): error %q does not start lowercase", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Learn(urls): got error %v, want %s", err, tt.want)
			}
			if got := tpl.String(); got != tt.want {
				t.Fatalf("Learn(urls): got %s, want %s", got, tt.want)
			}
			if tpl.Step < 1 {
				t.Errorf("Learn(urls): got step %d, want ≥ 1", tpl.Step)
			}
			for _, u := range tt.urls {
				u, _, _ = strings.Cut(u, "#")
				i, ok := tpl.Match(u)
				if !ok || tpl.URL(i) != u {
					t.Errorf("Match(%q): got %d, %v; want the index that regenerates it", u, i, ok)
				}
			}
		})
	}
}

func TestURL(t *testing.T) {
	tpl, err := Learn(seq("https://cdn.example.com/v/720p/%06d.ts?token=T", 12, 13))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		index int64
		want  string
	}{
		{0, "https://cdn.example.com/v/720p/000000.ts?token=T"},
		{99999, "https://cdn.example.com/v/720p/099999.ts?token=T"},
		{999999, "https://cdn.example.com/v/720p/999999.ts?token=T"},
		{1000000, "https://cdn.example.com/v/720p/1000000.ts?token=T"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.index), func(t *testing.T) {
			if got := tpl.URL(tt.index); got != tt.want {
				t.Fatalf("URL(%d): got %q, want %q", tt.index, got, tt.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	padded, err := Learn(seq("https://cdn.example.com/v/%04d.ts?token=T", 1, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	lockstep, err := Learn([]string{
		"https://c.example.com/a/seg1_part2.ts", "https://c.example.com/a/seg2_part4.ts", "https://c.example.com/a/seg3_part6.ts",
	})
	if err != nil {
		t.Fatal(err)
	}
	inQuery, err := Learn(seq("https://c.example.com/v.ts?tok=A&seg=%d&x=1", 4, 5))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		tpl       *Template
		url       string
		want      int64
		wantOK    bool
		wantLoose bool
	}{
		{"padded", padded, "https://cdn.example.com/v/0042.ts?token=T", 42, true, true},
		{"padded grown past width", padded, "https://cdn.example.com/v/12345.ts?token=T", 12345, true, true},
		{"padded zero", padded, "https://cdn.example.com/v/0000.ts?token=T", 0, true, true},
		{"wrong padding", padded, "https://cdn.example.com/v/042.ts?token=T", 0, false, false},
		{"leading zero past width", padded, "https://cdn.example.com/v/00042.ts?token=T", 0, false, false},
		{"refreshed token", padded, "https://cdn.example.com/v/0042.ts?token=U", 42, false, true},
		{"token dropped", padded, "https://cdn.example.com/v/0042.ts", 42, false, true},
		{"other host", padded, "https://cdn2.example.com/v/0042.ts?token=T", 0, false, false},
		{"other path", padded, "https://cdn.example.com/w/0042.ts?token=T", 0, false, false},
		{"negative", padded, "https://cdn.example.com/v/-042.ts?token=T", 0, false, false},
		{"lockstep consistent", lockstep, "https://c.example.com/a/seg40_part80.ts", 40, true, true},
		{"lockstep inconsistent", lockstep, "https://c.example.com/a/seg40_part81.ts", 0, false, false},
		{"index in query", inQuery, "https://c.example.com/v.ts?tok=A&seg=77&x=1", 77, true, true},
		{"index in query, token refreshed", inQuery, "https://c.example.com/v.ts?tok=B&seg=77&x=1", 77, false, true},
		{"index in query, reordered", inQuery, "https://c.example.com/v.ts?seg=77&tok=B", 77, false, true},
		{"index in query, missing", inQuery, "https://c.example.com/v.ts?tok=B", 0, false, false},
		{"index in query, other path", inQuery, "https://c.example.com/w.ts?seg=77", 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.tpl.Match(tt.url)
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Errorf("Match(%q): got %d, %v; want %d, %v", tt.url, got, ok, tt.want, tt.wantOK)
			}
			got, ok = tt.tpl.MatchLoose(tt.url)
			if ok != tt.wantLoose || (ok && got != tt.want) {
				t.Errorf("MatchLoose(%q): got %d, %v; want %d, %v", tt.url, got, ok, tt.want, tt.wantLoose)
			}
		})
	}
}

func TestPlaceholder(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		pad     int
		want    string // URL(7)
		wantErr error
	}{
		{"unpadded", "https://cdn.example.com/v/seg(*).ts?x=1", 0, "https://cdn.example.com/v/seg7.ts?x=1", nil},
		{"padded", "https://cdn.example.com/v/(*).ts", 5, "https://cdn.example.com/v/00007.ts", nil},
		{"pad 1", "http://cdn.example.com/(*)", 1, "http://cdn.example.com/7", nil},
		{"digit after", "https://cdn.example.com/v/seg(*)0.ts", 0, "https://cdn.example.com/v/seg70.ts", nil},
		{"none", "https://cdn.example.com/v/seg.ts", 0, "", ErrNoPlaceholder},
		{"two", "https://cdn.example.com/(*)/seg(*).ts", 0, "", ErrNoPlaceholder},
		{"no scheme", "cdn.example.com/seg(*).ts", 0, "", ErrBadURL},
		{"ftp", "ftp://cdn.example.com/seg(*).ts", 0, "", ErrBadURL},
		{"no host", "https:///seg(*).ts", 0, "", ErrBadURL},
		{"bad escape", "https://cdn.example.com/%zz/seg(*).ts", 0, "", ErrBadURL},
		{"in host", "https://cdn(*).example.com/seg.ts", 0, "https://cdn7.example.com/seg.ts", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := Placeholder(tt.raw, tt.pad)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Placeholder(%q, %d): got %v, want error wrapping %v", tt.raw, tt.pad, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.raw)) {
					t.Errorf("Placeholder(%q, %d): error %q does not quote the url", tt.raw, tt.pad, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Placeholder(%q, %d): got error %v", tt.raw, tt.pad, err)
			}
			if got := tpl.URL(7); got != tt.want {
				t.Fatalf("Placeholder(%q, %d).URL(7): got %q, want %q", tt.raw, tt.pad, got, tt.want)
			}
			if i, ok := tpl.Match(tt.want); !ok || i != 7 {
				t.Errorf("Match(%q): got %d, %v; want 7, true", tt.want, i, ok)
			}
			if tpl.Last >= tpl.First {
				t.Errorf("Placeholder: got First %d Last %d, want an empty observed range", tpl.First, tpl.Last)
			}
		})
	}
	if _, err := Placeholder("https://x.example.com/(*)", -1); err == nil {
		t.Errorf("Placeholder(pad -1): got nil error")
	}
}

func TestShape(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://cdn.example.com/v/720p/000012.ts?token=T1", "https://cdn.example.com/v/#p/#.ts"},
		{"https://cdn.example.com/v/720p/000013.ts?token=T2", "https://cdn.example.com/v/#p/#.ts"},
		{"https://cdn3.example.com:8443/a/seg-12-v1-a1.ts#f", "https://cdn#.example.com:#/a/seg-#-v#-a#.ts"},
		// ffmpeg's dash muxer: the number after "stream" names the stream, so two streams never share a shape.
		{"https://cdn.example.com/d/chunk-stream0-00001.m4s", "https://cdn.example.com/d/chunk-stream0-#.m#s"},
		{"https://cdn.example.com/d/chunk-stream1-00001.m4s", "https://cdn.example.com/d/chunk-stream1-#.m#s"},
		{"https://cdn.example.com/d/chunk-stream1-00002.m4s?t=9", "https://cdn.example.com/d/chunk-stream1-#.m#s"},
		{"https://cdn.example.com/stream1/seg-3.m4s", "https://cdn.example.com/stream#/seg-#.m#s"}, // a directory, not the file name
		{"https://cdn.example.com/d/Track12_7.m4s", "https://cdn.example.com/d/Track12_#.m#s"},
		{"https://cdn.example.com/d/seg-3.m4s?stream=1", "https://cdn.example.com/d/seg-#.m#s"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Shape(tt.url); got != tt.want {
			t.Errorf("Shape(%q): got %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestStreamOf(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://cdn.example.com/d/init-stream0.m4s", "stream0"},
		{"https://cdn.example.com/d/chunk-stream0-00001.m4s?t=1", "stream0"},
		{"https://cdn.example.com/d/chunk-Stream12-00001.m4s", "stream12"},
		{"https://cdn.example.com/stream1/seg-3.m4s", ""},
		{"https://cdn.example.com/d/init.mp4", ""},
		{"https://cdn.example.com/d/seg-3.m4s?stream=1", ""},
	}
	for _, tt := range tests {
		if got := StreamOf(tt.url); got != tt.want {
			t.Errorf("StreamOf(%q): got %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestString(t *testing.T) {
	tpl := &Template{Parts: []Part{{Lit: "https://x.example.com/"}, {Field: &Field{Width: 3, Mul: 2, Add: -1}}}, Step: 2, First: 0, Last: -1}
	want := "https://x.example.com/{index*2-1:03d} (step 2, none seen)"
	if got := tpl.String(); got != want {
		t.Errorf("String(): got %q, want %q", got, want)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	tpl, err := Learn([]string{"https://c.example.com/a/seg1_part2.ts?t=X", "https://c.example.com/a/seg2_part4.ts?t=X", "https://c.example.com/a/seg3_part6.ts?t=X"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(tpl)
	if err != nil {
		t.Fatal(err)
	}
	var back Template
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.String() != tpl.String() || back.URL(9) != tpl.URL(9) {
		t.Errorf("JSON round trip: got %s, want %s", back.String(), tpl.String())
	}
}

// Pattern is String without the prose: what scripts read from template --json.
func TestPattern(t *testing.T) {
	tmpl, err := Learn([]string{"https://cdn.example.com/v/720p/000012.ts?t=1", "https://cdn.example.com/v/720p/000014.ts?t=1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tmpl.Pattern(), "https://cdn.example.com/v/720p/{index:06d}.ts?t=1"; got != want {
		t.Errorf("Pattern: got %q, want %q", got, want)
	}
	if got := tmpl.String(); !strings.HasPrefix(got, tmpl.Pattern()+" (step 2, ") {
		t.Errorf("String: got %q, want the pattern and then the prose", got)
	}
}
