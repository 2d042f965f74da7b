package merge

import (
	"encoding/binary"
	"fmt"
)

// fMP4 facts the scanner relies on (ISO/IEC 14496-12).
const (
	mp4MaxBox       = 16 << 20   // a moov or moof larger than this is not followed
	sampleNonSync   = 0x00010000 // sample_is_non_sync_sample in sample flags
	tfhdBaseOffset  = 0x000001
	tfhdDescIndex   = 0x000002
	tfhdDefDuration = 0x000008
	tfhdDefSize     = 0x000010
	tfhdDefFlags    = 0x000020
	trunDataOffset  = 0x000001
	trunFirstFlags  = 0x000004
	trunDuration    = 0x000100
	trunSize        = 0x000200
	trunFlags       = 0x000400
	trunCTS         = 0x000800
)

// mp4Track is what the scanner learns of one track of a fragmented MP4 stream.
type mp4Track struct {
	handler    string // "vide", "soun", …
	timescale  uint32
	defDur     uint32 // trex defaults
	defFlags   uint32
	samples    int64
	leading    int64 // samples before the first sync sample
	keySeen    bool
	start, end int64 // decode time of the first sample and past the last, in timescale units
	timed      bool  // a fragment was seen
	minDur     int64 // shortest positive sample duration
}

// fmp4Scanner follows a fragmented MP4 byte stream (init segment, then moof/mdat fragments) as ffmpeg's mov
// demuxer reads it from a pipe, and counts what ffmpeg will copy: each track's samples, the sync samples,
// and the decode times (tfdt and the sample durations), so that a hole between fragments shows. It keeps only
// the moov and moof boxes it parses; mdat payloads are skipped as they pass. Anything it cannot follow sets
// err, and the output is then checked by probing instead.
type fmp4Scanner struct {
	hdr  [16]byte // a box header being read
	hdrN int
	skip int64 // bytes of the current box still to pass over; -1: to the end of the stream
	box  []byte
	want int // bytes the box being collected has in all (header included)

	tracks map[uint32]*mp4Track
	order  []uint32 // track IDs as the moov lists them
	err    error

	segment int // index of the segment being scanned (set by the caller)
	gap     float64
	gapAt   float64
	gapSeg  int
}

func newFMP4Scanner() *fmp4Scanner {
	return &fmp4Scanner{tracks: map[uint32]*mp4Track{}}
}

// Write scans p; it never fails (a failure to follow is kept in err).
func (s *fmp4Scanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && s.err == nil {
		switch {
		case s.skip != 0:
			if s.skip < 0 {
				return n, nil
			}
			c := min(int64(len(p)), s.skip)
			s.skip -= c
			p = p[c:]
		case s.want > 0:
			c := min(len(p), s.want-len(s.box))
			s.box = append(s.box, p[:c]...)
			p = p[c:]
			if len(s.box) == s.want {
				s.parseTop(s.box)
				s.box, s.want = s.box[:0], 0
			}
		default:
			need := 8
			if s.hdrN >= 8 && binary.BigEndian.Uint32(s.hdr[:4]) == 1 {
				need = 16
			}
			c := copy(s.hdr[s.hdrN:need], p)
			s.hdrN += c
			p = p[c:]
			if s.hdrN < need {
				continue
			}
			if need == 8 && binary.BigEndian.Uint32(s.hdr[:4]) == 1 {
				continue // a 64-bit size follows
			}
			s.startBox(need)
		}
	}
	return n, nil
}

// startBox decides, from a complete header of hn bytes, whether the box is collected or passed over.
func (s *fmp4Scanner) startBox(hn int) {
	size := int64(binary.BigEndian.Uint32(s.hdr[:4]))
	typ := string(s.hdr[4:8])
	if hn == 16 {
		size = int64(binary.BigEndian.Uint64(s.hdr[8:16]))
	}
	s.hdrN = 0
	switch {
	case size == 0: // to the end of the stream
		if typ == "moov" || typ == "moof" {
			s.err = fmt.Errorf("%s box without a size", typ)
		}
		s.skip = -1
	case size < int64(hn):
		s.err = fmt.Errorf("%s box of %d bytes", printable(typ), size)
	case typ == "moov" || typ == "moof":
		if size > mp4MaxBox {
			s.err = fmt.Errorf("%s box of %d bytes", typ, size)
			return
		}
		s.box = append(s.box[:0], s.hdr[:hn]...)
		s.want = int(size)
		if s.want == hn {
			s.want = 0
		}
	default:
		s.skip = size - int64(hn)
	}
}

// children calls f with the type and payload of each box in b.
func children(b []byte, f func(typ string, payload []byte)) bool {
	for len(b) >= 8 {
		size := uint64(binary.BigEndian.Uint32(b))
		typ, hn := string(b[4:8]), uint64(8)
		if size == 1 {
			if len(b) < 16 {
				return false
			}
			size, hn = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size == 0 {
			size = uint64(len(b))
		}
		if size < hn || size > uint64(len(b)) {
			return false
		}
		f(typ, b[hn:size])
		b = b[size:]
	}
	return len(b) == 0
}

func (s *fmp4Scanner) parseTop(b []byte) {
	hn := 8
	if binary.BigEndian.Uint32(b) == 1 {
		hn = 16
	}
	payload := b[hn:]
	var ok bool
	switch string(b[4:8]) {
	case "moov":
		ok = children(payload, s.moovChild)
	case "moof":
		ok = children(payload, func(typ string, p []byte) {
			if typ == "traf" && s.err == nil {
				s.traf(p)
			}
		})
	}
	if !ok && s.err == nil {
		s.err = fmt.Errorf("malformed %s box", b[4:8])
	}
}

func (s *fmp4Scanner) moovChild(typ string, p []byte) {
	switch typ {
	case "trak":
		var id uint32
		t := &mp4Track{}
		children(p, func(typ string, p []byte) {
			switch typ {
			case "tkhd":
				id = fullBoxUint(p, 12, 20)
			case "mdia":
				children(p, func(typ string, p []byte) {
					switch typ {
					case "mdhd":
						t.timescale = fullBoxUint(p, 12, 20)
					case "hdlr":
						if len(p) >= 12 {
							t.handler = string(p[8:12])
						}
					}
				})
			}
		})
		if id == 0 || t.timescale == 0 {
			s.err = fmt.Errorf("track without an id or a timescale in the moov")
			return
		}
		if old, ok := s.tracks[id]; ok {
			t.defDur, t.defFlags = old.defDur, old.defFlags // a trex came first
		} else {
			s.order = append(s.order, id)
		}
		s.tracks[id] = t
	case "mvex":
		children(p, func(typ string, p []byte) {
			if typ != "trex" || len(p) < 24 {
				return
			}
			id := binary.BigEndian.Uint32(p[4:])
			t := s.tracks[id]
			if t == nil {
				t = &mp4Track{}
				s.tracks[id] = t
				s.order = append(s.order, id)
			}
			t.defDur, t.defFlags = binary.BigEndian.Uint32(p[12:]), binary.BigEndian.Uint32(p[20:])
		})
	}
}

// fullBoxUint reads the 32-bit field of a full box at v0 (version 0) or v1 (version 1) bytes into p.
func fullBoxUint(p []byte, v0, v1 int) uint32 {
	off := v0
	if len(p) > 0 && p[0] == 1 {
		off = v1
	}
	if len(p) < off+4 {
		return 0
	}
	return binary.BigEndian.Uint32(p[off:])
}

// traf counts the samples of one track fragment and follows its decode times.
func (s *fmp4Scanner) traf(p []byte) {
	var (
		t                 *mp4Track
		defDur, defFlags  uint32
		base              int64 = -1
		runs              [][]byte
		haveDur, haveFlag bool
	)
	children(p, func(typ string, p []byte) {
		switch typ {
		case "tfhd":
			if len(p) < 8 {
				return
			}
			flags := binary.BigEndian.Uint32(p) & 0xffffff
			t = s.tracks[binary.BigEndian.Uint32(p[4:])]
			off := 8
			if flags&tfhdBaseOffset != 0 {
				off += 8
			}
			if flags&tfhdDescIndex != 0 {
				off += 4
			}
			if flags&tfhdDefDuration != 0 && len(p) >= off+4 {
				defDur, haveDur = binary.BigEndian.Uint32(p[off:]), true
				off += 4
			}
			if flags&tfhdDefSize != 0 {
				off += 4
			}
			if flags&tfhdDefFlags != 0 && len(p) >= off+4 {
				defFlags, haveFlag = binary.BigEndian.Uint32(p[off:]), true
			}
		case "tfdt":
			if len(p) >= 8 && p[0] == 0 {
				base = int64(binary.BigEndian.Uint32(p[4:]))
			} else if len(p) >= 12 && p[0] == 1 {
				base = int64(binary.BigEndian.Uint64(p[4:]))
			}
		case "trun":
			runs = append(runs, p)
		}
	})
	if t == nil {
		s.err = fmt.Errorf("track fragment of a track the moov does not list")
		return
	}
	if !haveDur {
		defDur = t.defDur
	}
	if !haveFlag {
		defFlags = t.defFlags
	}
	if base < 0 {
		base = t.end // no tfdt: the fragment follows the previous one
	}
	if t.timed {
		if jump := base - t.end; jump > max(int64(t.timescale)/2, 4*t.minDur) && s.gap == 0 &&
			(t.handler == "vide" || s.firstTimed() == t) {
			s.gap = float64(jump) / float64(t.timescale)
			s.gapAt = float64(t.end-t.start) / float64(t.timescale)
			s.gapSeg = s.segment
		}
	} else {
		t.start, t.timed = base, true
	}
	dt := base
	for _, r := range runs {
		if len(r) < 8 {
			s.err = fmt.Errorf("short trun box")
			return
		}
		flags := binary.BigEndian.Uint32(r) & 0xffffff
		count := int(binary.BigEndian.Uint32(r[4:]))
		off := 8
		if flags&trunDataOffset != 0 {
			off += 4
		}
		first, haveFirst := uint32(0), false
		if flags&trunFirstFlags != 0 {
			if len(r) < off+4 {
				s.err = fmt.Errorf("short trun box")
				return
			}
			first, haveFirst = binary.BigEndian.Uint32(r[off:]), true
			off += 4
		}
		per := 0
		for _, f := range []uint32{trunDuration, trunSize, trunFlags, trunCTS} {
			if flags&f != 0 {
				per += 4
			}
		}
		if count < 0 || len(r) < off+count*per {
			s.err = fmt.Errorf("trun box lists %d samples in %d bytes", count, len(r))
			return
		}
		if per == 0 && count > 1 {
			// Every sample takes the defaults (the first may have its own flags): count them at once, since
			// count is only bounded by the field's width.
			t.sample(defDur, first, haveFirst, defFlags)
			rest := int64(count - 1)
			dt += int64(defDur) * (rest + 1)
			t.samples += rest
			if !t.keySeen {
				if defFlags&sampleNonSync == 0 {
					t.keySeen = true
				} else {
					t.leading += rest
				}
			}
			continue
		}
		for i := 0; i < count; i++ {
			e := r[off+i*per:]
			d, fl := defDur, defFlags
			if i == 0 && haveFirst {
				fl = first
			}
			if flags&trunDuration != 0 {
				d = binary.BigEndian.Uint32(e)
				e = e[4:]
			}
			if flags&trunSize != 0 {
				e = e[4:]
			}
			if flags&trunFlags != 0 {
				fl = binary.BigEndian.Uint32(e)
			}
			t.sample(d, 0, false, fl)
			dt += int64(d)
		}
	}
	t.end = max(t.end, dt)
}

// sample counts one sample of duration d; its flags are first when haveFirst, else flags.
func (t *mp4Track) sample(d, first uint32, haveFirst bool, flags uint32) {
	if haveFirst {
		flags = first
	}
	if d > 0 && (t.minDur == 0 || int64(d) < t.minDur) {
		t.minDur = int64(d)
	}
	t.samples++
	if !t.keySeen {
		if flags&sampleNonSync == 0 {
			t.keySeen = true
		} else {
			t.leading++
		}
	}
}

// firstTimed is the track whose holes count when there is no video: the first the moov lists.
func (s *fmp4Scanner) firstTimed() *mp4Track {
	if len(s.order) == 0 {
		return nil
	}
	return s.tracks[s.order[0]]
}

// video is the first video track, or nil.
func (s *fmp4Scanner) video() *mp4Track {
	for _, id := range s.order {
		if t := s.tracks[id]; t.handler == "vide" {
			return t
		}
	}
	return nil
}

// span is the duration the decode times cover, from the earliest first sample to the latest end, in seconds.
func (s *fmp4Scanner) span() float64 {
	start, end := 0.0, 0.0
	seen := false
	for _, id := range s.order {
		t := s.tracks[id]
		if !t.timed || t.timescale == 0 {
			continue
		}
		a, b := float64(t.start)/float64(t.timescale), float64(t.end)/float64(t.timescale)
		if !seen || a < start {
			start = a
		}
		end = max(end, b)
		seen = true
	}
	if !seen {
		return 0
	}
	return end - start
}

// counted reports whether the scan understood the input well enough to replace probing.
func (s *fmp4Scanner) counted() error {
	switch {
	case s.err != nil:
		return s.err
	case len(s.order) == 0:
		return fmt.Errorf("no moov box")
	case s.video() != nil && !s.video().keySeen:
		return fmt.Errorf("no sync sample found")
	}
	for _, id := range s.order {
		if s.tracks[id].timed {
			return nil
		}
	}
	return fmt.Errorf("no fragments")
}

func printable(typ string) string {
	for _, c := range []byte(typ) {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%q", typ)
		}
	}
	return typ
}

// layout is the tracks of the moov as ffmpeg's mov demuxer will number them (one stream per trak, in order),
// each named for -map by its track ID (the stream id); ok is false before a moov, when following it failed,
// or when a track is neither video ("vide") nor sound ("soun").
func (s *fmp4Scanner) layout() (l []streamInfo, ok bool) {
	if s.err != nil || len(s.order) == 0 {
		return nil, false
	}
	for i, id := range s.order {
		var typ string
		switch s.tracks[id].handler {
		case "vide":
			typ = "video"
		case "soun":
			typ = "audio"
		default:
			return nil, false
		}
		l = append(l, streamInfo{Index: i, CodecType: typ, mapID: int(id)})
	}
	return l, true
}
