package merge

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// probeTolerance is how far the reader may be from ffprobe: ffprobe prints six decimals, and the reader
// computes what libavformat does, so it must agree to the printed digit (far inside the 1 ms verification needs).
const probeTolerance = 0.5e-6 + 1e-9

// runFFmpeg runs ffmpeg with args in dir, failing the test if it fails.
func runFFmpeg(t testing.TB, dir string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("%v; these tests need the real ffmpeg: install it (Debian: sudo apt-get install ffmpeg)", err)
	}
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// ffprobeHeader is what ffprobe 5.1 says of path, in mp4Header's terms.
func ffprobeHeader(t *testing.T, path string) mp4Header {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries",
		"format=duration:stream=codec_type,id,duration,nb_frames", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			ID        string `json:"id"`
			Duration  string `json:"duration"`
			NbFrames  string `json:"nb_frames"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	num := func(s string, bits int, hex bool) float64 {
		t.Helper()
		var v float64
		var err error
		if hex {
			var n uint64
			n, err = strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, bits)
			v = float64(n)
		} else {
			v, err = strconv.ParseFloat(s, bits)
		}
		if err != nil {
			t.Fatalf("ffprobe %s: %v: %s", path, err, out)
		}
		return v
	}
	h := mp4Header{duration: num(p.Format.Duration, 64, false)}
	for _, s := range p.Streams {
		h.streams = append(h.streams, mp4Stream{codecType: s.CodecType, trackID: uint32(num(s.ID, 32, true)),
			seconds: num(s.Duration, 64, false), frames: int64(num(s.NbFrames, 64, false))})
	}
	return h
}

// Inputs of the generated files: lavfi sources, a few seconds long.
var (
	video25 = []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"}
	sine48k = []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}
	sine44k = []string{"-f", "lavfi", "-i", "sine=frequency=220:sample_rate=44100"}
	x264    = []string{"-c:v", "libx264", "-preset", "veryfast", "-g", "25"} // B-frames: a video edit list
)

// cat joins argument lists.
func cat(lists ...[]string) []string {
	var all []string
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

// largesizeMdat rewrites the file ffmpeg wrote at path, whose mdat follows an 8-byte free box as ffmpeg's muxer
// reserves it, into one with a 64-bit mdat size, as the muxer itself does past 4 GiB; no payload moves.
func largesizeMdat(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("free"))
	if i < 4 || binary.BigEndian.Uint32(b[i-4:]) != 8 || string(b[i+8:i+12]) != "mdat" {
		t.Fatalf("%s: no 8-byte free box before the mdat", path)
	}
	size := uint64(binary.BigEndian.Uint32(b[i+4:]))
	hdr := append(binary.BigEndian.AppendUint32(nil, 1), "mdat"...)
	copy(b[i-4:], binary.BigEndian.AppendUint64(hdr, size+8))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mdatToEnd sets the size of the mdat at the end of the file at path to 0: "to the end of the file".
func mdatToEnd(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(b, []byte("mdat"))
	if i < 4 || int(binary.BigEndian.Uint32(b[i-4:])) != len(b)-(i-4) {
		t.Fatalf("%s: the mdat is not the last box", path)
	}
	binary.BigEndian.PutUint32(b[i-4:], 0)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadMP4HeaderLikeFFprobe reads files the real ffmpeg writes and compares with what the real ffprobe
// says of them: the streams in order, their type, id and frame count exactly, the durations to the printed digit.
func TestReadMP4HeaderLikeFFprobe(t *testing.T) {
	tests := []struct {
		name  string
		args  []string                 // ffmpeg's arguments, writing out.mp4
		fix   func(*testing.T, string) // rewrites out.mp4 afterwards
		types []string                 // the codec types expected, to know the file is what the row means
	}{
		{name: "h264 with b-frames and aac", types: []string{"video", "audio"},
			args: cat(video25, sine48k, []string{"-t", "3"}, x264, []string{"-c:a", "aac", "out.mp4"})},
		{name: "audio only", types: []string{"audio"},
			args: cat(sine48k, []string{"-t", "2.5", "-c:a", "aac", "out.mp4"})},
		{name: "audio only 44.1 kHz, movie timescale differs", types: []string{"audio"},
			args: cat(sine44k, []string{"-t", "2.3", "-c:a", "aac", "out.mp4"})},
		{name: "video and two audio languages", types: []string{"video", "audio", "audio"},
			args: cat(video25, sine48k, sine44k, []string{"-t", "2", "-map", "0:v", "-map", "1:a", "-map", "2:a"}, x264,
				[]string{"-c:a", "aac", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=deu", "out.mp4"})},
		{name: "stream copy of mpeg-ts", types: []string{"video", "audio"},
			args: []string{"-i", "in.ts", "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-bsf:a", "aac_adtstoasc",
				"-f", "mp4", "out.mp4"}},
		{name: "stream copy of mpeg-ts from 1.3 s", types: []string{"video", "audio"},
			args: []string{"-ss", "1.3", "-i", "in.ts", "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-bsf:a", "aac_adtstoasc",
				"-f", "mp4", "out.mp4"}},
		{name: "stream copy cut mid-GOP, the video edit list ends early", types: []string{"video", "audio"},
			args: []string{"-ss", "1.3", "-i", "in.mp4", "-t", "1.1", "-c", "copy", "out.mp4"}},
		{name: "mov_text subtitles", types: []string{"video", "audio", "subtitle"},
			args: cat(video25, sine48k, []string{"-i", "in.srt", "-t", "3", "-map", "0", "-map", "1", "-map", "2"}, x264,
				[]string{"-c:a", "aac", "-c:s", "mov_text", "out.mp4"})},
		{name: "faststart", types: []string{"video", "audio"},
			args: cat(video25, sine48k, []string{"-t", "2"}, x264, []string{"-c:a", "aac", "-movflags", "+faststart", "out.mp4"})},
		{name: "64-bit mdat size", types: []string{"video", "audio"}, fix: largesizeMdat,
			args: cat(video25, sine48k, []string{"-t", "2"}, x264, []string{"-c:a", "aac", "out.mp4"})},
		{name: "mdat to the end of the file", types: []string{"video", "audio"}, fix: mdatToEnd,
			args: cat(video25, sine48k, []string{"-t", "2"}, x264, []string{"-c:a", "aac", "-movflags", "+faststart", "out.mp4"})},
		{name: "mpeg-4 part 2 without b-frames", types: []string{"video"},
			args: cat(video25, []string{"-t", "1.96", "-c:v", "mpeg4", "out.mp4"})},
		{name: "no edit lists", types: []string{"video", "audio"},
			args: cat(video25, sine48k, []string{"-t", "2"}, x264, []string{"-c:a", "aac", "-use_editlist", "0", "out.mp4"})},
	}
	dir := t.TempDir()
	runFFmpeg(t, dir, cat(video25, sine48k, []string{"-t", "3"}, x264, []string{"-c:a", "aac", "-f", "mpegts", "in.ts"})...)
	runFFmpeg(t, dir, cat(video25, sine48k, []string{"-t", "3"}, x264, []string{"-c:a", "aac", "in.mp4"})...)
	srt := "1\n00:00:00,500 --> 00:00:01,200\nOne\n\n2\n00:00:01,800 --> 00:00:02,900\nTwo\n"
	if err := os.WriteFile(filepath.Join(dir, "in.srt"), []byte(srt), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := t.TempDir()
			args := inputsIn(tt.args, dir)
			runFFmpeg(t, sub, args...)
			path := filepath.Join(sub, "out.mp4")
			if tt.fix != nil {
				tt.fix(t, path)
			}
			want := ffprobeHeader(t, path)
			got, err := readMP4Header(path)
			if err != nil {
				t.Fatalf("readMP4Header: %v", err)
			}
			var types []string
			for _, s := range want.streams {
				types = append(types, s.codecType)
			}
			if !slicesEqual(types, tt.types) {
				t.Fatalf("ffprobe finds streams %v, the row means %v", types, tt.types)
			}
			if math.Abs(got.duration-want.duration) > probeTolerance {
				t.Errorf("readMP4Header: format duration %.6f, ffprobe %.6f", got.duration, want.duration)
			}
			if len(got.streams) != len(want.streams) {
				t.Fatalf("readMP4Header: %d streams %+v, ffprobe %d %+v", len(got.streams), got.streams, len(want.streams), want.streams)
			}
			for i, g := range got.streams {
				w := want.streams[i]
				if g.codecType != w.codecType || g.trackID != w.trackID || g.frames != w.frames ||
					math.Abs(g.seconds-w.seconds) > probeTolerance {
					t.Errorf("readMP4Header: stream %d %+v, ffprobe %+v", i, g, w)
				}
			}
		})
	}
}

// inputsIn makes the input file names of args (in.ts, in.mp4, in.srt) absolute paths in dir.
func inputsIn(args []string, dir string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if a == "in.ts" || a == "in.mp4" || a == "in.srt" {
			out[i] = filepath.Join(dir, a)
		}
	}
	return out
}

// TestReadMP4HeaderRefuses checks the files the reader must leave to ffprobe: fragmented MP4, a file cut
// inside or before its moov, and no MP4 at all.
func TestReadMP4HeaderRefuses(t *testing.T) {
	dir := t.TempDir()
	av := cat(video25, sine48k, []string{"-t", "2"}, x264, []string{"-c:a", "aac"})
	runFFmpeg(t, dir, cat(av, []string{"-movflags", "+frag_keyframe+empty_moov", "frag.mp4"})...)
	runFFmpeg(t, dir, cat(av, []string{"-movflags", "+frag_keyframe+empty_moov+default_base_moof", "cmaf.mp4"})...)
	runFFmpeg(t, dir, cat(av, []string{"plain.mp4"})...)
	runFFmpeg(t, dir, cat(av, []string{"-movflags", "+faststart", "fast.mp4"})...)
	runFFmpeg(t, dir, cat(av, []string{"-f", "mpegts", "in.ts"})...)
	cut := func(name string, at func(b []byte) int) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "cut-"+strconv.Itoa(at(b))+"-"+name)
		if err := os.WriteFile(out, b[:at(b)], 0o644); err != nil {
			t.Fatal(err)
		}
		return out
	}
	moovAt := func(b []byte) int { return bytes.Index(b, []byte("moov")) - 4 }
	tests := []struct {
		name     string
		path     string
		sentinel bool // errNotPlainMP4, not an I/O error
	}{
		{"fragmented", filepath.Join(dir, "frag.mp4"), true},
		{"fragmented with default-base-is-moof", filepath.Join(dir, "cmaf.mp4"), true},
		{"cut 1 byte before the end of the moov", cut("plain.mp4", func(b []byte) int { return len(b) - 1 }), true},
		{"cut inside the moov header", cut("plain.mp4", func(b []byte) int { return moovAt(b) + 5 }), true},
		{"cut before the moov", cut("plain.mp4", moovAt), true},
		{"faststart cut inside the moov", cut("fast.mp4", func(b []byte) int { return moovAt(b) + 100 }), true},
		{"faststart cut inside the mdat", cut("fast.mp4", func(b []byte) int { return len(b) - 1 }), true},
		{"mpeg-ts", filepath.Join(dir, "in.ts"), true},
		{"empty", cut("plain.mp4", func([]byte) int { return 0 }), true},
		{"missing", filepath.Join(dir, "missing.mp4"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := readMP4Header(tt.path)
			if err == nil {
				t.Fatalf("readMP4Header: got %+v, want an error", h)
			}
			if errors.Is(err, errNotPlainMP4) != tt.sentinel {
				t.Errorf("readMP4Header: %v, errNotPlainMP4 %v, want %v", err, !tt.sentinel, tt.sentinel)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("readMP4Header: %v does not name the file", err)
			}
		})
	}
}

// fullBox is the payload of a full box: version, flags (0) and the fields.
func fullBox(version byte, fields ...[]byte) []byte {
	b := []byte{version, 0, 0, 0}
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

// u64 is v big-endian.
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// testTrak is the parts of a hand-built trak, each a whole box; nil leaves the box out.
type testTrak struct{ tkhd, elst, mdhd, hdlr, stts, stsz, stsc, stco []byte }

// defaultTrak is a sound track of 10 samples of 1024 at 44100 Hz whose edit list skips the 2112 samples of
// priming and plays 8000 samples (181 ms in the mvhd timescale of 1000).
func defaultTrak() testTrak {
	return testTrak{
		tkhd: box("tkhd", fullBox(0, u32s(0, 0, 7, 0, 0))),
		elst: box("elst", fullBox(0, u32s(1, 181, 2112, 1<<16))),
		mdhd: box("mdhd", fullBox(0, u32s(0, 0, 44100, 10240, 0))),
		hdlr: box("hdlr", fullBox(0, u32s(0), []byte("soun"), u32s(0, 0, 0), []byte("x\x00"))),
		stts: box("stts", fullBox(0, u32s(1, 10, 1024))),
		stsz: box("stsz", fullBox(0, u32s(0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10))),
		stsc: box("stsc", fullBox(0, u32s(1, 1, 10, 1))),
		stco: box("stco", fullBox(0, u32s(1, 40))),
	}
}

func (t testTrak) box() []byte {
	var edts []byte
	if t.elst != nil {
		edts = box("edts", t.elst)
	}
	stbl := box("stbl", box("stsd", fullBox(0, u32s(0))), t.stts, t.stsz, t.stsc, t.stco)
	return box("trak", t.tkhd, edts, box("mdia", t.mdhd, t.hdlr, box("minf", stbl)))
}

// mvhd1000 is an mvhd of timescale 1000 and 250 ms.
var mvhd1000 = box("mvhd", fullBox(0, u32s(0, 0, 1000, 250), make([]byte, 80)))

// testMP4 is a file of an ftyp, the moov children and an mdat.
func testMP4(moov ...[]byte) []byte {
	b := box("ftyp", []byte("isom\x00\x00\x02\x00isommp41"))
	b = append(b, box("mdat", make([]byte, 55))...)
	return append(b, box("moov", moov...)...)
}

// readMP4Bytes writes b to a file and reads its header.
func readMP4Bytes(t testing.TB, b []byte) (mp4Header, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.mp4")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return readMP4Header(path)
}

// TestReadMP4HeaderBoxes covers, with hand-built files, the edit list arithmetic and each header the reader
// refuses.
func TestReadMP4HeaderBoxes(t *testing.T) {
	with := func(f func(*testTrak)) []byte {
		tr := defaultTrak()
		f(&tr)
		return tr.box()
	}
	plain := defaultTrak().box()
	tests := []struct {
		name    string
		file    []byte
		seconds float64 // of the one stream; 0: the file is refused
	}{
		{"edit list limits the duration", testMP4(mvhd1000, plain), 7982.0 / 44100}, // 181 ms is 7982.1 samples
		{"mdhd limits the duration", testMP4(mvhd1000, with(func(t *testTrak) {
			t.mdhd = box("mdhd", fullBox(0, u32s(0, 0, 44100, 5000, 0)))
		})), 5000.0 / 44100},
		{"stts limits the duration", testMP4(mvhd1000, with(func(t *testTrak) {
			t.stts = box("stts", fullBox(0, u32s(2, 9, 512, 1, 100)))
			t.elst = nil
		})), 4708.0 / 44100},
		{"empty edit counts", testMP4(mvhd1000, with(func(t *testTrak) {
			t.elst = box("elst", fullBox(0, u32s(2, 10, 0xffffffff, 1<<16, 100, 0, 1<<16)))
		})), 4851.0 / 44100}, // 441 + 4410
		{"version 1 boxes", testMP4(box("mvhd", fullBox(1, u64(0), u64(0), u32s(1000), u64(250), make([]byte, 80))),
			with(func(t *testTrak) {
				t.tkhd = box("tkhd", fullBox(1, u64(0), u64(0), u32s(7, 0), u64(0)))
				t.elst = box("elst", fullBox(1, u32s(1), u64(181), u64(2112), u32s(1<<16)))
				t.mdhd = box("mdhd", fullBox(1, u64(0), u64(0), u32s(44100), u64(10240), u32s(0)))
			})), 7982.0 / 44100},
		{"compact sample sizes", testMP4(mvhd1000, with(func(t *testTrak) {
			t.stsz = box("stz2", fullBox(0, []byte{0, 0, 0, 4}, u32s(10), make([]byte, 5)))
		})), 7982.0 / 44100},
		{"no moov", box("ftyp", []byte("isom")), 0},
		{"no mvhd", testMP4(plain), 0},
		{"mvhd after the trak", testMP4(plain, mvhd1000), 0},
		{"mvhd timescale 0", testMP4(box("mvhd", fullBox(0, u32s(0, 0, 0, 250), make([]byte, 80))), plain), 0},
		{"mvhd version 2", testMP4(box("mvhd", fullBox(2, u32s(0, 0, 1000, 250), make([]byte, 80))), plain), 0},
		{"mvex", testMP4(mvhd1000, plain, box("mvex", box("trex", fullBox(0, u32s(7, 1, 0, 0, 0))))), 0},
		{"cover art", testMP4(mvhd1000, plain, box("udta", box("meta", fullBox(0), box("ilst", box("covr"))))), 0},
		{"moof", append(testMP4(mvhd1000, plain), box("moof")...), 0},
		{"second moov", append(testMP4(mvhd1000, plain), box("moov", mvhd1000, plain)...), 0},
		{"box shorter than its header", append(testMP4(mvhd1000, plain), u32s(7, 0x66726565)...), 0},
		{"stray bytes at the end", append(testMP4(mvhd1000, plain), 0, 0, 0), 0},
		{"moov child overruns the moov", testMP4(mvhd1000, plain[:len(plain)-1]), 0},
		{"no mdhd", testMP4(mvhd1000, with(func(t *testTrak) { t.mdhd = nil })), 0},
		{"mdhd timescale 0", testMP4(mvhd1000, with(func(t *testTrak) {
			t.mdhd = box("mdhd", fullBox(0, u32s(0, 0, 0, 10240, 0)))
		})), 0},
		{"mdhd timescale past int32", testMP4(mvhd1000, with(func(t *testTrak) {
			t.mdhd = box("mdhd", fullBox(0, u32s(0, 0, 1<<31, 10240, 0)))
		})), 0},
		{"two mdhd", testMP4(mvhd1000, with(func(t *testTrak) { t.mdhd = append(t.mdhd, t.mdhd...) })), 0},
		{"no hdlr", testMP4(mvhd1000, with(func(t *testTrak) { t.hdlr = nil })), 0},
		{"no tkhd", testMP4(mvhd1000, with(func(t *testTrak) { t.tkhd = nil })), 0},
		{"no stts", testMP4(mvhd1000, with(func(t *testTrak) { t.stts = nil })), 0},
		{"no stsz", testMP4(mvhd1000, with(func(t *testTrak) { t.stsz = nil })), 0},
		{"no stco", testMP4(mvhd1000, with(func(t *testTrak) { t.stco = nil })), 0},
		{"stsz short of its table", testMP4(mvhd1000, with(func(t *testTrak) {
			t.stsz = box("stsz", fullBox(0, u32s(0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9)))
		})), 0},
		{"stsz and stts disagree", testMP4(mvhd1000, with(func(t *testTrak) {
			t.stsz = box("stsz", fullBox(0, u32s(100, 11)))
		})), 0},
		{"no samples", testMP4(mvhd1000, with(func(t *testTrak) {
			t.stts = box("stts", fullBox(0, u32s(0)))
			t.stsz = box("stsz", fullBox(0, u32s(0, 0)))
		})), 0},
		{"elst size disagrees with its count", testMP4(mvhd1000, with(func(t *testTrak) {
			t.elst = box("elst", fullBox(0, u32s(2, 181, 2112, 1<<16)))
		})), 0},
		{"edit duration libavformat reads as negative", testMP4(mvhd1000, with(func(t *testTrak) {
			t.elst = box("elst", fullBox(1, u32s(1), u64(1<<63), u64(2112), u32s(1<<16)))
		})), 0},
		{"stts delta libavformat clips", testMP4(mvhd1000, with(func(t *testTrak) {
			t.stts = box("stts", fullBox(0, u32s(1, 10, 0xfffffff0)))
		})), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := readMP4Bytes(t, tt.file)
			if tt.seconds == 0 {
				if !errors.Is(err, errNotPlainMP4) {
					t.Fatalf("readMP4Header: got %+v, %v; want errNotPlainMP4", h, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("readMP4Header: %v", err)
			}
			want := mp4Header{duration: 0.25, streams: []mp4Stream{{codecType: "audio", trackID: 7, seconds: tt.seconds, frames: 10}}}
			if len(h.streams) != 1 || h.duration != want.duration || h.streams[0] != want.streams[0] {
				t.Errorf("readMP4Header: got %+v, want %+v", h, want)
			}
		})
	}
}

// TestRescale checks the av_rescale arithmetic at its rounding and range boundaries.
func TestRescale(t *testing.T) {
	tests := []struct {
		a    uint64
		b, c uint32
		want int64
		ok   bool
	}{
		{181, 44100, 1000, 7982, true}, // 7982.1
		{1, 1, 2, 1, true},             // a half rounds away from zero
		{1, 1, 3, 0, true},
		{math.MaxInt64, 1, 1, math.MaxInt64, true},
		{math.MaxInt64, 2, 1, 0, false},
		{math.MaxUint64, 1, 1, 0, false},
		{1 << 62, 1 << 31, 1 << 30, 0, false},
		{1 << 62, 1 << 30, 1 << 31, 1 << 61, true},
	}
	for _, tt := range tests {
		got, ok := rescale(tt.a, tt.b, tt.c)
		if got != tt.want && ok || ok != tt.ok {
			t.Errorf("rescale(%d, %d, %d): got %d, %v; want %d, %v", tt.a, tt.b, tt.c, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzReadMP4Header checks that no input makes the reader panic, that what it accepts is sane (durations
// and counts non-negative and finite, a sample in every stream), and that a box appended after the moov
// changes nothing.
func FuzzReadMP4Header(f *testing.F) {
	dir := f.TempDir()
	runFFmpeg(f, dir, "-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=8000",
		"-t", "0.2", "-c:v", "libx264", "-preset", "veryfast", "-bsf:v", "filter_units=remove_types=6",
		"-c:a", "aac", "-b:a", "8k", "seed.mp4")
	seed, err := os.ReadFile(filepath.Join(dir, "seed.mp4"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(testMP4(mvhd1000, defaultTrak().box()))
	f.Add([]byte("this is not media\n"))
	// One file for the input and one with a box appended: a fuzz function runs one input at a time.
	path, more := filepath.Join(dir, "in.mp4"), filepath.Join(dir, "more.mp4")
	read := func(t *testing.T, path string, b []byte) (mp4Header, error) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return readMP4Header(path)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := read(t, path, data)
		if err != nil {
			return
		}
		ok := func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }
		if !ok(h.duration) {
			t.Fatalf("format duration %v", h.duration)
		}
		for i, s := range h.streams {
			if !ok(s.seconds) || s.frames <= 0 || s.trackID == 0 || s.codecType == "" {
				t.Fatalf("stream %d: %+v", i, s)
			}
		}
		h2, err := read(t, more, append(data[:len(data):len(data)], box("free", []byte("more"))...))
		if err != nil || !sameHeader(h2, h) {
			t.Fatalf("with a free box appended: %+v, %v; without: %+v", h2, err, h)
		}
	})
}

// sameHeader reports whether a and b are equal.
func sameHeader(a, b mp4Header) bool {
	if a.duration != b.duration || len(a.streams) != len(b.streams) {
		return false
	}
	for i := range a.streams {
		if a.streams[i] != b.streams[i] {
			return false
		}
	}
	return true
}

// outputInfo answers from the moov for a plain MP4 without starting ffprobe (here one that cannot start), and
// asks ffprobe for anything else, a fragmented MP4 or an MPEG-TS, with the same answer ffprobe gives.
func TestOutputInfo(t *testing.T) {
	dir := t.TempDir()
	av := cat(video25, sine48k, []string{"-t", "2"}, x264, []string{"-c:a", "aac"})
	runFFmpeg(t, dir, cat(av, []string{"plain.mp4"})...)
	runFFmpeg(t, dir, cat(av, []string{"-movflags", "+frag_keyframe+empty_moov", "frag.mp4"})...)
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	noProbe := filepath.Join(dir, "no-ffprobe")

	plain := filepath.Join(dir, "plain.mp4")
	info, err := outputInfo(ctx, noProbe, plain, log)
	if err != nil {
		t.Fatalf("plain MP4: %v", err)
	}
	want := ffprobeHeader(t, plain)
	if len(info.streams) != len(want.streams) || math.Abs(info.duration-want.duration) > probeTolerance {
		t.Fatalf("plain MP4: %+v, ffprobe says %+v", info, want)
	}
	for i, st := range info.streams {
		w := want.streams[i]
		if st.CodecType != w.codecType || st.frames() != w.frames || math.Abs(st.seconds()-w.seconds) > probeTolerance {
			t.Errorf("plain MP4 stream %d: %+v, ffprobe says %+v", i, st, w)
		}
	}

	frag := filepath.Join(dir, "frag.mp4")
	if _, err := outputInfo(ctx, noProbe, frag, log); err == nil {
		t.Fatal("fragmented MP4 without ffprobe: no error; it must ask ffprobe")
	}
	info, err = outputInfo(ctx, "ffprobe", frag, log)
	if err != nil {
		t.Fatalf("fragmented MP4: %v", err)
	}
	if len(info.streams) != 2 || info.streams[0].CodecType != "video" || math.Abs(info.duration-2) > 0.1 {
		t.Errorf("fragmented MP4, from ffprobe: %+v", info)
	}
}
