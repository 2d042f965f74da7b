package merge

import (
	"fmt"
	"testing"
)

// TestScannerLayout: the streams a mux maps come from the PMT or the moov when every stream's kind is
// certain, and from ffprobe otherwise.
func TestScannerLayout(t *testing.T) {
	ts := func(streams ...stream) []byte {
		var b tsBuilder
		b.tables(streams...)
		b.video25(0, 2)
		return b.buf
	}
	moov := func(handlers ...string) []byte {
		var b []byte
		for i, h := range handlers {
			b = append(b, fmp4Init(uint32(i+1), h, 90000, 3600)...)
		}
		return b
	}
	tests := []struct {
		name string
		ts   []byte // scanned as MPEG-TS
		mp4  []byte // scanned as fMP4
		want string // "kind@index#id ..." or "-" for not ok
	}{
		{name: "ts video and audio", ts: ts(stream{0x1b, 0x100}, stream{0x0f, 0x101}), want: "video@0#256 audio@1#257"},
		{name: "ts audio only", ts: ts(stream{0x0f, 0x101}), want: "audio@0#257"},
		{name: "ts hevc and ac-3", ts: ts(stream{0x24, 0x100}, stream{0x81, 0x101}), want: "video@0#256 audio@1#257"},
		{name: "ts timed ID3 is no track's", ts: ts(stream{0x1b, 0x100}, stream{0x15, 0x102}, stream{0x0f, 0x101}),
			want: "video@0#256 audio@2#257"},
		{name: "ts private data needs ffprobe", ts: ts(stream{0x1b, 0x100}, stream{0x06, 0x101}), want: "-"},
		{name: "ts without a PMT", ts: (&tsBuilder{}).buf, want: "-"},
		{name: "fmp4 video", mp4: moov("vide"), want: "video@0#1"},
		{name: "fmp4 sound", mp4: moov("soun"), want: "audio@0#1"},
		{name: "fmp4 subtitles need ffprobe", mp4: moov("subt"), want: "-"},
		{name: "fmp4 without a moov", mp4: box("ftyp", []byte("iso6")), want: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				l  []streamInfo
				ok bool
			)
			if tt.ts != nil || tt.mp4 == nil {
				s := newTSScanner(tt.ts)
				s.Write(tt.ts)
				l, ok = s.layout()
			} else {
				s := newFMP4Scanner()
				s.Write(tt.mp4)
				l, ok = s.layout()
			}
			got := "-"
			if ok {
				got = ""
				for i, st := range l {
					if i > 0 {
						got += " "
					}
					got += fmt.Sprintf("%s@%d#%d", st.CodecType, st.Index, st.mapID)
				}
			}
			if got != tt.want {
				t.Errorf("layout: got %q, want %q", got, tt.want)
			}
		})
	}
}
