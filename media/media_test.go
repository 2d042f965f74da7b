package media

import (
	"bytes"
	"strings"
	"testing"
)

// syncs returns n zero bytes with the MPEG-TS sync byte at lead and every stride after it.
func syncs(n, lead, stride int) []byte {
	b := make([]byte, n)
	for i := lead; i < n; i += stride {
		b[i] = 0x47
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// id3 is an ID3v2.4 tag header announcing a body of size bytes, then the body.
func id3(size int) []byte {
	h := []byte{'I', 'D', '3', 4, 0, 0, byte(size >> 21 & 0x7f), byte(size >> 14 & 0x7f), byte(size >> 7 & 0x7f), byte(size & 0x7f)}
	return append(h, make([]byte, size)...)
}

var (
	adts = []byte{0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc}
	mp3  = []byte{0xff, 0xfb, 0x90, 0x64} // MPEG-1 layer III, 128 kb/s, 44.1 kHz
)

func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Format
	}{
		{"mpegts", syncs(400, 0, 188), FormatMPEGTS},
		{"mpegts 189 bytes, both syncs", syncs(189, 0, 188), FormatMPEGTS},
		{"mpegts 189 bytes, no second sync", cat([]byte{0x47}, make([]byte, 188)), FormatUnknown},
		{"mpegts exactly 188 bytes", syncs(188, 0, 188), FormatMPEGTS},
		{"mpegts 187 bytes", syncs(187, 0, 188), FormatMPEGTS},
		{"mpegts one byte", []byte{0x47}, FormatMPEGTS},
		{"sync byte but no second packet", cat([]byte{0x47}, make([]byte, 300)), FormatUnknown},
		{"m2ts", syncs(400, 4, 192), FormatMPEGTS},
		{"m2ts 197 bytes, no second sync", cat(make([]byte, 4), []byte{0x47}, make([]byte, 192)), FormatUnknown},
		{"m2ts short", cat(make([]byte, 4), []byte{0x47, 0x40, 0x00, 0x10}), FormatMPEGTS},
		{"m2ts whose timecode starts with a brace", cat([]byte("{\x00\x00\x00"), syncs(400, 0, 192)), FormatMPEGTS},
		{"fmp4 init", []byte("\x00\x00\x00\x18ftypiso5\x00\x00\x02\x00"), FormatMP4},
		{"fmp4 segment", []byte("\x00\x00\x00\x18stypmsdh"), FormatMP4},
		{"fmp4 fragment", []byte("\x00\x00\x00\x10moof\x00\x00"), FormatMP4},
		{"sidx", []byte("\x00\x00\x00\x2csidx"), FormatMP4},
		{"emsg", []byte("\x00\x00\x00\x2cemsg"), FormatMP4},
		{"prft", []byte("\x00\x00\x00\x20prft"), FormatMP4},
		{"skip", []byte("\x00\x00\x00\x08skip"), FormatMP4},
		{"mdat to the end", []byte("\x00\x00\x00\x00mdat"), FormatMP4},
		{"mdat 64-bit size", []byte("\x00\x00\x00\x01mdat"), FormatMP4},
		{"box size too small", []byte("\x00\x00\x00\x04ftyp"), FormatUnknown},
		{"box cut short", []byte("\x00\x00\x00\x18fty"), FormatUnknown},
		{"unknown box", []byte("\x00\x00\x00\x18abcd"), FormatUnknown},
		{"adts", adts, FormatADTS},
		{"adts two bytes", adts[:2], FormatADTS},
		{"adts mpeg-2 no crc", []byte{0xff, 0xf9, 0x50}, FormatADTS},
		{"layer bits set: mp3 not adts", mp3, FormatMP3},
		{"mp3 mpeg-2 layer iii", []byte{0xff, 0xf3, 0x90}, FormatMP3},
		{"mp3 mpeg-2.5", []byte{0xff, 0xe3, 0x90}, FormatMP3},
		{"mp3 header cut short", mp3[:2], FormatUnknown},
		{"mp3 bad bitrate", []byte{0xff, 0xfb, 0xf0}, FormatUnknown},
		{"mp3 bad sample rate", []byte{0xff, 0xfb, 0x9c}, FormatUnknown},
		{"mpeg audio reserved version", []byte{0xff, 0xeb, 0x90}, FormatUnknown},
		{"id3 then adts (packed audio)", cat(id3(5), adts), FormatADTS},
		{"id3 then mp3", cat(id3(5), mp3), FormatMP3},
		{"id3 then something else", cat(id3(5), []byte("xyz")), FormatMP3},
		{"id3 longer than b", id3(5)[:12], FormatMP3},
		{"id3 with a footer, then adts", cat([]byte("ID3\x04\x00\x10\x00\x00\x00\x00"), make([]byte, 10), adts), FormatADTS},
		{"id3 header cut short", []byte("ID3\x04\x00"), FormatMP3},
		{"id3 with a bad size byte", []byte("ID3\x04\x00\x00\x80\x00\x00\x00abc"), FormatUnknown},
		{"id3 past SniffLen then adts", cat(id3(2*SniffLen), adts), FormatADTS},
		{"webvtt", []byte("WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n"), FormatWebVTT},
		{"webvtt with a bom", []byte("\ufeffWEBVTT - title\n"), FormatWebVTT},
		{"webvtt alone", []byte("WEBVTT"), FormatWebVTT},
		{"webvtt lookalike", []byte("WEBVTTX\n"), FormatUnknown},
		{"hls", []byte("#EXTM3U\n#EXT-X-VERSION:3\n"), FormatHLS},
		{"hls after bom and whitespace", []byte("\ufeff \r\n\t#EXTM3U"), FormatHLS},
		{"hls cut short", []byte("#EXTM3"), FormatUnknown},
		{"mpd", []byte("<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\">"), FormatDASH},
		{"mpd after prolog and comment", []byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!--Generated with shaka-packager-->\n<MPD\n type=\"static\">"), FormatDASH},
		{"xml error", []byte("<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>"), FormatXML},
		{"xml without prolog", []byte("<Error><Code>AccessDenied</Code></Error>"), FormatXML},
		{"xml prolog cut short", []byte("<?xml version=\"1.0\""), FormatXML},
		{"html doctype", []byte("<!DOCTYPE html>\n<html>"), FormatHTML},
		{"html lower case after whitespace", []byte("\n\n  <html lang=\"en\">"), FormatHTML},
		{"html mixed case", []byte("<HtMl>"), FormatHTML},
		{"html body only", []byte("<body>403 Forbidden</body>"), FormatHTML},
		{"html comment first", []byte("<!-- nginx --><html>"), FormatHTML},
		{"xhtml", []byte("<?xml version=\"1.0\"?>\n<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\">"), FormatHTML},
		{"html tag needs a terminator", []byte("<htmlx>"), FormatXML},
		{"json object", []byte(" {\"error\":\"forbidden\"}"), FormatJSON},
		{"json array", []byte("[1,2]"), FormatJSON},
		{"plain text", []byte("Forbidden"), FormatUnknown},
		{"empty", nil, FormatUnknown},
		{"only whitespace", []byte(" \n"), FormatUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sniff(tt.in); got != tt.want {
				t.Errorf("Sniff(% x…): got %v, want %v", tt.in[:min(len(tt.in), 16)], got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name, path, ct string
		want           Kind
	}{
		{"ts by name", "/v/seg_00001.ts", "", KindSegment},
		{"ts upper case", "/v/SEG_00001.TS", "", KindSegment},
		{"m4s", "/v/chunk-stream0-00001.m4s", "", KindSegment},
		{"cmfv", "/v/1.cmfv", "", KindSegment},
		{"cmfa", "/v/1.cmfa", "", KindSegment},
		{"aac", "/a/seg1.aac", "", KindSegment},
		{"mp4 by name is a whole file", "/movie_720.mp4", "", KindOther},
		{"mp3 by name is a whole file", "/song.mp3", "", KindOther},
		{"mp4 served as a segment", "/v/frag1.mp4", "video/iso.segment", KindSegment},
		{"m4s served as video/mp4", "/v/1.m4s", "video/mp4", KindSegment},
		{"ts served as octet-stream", "/v/1.ts", "application/octet-stream", KindSegment},
		{"ts served as binary/octet-stream", "/v/1.ts", "binary/octet-stream", KindSegment},
		{"ts served as text/plain", "/v/1.ts", "text/plain; charset=utf-8", KindSegment},
		{"segment by type, no extension", "/v/seg?n=1", "video/MP2T", KindSegment},
		{"aac by type", "/a/chunk", "audio/aac", KindSegment},
		{"init.mp4", "/v/init.mp4", "", KindInit},
		{"init-stream0.m4s", "/v/init-stream0.m4s", "", KindInit},
		{"video_init.mp4", "/v/video_init.mp4", "", KindInit},
		{"init.m4s in a directory", "/v/720p/init.m4s", "", KindInit},
		{"init served as a segment", "/v/init.m4s", "video/iso.segment", KindInit},
		{"initial is not init", "/v/initial_1.m4s", "", KindSegment},
		{"init.ts is a segment", "/v/init.ts", "", KindSegment},
		{"m3u8", "/v/index.m3u8", "", KindPlaylist},
		{"m3u", "/v/index.m3u", "", KindPlaylist},
		{"playlist as text/plain", "/v/index.m3u8", "text/plain", KindPlaylist},
		{"playlist by apple type", "/api/stream", "application/vnd.apple.mpegurl", KindPlaylist},
		{"playlist by x-mpegURL", "/api/stream", "application/x-mpegURL", KindPlaylist},
		{"playlist by audio/mpegurl", "/api/stream", "audio/mpegurl", KindPlaylist},
		{"type wins over name", "/v/1.ts", "application/vnd.apple.mpegurl", KindPlaylist},
		{"mpd", "/d/manifest.mpd", "", KindManifest},
		{"mpd by type", "/d/manifest", "application/dash+xml", KindManifest},
		{"mpd served as xml", "/d/manifest.mpd", "text/xml", KindManifest},
		{"xml not named mpd", "/d/manifest", "application/xml", KindPage},
		{"key", "/k/video.key", "", KindKey},
		{"key as octet-stream", "/k/video.key", "application/octet-stream", KindKey},
		{"vtt", "/s/sub1.vtt", "", KindSubtitles},
		{"vtt by type", "/s/sub1", "text/vtt", KindSubtitles},
		{"html error page at a segment URL", "/v/1.ts", "text/html; charset=utf-8", KindPage},
		{"json", "/api", "application/json", KindPage},
		{"xhtml", "/", "application/xhtml+xml", KindPage},
		{"page by type only", "", "text/html", KindPage},
		{"unknown type defers", "/v/1.ts", "image/png", KindSegment},
		{"unparsable type defers", "/v/1.ts", "/;;", KindSegment},
		{"script", "/app.js", "application/javascript", KindOther},
		{"empty", "", "", KindOther},
		{"no extension", "/v/segment", "", KindOther},
		{"trailing slash", "/v/1.ts/", "", KindSegment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.path, tt.ct); got != tt.want {
				t.Errorf("Classify(%q, %q): got %v, want %v", tt.path, tt.ct, got, tt.want)
			}
		})
	}
}

func TestExtOf(t *testing.T) {
	tests := []struct{ name, path, want string }{
		{"ts", "/v/1.ts", ".ts"},
		{"upper case", "/v/1.TS", ".ts"},
		{"m4s", "/v/1.m4s", ".m4s"},
		{"aac", "/1.aac", ".aac"},
		{"mp4", "/1.mp4", ".mp4"},
		{"m4a", "/1.m4a", ".m4a"},
		{"m4v", "/1.m4v", ".m4v"},
		{"mp3", "/1.mp3", ".mp3"},
		{"cmfv", "/1.cmfv", ".cmfv"},
		{"cmfa", "/1.cmfa", ".cmfa"},
		{"playlist is not media", "/index.m3u8", ""},
		{"subtitles are not media", "/1.vtt", ""},
		{"key is not media", "/k.key", ""},
		{"php", "/seg.php", ""},
		{"none", "/seg", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExtOf(tt.path); got != tt.want {
				t.Errorf("ExtOf(%q): got %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestMIMEOf(t *testing.T) {
	tests := []struct{ ext, want string }{
		{".ts", "video/mp2t"},
		{".TS", "video/mp2t"},
		{".m4s", "video/iso.segment"},
		{".mp4", "video/iso.segment"},
		{".cmfv", "video/iso.segment"},
		{".cmfa", "video/iso.segment"},
		{".m4a", "video/iso.segment"},
		{".aac", "audio/aac"},
		{".mp3", "audio/mpeg"},
		{".m3u8", "application/vnd.apple.mpegurl"},
		{".mpd", "application/dash+xml"},
		{".vtt", "text/vtt"},
		{".php", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := MIMEOf(tt.ext); got != tt.want {
			t.Errorf("MIMEOf(%q): got %q, want %q", tt.ext, got, tt.want)
		}
	}
	// A stored segment, served with MIMEOf its extension, classifies as a segment again (a HAR round trip).
	for ext, e := range exts {
		if !e.format.IsMedia() || ext == ".mp3" {
			continue
		}
		if got := Classify("/s/000041"+ext, MIMEOf(ext)); got != KindSegment {
			t.Errorf("Classify(000041%s, MIMEOf(%s) = %q): got %v, want segment", ext, ext, MIMEOf(ext), got)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		f                Format
		ext, mime, demux string
		media            bool
	}{
		{FormatUnknown, "", "application/octet-stream", "", false},
		{FormatMPEGTS, ".ts", "video/mp2t", "mpegts", true},
		{FormatMP4, ".mp4", "video/mp4", "mov", true},
		{FormatADTS, ".aac", "audio/aac", "aac", true},
		{FormatMP3, ".mp3", "audio/mpeg", "mp3", true},
		{FormatWebVTT, ".vtt", "text/vtt", "webvtt", false},
		{FormatHLS, ".m3u8", "application/vnd.apple.mpegurl", "", false},
		{FormatDASH, ".mpd", "application/dash+xml", "", false},
		{FormatHTML, ".html", "text/html", "", false},
		{FormatJSON, ".json", "application/json", "", false},
		{FormatXML, ".xml", "application/xml", "", false},
		{Format(99), "", "application/octet-stream", "", false},
		{Format(-1), "", "application/octet-stream", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.f.String(), func(t *testing.T) {
			if got := tt.f.Ext(); got != tt.ext {
				t.Errorf("%v.Ext(): got %q, want %q", tt.f, got, tt.ext)
			}
			if got := tt.f.MIME(); got != tt.mime {
				t.Errorf("%v.MIME(): got %q, want %q", tt.f, got, tt.mime)
			}
			if got := tt.f.Demuxer(); got != tt.demux {
				t.Errorf("%v.Demuxer(): got %q, want %q", tt.f, got, tt.demux)
			}
			if got := tt.f.IsMedia(); got != tt.media {
				t.Errorf("%v.IsMedia(): got %v, want %v", tt.f, got, tt.media)
			}
		})
	}
	// Every extension of a media format is one ExtOf knows.
	for ext, e := range exts {
		if e.format.IsMedia() && ExtOf("x"+ext) != ext {
			t.Errorf("ExtOf(x%s): got %q, want %q", ext, ExtOf("x"+ext), ext)
		}
	}
}

func TestKindString(t *testing.T) {
	for k := KindOther; k <= KindPage; k++ {
		if s := k.String(); s == "" || strings.HasPrefix(s, "Kind(") {
			t.Errorf("Kind(%d).String(): got %q, want a name", int(k), s)
		}
	}
	if got := Kind(42).String(); got != "Kind(42)" {
		t.Errorf("Kind(42).String(): got %q", got)
	}
}
