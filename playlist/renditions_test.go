package playlist

import (
	"strings"
	"testing"
)

// renditionsMaster has a subtitle group with two English renditions (a second name, and a forced one), French,
// Brazilian Portuguese, one rendition without a URI, and a group no variant plays with.
const renditionsMaster = `#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",LANGUAGE="en",NAME="English",DEFAULT=NO,URI="a/en.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",LANGUAGE="fr",NAME="Français",DEFAULT=YES,URI="a/fr.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES,URI="s/en.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English (SDH)",URI="s/en-sdh.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English (forced)",FORCED=YES,URI="s/en-forced.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Français",URI="s/fr.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="pt-BR",NAME="Português",URI="s/pt.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="de",NAME="Deutsch"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="other",LANGUAGE="es",NAME="Español",URI="s/es.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1000000,AUDIO="aud",SUBTITLES="subs"
v/with.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=500000,AUDIO="aud"
v/without.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=400000,SUBTITLES="nosuchgroup"
v/dangling.m3u8
`

func renditionNames(rs []Rendition) string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	return strings.Join(names, ", ")
}

func TestSubtitlesFor(t *testing.T) {
	pl, err := Parse([]byte(renditionsMaster), base)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	m := pl.Master
	with, without, dangling := &m.Variants[0], &m.Variants[1], &m.Variants[2]
	if with.Subtitles != "subs" || without.Subtitles != "" {
		t.Fatalf("Parse: variants' SUBTITLES: got %q and %q, want \"subs\" and \"\"", with.Subtitles, without.Subtitles)
	}
	tests := []struct {
		name    string
		v       *Variant
		sel     string
		want    string // rendition names, in playlist order
		wantErr string
	}{
		{name: "default is every language", v: with, sel: "", want: "English, English (forced), Français, Português"},
		{name: "all", v: with, sel: "ALL", want: "English, English (forced), Français, Português"},
		{name: "none", v: with, sel: "none", want: ""},
		{name: "language brings its forced rendition", v: with, sel: "en", want: "English, English (forced)"},
		{name: "language prefix", v: with, sel: "pt", want: "Português"},
		{name: "exact region", v: with, sel: "pt-br", want: "Português"},
		{name: "by name", v: with, sel: "Français", want: "Français"},
		{name: "no URI is no choice", v: with, sel: "de", wantErr: `no subtitle rendition matches "de"; choices: en (English), en (English (SDH))`},
		{name: "other group", v: with, sel: "es", wantErr: `no subtitle rendition matches "es"`},
		{name: "variant without subtitles", v: without, sel: "", want: ""},
		{name: "variant without subtitles, a language asked", v: without, sel: "fr", want: ""},
		{name: "group not listed", v: dangling, sel: "", want: ""},
		{name: "nil variant", v: nil, sel: "all", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.SubtitlesFor(tt.v, tt.sel)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SubtitlesFor(%q): got %q, %v; want error containing %q", tt.sel, renditionNames(got), err, tt.wantErr)
				}
				return
			}
			if err != nil || renditionNames(got) != tt.want {
				t.Fatalf("SubtitlesFor(%q): got %q, %v; want %q", tt.sel, renditionNames(got), err, tt.want)
			}
			for _, r := range got {
				if r.Type != "SUBTITLES" || !strings.HasPrefix(r.URI, "https://cdn.example.com/hls/v1/s/") {
					t.Errorf("SubtitlesFor(%q): got rendition %+v, want a resolved subtitle URI", tt.sel, r)
				}
			}
		})
	}
	if got, _ := m.SubtitlesFor(with, "en"); len(got) != 2 || got[0].Forced || !got[1].Forced || !got[0].Default {
		t.Errorf("SubtitlesFor(en): got %+v, want English (default, not forced), then the forced one", got)
	}
}

// TestAudioFor keeps AudioFor's choices as they were when SubtitlesFor came to share its helpers.
func TestAudioFor(t *testing.T) {
	pl, err := Parse([]byte(renditionsMaster), base)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	m := pl.Master
	tests := []struct {
		name, sel, want, wantErr string
	}{
		{name: "default rendition", sel: "", want: "Français"},
		{name: "all", sel: "all", want: "English, Français"},
		{name: "language", sel: "en", want: "English"},
		{name: "no match", sel: "de", wantErr: `no audio rendition matches "de"; choices: en (English), fr (Français)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.AudioFor(&m.Variants[0], tt.sel)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("AudioFor(%q): got %q, %v; want error containing %q", tt.sel, renditionNames(got), err, tt.wantErr)
				}
				return
			}
			if err != nil || renditionNames(got) != tt.want {
				t.Fatalf("AudioFor(%q): got %q, %v; want %q", tt.sel, renditionNames(got), err, tt.want)
			}
		})
	}
}
