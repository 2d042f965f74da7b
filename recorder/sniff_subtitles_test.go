package recorder

import (
	"errors"
	"strings"
	"testing"
)

// TestFetcherSniff: a subtitle track takes WebVTT and nothing else; every other track takes media and not
// WebVTT.
func TestFetcherSniff(t *testing.T) {
	ts := make([]byte, 376)
	ts[0], ts[188] = 0x47, 0x47
	tests := []struct {
		name      string
		subtitles bool
		body      string
		wantErr   string // "" accepts
	}{
		{name: "webvtt for subtitles", subtitles: true, body: "WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n"},
		{name: "webvtt with a bom for subtitles", subtitles: true, body: "\ufeffWEBVTT\r\n"},
		{name: "html for subtitles", subtitles: true, body: "<!DOCTYPE html><p>denied", wantErr: "(HTML, not WebVTT subtitles)"},
		{name: "mpeg-ts for subtitles", subtitles: true, body: string(ts), wantErr: "(MPEG-TS, not WebVTT subtitles)"},
		{name: "garbage for subtitles", subtitles: true, body: "\x00\x01\x02", wantErr: "00 01 02, not WebVTT"},
		{name: "webvtt for video", body: "WEBVTT\n", wantErr: "(WebVTT, not video)"},
		{name: "mpeg-ts for video", body: string(ts)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fetcher{subtitles: tt.subtitles}
			err := f.sniff([]byte(tt.body))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("sniff: got %v, want nil", err)
			case tt.wantErr != "" && (!errors.Is(err, ErrNotMedia) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("sniff: got %v, want ErrNotMedia containing %q", err, tt.wantErr)
			}
		})
	}
}
