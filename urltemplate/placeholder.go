package urltemplate

import (
	"fmt"
	"strings"
)

// Placeholder builds a template the way the original script took one: exactly
// one "(*)" in raw marks the index, zero-padded to pad digits (0 means none).
// Nothing has been observed yet, so First is 0 and Last is -1.
func Placeholder(raw string, pad int) (*Template, error) {
	const mark = "(*)"
	switch n := strings.Count(raw, mark); n {
	case 1:
	case 0:
		return nil, fmt.Errorf("%w: none in %q", ErrNoPlaceholder, truncate(raw))
	default:
		return nil, fmt.Errorf("%w: found %d in %q", ErrNoPlaceholder, n, truncate(raw))
	}
	if pad < 0 || pad > maxDigits {
		return nil, fmt.Errorf("pad %d out of range 0..%d for %q", pad, maxDigits, truncate(raw))
	}
	before, after, _ := strings.Cut(raw, mark)
	t := &Template{Step: 1, First: 0, Last: -1}
	if before != "" {
		t.Parts = append(t.Parts, Part{Lit: before})
	}
	t.Parts = append(t.Parts, Part{Field: &Field{Width: pad, Mul: 1}})
	if after != "" {
		t.Parts = append(t.Parts, Part{Lit: after})
	}
	if err := checkURL(t.URL(1)); err != nil {
		return nil, fmt.Errorf("placeholder url %q: %w", truncate(raw), err)
	}
	return t, nil
}

// Shape is a grouping key for segment URLs: scheme, host and path with every
// digit run replaced by "#", query and fragment dropped. Segments of one
// stream share a shape; a number that names the stream in the file name
// ("chunk-stream1-00001.m4s") is kept, so two streams never do.
func Shape(rawURL string) string {
	s, _, _ := strings.Cut(rawURL, "#")
	s, _, _ = strings.Cut(s, "?")
	var b strings.Builder
	for _, t := range tokenize(s) {
		if t.digits && !streamRun(s, t) {
			b.WriteByte('#')
		} else {
			b.WriteString(t.text)
		}
	}
	return b.String()
}

// StreamOf returns the stream a segment or init URL names in its file name,
// a number glued to a stream word ("stream1" of chunk-stream1-00001.m4s and
// of init-stream1.m4s), lower-cased; "" when it names none.
func StreamOf(rawURL string) string {
	s, _, _ := strings.Cut(rawURL, "#")
	s, _, _ = strings.Cut(s, "?")
	for _, t := range tokenize(s) {
		if streamRun(s, t) {
			i := t.off
			for i > 0 && isLetter(s[i-1]) {
				i--
			}
			return strings.ToLower(s[i : t.off+len(t.text)])
		}
	}
	return ""
}
