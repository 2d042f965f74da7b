package dash

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/streamsnatcher/streamsnatcher/plan"
)

// A Subsegment is one entry of a sidx box: where a media segment is in the
// file and how long it plays.
type Subsegment struct {
	Range    plan.ByteRange
	Duration float64 // seconds
}

// A SIDXError reports what is wrong with a segment index box.
type SIDXError struct {
	Offset int64  // in the file, of the box or field at fault
	Field  string // "size", "reference_type", …
	Value  uint64 // as read
	Msg    string
}

func (e *SIDXError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("dash: sidx at byte %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("dash: sidx at byte %d: %s %d: %s", e.Offset, e.Field, e.Value, e.Msg)
}

// ParseSIDX reads the segment index (ISO/IEC 14496-12 sidx box) in b, which
// holds the bytes of a SegmentBase@indexRange and starts at byte offset of
// the file. Boxes before the sidx (free, styp) are skipped. Each subsegment's
// range is absolute in the file: the first follows the end of the box by the
// box's first_offset and the others follow each other. A hierarchical index
// (a reference to another sidx) is refused. Errors are *SIDXError.
func ParseSIDX(b []byte, offset int64) ([]Subsegment, error) {
	bad := func(off int64, field string, v uint64, msg string) error {
		return &SIDXError{Offset: off, Field: field, Value: v, Msg: msg}
	}
	if offset < 0 {
		return nil, bad(offset, "", 0, "negative offset")
	}
	for {
		if len(b) < 8 {
			return nil, bad(offset, "", 0, "no sidx box in the index range")
		}
		size, hdr := uint64(binary.BigEndian.Uint32(b)), 8
		if size == 1 {
			if len(b) < 16 {
				return nil, bad(offset, "size", size, "truncated large size")
			}
			size, hdr = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size < uint64(hdr) || size > uint64(len(b)) {
			return nil, bad(offset, "size", size, fmt.Sprintf("box does not fit the %d bytes given", len(b)))
		}
		if string(b[4:8]) != "sidx" {
			b, offset = b[size:], offset+int64(size)
			continue
		}
		return parseSIDXBox(b[hdr:size], offset, int64(size))
	}
}

func parseSIDXBox(b []byte, offset, size int64) ([]Subsegment, error) {
	bad := func(field string, v uint64, msg string) error {
		return &SIDXError{Offset: offset, Field: field, Value: v, Msg: msg}
	}
	if len(b) < 4+4+4 {
		return nil, bad("", 0, "truncated")
	}
	version := b[0]
	timescale := uint64(binary.BigEndian.Uint32(b[8:]))
	if timescale == 0 {
		return nil, bad("timescale", 0, "must be positive")
	}
	b = b[12:]
	var firstOffset uint64
	switch version {
	case 0:
		if len(b) < 8 {
			return nil, bad("", 0, "truncated")
		}
		firstOffset, b = uint64(binary.BigEndian.Uint32(b[4:])), b[8:]
	case 1:
		if len(b) < 16 {
			return nil, bad("", 0, "truncated")
		}
		firstOffset, b = binary.BigEndian.Uint64(b[8:]), b[16:]
	default:
		return nil, bad("version", uint64(version), "want 0 or 1")
	}
	if len(b) < 4 {
		return nil, bad("", 0, "truncated")
	}
	count := int(binary.BigEndian.Uint16(b[2:]))
	b = b[4:]
	if len(b) < count*12 {
		return nil, bad("reference_count", uint64(count), fmt.Sprintf("the box holds %d references", len(b)/12))
	}
	if count == 0 {
		return nil, bad("reference_count", 0, "no references")
	}
	pos := uint64(offset) + uint64(size)
	if firstOffset > math.MaxInt64-pos {
		return nil, bad("first_offset", firstOffset, "out of range")
	}
	pos += firstOffset
	out := make([]Subsegment, count)
	for i := range out {
		ref := binary.BigEndian.Uint32(b[i*12:])
		dur := binary.BigEndian.Uint32(b[i*12+4:])
		if ref>>31 == 1 {
			return nil, bad("reference_type", 1, fmt.Sprintf("reference %d points to another sidx (a hierarchical index): not supported", i))
		}
		n := uint64(ref & 0x7fffffff)
		if n == 0 {
			return nil, bad("referenced_size", 0, fmt.Sprintf("reference %d is empty", i))
		}
		if n > math.MaxInt64-pos {
			return nil, bad("referenced_size", n, fmt.Sprintf("reference %d runs past the largest file", i))
		}
		out[i] = Subsegment{
			Range:    plan.ByteRange{Offset: int64(pos), Length: int64(n)},
			Duration: float64(dur) / float64(timescale),
		}
		pos += n
	}
	return out, nil
}
