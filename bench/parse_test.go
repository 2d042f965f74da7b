package bench

import (
	"testing"
	"time"
)

// These tests are cheap and run in CI; the benchmark itself does not.

func TestDownloadTime(t *testing.T) {
	start := time.Date(2026, 11, 25, 18, 59, 30, 500_000_000, time.UTC)
	tests := []struct {
		name   string
		log    string
		want   time.Duration
		wantOK bool
	}{
		{
			name: "drained line",
			log: `time=2026-11-25T18:59:30.850Z level=DEBUG msg="starting ffmpeg" args="[-f mpegts]"
time=2026-11-25T18:59:32.250Z level=DEBUG msg="ffmpeg drained" seconds=0.25
time=2026-11-25T18:59:33.536Z level=INFO msg=merged output=/tmp/out.mp4
streamsnatcher: stats: maxrss_kb=19272
`,
			want:   1500 * time.Millisecond,
			wantOK: true,
		},
		{
			name: "two tracks: the later download end",
			log: `time=2026-11-25T18:59:32.250Z level=DEBUG msg="ffmpeg drained" seconds=0.25
time=2026-11-25T18:59:32.400Z level=DEBUG msg="ffmpeg drained" seconds=0.1
time=2026-11-25T18:59:32.500Z level=DEBUG msg="ffmpeg drained" seconds=0.5
`,
			want:   1800 * time.Millisecond,
			wantOK: true,
		},
		{
			name:   "exponent in seconds",
			log:    "time=2026-11-25T18:59:32.000Z level=DEBUG msg=\"ffmpeg drained\" seconds=5e-01\n",
			want:   1000 * time.Millisecond,
			wantOK: true,
		},
		{name: "no drained line", log: "time=2026-11-25T18:59:33.536Z level=INFO msg=merged\n"},
		{name: "bad time", log: "time=yesterday level=DEBUG msg=\"ffmpeg drained\" seconds=0.1\n"},
		{name: "empty", log: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := downloadTime([]byte(tt.log), start)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("downloadTime: got %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestStatsLine(t *testing.T) {
	tests := []struct {
		name   string
		stderr string
		want   string // "" = no match
	}{
		{name: "alone", stderr: "streamsnatcher: stats: maxrss_kb=19272\n", want: "19272"},
		{name: "after other lines", stderr: "time=x level=INFO msg=merged\nstreamsnatcher: stats: maxrss_kb=7\n", want: "7"},
		{name: "missing", stderr: "streamsnatcher: error: boom\n"},
		{name: "not at line start", stderr: "x streamsnatcher: stats: maxrss_kb=5\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := statsLine.FindStringSubmatch(tt.stderr)
			got := ""
			if m != nil {
				got = m[1]
			}
			if got != tt.want {
				t.Errorf("statsLine on %q: got %q, want %q", tt.stderr, got, tt.want)
			}
		})
	}
}

func TestReadMedia(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := writeFile(dir, name, data); err != nil {
			t.Fatal(err)
		}
	}
	write("seg_00000.ts", "aaaa")
	write("seg_00001.ts", "bb")
	write("index.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.000000,\nseg_00000.ts\n#EXTINF:3.5,\nseg_00001.ts\n#EXT-X-ENDLIST\n")
	m, err := readMedia("x", dir)
	if err != nil {
		t.Fatalf("readMedia: %v", err)
	}
	if len(m.Segments) != 2 || m.Bytes != 6 || m.Seconds != 7.5 {
		t.Errorf("readMedia: got %d segments, %d bytes, %vs; want 2, 6, 7.5", len(m.Segments), m.Bytes, m.Seconds)
	}

	write("index.m3u8", "#EXTM3U\n#EXTINF:4,\nseg_00001.ts\n")
	if _, err := readMedia("x", dir); err == nil {
		t.Errorf("readMedia with numbering that does not start at seg_00000.ts: got no error")
	}
}

func TestTableAdd(t *testing.T) {
	var tb table
	tb.add("BenchmarkGet/video=600s", row{video: "600s", getS: 1})
	tb.add("BenchmarkGet/concurrency=8", row{video: "600s", conc: 8, getS: 2})
	tb.add("BenchmarkGet/video=600s", row{video: "600s", getS: 3}) // the b.N = 3 run after the b.N = 1 one
	if len(tb.rows) != 2 || tb.rows[0].getS != 3 || tb.rows[1].getS != 2 {
		t.Errorf("table after re-adding a name: got %+v, want 2 rows with getS 3 then 2", tb.rows)
	}
}
