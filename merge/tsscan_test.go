package merge

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// tsBuilder writes a minimal MPEG-TS stream: PAT, PMT and PES packets, each PES in whole 188-byte packets.
type tsBuilder struct {
	buf  []byte
	m2ts bool // 192-byte packets with a 4-byte prefix
}

func (b *tsBuilder) packet(pid int, pusi bool, payload []byte) []byte {
	pkt := []byte{tsSync, byte(pid >> 8 & 0x1f), byte(pid), 0x10}
	if pusi {
		pkt[1] |= 0x40
	}
	n := min(len(payload), 184)
	if n < 184 { // stuff with an adaptation field
		pkt[3] = 0x30
		alen := 183 - n
		pkt = append(pkt, byte(alen))
		if alen > 0 {
			pkt = append(pkt, 0)
			for range alen - 1 {
				pkt = append(pkt, 0xff)
			}
		}
	}
	if b.m2ts {
		b.buf = append(b.buf, 0, 0, 0, 0)
	}
	b.buf = append(append(b.buf, pkt...), payload[:n]...)
	return payload[n:]
}

func (b *tsBuilder) psi(pid int, tableID byte, body []byte) {
	n := len(body) + 4
	sec := append([]byte{0, tableID, 0xb0 | byte(n>>8), byte(n)}, body...)
	b.packet(pid, true, append(sec, 0, 0, 0, 0)) // CRC unchecked
}

// stream is one elementary stream of the PMT: stream type and PID.
type stream struct {
	typ byte
	pid int
}

func (b *tsBuilder) tables(streams ...stream) {
	b.psi(0, 0, []byte{0, 1, 0xc1, 0, 0, 0, 1, 0xf0, 0x00}) // program 1 → PMT PID 0x1000
	body := []byte{0, 1, 0xc1, 0, 0, 0xe1, 0x00, 0xf0, 0}
	for _, s := range streams {
		body = append(body, s.typ, 0xe0|byte(s.pid>>8), byte(s.pid), 0xf0, 0)
	}
	b.psi(0x1000, 2, body)
}

func (b *tsBuilder) pes(pid int, streamID byte, pts int64, es []byte) {
	p := []byte{0, 0, 1, streamID, 0, 0, 0x80, 0x80, 5,
		0x21 | byte(pts>>30&7)<<1, byte(pts >> 22), byte(pts>>15)<<1 | 1, byte(pts >> 7), byte(pts)<<1 | 1}
	rest := append(p, es...)
	for first := true; len(rest) > 0 || first; first = false {
		rest = b.packet(pid, first, rest)
	}
}

var (
	avcKey    = []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0, 0, 0, 1, 0x65, 0x88, 0x84}
	avcDelta  = []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x41, 0x9a, 0x02}
	avcSEIKey = []byte{0, 0, 0, 1, 0x06, 0x06, 0x01, 0xc4, 0x80, 0, 0, 1, 0x41, 0x9a}
	hevcKey   = []byte{0, 0, 0, 1, 0x46, 0x01, 0x10, 0, 0, 1, 0x26, 0x01, 0xaf}
	hevcDelta = []byte{0, 0, 0, 1, 0x46, 0x01, 0x10, 0, 0, 1, 0x02, 0x01, 0xd0}
	bigFrame  = make([]byte, 1000) // spans several packets
)

const frame25 = ptsHz / 25 // 3600 ticks

// video25 writes n frames at 25 fps from pts, the first a key frame.
func (b *tsBuilder) video25(pts int64, n int) {
	for i := range n {
		es := avcDelta
		if i == 0 {
			es = avcKey
		}
		b.pes(0x100, 0xe0, (pts+int64(i)*frame25)%ptsWrap, append(es, bigFrame...))
	}
}

func TestTSScanner(t *testing.T) {
	av := []stream{{0x1b, 0x100}, {0x0f, 0x101}}
	tests := []struct {
		name        string
		build       func(b *tsBuilder)
		wantFrames  int64
		wantLeading int64
		wantSpan    float64
		wantGap     float64 // seconds; 0: none
		wantGapAt   float64
		wantErr     string // from counted(); "" for nil
	}{
		{
			name:       "steady 25 fps",
			build:      func(b *tsBuilder) { b.tables(av...); b.video25(900000, 50) },
			wantFrames: 50, wantSpan: 2,
		},
		{
			name:       "33-bit wraparound",
			build:      func(b *tsBuilder) { b.tables(av...); b.video25(ptsWrap-10*frame25, 50) },
			wantFrames: 50, wantSpan: 2,
		},
		{
			name: "b-frames in decode order",
			build: func(b *tsBuilder) {
				b.tables(av...)
				for i, k := range []int64{0, 3, 1, 2, 6, 4, 5, 9, 7, 8} {
					es := avcDelta
					if i == 0 {
						es = avcKey
					}
					b.pes(0x100, 0xe0, 1000+k*frame25, es)
				}
			},
			wantFrames: 10, wantSpan: 0.4,
		},
		{
			name: "audio ends after video",
			build: func(b *tsBuilder) {
				b.tables(av...)
				b.video25(0, 25)
				for i := range 6 {
					b.pes(0x101, 0xc0, int64(i)*1920*9, []byte{0xff, 0xf1}) // 8 AAC frames at 48 kHz per PES: 0.192 s
				}
			},
			wantFrames: 25, wantSpan: 1.152,
		},
		{
			name: "hole of 26 frames",
			build: func(b *tsBuilder) {
				b.tables(av...)
				b.video25(0, 25)
				b.video25(50*frame25, 25)
			},
			wantFrames: 50, wantSpan: 3, wantGap: 1.04, wantGapAt: 0.96,
		},
		{
			name: "hole across the wrap",
			build: func(b *tsBuilder) {
				b.tables(av...)
				b.video25(ptsWrap-25*frame25, 25)
				b.video25(25*frame25, 25)
			},
			wantFrames: 50, wantSpan: 3, wantGap: 1.04, wantGapAt: 0.96,
		},
		{
			name: "leading frames before the first key frame",
			build: func(b *tsBuilder) {
				b.tables(av...)
				for i := range 3 {
					b.pes(0x100, 0xe0, int64(i)*frame25, avcDelta)
				}
				b.video25(3*frame25, 10)
			},
			wantFrames: 13, wantLeading: 3, wantSpan: 0.52,
		},
		{
			name: "recovery point SEI is a key frame",
			build: func(b *tsBuilder) {
				b.tables(av...)
				b.pes(0x100, 0xe0, 0, avcSEIKey)
				b.pes(0x100, 0xe0, frame25, avcDelta)
			},
			wantFrames: 2, wantSpan: 0.08,
		},
		{
			name: "hevc",
			build: func(b *tsBuilder) {
				b.tables(stream{0x24, 0x100})
				b.pes(0x100, 0xe0, 0, hevcDelta)
				b.pes(0x100, 0xe0, frame25, hevcKey)
				b.pes(0x100, 0xe0, 2*frame25, hevcDelta)
			},
			wantFrames: 3, wantLeading: 1, wantSpan: 0.12,
		},
		{
			name: "m2ts",
			build: func(b *tsBuilder) {
				b.m2ts = true
				b.tables(av...)
				b.video25(0, 25)
			},
			wantFrames: 25, wantSpan: 1,
		},
		{
			name: "garbage between packets is skipped",
			build: func(b *tsBuilder) {
				b.tables(av...)
				b.video25(0, 10)
				b.buf = append(b.buf, "this is not media, nor a sync byte\n"...)
				b.video25(10*frame25, 10)
			},
			wantFrames: 20, wantSpan: 0.8,
		},
		{
			name: "audio only",
			build: func(b *tsBuilder) {
				b.tables(stream{0x0f, 0x101})
				for i := range 10 {
					b.pes(0x101, 0xc0, int64(i)*1920*9, []byte{0xff, 0xf1})
				}
			},
			wantSpan: 1.92,
		},
		{
			name:    "no key frame",
			build:   func(b *tsBuilder) { b.tables(av...); b.pes(0x100, 0xe0, 0, avcDelta) },
			wantErr: "no key frame", wantFrames: 1, wantLeading: 1,
		},
		{
			name:    "mpeg-2 video cannot be counted",
			build:   func(b *tsBuilder) { b.tables(stream{0x02, 0x100}) },
			wantErr: "other than H.264/HEVC",
		},
		{
			name:    "no program map",
			build:   func(b *tsBuilder) { b.video25(0, 5) },
			wantErr: "no program map table",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b tsBuilder
			tt.build(&b)
			s := newTSScanner(b.buf)
			s.Write(b.buf)
			if s.frames != tt.wantFrames || s.leading != tt.wantLeading {
				t.Errorf("frames, leading: got %d, %d, want %d, %d", s.frames, s.leading, tt.wantFrames, tt.wantLeading)
			}
			err := s.counted()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("counted(): got %v, want %q", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got := s.span(); math.Abs(got-tt.wantSpan) > 1e-6 {
				t.Errorf("span(): got %.4f, want %.4f", got, tt.wantSpan)
			}
			if math.Abs(s.gap-tt.wantGap) > 1e-6 || math.Abs(s.gapAt-tt.wantGapAt) > 1e-6 {
				t.Errorf("gap: got %.3fs at %.3fs, want %.3fs at %.3fs", s.gap, s.gapAt, tt.wantGap, tt.wantGapAt)
			}
			// Any split into writes gives the same result.
			c := newTSScanner(b.buf)
			for p := b.buf; len(p) > 0; {
				n := min(len(p), 7)
				c.Write(p[:n])
				p = p[n:]
			}
			if !sameScan(c, s) {
				t.Errorf("written 7 bytes at a time: frames %d span %.3f, whole: frames %d span %.3f",
					c.frames, c.span(), s.frames, s.span())
			}
		})
	}
}

// sameScan compares two scanners' state, ignoring stale bytes past the held partial packet.
func sameScan(a, b *tsScanner) bool {
	x, y := *a, *b
	clear(x.part[x.partN:])
	clear(y.part[y.partN:])
	return x == y
}

// TestTSScannerRealSegments scans encoder-made segments and compares with what ffprobe counts in them.
func TestTSScannerRealSegments(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	s := newTSScanner(m.Bytes(0))
	for i := range m.Segments {
		s.segment = i
		s.Write(m.Bytes(i))
	}
	if err := s.counted(); err != nil {
		t.Fatalf("counted(): %v", err)
	}
	if s.frames != int64(m.VideoPackets) || s.leading != 0 {
		t.Errorf("frames %d (leading %d), want ffprobe's %d video packets", s.frames, s.leading, m.VideoPackets)
	}
	if got := s.span(); math.Abs(got-m.TotalSeconds) > 0.1 {
		t.Errorf("span(): got %.3f, want %.3f", got, m.TotalSeconds)
	}
	if s.gap != 0 {
		t.Errorf("gap of %.3fs at %.3fs in a whole stream", s.gap, s.gapAt)
	}
}

// FuzzTSScanner checks that the scanner never panics on any bytes, never counts more frames than packets,
// and gives the same result however the input is split into writes.
func FuzzTSScanner(f *testing.F) {
	var b tsBuilder
	b.tables(stream{0x1b, 0x100}, stream{0x0f, 0x101})
	b.video25(ptsWrap-2*frame25, 4)
	b.pes(0x101, 0xc0, 100, []byte{0xff, 0xf1})
	f.Add(b.buf, uint16(100))
	f.Add([]byte("this is not media\n"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		s := newTSScanner(data)
		s.Write(data)
		if s.frames > s.packets || s.leading < 0 || s.leading > s.frames {
			t.Fatalf("frames %d leading %d from %d packets", s.frames, s.leading, s.packets)
		}
		if s.packets > int64(len(data)/188) {
			t.Fatalf("%d packets in %d bytes", s.packets, len(data))
		}
		if s.video.seen() && s.video.min > s.video.max || s.span() < 0 {
			t.Fatalf("video PTS %d..%d, span %.3f", s.video.min, s.video.max, s.span())
		}
		c := newTSScanner(data)
		k := min(int(split), len(data))
		c.Write(data[:k])
		c.Write(data[k:])
		if !sameScan(c, s) {
			t.Fatalf("split at %d: frames %d, whole: %d", k, c.frames, s.frames)
		}
	})
}

// TestFrameCountMismatch proves the frame check can fail: the output must hold every frame that went in.
func TestFrameCountMismatch(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	out := filepath.Join(t.TempDir(), "out.mp4")
	mg, err := Start(context.Background(), Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Segments {
		if err := mg.Append(s); err != nil {
			t.Fatal(err)
		}
	}
	mg.ts.frames += 2 // as if ffmpeg had dropped two frames
	_, err = mg.Finish()
	if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "video frames") {
		t.Fatalf("Finish: got %v, want ErrVerify about video frames", err)
	}
	mg.Abort()
}

// TestAllowGaps merges with a segment left out on purpose: the hole is accepted, the frame count still checked.
func TestAllowGaps(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	out := filepath.Join(t.TempDir(), "out.mp4")
	mg, err := Start(context.Background(), Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range m.Segments {
		if i == 4 {
			continue
		}
		if err := mg.Append(s); err != nil {
			t.Fatal(err)
		}
	}
	mg.AllowGaps()
	res, err := mg.Finish()
	if err != nil {
		t.Fatalf("Finish with gaps allowed: %v", err)
	}
	if math.Abs(res.Expected-m.TotalSeconds) > 0.1 {
		t.Errorf("Result.Expected = %.3f, want the whole span %.3f", res.Expected, m.TotalSeconds)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
}

// TestTSScannerAllocs proves the scanner allocates nothing per packet.
func TestTSScannerAllocs(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	seg := m.Bytes(1)
	s := newTSScanner(seg)
	if n := testing.AllocsPerRun(10, func() { s.Write(seg) }); n != 0 {
		t.Errorf("Write of a %d-byte segment: %.0f allocations, want 0", len(seg), n)
	}
}

// TestFirstSegmentMidGOP merges a stream whose first segment starts after its key frame: ffmpeg's stream copy
// drops the frames before the next key frame, and the check must expect exactly that.
func TestFirstSegmentMidGOP(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	dir := t.TempDir()
	segs, _, err := m.CopyTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the video packets of the first frame (the key frame) from segment 0.
	in := m.Bytes(0)
	s := newTSScanner(in)
	s.Write(in[:188*4]) // PAT, PMT
	var kept []byte
	starts := 0
	for p := in; len(p) >= 188; p = p[188:] {
		pid := int(p[1]&0x1f)<<8 | int(p[2])
		if pid == s.videoPID && p[1]&0x40 != 0 {
			starts++
		}
		if pid == s.videoPID && starts == 1 {
			continue
		}
		kept = append(kept, p[:188]...)
	}
	if s.videoPID < 0 || starts < 3 {
		t.Fatalf("segment 0: video PID %d, %d frames", s.videoPID, starts)
	}
	if err := os.WriteFile(segs[0], kept, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.mp4")
	mg, err := Start(context.Background(), Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range segs {
		if err := mg.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	if mg.ts.leading == 0 {
		t.Fatal("scanner found no frames before the first key frame")
	}
	if _, err := mg.Finish(); err != nil {
		t.Fatalf("Finish (%d frames fed, %d before the first key frame): %v", mg.ts.frames, mg.ts.leading, err)
	}
	v, _, err := testmedia.CountPackets(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if want := mg.ts.frames - mg.ts.leading; int64(v) != want {
		t.Errorf("output has %d video frames, want %d fed minus %d leading", v, mg.ts.frames, mg.ts.leading)
	}
}

// TestFallbackProbing covers MPEG-TS the scanner cannot follow: verification falls back to probing, which
// still finds the expected duration and a missing segment.
func TestFallbackProbing(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	tests := []struct {
		name    string
		skip    int // segment left out; -1 none
		wantErr error
	}{
		{name: "whole", skip: -1},
		{name: "missing middle segment", skip: 4, wantErr: ErrVerify},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.mp4")
			mg, err := Start(context.Background(), Options{Output: out})
			if err != nil {
				t.Fatal(err)
			}
			defer mg.Abort()
			for i, s := range m.Segments {
				if i == tt.skip {
					continue
				}
				if err := mg.Append(s); err != nil {
					t.Fatal(err)
				}
			}
			mg.ts.otherVideo = true // as if the codec were one the scanner cannot count
			res, err := mg.Finish()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Finish: got %v, want %v", err, tt.wantErr)
			}
			if err == nil && math.Abs(res.Expected-m.TotalSeconds) > 0.1 {
				t.Errorf("Result.Expected = %.3f, want %.3f", res.Expected, m.TotalSeconds)
			}
			if err != nil && !strings.Contains(err.Error(), "jumps") {
				t.Errorf("error %q does not come from the output's timestamps", err)
			}
		})
	}
}
