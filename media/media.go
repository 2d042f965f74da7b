// Package media is the one place that decides what a URL, a Content-Type or the first bytes of a body are
// (segment or playlist, MPEG-TS or fMP4) and which extension, MIME type and ffmpeg demuxer go with them.
//
// It does no I/O: callers hand it a URL path, a header value or a few bytes, and every package that needs
// one of these answers asks here rather than keeping its own table.
package media

import (
	"mime"
	"path"
	"strconv"
	"strings"
)

// A Kind is what a URL is to a recorder, judged by its name and Content-Type before any body is read.
type Kind int

const (
	KindOther     Kind = iota // nothing to record: scripts, images, whole media files by name alone
	KindSegment               // a media segment (.ts, .m4s, .aac, .cmfv, .cmfa; video/mp2t, audio/aac …)
	KindInit                  // an fMP4 initialization segment, recognised by its name (a heuristic: see Classify)
	KindPlaylist              // an HLS playlist (.m3u8, .m3u; application/vnd.apple.mpegurl …)
	KindManifest              // a DASH manifest (.mpd; application/dash+xml)
	KindKey                   // an encryption key (.key): only by name, as keys have no Content-Type of their own
	KindSubtitles             // WebVTT subtitles (.vtt, .webvtt; text/vtt)
	KindPage                  // a web page or document by its Content-Type (HTML, XHTML, JSON, XML)
)

var kindNames = [...]string{"other", "segment", "init", "playlist", "manifest", "key", "subtitles", "page"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// A Format is what the first bytes of a body say it is.
type Format int

const (
	FormatUnknown Format = iota
	FormatMPEGTS         // MPEG-TS, 188-byte packets, or M2TS (192-byte packets with a 4-byte timecode)
	FormatMP4            // ISO BMFF: an MP4 file, an fMP4 init segment or a media segment
	FormatADTS           // AAC in ADTS frames, with or without a leading ID3 tag (HLS packed audio)
	FormatMP3            // MPEG audio (layer I–III) frames, or anything behind an ID3 tag that is not ADTS
	FormatWebVTT         // WebVTT subtitles
	FormatHLS            // an HLS playlist
	FormatDASH           // a DASH manifest (MPD)
	FormatHTML           // a web page
	FormatJSON           // a JSON document
	FormatXML            // an XML document other than an MPD (an S3 or CDN error, say)
)

// formats is the one table of what goes with a Format.
var formats = [...]struct {
	name, ext, mime, demuxer string
	media                    bool
}{
	FormatUnknown: {"unknown", "", "application/octet-stream", "", false},
	FormatMPEGTS:  {"MPEG-TS", ".ts", "video/mp2t", "mpegts", true},
	FormatMP4:     {"MP4", ".mp4", "video/mp4", "mov", true},
	FormatADTS:    {"AAC", ".aac", "audio/aac", "aac", true},
	FormatMP3:     {"MP3", ".mp3", "audio/mpeg", "mp3", true},
	FormatWebVTT:  {"WebVTT", ".vtt", "text/vtt", "webvtt", false},
	FormatHLS:     {"HLS playlist", ".m3u8", "application/vnd.apple.mpegurl", "", false},
	FormatDASH:    {"DASH manifest", ".mpd", "application/dash+xml", "", false},
	FormatHTML:    {"HTML", ".html", "text/html", "", false},
	FormatJSON:    {"JSON", ".json", "application/json", "", false},
	FormatXML:     {"XML", ".xml", "application/xml", "", false},
}

func (f Format) info() int {
	if f < 0 || int(f) >= len(formats) {
		return int(FormatUnknown)
	}
	return int(f)
}

// String names the format for messages: "MPEG-TS", "MP4", "AAC", "HTML" …
func (f Format) String() string { return formats[f.info()].name }

// Ext is the file extension for a body of this format: ".ts", ".mp4", ".aac", ".mp3", ".vtt" …; "" if unknown.
func (f Format) Ext() string { return formats[f.info()].ext }

// MIME is the Content-Type to serve a body of this format with.
func (f Format) MIME() string { return formats[f.info()].mime }

// Demuxer is the ffmpeg input format (-f) that reads this format from a pipe: "mpegts", "mov", "aac", "mp3",
// "webvtt"; "" means let ffmpeg probe (playlists and manifests name other files, so they have none).
func (f Format) Demuxer() string { return formats[f.info()].demuxer }

// IsMedia reports whether f is audio or video a segment may hold (MPEG-TS, MP4, AAC, MP3).
func (f Format) IsMedia() bool { return formats[f.info()].media }

// exts is the one table of file extensions: the format a file of that name holds, what a URL ending in it
// is by name alone, and the Content-Type a segment stored under it is served with. .mp4, .m4v, .m4a and
// .mp3 are media but KindOther by name: a whole progressive file ends the same way, and recording it as a
// numbered segment would be wrong. Every ISO BMFF extension is served as video/iso.segment, the registered
// type of a media segment, so that Classify reads a stored segment back as one whatever its name.
var exts = map[string]struct {
	format Format
	kind   Kind
	mime   string
}{
	".ts":     {FormatMPEGTS, KindSegment, "video/mp2t"},
	".m4s":    {FormatMP4, KindSegment, "video/iso.segment"},
	".cmfv":   {FormatMP4, KindSegment, "video/iso.segment"},
	".cmfa":   {FormatMP4, KindSegment, "video/iso.segment"},
	".aac":    {FormatADTS, KindSegment, "audio/aac"},
	".mp4":    {FormatMP4, KindOther, "video/iso.segment"},
	".m4v":    {FormatMP4, KindOther, "video/iso.segment"},
	".m4a":    {FormatMP4, KindOther, "video/iso.segment"},
	".mp3":    {FormatMP3, KindOther, "audio/mpeg"}, // MPEG audio has no segment type
	".m3u8":   {FormatHLS, KindPlaylist, "application/vnd.apple.mpegurl"},
	".m3u":    {FormatHLS, KindPlaylist, "audio/mpegurl"},
	".mpd":    {FormatDASH, KindManifest, "application/dash+xml"},
	".vtt":    {FormatWebVTT, KindSubtitles, "text/vtt"},
	".webvtt": {FormatWebVTT, KindSubtitles, "text/vtt"},
	".key":    {FormatUnknown, KindKey, "application/octet-stream"},
}

// types is the one table of Content-Types specific enough to decide a URL's Kind over its name. A type not
// listed here (application/octet-stream, binary/octet-stream, text/plain, video/mp4, audio/mp4, audio/mpeg,
// image/* …) is generic, or names whole files as often as segments, and defers to the name.
var types = map[string]Kind{
	"video/mp2t":                    KindSegment,
	"video/iso.segment":             KindSegment,
	"audio/aac":                     KindSegment,
	"audio/aacp":                    KindSegment,
	"application/vnd.apple.mpegurl": KindPlaylist,
	"application/x-mpegurl":         KindPlaylist,
	"application/mpegurl":           KindPlaylist,
	"audio/mpegurl":                 KindPlaylist,
	"audio/x-mpegurl":               KindPlaylist,
	"application/dash+xml":          KindManifest,
	"text/vtt":                      KindSubtitles,
	"text/html":                     KindPage,
	"application/xhtml+xml":         KindPage,
	"application/json":              KindPage,
	"text/xml":                      KindPage, // but a .mpd served as XML is a manifest
	"application/xml":               KindPage,
}

// Classify says what the URL with path urlPath is, from its name and the response's Content-Type (either
// may be empty). A Content-Type in the table wins over the name, with two exceptions: an init segment's
// name wins over a segment type (it is served as one), and a .mpd served as generic XML is a manifest.
// Generic and unknown types defer to the name.
//
// An init segment is recognised by name only, and that is a heuristic: an fMP4 file name (.mp4, .m4s,
// .m4v, .m4a, .cmfv, .cmfa) with "init" as a whole word of its base name, words split at '-', '_' and '.'
// (init.mp4, init-stream0.m4s, video_init.mp4, …/init.m4s, but not initial.mp4). A packager that names
// its init segments otherwise (IS.mp4, header.m4s) gets them classified as segments or other by extension.
func Classify(urlPath, contentType string) Kind {
	byName := nameKind(urlPath)
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return byName
	}
	byType, ok := types[mt] // ParseMediaType lower-cases the type
	switch {
	case !ok:
		return byName
	case byType == KindSegment && byName == KindInit:
		return KindInit
	case (mt == "text/xml" || mt == "application/xml") && byName == KindManifest:
		return KindManifest
	}
	return byType
}

func nameKind(urlPath string) Kind {
	base := strings.ToLower(path.Base(urlPath))
	ext := path.Ext(base)
	e, ok := exts[ext]
	if !ok {
		return KindOther
	}
	if e.format == FormatMP4 && hasWord(strings.TrimSuffix(base, ext), "init") {
		return KindInit
	}
	return e.kind
}

func hasWord(s, w string) bool {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
		if f == w {
			return true
		}
	}
	return false
}

// ExtOf returns the extension of urlPath, lower-cased, when it is one a media segment is stored under
// (.ts, .m4s, .aac, .mp4, .m4a, .m4v, .mp3, .cmfv, .cmfa), or "" when it is not. Pass a path, not a URL
// with a query.
func ExtOf(urlPath string) string {
	ext := strings.ToLower(path.Ext(urlPath))
	if e, ok := exts[ext]; ok && e.format.IsMedia() {
		return ext
	}
	return ""
}

// MIMEOf returns the Content-Type to serve a file with extension ext (".m4s", case-insensitive) with, or ""
// when the extension is not in the table. For a media extension that is the type of a stored segment, which
// Classify reads back as KindSegment (except .mp3: audio/mpeg also names whole files).
func MIMEOf(ext string) string {
	return exts[strings.ToLower(ext)].mime
}
