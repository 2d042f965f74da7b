package media

import (
	"bytes"
	"encoding/binary"
)

// SniffLen is the most Sniff reads past a leading ID3 tag. Callers that have that many bytes should pass
// them; fewer decide what they can (see Sniff).
const SniffLen = 1024

// Sniff says what a body is from its first bytes. In order:
//
//   - An ID3v2 tag (HLS packed audio puts one, with a PRIV timestamp, before every segment) is skipped:
//     ADTS after it is FormatADTS; anything else after it, or a tag longer than b, is FormatMP3 (ID3 is
//     MP3's own tag, and a long one is an MP3's cover art).
//   - MPEG-TS: the sync byte 0x47 at 0 and 188. M2TS, 192-byte packets behind a 4-byte timecode, is
//     accepted as MPEG-TS (0x47 at 4 and 196): ffmpeg's mpegts demuxer reads it.
//   - ISO BMFF (MP4, fMP4): a box type a file or segment starts with (ftyp, styp, moof, sidx, moov, emsg,
//     prft, free, skip, mdat) at 4, with a box size that can be one.
//   - ADTS AAC: the 12-bit sync word with layer bits 00 (b[1]&0xF6 == 0xF0). With other layer bits the
//     sync word is MPEG audio's, and that is MP3 when the rest of the frame header is valid.
//   - Text, after an optional byte order mark and whitespace: WEBVTT, #EXTM3U, <MPD (after an XML
//     declaration and comments), HTML (a doctype or one of the tags a page starts with, any case),
//     JSON ({ or [), and any other markup as XML.
//
// A short b decides what it can: a signature must be there in full (8 bytes for a box, 3 for an MP3
// frame header), but a second sync byte past the end of b is given the benefit of the doubt, so a
// 188-byte body with 0x47 at 0 is MPEG-TS, and so, after the text checks, is one with 0x47 at 4 and fewer
// than 197 bytes. Sniff never reads past SniffLen bytes after the ID3 tag, so its answer stops changing
// once b holds that many.
func Sniff(b []byte) Format {
	if n, ok := id3Len(b); ok {
		if n < len(b) && isADTS(b[n:]) {
			return FormatADTS
		}
		return FormatMP3
	}
	b = b[:min(len(b), SniffLen)]
	switch {
	case len(b) > 188 && packets(b, 0, 188), len(b) > 196 && packets(b, 4, 192):
		return FormatMPEGTS
	case isBox(b):
		return FormatMP4
	case isADTS(b):
		return FormatADTS
	case isMPEGAudio(b):
		return FormatMP3
	}
	if f := sniffText(b); f != FormatUnknown {
		return f
	}
	if packets(b, 0, 188) || packets(b, 4, 192) {
		return FormatMPEGTS // too short for the second sync byte
	}
	return FormatUnknown
}

// id3Len reports whether b starts with an ID3v2 tag and how long the tag is (10 when its header is cut short).
func id3Len(b []byte) (int, bool) {
	if len(b) < 3 || string(b[:3]) != "ID3" {
		return 0, false
	}
	if len(b) < 10 {
		return 10, true
	}
	if b[3] == 0xFF || b[4] == 0xFF || (b[6]|b[7]|b[8]|b[9])&0x80 != 0 {
		return 0, false // not a tag header: the size is four 7-bit bytes
	}
	n := 10 + (int(b[6])<<21 | int(b[7])<<14 | int(b[8])<<7 | int(b[9]))
	if b[5]&0x10 != 0 {
		n += 10 // footer
	}
	return n, true
}

// packets reports whether b has the sync byte at lead and, if b is long enough, one packet later.
func packets(b []byte, lead, stride int) bool {
	return len(b) > lead && b[lead] == 0x47 && (len(b) <= lead+stride || b[lead+stride] == 0x47)
}

func isBox(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	switch string(b[4:8]) {
	case "ftyp", "styp", "moof", "sidx", "moov", "emsg", "prft", "free", "skip", "mdat":
	default:
		return false
	}
	size := binary.BigEndian.Uint32(b)
	return size == 0 || size == 1 || size >= 8 // 0: to the end; 1: a 64-bit size follows
}

func isADTS(b []byte) bool {
	return len(b) >= 2 && b[0] == 0xFF && b[1]&0xF6 == 0xF0
}

// isMPEGAudio reports an MPEG audio frame header: an 11-bit sync, and no reserved version, layer, bitrate
// or sample rate.
func isMPEGAudio(b []byte) bool {
	return len(b) >= 3 && b[0] == 0xFF && b[1]&0xE0 == 0xE0 &&
		(b[1]>>3)&3 != 1 && (b[1]>>1)&3 != 0 && b[2]>>4 != 0xF && (b[2]>>2)&3 != 3
}

const bom = "\ufeff"

func sniffText(b []byte) Format {
	t := bytes.TrimLeft(bytes.TrimPrefix(b, []byte(bom)), " \t\r\n")
	switch {
	case len(t) == 0:
		return FormatUnknown
	case bytes.HasPrefix(t, []byte("WEBVTT")) && (len(t) == 6 || bytes.IndexByte([]byte(" \t\r\n"), t[6]) >= 0):
		return FormatWebVTT
	case bytes.HasPrefix(t, []byte("#EXTM3U")):
		return FormatHLS
	case t[0] == '{' || t[0] == '[':
		return FormatJSON
	case t[0] == '<':
		return sniffMarkup(t)
	}
	return FormatUnknown
}

// htmlTags are what a web page may start with (after "<"), as in the WHATWG MIME sniffing standard.
var htmlTags = []string{"!doctype html", "html", "head", "body", "script", "iframe", "h1", "div", "font",
	"table", "a", "style", "title", "b", "br", "p"}

// sniffMarkup tells an MPD and a web page from other XML; t starts with '<'.
func sniffMarkup(t []byte) Format {
	for {
		var end string
		switch {
		case bytes.HasPrefix(t, []byte("<?")):
			end = "?>" // the XML declaration
		case bytes.HasPrefix(t, []byte("<!--")):
			end = "-->" // packagers sign their manifests in a comment
		}
		if end == "" {
			break
		}
		i := bytes.Index(t, []byte(end))
		if i < 0 {
			return FormatXML
		}
		t = bytes.TrimLeft(t[i+len(end):], " \t\r\n")
	}
	if tagIs(t, "MPD", false) {
		return FormatDASH
	}
	for _, tag := range htmlTags {
		if tagIs(t, tag, true) {
			return FormatHTML
		}
	}
	return FormatXML
}

// tagIs reports whether t starts with "<"+name and then a space, '>', '/' or the end of t.
func tagIs(t []byte, name string, fold bool) bool {
	if len(t) < 1+len(name) || t[0] != '<' {
		return false
	}
	got := t[1 : 1+len(name)]
	if fold && !bytes.EqualFold(got, []byte(name)) || !fold && string(got) != name {
		return false
	}
	return len(t) == 1+len(name) || bytes.IndexByte([]byte(" \t\r\n>/"), t[1+len(name)]) >= 0
}
