package merge

import (
	"encoding/binary"
	"math"
	"testing"
)

// box returns an ISO BMFF box of type typ around the payloads.
func box(typ string, payloads ...[]byte) []byte {
	n := 8
	for _, p := range payloads {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range payloads {
		b = append(b, p...)
	}
	return b
}

func u32s(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// fmp4Init is an init segment of one track: id, handler ("vide", "soun"), timescale, trex default duration.
func fmp4Init(id uint32, handler string, timescale, defDur uint32) []byte {
	tkhd := u32s(0, 0, 0, id) // version/flags, creation, modification, track_ID
	mdhd := u32s(0, 0, 0, timescale)
	hdlr := append(u32s(0, 0), handler...)
	trex := u32s(0, id, 1, defDur, 0, 0)
	return append(box("ftyp", []byte("iso6")),
		box("moov", box("trak", box("tkhd", tkhd), box("mdia", box("mdhd", mdhd), box("hdlr", hdlr))),
			box("mvex", box("trex", trex)))...)
}

// fmp4Fragment is a moof+mdat of n samples of track id from decode time base, each dur long; the first
// key samples are sync samples when key is true (all others are not).
func fmp4Fragment(id uint32, base uint64, n int, dur uint32, key bool) []byte {
	tfhd := u32s(tfhdDefDuration|tfhdDefFlags, id, dur, sampleNonSync)
	tfdt := append([]byte{1, 0, 0, 0}, binary.BigEndian.AppendUint64(nil, base)...)
	trun := u32s(trunFirstFlags|trunSize, uint32(n))
	first := uint32(sampleNonSync)
	if key {
		first = 0
	}
	trun = append(trun, u32s(first)...)
	for range n {
		trun = append(trun, u32s(3)...)
	}
	return append(box("moof", box("traf", box("tfhd", tfhd), box("tfdt", tfdt), box("trun", trun))),
		box("mdat", make([]byte, 3*n))...)
}

func TestFMP4Scanner(t *testing.T) {
	init := fmp4Init(1, "vide", 12800, 512) // 25 fps
	frag := func(k int, key bool) []byte { return fmp4Fragment(1, uint64(k)*25*512, 25, 512, key) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	tests := []struct {
		name          string
		data          []byte
		frames, lead  int64
		span, gap     float64
		gapSeg        int
		cannotFollow  bool
		splitEachByte bool
	}{
		{name: "three fragments", data: cat(init, frag(0, true), frag(1, true), frag(2, true)), frames: 75, span: 3},
		{name: "byte by byte", data: cat(init, frag(0, true), frag(1, true)), frames: 50, span: 2, splitEachByte: true},
		{name: "hole", data: cat(init, frag(0, true), frag(2, true)), frames: 50, span: 3, gap: 1, gapSeg: 1},
		{name: "leading non-sync fragment", data: cat(init, frag(0, false), frag(1, true)), frames: 50, lead: 25, span: 2},
		{name: "no init", data: frag(0, true), cannotFollow: true},
		{name: "not mp4", data: []byte("this is not media at all\n"), cannotFollow: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFMP4Scanner()
			if tt.splitEachByte {
				for i := range tt.data {
					s.Write(tt.data[i : i+1])
				}
			} else {
				// Segments arrive as separate writes: split after the init.
				s.Write(tt.data[:min(len(init), len(tt.data))])
				s.segment = 1
				s.Write(tt.data[min(len(init), len(tt.data)):])
			}
			err := s.counted()
			if (err != nil) != tt.cannotFollow {
				t.Fatalf("counted: got %v, want cannot follow %v", err, tt.cannotFollow)
			}
			if tt.cannotFollow {
				return
			}
			v := s.video()
			if v.samples != tt.frames || v.leading != tt.lead {
				t.Errorf("samples %d leading %d, want %d and %d", v.samples, v.leading, tt.frames, tt.lead)
			}
			if math.Abs(s.span()-tt.span) > 1e-9 || math.Abs(s.gap-tt.gap) > 1e-9 {
				t.Errorf("span %.3f gap %.3f, want %.3f and %.3f", s.span(), s.gap, tt.span, tt.gap)
			}
			if tt.gap > 0 && s.gapSeg != tt.gapSeg {
				t.Errorf("gap resumes in segment %d, want %d", s.gapSeg, tt.gapSeg)
			}
		})
	}
}

// FuzzFMP4Scanner: any bytes, split anywhere, give the same counts as in one write, and the counts stay sane.
func FuzzFMP4Scanner(f *testing.F) {
	data := append(fmp4Init(1, "vide", 12800, 512), fmp4Fragment(1, 0, 25, 512, true)...)
	f.Add(data, uint16(100))
	f.Add(append(fmp4Init(2, "soun", 48000, 1024), fmp4Fragment(2, 0, 10, 1024, true)...), uint16(7))
	f.Add([]byte("this is not media\n"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		s := newFMP4Scanner()
		s.Write(data)
		c := newFMP4Scanner()
		k := min(int(split), len(data))
		c.Write(data[:k])
		c.Write(data[k:])
		if (s.err == nil) != (c.err == nil) || s.span() != c.span() || s.gap != c.gap {
			t.Fatalf("split at %d: err %v span %v gap %v; whole: err %v span %v gap %v", k, c.err, c.span(), c.gap, s.err, s.span(), s.gap)
		}
		for id, tr := range s.tracks {
			ct := c.tracks[id]
			if ct == nil || ct.samples != tr.samples || ct.leading != tr.leading {
				t.Fatalf("split at %d: track %d differs", k, id)
			}
			if tr.leading < 0 || tr.leading > tr.samples {
				t.Fatalf("track %d: %d leading of %d samples", id, tr.leading, tr.samples)
			}
		}
		if s.span() < 0 && s.err == nil {
			// Decode times may go backwards in hostile input; span must still not be negative when followed.
			t.Fatalf("span %.3f", s.span())
		}
	})
}
