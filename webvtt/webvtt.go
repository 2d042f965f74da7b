// Package webvtt reads and writes WebVTT subtitles as HLS delivers them: segment files of cues whose times an
// X-TIMESTAMP-MAP header ties to the video's timestamps. It does no I/O.
package webvtt

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A Cue is one subtitle: its text is shown from Start to End.
type Cue struct {
	ID         string // optional identifier, as written
	Start, End time.Duration
	Settings   string // cue settings after the end time ("line:0 align:start"), as written
	Text       string // payload lines joined by "\n", markup kept
}

// A TimestampMap is an X-TIMESTAMP-MAP header (RFC 8216, 3.5): cue time Local is presentation timestamp
// MPEGTS of the media (a 90 kHz clock, 33 bits, as in MPEG-TS PES headers).
type TimestampMap struct {
	MPEGTS int64
	Local  time.Duration
}

// A File is a parsed WebVTT file or segment.
type File struct {
	Map  *TimestampMap // nil when the header has none
	Cues []Cue         // in file order
	// Skipped lists the lines of cues left out: a timing line that cannot be read, or an end before the start.
	// Players skip such cues too.
	Skipped []int
}

// A ParseError reports why a body is not WebVTT, quoting its line.
type ParseError struct {
	Line int    // 1-based
	Text string // the line as written
	Msg  string
}

func (e *ParseError) Error() string {
	text := e.Text
	if len(text) > 80 {
		text = text[:80] + "…"
	}
	return fmt.Sprintf("webvtt line %d %q: %s", e.Line, text, e.Msg)
}

// MaxSize is the most Parse accepts: subtitles are small, and a body this large is something else.
const MaxSize = 8 << 20

// Parse reads a WebVTT file: the WEBVTT signature (after an optional byte order mark), header lines (where it
// reads X-TIMESTAMP-MAP), then blocks separated by blank lines. NOTE, STYLE and REGION blocks are dropped. A
// line of only spaces and tabs counts as blank. Errors are *ParseError.
func Parse(b []byte) (*File, error) {
	if len(b) > MaxSize {
		return nil, &ParseError{Line: 1, Msg: fmt.Sprintf("%d bytes, more than %d MiB", len(b), MaxSize>>20)}
	}
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	lines := strings.Split(strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\r", "\n"), "\n")
	first := lines[0]
	if !strings.HasPrefix(first, "WEBVTT") || len(first) > 6 && first[6] != ' ' && first[6] != '\t' {
		return nil, &ParseError{Line: 1, Text: first, Msg: "no WEBVTT signature"}
	}
	f := &File{}
	n := 1
	for ; n < len(lines) && !blank(lines[n]); n++ {
		v, ok := strings.CutPrefix(lines[n], "X-TIMESTAMP-MAP=")
		if !ok {
			continue
		}
		m, err := parseMap(v)
		if err != nil {
			return nil, &ParseError{Line: n + 1, Text: lines[n], Msg: err.Error()}
		}
		f.Map = m
	}
	for n < len(lines) {
		for n < len(lines) && blank(lines[n]) {
			n++
		}
		start := n
		for n < len(lines) && !blank(lines[n]) {
			n++
		}
		if start < n {
			f.block(lines[start:n], start+1)
		}
	}
	return f, nil
}

func blank(line string) bool { return strings.Trim(line, " \t") == "" }

// block reads the cues of one block of lines, the first of which is line number at.
func (f *File) block(lines []string, at int) {
	if word, _, _ := strings.Cut(strings.TrimLeft(lines[0], " \t"), " "); (word == "NOTE" || word == "STYLE" ||
		word == "REGION") && !strings.Contains(lines[0], "-->") {
		return
	}
	for i := 0; i < len(lines); {
		var id string
		if !strings.Contains(lines[i], "-->") {
			if i+1 >= len(lines) || !strings.Contains(lines[i+1], "-->") {
				return // not a cue: players ignore the rest of the block
			}
			id, i = lines[i], i+1
		}
		timing, line := lines[i], at+i
		i++
		var text []string
		for ; i < len(lines) && !strings.Contains(lines[i], "-->"); i++ {
			text = append(text, lines[i]) // a line with "-->" starts the next cue, as players read it
		}
		c, ok := parseTiming(timing)
		if !ok {
			f.Skipped = append(f.Skipped, line)
			continue
		}
		c.ID, c.Text = id, strings.Join(text, "\n")
		f.Cues = append(f.Cues, c)
	}
}

// parseTiming reads "start --> end [settings]".
func parseTiming(line string) (Cue, bool) {
	if strings.Count(line, "-->") != 1 {
		return Cue{}, false
	}
	l, r, _ := strings.Cut(line, "-->")
	start, ok1 := ParseTime(strings.Trim(l, " \t"))
	r = strings.TrimLeft(r, " \t")
	endText, settings, _ := strings.Cut(strings.ReplaceAll(r, "\t", " "), " ")
	end, ok2 := ParseTime(endText)
	if !ok1 || !ok2 || end < start {
		return Cue{}, false
	}
	return Cue{Start: start, End: end, Settings: strings.Trim(settings, " ")}, true
}

// ParseTime reads a WebVTT timestamp: [hours:]mm:ss.ttt, with up to six digits of hours.
func ParseTime(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	var h int64
	if len(parts) == 3 {
		v, ok := digits(parts[0], 1, 6) // up to 999,999 hours: a time.Duration holds 2,562,047
		if !ok {
			return 0, false
		}
		h, parts = v, parts[1:]
	}
	m, ok := digits(parts[0], 2, 2)
	sec, frac, dot := strings.Cut(parts[1], ".")
	sv, ok2 := digits(sec, 2, 2)
	ms, ok3 := digits(frac, 3, 3)
	if !ok || !ok2 || !ok3 || !dot || m > 59 || sv > 59 {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sv)*time.Second +
		time.Duration(ms)*time.Millisecond, true
}

// digits reads s as a decimal of min to max digits.
func digits(s string, min, max int) (int64, bool) {
	if len(s) < min || len(s) > max {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// parseMap reads "MPEGTS:<n>,LOCAL:<time>", in either order.
func parseMap(v string) (*TimestampMap, error) {
	m := &TimestampMap{}
	var haveTS, haveLocal bool
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(kv), ":")
		switch k {
		case "MPEGTS":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 || n >= 1<<33 {
				return nil, fmt.Errorf("bad MPEGTS %q in X-TIMESTAMP-MAP (want 0 to 2^33-1)", val)
			}
			m.MPEGTS, haveTS = n, true
		case "LOCAL":
			d, ok := ParseTime(val)
			if !ok {
				return nil, fmt.Errorf("bad LOCAL %q in X-TIMESTAMP-MAP", val)
			}
			m.Local, haveLocal = d, true
		}
	}
	if !haveTS || !haveLocal {
		return nil, fmt.Errorf("X-TIMESTAMP-MAP without MPEGTS and LOCAL")
	}
	return m, nil
}

// wrap is the span of the 33-bit, 90 kHz presentation timestamps.
const wrap = time.Duration(1<<33) * time.Second / 90000

// Offset is what to add to f's cue times to put them on a timeline whose 0 is the presentation timestamp
// start (on the 90 kHz clock, as seconds: what ffprobe reports as a stream's start_time). With an
// X-TIMESTAMP-MAP that is MPEGTS/90000 - LOCAL - start, taken across the 33-bit wrap to the nearest value;
// without one, the cue times are already relative to start (as ffmpeg's HLS muxer writes them, and as
// players read them), and the offset is 0.
func (f *File) Offset(start time.Duration) time.Duration {
	if f.Map == nil {
		return 0
	}
	d := time.Duration(f.Map.MPEGTS)*time.Second/90000 - f.Map.Local - start
	d %= wrap
	switch {
	case d > wrap/2:
		d -= wrap
	case d <= -wrap/2:
		d += wrap
	}
	return d
}

// FormatTime writes d as a WebVTT timestamp, hh:mm:ss.ttt (more hour digits when needed); negative is 0.
func FormatTime(d time.Duration) string {
	d = max(d, 0).Round(time.Millisecond)
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	s := d / time.Second
	d -= s * time.Second
	return fmt.Sprintf("%02d:%02d:%02d.%03d", h, m, s, d/time.Millisecond)
}

// Marshal writes cues as a WebVTT file with no header. Blank lines in a cue's text, which WebVTT cannot hold,
// are dropped, and so is "-->" in an ID or text, which would read back as a timing line.
func Marshal(cues []Cue) []byte {
	var b bytes.Buffer
	b.WriteString("WEBVTT\n")
	for _, c := range cues {
		b.WriteString("\n")
		if id := clean(c.ID); id != "" {
			b.WriteString(id + "\n")
		}
		b.WriteString(FormatTime(c.Start) + " --> " + FormatTime(c.End))
		if s := clean(c.Settings); s != "" {
			b.WriteString(" " + s)
		}
		b.WriteString("\n")
		for line := range strings.SplitSeq(c.Text, "\n") {
			if line = clean(line); line != "" {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.Bytes()
}

// clean makes s one line that cannot be taken for a timing line or a blank one.
func clean(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ", "-->", "->").Replace(s)
	if blank(s) {
		return ""
	}
	return s
}
