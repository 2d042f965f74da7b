package merge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"os"
	"strconv"
)

// errNotPlainMP4 means readMP4Header cannot vouch for what ffprobe would say of the file: it is no MP4, a
// fragmented or damaged one, or one using a feature the reader leaves to ffprobe.
var errNotPlainMP4 = errors.New("not a plain MP4")

const (
	mp4MaxMoov      = 64 << 20                // a larger moov box is left to ffprobe
	mp4MaxTimescale = math.MaxInt32           // libavformat reads timescales as int and resets larger ones to 1
	sttsMaxDelta    = math.MaxUint32 - 480000 // libavformat's default max_stts_delta; it clips larger deltas
)

// mp4Header is what a plain (non-fragmented) MP4's moov says, in the terms ffprobe reports.
type mp4Header struct {
	duration float64     // ffprobe's format duration: mvhd duration / mvhd timescale
	streams  []mp4Stream // one per trak, in file order (= ffprobe's stream index order)
}

// mp4Stream is one trak of the moov, in the terms ffprobe reports for the stream libavformat makes of it.
type mp4Stream struct {
	codecType string  // ffprobe's codec_type, from the hdlr handler
	trackID   uint32  // tkhd track_ID, ffprobe's stream id
	seconds   float64 // ffprobe's stream duration: the mdhd duration limited by the sample times and edit list
	frames    int64   // ffprobe's nb_frames: the sample count
}

// notPlain is an errNotPlainMP4 that says why.
func notPlain(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errNotPlainMP4}, args...)...)
}

// readMP4Header reads the durations, stream types and sample counts of the MP4 at path from its moov box, as
// ffprobe 5.1 (libavformat's mov demuxer) reports them. It reads only the top-level box headers and the moov,
// so the cost does not grow with the media data. Files it cannot vouch for give an errNotPlainMP4.
func readMP4Header(path string) (mp4Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return mp4Header{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return mp4Header{}, err
	}
	moov, err := readMoov(f, fi.Size())
	if err == nil {
		var h mp4Header
		h, err = parseMoov(moov)
		if err == nil {
			return h, nil
		}
	}
	return mp4Header{}, fmt.Errorf("%s: %w", path, err)
}

// readMoov walks the top-level boxes of a file of size bytes by their headers and returns the moov payload.
func readMoov(f *os.File, size int64) ([]byte, error) {
	var moov []byte
	var hdr [16]byte
	for off := int64(0); off < size; {
		if size-off < 8 {
			return nil, notPlain("%d stray bytes at the end", size-off)
		}
		if err := readFull(f, hdr[:8], off); err != nil {
			return nil, err
		}
		typ, boxSize, hn := printable(string(hdr[4:8])), uint64(binary.BigEndian.Uint32(hdr[:4])), int64(8)
		switch boxSize {
		case 0: // to the end of the file
			boxSize = uint64(size - off)
		case 1: // a 64-bit largesize follows the type
			if size-off < 16 {
				return nil, notPlain("%s box at %d: truncated header", typ, off)
			}
			if err := readFull(f, hdr[8:16], off+8); err != nil {
				return nil, err
			}
			boxSize, hn = binary.BigEndian.Uint64(hdr[8:16]), 16
		}
		switch {
		case boxSize < uint64(hn):
			return nil, notPlain("%s box at %d: size %d is less than its header", typ, off, boxSize)
		case boxSize > uint64(size-off):
			return nil, notPlain("%s box at %d: %d bytes overrun the end of the file at %d", typ, off, boxSize, size)
		case typ == "moof":
			return nil, notPlain("fragmented: moof box at %d", off)
		case typ == "moov" && moov != nil:
			return nil, notPlain("a second moov box at %d", off)
		case typ == "moov" && boxSize-uint64(hn) > mp4MaxMoov:
			return nil, notPlain("moov box of %d bytes", boxSize)
		case typ == "moov":
			moov = make([]byte, boxSize-uint64(hn))
			if err := readFull(f, moov, off+hn); err != nil {
				return nil, err
			}
		}
		off += int64(boxSize)
	}
	if moov == nil {
		return nil, notPlain("no moov box")
	}
	return moov, nil
}

// readFull reads len(b) bytes at off.
func readFull(f *os.File, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	return fmt.Errorf("read at %d: %w", off, err)
}

// boxes calls f with the type and payload of each child box in b, stopping at f's first error; a child
// that overruns b is an error.
func boxes(parent string, b []byte, f func(typ string, p []byte) error) error {
	var err error
	ok := children(b, func(typ string, p []byte) {
		if err == nil {
			err = f(typ, p)
		}
	})
	if err == nil && !ok {
		err = notPlain("malformed %s box", parent)
	}
	return err
}

// mp4Trak is what one trak box says, before it is reduced to an mp4Stream.
type mp4Trak struct {
	seen                 map[string]bool // the leaf boxes met, to refuse duplicates
	trackID              uint32
	handler              string
	timescale            uint32
	mdhdDur              uint64
	elstDurs             []uint64 // edit durations in the mvhd timescale
	sttsSamples, sttsDur int64
	stszSamples          int64
}

// parseMoov reads the mvhd and each trak of a moov payload.
func parseMoov(moov []byte) (mp4Header, error) {
	var (
		h     mp4Header
		scale uint32
		dur   uint64
		traks []*mp4Trak
	)
	err := boxes("moov", moov, func(typ string, p []byte) error {
		switch typ {
		case "mvhd":
			if scale != 0 || len(traks) > 0 {
				return notPlain("an mvhd box after another or after a trak")
			}
			var err error
			if scale, dur, err = timeHeader("mvhd", p); err != nil {
				return err
			}
		case "trak":
			t := &mp4Trak{seen: map[string]bool{}}
			if err := boxes("trak", p, t.in("trak")); err != nil {
				return fmt.Errorf("track %d: %w", len(traks), err)
			}
			traks = append(traks, t)
		case "mvex":
			return notPlain("fragmented: mvex box in the moov")
		case "udta", "meta":
			// libavformat makes a stream of cover art (ilst/covr); finding the type anywhere in the
			// metadata is cautious, since a false match only costs the ffprobe fallback.
			if bytes.Contains(p, []byte("covr")) {
				return notPlain("cover art in the %s box", typ)
			}
		}
		return nil
	})
	if err != nil {
		return h, err
	}
	if scale == 0 {
		return h, notPlain("no mvhd box")
	}
	us, ok := rescale(dur, 1e6, scale) // libavformat keeps the format duration in microseconds
	if !ok {
		return h, notPlain("mvhd duration %d/%d out of range", dur, scale)
	}
	h.duration = float64(us) / 1e6
	for i, t := range traks {
		s, err := t.stream(scale)
		if err != nil {
			return mp4Header{}, fmt.Errorf("track %d: %w", i, err)
		}
		h.streams = append(h.streams, s)
	}
	return h, nil
}

// trakPath names the parent of each box the trak parser reads: the containers it descends into and the
// leaves it parses. Boxes elsewhere are ignored, as are boxes in the wrong place.
var trakPath = map[string]string{
	"tkhd": "trak", "edts": "trak", "mdia": "trak",
	"elst": "edts",
	"mdhd": "mdia", "hdlr": "mdia", "minf": "mdia",
	"stbl": "minf",
	"stts": "stbl", "stsz": "stbl", "stz2": "stbl", "stsc": "stbl", "stco": "stbl", "co64": "stbl",
}

// in returns the parser of the children of the trak's box of type parent.
func (t *mp4Trak) in(parent string) func(typ string, p []byte) error {
	return func(typ string, p []byte) error {
		switch {
		case trakPath[typ] != parent:
			return nil
		case typ == "edts" || typ == "mdia" || typ == "minf" || typ == "stbl":
			return boxes(typ, p, t.in(typ))
		}
		return t.leaf(typ, p)
	}
}

// leaf reads one full box of the trak.
func (t *mp4Trak) leaf(typ string, p []byte) error {
	if t.seen[typ] || (typ == "stsz" && t.seen["stz2"]) || (typ == "stz2" && t.seen["stsz"]) {
		return notPlain("two %s boxes", typ)
	}
	t.seen[typ] = true
	if len(p) < 4 {
		return notPlain("short %s box", typ)
	}
	if v := p[0]; v > 1 || (v == 1 && typ != "tkhd" && typ != "elst" && typ != "mdhd") {
		return notPlain("%s box of version %d", typ, v)
	}
	v1 := p[0] == 1
	switch typ {
	case "tkhd":
		if t.trackID = fullBoxUint(p, 12, 20); t.trackID == 0 {
			return notPlain("tkhd box without a track ID")
		}
	case "mdhd":
		var err error
		t.timescale, t.mdhdDur, err = timeHeader("mdhd", p)
		return err
	case "hdlr":
		if len(p) < 12 {
			return notPlain("short hdlr box")
		}
		t.handler = string(p[8:12])
	case "elst":
		size := uint64(12)
		if v1 {
			size = 20
		}
		if len(p) < 8 || uint64(len(p)-8) != size*uint64(binary.BigEndian.Uint32(p[4:])) {
			return notPlain("elst box of %d bytes", len(p))
		}
		for e := p[8:]; len(e) > 0; e = e[size:] {
			d := uint64(binary.BigEndian.Uint32(e))
			if v1 {
				d = binary.BigEndian.Uint64(e)
			}
			if d > math.MaxInt64 {
				return notPlain("edit duration %d", d) // libavformat reads it as negative
			}
			t.elstDurs = append(t.elstDurs, d)
		}
	case "stts":
		if len(p) < 8 || uint64(len(p)-8) != 8*uint64(binary.BigEndian.Uint32(p[4:])) {
			return notPlain("stts box of %d bytes", len(p))
		}
		for e := p[8:]; len(e) > 0; e = e[8:] {
			n, d := uint64(binary.BigEndian.Uint32(e)), uint64(binary.BigEndian.Uint32(e[4:]))
			if d > sttsMaxDelta {
				return notPlain("stts sample delta %d", d)
			}
			if n*d > math.MaxInt64-uint64(t.sttsDur) {
				return notPlain("stts durations overflow")
			}
			t.sttsSamples += int64(n)
			t.sttsDur += int64(n * d)
		}
	case "stsz", "stz2":
		if len(p) < 12 {
			return notPlain("short %s box", typ)
		}
		n, bitsEach := uint64(binary.BigEndian.Uint32(p[8:])), uint64(32)
		if typ == "stz2" {
			bitsEach = uint64(p[7])
		} else if binary.BigEndian.Uint32(p[4:]) != 0 {
			bitsEach = 0 // one size for every sample, no table
		}
		if typ == "stz2" && bitsEach != 4 && bitsEach != 8 && bitsEach != 16 {
			return notPlain("stz2 field size %d", bitsEach)
		}
		if uint64(len(p)-12) < (n*bitsEach+7)/8 {
			return notPlain("%s box of %d bytes for %d samples", typ, len(p), n)
		}
		t.stszSamples = int64(n)
	}
	return nil
}

// timeHeader reads the timescale and duration of an mvhd or mdhd box (the two share the layout).
func timeHeader(typ string, p []byte) (scale uint32, dur uint64, err error) {
	switch {
	case len(p) >= 20 && p[0] == 0:
		scale, dur = binary.BigEndian.Uint32(p[12:]), uint64(binary.BigEndian.Uint32(p[16:]))
	case len(p) >= 32 && p[0] == 1:
		scale, dur = binary.BigEndian.Uint32(p[20:]), binary.BigEndian.Uint64(p[24:])
	case len(p) > 0 && p[0] > 1:
		return 0, 0, notPlain("%s box of version %d", typ, p[0])
	default:
		return 0, 0, notPlain("short %s box", typ)
	}
	switch {
	case scale == 0 || scale > mp4MaxTimescale:
		return 0, 0, notPlain("%s timescale %d", typ, scale)
	case dur > math.MaxInt64:
		return 0, 0, notPlain("%s duration %d", typ, dur)
	}
	return scale, dur, nil
}

// stream reduces the trak to what ffprobe reports, given the mvhd timescale.
func (t *mp4Trak) stream(movieScale uint32) (mp4Stream, error) {
	for _, typ := range []string{"tkhd", "mdhd", "hdlr", "stts", "stsc"} {
		if !t.seen[typ] {
			return mp4Stream{}, notPlain("no %s box", typ)
		}
	}
	switch {
	case !t.seen["stsz"] && !t.seen["stz2"]:
		return mp4Stream{}, notPlain("no stsz box")
	case !t.seen["stco"] && !t.seen["co64"]:
		return mp4Stream{}, notPlain("no stco box")
	case t.sttsSamples != t.stszSamples:
		return mp4Stream{}, notPlain("stts counts %d samples, stsz %d", t.sttsSamples, t.stszSamples)
	case t.sttsSamples == 0:
		// libavformat then takes the stream's duration from the format's; rare enough to leave to ffprobe.
		return mp4Stream{}, notPlain("no samples")
	}
	// mov_read_mdhd takes the mdhd duration, mov_read_stts limits it to the sum of the sample deltas, and
	// mov_fix_index to the sum of the edit durations (empty edits included), each rescaled to the media
	// timescale with rounding.
	dur := int64(t.mdhdDur)
	if t.sttsDur > 0 {
		dur = min(dur, t.sttsDur)
	}
	if len(t.elstDurs) > 0 {
		var sum int64
		for _, d := range t.elstDurs {
			r, ok := rescale(d, t.timescale, movieScale)
			if sum += r; !ok || sum < 0 {
				return mp4Stream{}, notPlain("edit durations out of range")
			}
		}
		dur = min(dur, sum)
	}
	return mp4Stream{
		codecType: codecType(t.handler),
		trackID:   t.trackID,
		seconds:   float64(dur) / float64(t.timescale),
		frames:    t.sttsSamples,
	}, nil
}

// codecType is ffprobe's codec_type for a track of the handler type. libavformat also looks at the sample
// description's codec tag, which can turn a track of another handler into any type; for the handlers ffmpeg's
// mp4 muxer writes (vide, soun, sbtl, text, subp, tmcd, ...) the handler alone gives the same answer.
func codecType(handler string) string {
	switch handler {
	case "vide":
		return "video"
	case "soun":
		return "audio"
	case "subt", "text", "sbtl", "clcp", "subp":
		return "subtitle"
	}
	return "data"
}

// rescale is libavformat's av_rescale for non-negative a: a*b/c rounded to nearest, ok false when the result
// is outside int64.
func rescale(a uint64, b, c uint32) (int64, bool) {
	hi, lo := bits.Mul64(a, uint64(b))
	lo, carry := bits.Add64(lo, uint64(c/2), 0)
	hi += carry
	if c == 0 || hi >= uint64(c) {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	return int64(q), q <= math.MaxInt64
}

// outputInfo is what a verification needs of a finished output at path: its duration and each stream's type,
// duration and frame count. A plain MP4's come from its moov, read in Go (a header-only ffprobe costs about
// 0.1 s, nearly all of it ffprobe loading its libraries); any other file, or an MP4 the reader cannot vouch
// for, is asked of ffprobe.
func outputInfo(ctx context.Context, ffprobe, path string, log *slog.Logger) (*sectionInfo, error) {
	h, err := readMP4Header(path)
	if err == nil {
		info := &sectionInfo{path: path, duration: h.duration}
		for i, s := range h.streams {
			info.streams = append(info.streams, streamInfo{Index: i, CodecType: s.codecType,
				Duration: strconv.FormatFloat(s.seconds, 'f', -1, 64), NbFrames: strconv.FormatInt(s.frames, 10)})
		}
		return info, nil
	}
	if !errors.Is(err, errNotPlainMP4) {
		return nil, err
	}
	log.Debug("asking ffprobe", "reason", err)
	out, err := runProbe(ctx, ffprobe, nil, probeStreamArgs(path)...)
	if err != nil {
		return nil, err
	}
	return parseProbe(path, out)
}
