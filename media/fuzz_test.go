package media

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzSniff checks two properties. Soundness: a media format is only named when its signature is there.
// Stability: Sniff reads no further than SniffLen bytes past an ID3 tag (two past it for the ADTS check),
// so bytes appended after that never change its answer.
func FuzzSniff(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x18ftypiso5"), byte(0))
	f.Add([]byte{0xff, 0xf1, 0x50, 0x80}, byte(0x47))
	f.Add([]byte("ID3\x04\x00\x00\x00\x00\x00\x05hello\xff\xf1"), byte(0))
	f.Add([]byte("<?xml version=\"1.0\"?><!-- x --><MPD>"), byte(' '))
	f.Fuzz(func(t *testing.T, head []byte, pad byte) {
		got := Sniff(head)
		if got.IsMedia() && !signature(head, got) {
			t.Errorf("Sniff(% x) = %v without its signature", head[:min(len(head), 16)], got)
		}
		if got.IsMedia() != (got.Demuxer() != "" && got != FormatWebVTT) || got.IsMedia() && got.Ext() == "" {
			t.Errorf("%v: IsMedia %v, Ext %q, Demuxer %q disagree", got, got.IsMedia(), got.Ext(), got.Demuxer())
		}

		b := append(bytes.Clone(head), bytes.Repeat([]byte{pad}, SniffLen)...)
		need := SniffLen
		if n, ok := id3Len(b); ok {
			need = n + 2
		}
		if need > 1<<20 {
			return // a huge ID3 tag: not worth padding to
		}
		if len(b) <= need {
			b = append(b, bytes.Repeat([]byte{pad}, need-len(b)+16)...)
		}
		if want, got := Sniff(b[:need]), Sniff(b); got != want {
			t.Errorf("Sniff(% x… %d bytes): got %v, but %v from the first %d", b[:min(len(b), 16)], len(b), got, want, need)
		}
	})
}

// signature reports whether b carries what Sniff needs to name f.
func signature(b []byte, f Format) bool {
	if _, ok := id3Len(b); ok {
		return f == FormatADTS || f == FormatMP3
	}
	switch f {
	case FormatMPEGTS:
		return len(b) > 0 && b[0] == 0x47 || len(b) > 4 && b[4] == 0x47
	case FormatMP4:
		return len(b) >= 8 && strings.Contains(" ftyp styp moof sidx moov emsg prft free skip mdat ", " "+string(b[4:8])+" ")
	case FormatADTS:
		return len(b) >= 2 && b[0] == 0xff && b[1]&0xf6 == 0xf0
	case FormatMP3:
		return len(b) >= 3 && b[0] == 0xff && b[1]&0xe0 == 0xe0 && b[1]&0x06 != 0
	}
	return false
}

// FuzzClassify checks that Classify is total and looks only at the last element of the path, whatever its
// ASCII case, and at the Content-Type whatever its case.
func FuzzClassify(f *testing.F) {
	f.Add("/v/seg_00001.ts", "")
	f.Add("/v/init-stream0.m4s", "video/iso.segment")
	f.Add("/d/manifest.mpd", "text/xml; charset=utf-8")
	f.Add("/v/1.ts", "text/html")
	f.Add("", "application/x-mpegURL")
	f.Fuzz(func(t *testing.T, p, ct string) {
		k := Classify(p, ct)
		if k < KindOther || k > KindPage {
			t.Fatalf("Classify(%q, %q) = %d, not a Kind", p, ct, int(k))
		}
		if got := Classify(asciiUpper(p), asciiUpper(ct)); got != k {
			t.Errorf("Classify(%q, %q) = %v, but %v in upper case", p, ct, k, got)
		}
		if got := Classify("/some/dir/"+p, ct); got != k {
			t.Errorf("Classify(%q, %q) = %v, but %v under /some/dir/", p, ct, k, got)
		}
		if e := ExtOf(p); e != "" && MIMEOf(e) == "" {
			t.Errorf("ExtOf(%q) = %q, which has no MIME type", p, e)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
