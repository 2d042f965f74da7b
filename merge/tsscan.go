package merge

import "fmt"

// MPEG-TS facts the scanner relies on.
const (
	tsSync     = 0x47
	ptsWrap    = 1 << 33 // PTS is a 33-bit counter at 90 kHz
	ptsHalf    = 1 << 32
	ptsHz      = 90000
	maxAudio   = 4               // audio streams tracked; more are still merged, just not timed
	noPTS      = int64(-1 << 62) // "not seen yet"
	minGapTick = ptsHz / 2       // a jump shorter than 0.5 s is never a hole
	maxES      = 16              // elementary streams of a PMT kept for the stream layout
	maxFrameTk = 10 * ptsHz      // a frame interval longer than 10 s is not a frame interval
	keyScanMax = 64 * 188        // bytes of a video frame searched for a key-frame NAL unit
)

// tsES is one elementary stream a PMT lists.
type tsES struct {
	pid int
	typ byte
}

// tsTrack is the timing of one elementary stream, in decode order, with timestamps unwrapped to 64 bits.
type tsTrack struct {
	last     int64 // PTS of the latest PES
	min, max int64 // earliest and latest PTS
	minDelta int64 // smallest positive interval between consecutive PTS (video: one frame, despite B-frames)
	lastDelt int64 // latest positive interval (audio: one PES)
}

func (t *tsTrack) reset() {
	*t = tsTrack{last: noPTS, min: noPTS, max: noPTS}
}

func (t *tsTrack) seen() bool { return t.max != noPTS }

// add records pts; it returns the jump past the latest PTS so far (0 if none or backwards).
func (t *tsTrack) add(pts int64) (jump int64) {
	if t.last != noPTS {
		if d := pts - t.last; d > 0 {
			if d < maxFrameTk && (t.minDelta == 0 || d < t.minDelta) {
				t.minDelta = d
			}
			if d < maxFrameTk {
				t.lastDelt = d
			}
		}
	}
	if t.max != noPTS && pts > t.max {
		jump = pts - t.max
	}
	t.last = pts
	if t.min == noPTS || pts < t.min {
		t.min = pts
	}
	if t.max == noPTS || pts > t.max {
		t.max = pts
	}
	return jump
}

// tsScanner follows an MPEG-TS byte stream as ffmpeg reads it and counts what ffmpeg will copy: video access
// units (one PES each, as HLS packagers write them), their timestamps and the audio's. It never allocates
// after construction and accepts any bytes: what is not well-formed TS is skipped, as ffmpeg does.
type tsScanner struct {
	stride, lead int // packet size and offset of the sync byte: 188/0 (TS) or 192/4 (M2TS)

	part  [192]byte // a packet split across writes
	partN int

	pmtPID     int // -1 until a PAT names one
	videoPID   int // -1 if none
	videoType  byte
	otherVideo bool // a video stream type the scanner cannot count frames of
	audioPIDs  [maxAudio]int
	nAudio     int
	sawPMT     bool
	es         [maxES]tsES // the latest PMT's elementary streams, in its order
	nES        int
	esOver     bool // the PMT listed more than maxES streams

	packets int64 // TS packets seen (sync byte in place)
	frames  int64 // video PES starts
	leading int64 // video frames before the first key frame (ffmpeg's stream copy drops them)
	keySeen bool

	// key-frame search in the current video PES (only until the first key frame)
	keyScan  bool
	keyBytes int
	zeros    int
	nalNext  bool // the next byte is a NAL unit header
	seiNext  bool // the next byte is an H.264 SEI payload type

	ref   int64 // latest unwrapped PTS of any stream, the reference for unwrapping
	video tsTrack
	audio [maxAudio]tsTrack

	segment int     // index of the segment being scanned (set by the caller)
	gapAt   float64 // seconds from the start where the first hole begins
	gap     float64 // its length in seconds; 0 if none
	gapSeg  int     // the segment in which the stream resumed after the hole
}

func newTSScanner(head []byte) *tsScanner {
	s := &tsScanner{stride: 188, pmtPID: -1, videoPID: -1, ref: noPTS}
	if len(head) > 4 && head[0] != tsSync && head[4] == tsSync {
		s.stride, s.lead = 192, 4
	}
	for i := range s.audioPIDs {
		s.audioPIDs[i] = -1
	}
	s.video.reset()
	for i := range s.audio {
		s.audio[i].reset()
	}
	return s
}

// Write scans p; it never fails.
func (s *tsScanner) Write(p []byte) (int, error) {
	n := len(p)
	// Bytes held over from the last Write are scanned exactly as if the two
	// writes had been one: the same sync search, byte by byte.
	for s.partN > 0 {
		if s.partN <= s.lead { // the sync byte's position is not here yet
			if len(p) == 0 {
				return n, nil
			}
			c := copy(s.part[s.partN:s.lead+1], p)
			s.partN += c
			p = p[c:]
			continue
		}
		if s.part[s.lead] != tsSync { // lost sync: drop one byte and look again
			copy(s.part[:], s.part[1:s.partN])
			s.partN--
			continue
		}
		if len(p) == 0 {
			return n, nil
		}
		c := copy(s.part[s.partN:s.stride], p)
		s.partN += c
		p = p[c:]
		if s.partN == s.stride {
			s.partN = 0
			s.packet(s.part[s.lead:s.stride])
		}
	}
	if len(p) == 0 {
		return n, nil
	}
	for len(p) > 0 {
		if len(p) <= s.lead || p[s.lead] != tsSync {
			if len(p) > s.lead {
				p = p[1:] // lost sync: search byte by byte, like ffmpeg's resync
				continue
			}
		}
		if len(p) < s.stride {
			s.partN = copy(s.part[:], p)
			break
		}
		s.packet(p[s.lead:s.stride])
		p = p[s.stride:]
	}
	return n, nil
}

// packet handles one 188-byte packet starting with the sync byte.
func (s *tsScanner) packet(b []byte) {
	s.packets++
	if b[1]&0x80 != 0 { // transport_error_indicator
		return
	}
	pusi := b[1]&0x40 != 0
	pid := int(b[1]&0x1f)<<8 | int(b[2])
	afc := b[3] >> 4 & 3
	if afc&1 == 0 {
		return // no payload
	}
	off := 4
	if afc == 3 {
		off = 5 + int(b[4])
		if off >= len(b) {
			return
		}
	}
	payload := b[off:]
	switch {
	case pid == 0:
		if pusi {
			s.pat(payload)
		}
	case pid == s.pmtPID:
		if pusi {
			s.pmt(payload)
		}
	case pid == s.videoPID:
		s.videoPacket(payload, pusi)
	default:
		for i := 0; i < s.nAudio; i++ {
			if pid == s.audioPIDs[i] {
				if pusi {
					if pts, ok := pesPTS(payload); ok {
						s.timestamp(&s.audio[i], pts, s.videoPID < 0 && i == 0)
					}
				}
				break
			}
		}
	}
}

// section returns the PSI section that starts in a PUSI payload with the given table id, cut to its length.
func section(payload []byte, tableID byte) []byte {
	if len(payload) < 1 {
		return nil
	}
	ptr := int(payload[0])
	if 1+ptr+3 > len(payload) {
		return nil
	}
	sec := payload[1+ptr:]
	if sec[0] != tableID {
		return nil
	}
	n := 3 + (int(sec[1]&0x0f)<<8 | int(sec[2]))
	if n > len(sec) {
		n = len(sec) // sections spanning packets: use what is here
	}
	if n < 12 {
		return nil
	}
	return sec[:n-4] // without the CRC
}

func (s *tsScanner) pat(payload []byte) {
	sec := section(payload, 0x00)
	for i := 8; i+4 <= len(sec); i += 4 {
		program := int(sec[i])<<8 | int(sec[i+1])
		if program != 0 {
			pid := int(sec[i+2]&0x1f)<<8 | int(sec[i+3])
			if pid != 0 {
				s.pmtPID = pid
			}
			return
		}
	}
}

func (s *tsScanner) pmt(payload []byte) {
	sec := section(payload, 0x02)
	if len(sec) < 12 {
		return
	}
	s.sawPMT = true
	s.videoPID, s.nAudio, s.nES, s.esOver = -1, 0, 0, false
	i := 12 + (int(sec[10]&0x0f)<<8 | int(sec[11]))
	for i+5 <= len(sec) {
		typ := sec[i]
		pid := int(sec[i+1]&0x1f)<<8 | int(sec[i+2])
		i += 5 + (int(sec[i+3]&0x0f)<<8 | int(sec[i+4]))
		if s.nES < maxES {
			s.es[s.nES] = tsES{pid, typ}
			s.nES++
		} else {
			s.esOver = true
		}
		switch typ {
		case 0x1b, 0x24: // H.264, HEVC
			if s.videoPID < 0 {
				s.videoPID, s.videoType = pid, typ
			}
		case 0x01, 0x02, 0x10, 0x42, 0xea: // MPEG-1/2, MPEG-4 part 2, AVS, VC-1
			s.otherVideo = true
		case 0x03, 0x04, 0x0f, 0x11, 0x81, 0x87: // MPEG audio, AAC (ADTS, LATM), AC-3, E-AC-3
			if s.nAudio < maxAudio {
				s.audioPIDs[s.nAudio] = pid
				s.nAudio++
			}
		}
	}
}

func (s *tsScanner) videoPacket(payload []byte, pusi bool) {
	if pusi {
		if len(payload) < 9 || payload[0] != 0 || payload[1] != 0 || payload[2] != 1 {
			s.keyScan = false
			return // not a PES start: ffmpeg skips it too
		}
		s.frames++
		if !s.keySeen {
			s.keyScan, s.keyBytes, s.zeros, s.nalNext, s.seiNext = true, 0, 0, false, false
			s.leading++ // until proven a key frame
		}
		if pts, ok := pesPTS(payload); ok {
			s.timestamp(&s.video, pts, true)
		}
		hdr := 9 + int(payload[8])
		if hdr >= len(payload) {
			return
		}
		payload = payload[hdr:]
	}
	if s.keyScan {
		s.findKey(payload)
	}
}

func (s *tsScanner) foundKey() {
	s.keySeen, s.keyScan = true, false
}

// findKey looks for an IDR (H.264) or IRAP (HEVC) NAL unit or an H.264 recovery point SEI: what ffmpeg's
// parsers mark as a key frame.
func (s *tsScanner) findKey(p []byte) {
	for _, c := range p {
		switch {
		case s.seiNext:
			s.seiNext = false
			if c == 6 { // recovery_point
				s.leading--
				s.foundKey()
				return
			}
		case s.nalNext:
			s.nalNext = false
			var key bool
			if s.videoType == 0x24 {
				t := c >> 1 & 0x3f
				key = t >= 16 && t <= 21
			} else {
				key = c&0x1f == 5
				s.seiNext = c&0x1f == 6
			}
			if key {
				s.leading--
				s.foundKey()
				return
			}
		}
		switch {
		case c == 0:
			s.zeros++
		case c == 1 && s.zeros >= 2:
			s.nalNext, s.zeros = true, 0
		default:
			s.zeros = 0
		}
	}
	s.keyBytes += len(p)
	if s.keyBytes > keyScanMax {
		s.keyScan = false
	}
}

// pesPTS returns the PTS of a PES packet header at the start of payload.
func pesPTS(p []byte) (int64, bool) {
	if len(p) < 14 || p[0] != 0 || p[1] != 0 || p[2] != 1 || p[7]&0x80 == 0 {
		return 0, false
	}
	if p[9]&1 == 0 || p[11]&1 == 0 || p[13]&1 == 0 { // marker bits
		return 0, false
	}
	return int64(p[9]>>1&7)<<30 | int64(p[10])<<22 | int64(p[11]>>1)<<15 | int64(p[12])<<7 | int64(p[13]>>1), true
}

// timestamp unwraps a 33-bit PTS against the latest one of any stream and records it; cont marks the
// stream whose holes count (video, else the first audio).
func (s *tsScanner) timestamp(t *tsTrack, raw int64, cont bool) {
	pts := raw
	if s.ref != noPTS {
		d := (raw - s.ref) & (ptsWrap - 1) // forward distance modulo 2^33
		if d >= ptsHalf {
			d -= ptsWrap // backwards (B-frames, audio behind video)
		}
		pts = s.ref + d
	}
	s.ref = pts
	jump := t.add(pts)
	if cont && s.gap == 0 && jump > max(minGapTick, 4*t.minDelta) {
		s.gap = float64(jump) / ptsHz
		s.gapAt = float64(t.max-jump-s.start()) / ptsHz
		s.gapSeg = s.segment
	}
}

// start is the earliest timestamp of any stream.
func (s *tsScanner) start() int64 {
	m := s.video.min
	for i := range s.audio {
		if a := s.audio[i].min; a != noPTS && (m == noPTS || a < m) {
			m = a
		}
	}
	return m
}

// span is the duration the timestamps cover: from the earliest PTS to the end of the latest frame of any
// stream, in seconds; 0 if there are none.
func (s *tsScanner) span() float64 {
	start := s.start()
	if start == noPTS {
		return 0
	}
	end := int64(noPTS)
	if s.video.seen() {
		end = s.video.max + s.video.minDelta
	}
	for i := range s.audio {
		if a := &s.audio[i]; a.seen() {
			end = max(end, a.max+a.lastDelt)
		}
	}
	return float64(end-start) / ptsHz
}

// counted reports whether the scan understood the input well enough to replace probing: a PMT, timestamps,
// and for video an H.264/HEVC stream whose first key frame was found.
func (s *tsScanner) counted() error {
	switch {
	case !s.sawPMT:
		return fmt.Errorf("no program map table in %d packets", s.packets)
	case s.otherVideo:
		return fmt.Errorf("video codec other than H.264/HEVC")
	case s.videoPID >= 0 && !s.keySeen:
		return fmt.Errorf("no key frame found")
	case s.videoPID >= 0 && !s.video.seen():
		return fmt.Errorf("video without timestamps")
	case s.videoPID < 0 && (s.nAudio == 0 || !s.audio[0].seen()):
		return fmt.Errorf("no timed audio or video stream")
	}
	return nil
}

// tsStreamType is the codec type ffmpeg's MPEG-TS demuxer gives a PMT stream type: "video", "audio", "" for
// a stream no track takes (timed ID3 metadata, SCTE-35 cues: ffmpeg makes them data streams), and false for
// a type this table does not know (private data, whose kind only its descriptors tell: ask ffprobe).
func tsStreamType(typ byte) (string, bool) {
	switch typ {
	case 0x01, 0x02, 0x10, 0x1b, 0x24, 0x42, 0xea: // MPEG-1/2, MPEG-4 part 2, H.264, HEVC, AVS, VC-1
		return "video", true
	case 0x03, 0x04, 0x0f, 0x11, 0x81, 0x87: // MPEG audio, AAC (ADTS, LATM), AC-3, E-AC-3
		return "audio", true
	case 0x15, 0x86: // timed ID3 metadata, SCTE-35
		return "", true
	}
	return "", false
}

// layout is the streams of the latest PMT as ffmpeg's demuxer will number them, each named for -map by its
// PID (the stream id); ok is false when there was no PMT or it lists a stream whose kind the PMT alone does
// not tell.
func (s *tsScanner) layout() (l []streamInfo, ok bool) {
	if !s.sawPMT || s.esOver || s.nES == 0 {
		return nil, false
	}
	for i, es := range s.es[:s.nES] {
		typ, known := tsStreamType(es.typ)
		if !known {
			return nil, false
		}
		if typ != "" {
			l = append(l, streamInfo{Index: i, CodecType: typ, mapID: es.pid})
		}
	}
	return l, true
}
