package dash

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// sidxBox builds a sidx box: version 0 or 1, the timescale, first_offset and
// references of (size, duration); a negative size marks a reference to
// another sidx.
func sidxBox(version byte, timescale uint32, firstOffset uint64, refs ...[2]int64) []byte {
	var body []byte
	body = append(body, version, 0, 0, 0)
	body = binary.BigEndian.AppendUint32(body, 1) // reference_ID
	body = binary.BigEndian.AppendUint32(body, timescale)
	if version == 0 {
		body = binary.BigEndian.AppendUint32(body, 0)
		body = binary.BigEndian.AppendUint32(body, uint32(firstOffset))
	} else {
		body = binary.BigEndian.AppendUint64(body, 0)
		body = binary.BigEndian.AppendUint64(body, firstOffset)
	}
	body = binary.BigEndian.AppendUint16(body, 0)
	body = binary.BigEndian.AppendUint16(body, uint16(len(refs)))
	for _, r := range refs {
		size := uint32(r[0])
		if r[0] < 0 {
			size = 1<<31 | uint32(-r[0])
		}
		body = binary.BigEndian.AppendUint32(body, size)
		body = binary.BigEndian.AppendUint32(body, uint32(r[1]))
		body = binary.BigEndian.AppendUint32(body, 1<<31)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(8+len(body))), append([]byte("sidx"), body...)...)
}

func TestParseSIDX(t *testing.T) {
	free := append(binary.BigEndian.AppendUint32(nil, 16), []byte("free\x00\x00\x00\x00\x00\x00\x00\x00")...)
	v0 := sidxBox(0, 1000, 0, [2]int64{100, 2000}, [2]int64{50, 1500})
	tests := []struct {
		name    string
		b       []byte
		offset  int64
		want    string
		wantErr string
	}{
		{name: "version 0", b: v0, offset: 1000, want: fmt.Sprintf("%d+100 2.000, %d+50 1.500", 1000+len(v0), 1100+len(v0))},
		{name: "version 1 with first_offset", b: sidxBox(1, 90000, 8, [2]int64{10, 90000}), offset: 0, want: "60+10 1.000"}, // a 52-byte box, then 8 bytes skipped,
		{name: "a free box first", b: append(free, v0...), offset: 0, want: fmt.Sprintf("%d+100 2.000, %d+50 1.500", 16+len(v0), 116+len(v0))},
		{name: "more bytes after the box", b: append(append([]byte{}, v0...), "moof"...), offset: 0, want: fmt.Sprintf("%d+100 2.000, %d+50 1.500", len(v0), 100+len(v0))},
		{name: "hierarchical", b: sidxBox(0, 1, 0, [2]int64{-40, 1}), wantErr: "reference_type 1: reference 0 points to another sidx"},
		{name: "zero timescale", b: sidxBox(0, 0, 0, [2]int64{1, 1}), wantErr: "timescale 0: must be positive"},
		{name: "empty reference", b: sidxBox(0, 1, 0, [2]int64{0, 1}), wantErr: "referenced_size 0"},
		{name: "no references", b: sidxBox(0, 1, 0), wantErr: "reference_count 0"},
		{name: "truncated", b: v0[:len(v0)-4], wantErr: "box does not fit the"},
		{name: "count past the box", b: func() []byte { b := sidxBox(0, 1, 0, [2]int64{1, 1}); b[31] = 9; return b }(), wantErr: "reference_count 9"},
		{name: "no sidx", b: free, wantErr: "no sidx box"},
		{name: "empty", b: nil, wantErr: "no sidx box"},
		{name: "version 2", b: func() []byte { b := sidxBox(0, 1, 0, [2]int64{1, 1}); b[8] = 2; return b }(), wantErr: "version 2"},
		{name: "first_offset past the largest file", b: sidxBox(1, 1, 1<<63, [2]int64{1, 1}), wantErr: "first_offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subs, err := ParseSIDX(tt.b, tt.offset)
			if tt.wantErr != "" {
				var se *SIDXError
				if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSIDX: got %v, %v; want a *SIDXError containing %q", subs, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSIDX: %v", err)
			}
			var got []string
			for _, s := range subs {
				got = append(got, fmt.Sprintf("%d+%d %.3f", s.Range.Offset, s.Range.Length, s.Duration))
			}
			if g := strings.Join(got, ", "); g != tt.want {
				t.Errorf("ParseSIDX: got %s, want %s", g, tt.want)
			}
		})
	}
}

// A SegmentBase manifest plans in two steps; a bad index names the file.
func TestPlanIndexedErrors(t *testing.T) {
	in := mpd(`mediaPresentationDuration="PT3S"`, `<Period><AdaptationSet contentType="video"><Representation id="v" bandwidth="1"><BaseURL>v.mp4</BaseURL>`+
		`<SegmentBase indexRange="800-899"><Initialization range="0-799"/></SegmentBase></Representation></AdaptationSet></Period>`)
	m, err := Parse([]byte(in), mustURL(manifestURL))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := m.Indexes(Selection{})
	if err != nil || len(refs) != 1 || refs[0].URL != "https://h.example/d/v.mp4" || refs[0].Range.Header() != "bytes=800-899" {
		t.Fatalf("Indexes: got %+v, %v; want v.mp4 bytes=800-899", refs, err)
	}
	_, err = m.PlanIndexed(Selection{}, map[IndexRef][]byte{refs[0]: []byte("not a box")})
	if err == nil || !strings.Contains(err.Error(), `representation "v": index https://h.example/d/v.mp4 bytes=800-899: dash: sidx at byte 800`) {
		t.Errorf("PlanIndexed(garbage): got %v", err)
	}
	box := sidxBox(0, 10, 0, [2]int64{300, 20}, [2]int64{200, 10})
	p, err := m.PlanIndexed(Selection{}, map[IndexRef][]byte{refs[0]: box})
	if err != nil {
		t.Fatalf("PlanIndexed: %v", err)
	}
	start := 800 + len(box)
	diff(t, "PlanIndexed", render(p), []string{
		"video init https://h.example/d/v.mp4 0-799",
		fmt.Sprintf("video 0 #1 https://h.example/d/v.mp4 %d-%d 2.000", start, start+299),
		fmt.Sprintf("video 0 #2 https://h.example/d/v.mp4 %d-%d 1.000", start+300, start+499),
	})
}
