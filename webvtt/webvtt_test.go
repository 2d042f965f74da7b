package webvtt

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantMap  *TimestampMap
		want     []Cue
		wantSkip []int
		wantErr  string
	}{
		{
			name: "ffmpeg hls segment",
			in:   "WEBVTT\n\n00:00.524 --> 00:01.524\nfirst cue\n",
			want: []Cue{{Start: ms(524), End: ms(1524), Text: "first cue"}},
		},
		{
			name: "empty segment",
			in:   "WEBVTT\n",
		},
		{
			name:    "apple segment with a map, ids, settings and two lines",
			in:      "\ufeffWEBVTT\r\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\r\n\r\n1\r\n00:00:10.000 --> 00:00:12.500 line:0 align:start\r\n<i>Hello</i>\r\nworld\r\n\r\n2\r\n00:00:13.000 --> 00:00:14.000\r\nbye\r\n",
			wantMap: &TimestampMap{MPEGTS: 900000},
			want: []Cue{
				{ID: "1", Start: 10 * time.Second, End: 12500 * time.Millisecond, Settings: "line:0 align:start", Text: "<i>Hello</i>\nworld"},
				{ID: "2", Start: 13 * time.Second, End: 14 * time.Second, Text: "bye"},
			},
		},
		{
			name:    "map in the other order, hours of three digits",
			in:      "WEBVTT - title\nX-TIMESTAMP-MAP=LOCAL:100:00:00.000,MPEGTS:8589934591\n\n100:00:01.000 --> 100:00:02.000\nx\n",
			wantMap: &TimestampMap{MPEGTS: 1<<33 - 1, Local: 100 * time.Hour},
			want:    []Cue{{Start: 100*time.Hour + time.Second, End: 100*time.Hour + 2*time.Second, Text: "x"}},
		},
		{
			name: "note, style and region blocks are dropped",
			in:   "WEBVTT\n\nNOTE a comment\nover two lines\n\nSTYLE\n::cue { color: red }\n\nREGION\nid:r\n\n00:01.000 --> 00:02.000\nkept\n",
			want: []Cue{{Start: time.Second, End: 2 * time.Second, Text: "kept"}},
		},
		{
			name: "a timing line in the payload starts the next cue",
			in:   "WEBVTT\n\n00:01.000 --> 00:02.000\none\n00:03.000 --> 00:04.000\ntwo\n",
			want: []Cue{{Start: time.Second, End: 2 * time.Second, Text: "one"}, {Start: 3 * time.Second, End: 4 * time.Second, Text: "two"}},
		},
		{
			name: "a line of spaces ends a cue",
			in:   "WEBVTT\n\n00:01.000 --> 00:02.000\none\n  \t\n00:03.000 --> 00:04.000\ntwo",
			want: []Cue{{Start: time.Second, End: 2 * time.Second, Text: "one"}, {Start: 3 * time.Second, End: 4 * time.Second, Text: "two"}},
		},
		{
			name:     "bad cues are skipped and counted",
			in:       "WEBVTT\n\n00:01.00 --> 00:02.000\nshort millis\n\n00:05.000 --> 00:04.000\nbackwards\n\n00:61.000 --> 01:02.000\nsixty-one seconds\n\n00:06.000 --> 00:07.000 x-->y\ntwo arrows\n\n00:08.000 --> 00:09.000\nkept\n\nno timing here\nat all\n",
			want:     []Cue{{Start: 8 * time.Second, End: 9 * time.Second, Text: "kept"}},
			wantSkip: []int{3, 6, 9, 12},
		},
		{name: "not webvtt", in: "<html>", wantErr: `webvtt line 1 "<html>": no WEBVTT signature`},
		{name: "signature glued to a word", in: "WEBVTTX\n", wantErr: "no WEBVTT signature"},
		{name: "bad map", in: "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:-1,LOCAL:00:00.000\n", wantErr: `webvtt line 2 "X-TIMESTAMP-MAP=MPEGTS:-1,LOCAL:00:00.000": bad MPEGTS "-1"`},
		{name: "map over 33 bits", in: "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:8589934592,LOCAL:00:00.000\n", wantErr: "bad MPEGTS"},
		{name: "map without local", in: "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0\n", wantErr: "without MPEGTS and LOCAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				var pe *ParseError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &pe) {
					t.Fatalf("Parse: got %+v, %v; want a *ParseError containing %q", f, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: got error %v", err)
			}
			if !reflect.DeepEqual(f.Map, tt.wantMap) {
				t.Errorf("Parse: map got %+v, want %+v", f.Map, tt.wantMap)
			}
			if !reflect.DeepEqual(f.Cues, tt.want) {
				t.Errorf("Parse: cues got %+v, want %+v", f.Cues, tt.want)
			}
			if !reflect.DeepEqual(f.Skipped, tt.wantSkip) {
				t.Errorf("Parse: skipped lines got %v, want %v", f.Skipped, tt.wantSkip)
			}
		})
	}
}

func TestOffset(t *testing.T) {
	tests := []struct {
		name  string
		m     *TimestampMap
		start time.Duration
		want  time.Duration
	}{
		{name: "no map: relative already", start: 1400 * time.Millisecond, want: 0},
		{name: "map at the video start", m: &TimestampMap{MPEGTS: 126000}, start: 1400 * time.Millisecond, want: 0},
		{name: "local ahead of the video", m: &TimestampMap{MPEGTS: 126000, Local: 10 * time.Second}, start: 1400 * time.Millisecond, want: -10 * time.Second},
		{name: "segment later in the stream", m: &TimestampMap{MPEGTS: 90000 * 61}, start: time.Second, want: 60 * time.Second},
		// The video starts just before the 33-bit wrap; the subtitle map is taken just after it.
		{name: "across the wrap", m: &TimestampMap{MPEGTS: 90000 * 2}, start: wrap - time.Second, want: 3 * time.Second},
		{name: "before the wrap, video after it", m: &TimestampMap{MPEGTS: 1<<33 - 90000}, start: time.Second, want: -2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &File{Map: tt.m}
			if got := f.Offset(tt.start); (got - tt.want).Abs() > time.Microsecond {
				t.Errorf("Offset(%v) with %+v: got %v, want %v", tt.start, tt.m, got, tt.want)
			}
		})
	}
}

func TestMarshal(t *testing.T) {
	cues := []Cue{
		{ID: "a-->b", Start: 61*time.Minute + 500*time.Millisecond, End: 62 * time.Minute, Settings: "align:end", Text: "one\n\ntwo --> three"},
		{Start: -time.Second, End: 1499 * time.Microsecond, Text: ""},
	}
	want := "WEBVTT\n\na->b\n01:01:00.500 --> 01:02:00.000 align:end\none\ntwo -> three\n\n00:00:00.000 --> 00:00:00.001\n"
	if got := string(Marshal(cues)); got != want {
		t.Errorf("Marshal: got %q, want %q", got, want)
	}
}

// FuzzParse checks that what Parse reads, Marshal writes so that Parse reads back the same cues.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"WEBVTT\n\n00:00.524 --> 00:01.524\nfirst cue\n",
		"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n1\n00:00:10.000 --> 00:00:12.500 line:0\nHello\nworld\n",
		"WEBVTT\n\nNOTE x\n\n00:01.000 --> 00:02.000\none\n00:03.000 --> 00:04.000\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Parse(b)
		if err != nil {
			return
		}
		for _, c := range v.Cues {
			if c.End < c.Start || c.Start < 0 {
				t.Fatalf("Parse(%q): cue %+v ends before it starts", b, c)
			}
		}
		out := Marshal(v.Cues)
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(%q))): %v\n%s", b, err, out)
		}
		if len(back.Cues) != len(v.Cues) || len(back.Cues) > 0 && !reflect.DeepEqual(back.Cues, v.Cues) {
			t.Fatalf("Parse(Marshal(Parse(%q))):\n got %+v\nwant %+v\n%s", b, back.Cues, v.Cues, out)
		}
	})
}
