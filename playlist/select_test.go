package playlist

import "testing"

// Selected takes the choices SubtitlesFor takes, for one rendition.
func TestRenditionSelected(t *testing.T) {
	en := Rendition{Type: "SUBTITLES", Language: "en-US", Name: "English"}
	fr := Rendition{Type: "SUBTITLES", Language: "fr", Name: "Français"}
	for _, tt := range []struct {
		sel    string
		en, fr bool
	}{
		{"", true, true},
		{"all", true, true},
		{" ALL ", true, true},
		{"none", false, false},
		{"en", true, false},
		{"EN-us", true, false},
		{"fr", false, true},
		{"Français", false, true},
		{"de", false, false},
	} {
		if got := en.Selected(tt.sel); got != tt.en {
			t.Errorf("en-US Selected(%q) = %v, want %v", tt.sel, got, tt.en)
		}
		if got := fr.Selected(tt.sel); got != tt.fr {
			t.Errorf("fr Selected(%q) = %v, want %v", tt.sel, got, tt.fr)
		}
	}
}
