package urltemplate

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxSpread bounds how far apart the closest two observed indices may be, in
// steps. Clock values with jitter share some small common divisor but are
// never that close; a real index almost always shows two neighbours.
const maxSpread = 16

// A token is a maximal run of digits or of non-digits, at offset off in its URL.
type token struct {
	text   string
	digits bool
	off    int
}

func tokenize(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		j := i + 1
		d := isDigit(s[i])
		for j < len(s) && isDigit(s[j]) == d {
			j++
		}
		toks = append(toks, token{text: s[i:j], digits: d, off: i})
		i = j
	}
	return toks
}

// checkURL reports whether raw is an absolute http(s) URL with a host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %q", ErrBadURL, truncate(raw))
	}
	return nil
}

// Learn finds the numbering template that generates urls, which are segment
// URLs of one stream in any order, duplicates allowed.
//
// With two or more distinct URLs the digit run that changes is the index; runs
// that change in lockstep with it (value = Mul*index + Add, Mul ≥ 1) become
// extra fields. With exactly two URLs any pair of numbers looks linear, so an
// extra run is accepted only with Mul 1 or Add 0. Anything else that changes
// between segments means no template: the error wraps ErrNoTemplate and says
// what changed. With one URL the index is a guess (see guess) and the template
// is Tentative.
func Learn(urls []string) (*Template, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("%w: no urls", ErrNoTemplate)
	}
	var uniq []string
	seen := make(map[string]bool)
	for _, u := range urls {
		u, _, _ = strings.Cut(u, "#")
		if err := checkURL(u); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoTemplate, err)
		}
		if !seen[u] {
			seen[u] = true
			uniq = append(uniq, u)
		}
	}
	if len(uniq) == 1 {
		return guess(uniq[0])
	}

	toks := make([][]token, len(uniq))
	for k, u := range uniq {
		toks[k] = tokenize(u)
	}
	for k := 1; k < len(uniq); k++ {
		if !sameSkeleton(toks[0], toks[k]) {
			return nil, noTemplate(explain(uniq[0], uniq[k]), uniq[0], uniq[k])
		}
	}

	// The digit runs that vary, with their values per URL.
	type run struct {
		pos  int // token position
		strs []string
		vals []int64
	}
	var varying []*run
	for pos, tk := range toks[0] {
		if !tk.digits {
			continue
		}
		r := &run{pos: pos}
		constant := true
		for k := range uniq {
			s := toks[k][pos].text
			r.strs = append(r.strs, s)
			constant = constant && s == tk.text
		}
		if constant {
			continue
		}
		a, b := differing(r.strs)
		where := locate(uniq[0], tk.off)
		if streamRun(uniq[0], tk) {
			return nil, noTemplate(where+" names a stream (a representation), not a segment: these are different streams", uniq[a], uniq[b])
		}
		if looksHashed(uniq, toks, pos) {
			return nil, noTemplate(where+" looks like a content hash", uniq[a], uniq[b])
		}
		for k := range uniq {
			if signed(uniq[k], toks[k][pos].off) {
				return nil, noTemplate(where+" changes between segments but holds negative numbers, which are not segment indices", uniq[a], uniq[b])
			}
		}
		for _, s := range r.strs {
			v, err := strconv.ParseInt(s, 10, 64)
			if len(s) > maxDigits || err != nil {
				return nil, noTemplate(where+" changes between segments (too long for a number)", uniq[a], uniq[b])
			}
			r.vals = append(r.vals, v)
		}
		varying = append(varying, r)
	}

	// The index is the run every other varying run is an affine function of;
	// among several, the one with the smallest span, then the last one.
	type fit struct{ mul, add int64 }
	fits := make([][]*fit, len(varying))
	best, bestN := -1, -1
	for i, ri := range varying {
		fits[i] = make([]*fit, len(varying))
		n := 0
		for j, rj := range varying {
			if m, a, ok := affine(ri.vals, rj.vals); ok && (len(uniq) > 2 || m == 1 || a == 0) {
				fits[i][j] = &fit{m, a}
				n++
			}
		}
		if n > bestN || (n == bestN && span(ri.vals) <= span(varying[best].vals)) {
			best, bestN = i, n
		}
	}
	if bestN < len(varying) {
		for j, f := range fits[best] {
			if f == nil {
				a, b := differing(varying[j].strs)
				where := locate(uniq[0], toks[0][varying[j].pos].off)
				return nil, noTemplate(where+" changes between segments but not in step with the index", uniq[a], uniq[b])
			}
		}
	}
	index := varying[best]

	t := &Template{Step: 0, First: slices.Min(index.vals), Last: slices.Max(index.vals)}
	sorted := slices.Clone(index.vals)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	minDiff := int64(-1)
	for k := 1; k < len(sorted); k++ {
		d := sorted[k] - sorted[k-1]
		t.Step = gcd(t.Step, d)
		if minDiff < 0 || d < minDiff {
			minDiff = d
		}
	}
	if minDiff/t.Step > maxSpread {
		where := locate(uniq[0], toks[0][index.pos].off)
		a, b := differing(index.strs)
		return nil, noTemplate(fmt.Sprintf("%s changes between segments but not by a steady step (values %s)",
			where, sample(sorted)), uniq[a], uniq[b])
	}

	fields := make(map[int]*Field)
	for j, r := range varying {
		w, err := learnWidth(r.strs, r.vals)
		if err != nil {
			a, b := differing(r.strs)
			where := locate(uniq[0], toks[0][r.pos].off)
			return nil, noTemplate(where+" "+err.Error(), uniq[a], uniq[b])
		}
		f := fits[best][j]
		fields[r.pos] = &Field{Width: w, Mul: f.mul, Add: f.add}
	}
	for pos, tk := range toks[0] {
		if f, ok := fields[pos]; ok {
			t.Parts = append(t.Parts, Part{Field: f})
			continue
		}
		if n := len(t.Parts); n > 0 && t.Parts[n-1].Field == nil {
			t.Parts[n-1].Lit += tk.text
		} else {
			t.Parts = append(t.Parts, Part{Lit: tk.text})
		}
	}
	return t, nil
}

// signed reports whether the digit run at off carries a minus sign: a "-"
// right after "=", "/", "," or ":" (a dash after a letter, as in "seg-12", is a
// separator).
func signed(raw string, off int) bool {
	return off >= 2 && raw[off-1] == '-' && strings.IndexByte("=/,:", raw[off-2]) >= 0
}

func noTemplate(reason, a, b string) error {
	return fmt.Errorf("%w: %s (%q vs %q)", ErrNoTemplate, reason, truncate(a), truncate(b))
}

// sample renders the first few values for an error message.
func sample(v []int64) string {
	var s []string
	for k, x := range v {
		if k == 4 {
			s = append(s, "…")
			break
		}
		s = append(s, strconv.FormatInt(x, 10))
	}
	return strings.Join(s, ", ")
}

// differing returns two positions in strs whose texts differ.
func differing(strs []string) (int, int) {
	for k := 1; k < len(strs); k++ {
		if strs[k] != strs[0] {
			return 0, k
		}
	}
	return 0, 0
}

func sameSkeleton(a, b []token) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k].digits != b[k].digits || (!a[k].digits && a[k].text != b[k].text) {
			return false
		}
	}
	return true
}

// affine finds integers mul ≥ 1 and add with y = mul*x + add for every pair.
func affine(x, y []int64) (mul, add int64, ok bool) {
	k := slices.IndexFunc(x, func(v int64) bool { return v != x[0] })
	if k < 0 {
		return 0, 0, false
	}
	dx, dy := x[k]-x[0], y[k]-y[0]
	if dy%dx != 0 || dy/dx < 1 {
		return 0, 0, false
	}
	mul = dy / dx
	add = y[0] - mul*x[0] // |mul| ≤ 10^18 and mul*x ≈ y, so this stays in range
	for i := range x {
		p, ok := mul64(mul, x[i])
		if !ok || p+add != y[i] {
			return 0, 0, false
		}
	}
	return mul, add, true
}

func mul64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	p := a * b
	return p, p/b == a && !(a == -1 && b == -1<<63) && !(b == -1 && a == -1<<63)
}

func span(v []int64) int64 { return slices.Max(v) - slices.Min(v) }

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// learnWidth decides a run's zero padding from its observed renderings: a
// leading zero fixes the width; otherwise the run is unpadded.
func learnWidth(strs []string, vals []int64) (int, error) {
	w := 0
	for _, s := range strs {
		if len(s) > 1 && s[0] == '0' {
			if w != 0 && w != len(s) {
				return 0, fmt.Errorf("is zero-padded to different widths (%d and %d)", w, len(s))
			}
			w = len(s)
		}
	}
	for k, s := range strs {
		if format(vals[k], w) != s {
			return 0, fmt.Errorf("is zero-padded inconsistently (%q at width %d)", s, w)
		}
	}
	return w, nil
}

// locate names the URL component holding the byte at off: a query parameter
// or a path element.
func locate(raw string, off int) string {
	if q := strings.IndexByte(raw, '?'); q >= 0 && off > q {
		start := strings.LastIndexByte(raw[:off], '&')
		if start < q {
			start = q
		}
		param := raw[start+1:]
		param, _, _ = strings.Cut(param, "&")
		name, _, _ := strings.Cut(param, "=")
		return fmt.Sprintf("query parameter %q", name)
	}
	start := strings.LastIndexByte(raw[:off], '/') + 1
	elem := raw[start:]
	if end := strings.IndexAny(elem, "/?"); end >= 0 {
		elem = elem[:end]
	}
	hostStart := strings.Index(raw, "://") + 3
	if start <= hostStart {
		return fmt.Sprintf("host %q", elem)
	}
	return fmt.Sprintf("path element %q", elem)
}

// looksHashed reports whether the varying run at pos sits in a path element or
// query value that, in some URL, looks like a hexadecimal hash.
func looksHashed(uniq []string, toks [][]token, pos int) bool {
	for k, u := range uniq {
		off := toks[k][pos].off
		start := strings.LastIndexAny(u[:off], "/=&?") + 1
		end := len(u)
		if e := strings.IndexAny(u[off:], "/?&.#"); e >= 0 {
			end = off + e
		}
		if isHexHash(u[start:end]) {
			return true
		}
	}
	return false
}

// isHexHash reports whether s is 8 or more hex digits with at least one letter
// and one digit, such as a content hash "3f9a1c0e".
func isHexHash(s string) bool {
	if len(s) < 8 {
		return false
	}
	letter, digit := false, false
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		switch {
		case isDigit(s[i]):
			digit = true
		case 'a' <= c && c <= 'f':
			letter = true
		default:
			return false
		}
	}
	return letter && digit
}

// explain says what differs, other than digits, between two URLs.
func explain(a, b string) string {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA != nil || errB != nil {
		return "urls differ in more than numbers"
	}
	skel := func(s string) string {
		var b strings.Builder
		for _, t := range tokenize(s) {
			if t.digits {
				b.WriteByte('#')
			} else {
				b.WriteString(t.text)
			}
		}
		return b.String()
	}
	if ua.Scheme != ub.Scheme {
		return "scheme changes between segments"
	}
	if skel(ua.Host) != skel(ub.Host) {
		return fmt.Sprintf("host changes between segments (%q vs %q)", ua.Host, ub.Host)
	}
	pa, pb := strings.Split(ua.EscapedPath(), "/"), strings.Split(ub.EscapedPath(), "/")
	if len(pa) != len(pb) {
		return "path depth changes between segments"
	}
	for k := range pa {
		if skel(pa[k]) == skel(pb[k]) {
			continue
		}
		stem := func(s string) string { s, _, _ = strings.Cut(s, "."); return s }
		if isHexHash(stem(pa[k])) || isHexHash(stem(pb[k])) {
			return fmt.Sprintf("path element %q looks like a content hash", pa[k])
		}
		return fmt.Sprintf("path element %q changes between segments", pa[k])
	}
	qa, qb := params(ua.RawQuery), params(ub.RawQuery)
	for _, p := range qa {
		if v, ok := lookup(qb, p[0]); !ok {
			return fmt.Sprintf("query parameter %q is missing from some segments", p[0])
		} else if skel(v) != skel(p[1]) {
			return fmt.Sprintf("query parameter %q changes between segments", p[0])
		}
	}
	for _, p := range qb {
		if _, ok := lookup(qa, p[0]); !ok {
			return fmt.Sprintf("query parameter %q is missing from some segments", p[0])
		}
	}
	return "urls differ in more than numbers"
}

func params(q string) [][2]string {
	var out [][2]string
	for _, p := range strings.Split(q, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		out = append(out, [2]string{k, v})
	}
	return out
}

func lookup(ps [][2]string, k string) (string, bool) {
	for _, p := range ps {
		if p[0] == k {
			return p[1], true
		}
	}
	return "", false
}

// indexWords are names that packagers put right before the segment number.
var indexWords = map[string]bool{
	"seg": true, "segment": true, "chunk": true, "frag": true, "fragment": true,
	"part": true, "piece": true, "sq": true, "index": true, "sequence": true, "filesequence": true,
}

// guess picks the index of a single URL: the most index-like digit run of the
// file name (the path's last element), else the last digit run of the path.
// Index-like, best first: a run right after a word such as "segment" or
// "fileSequence"; a run standing alone between separators; a run glued to a
// unit ("720p"); a run glued to a letter prefix ("v1", "b2500000"). Ties go
// to the later run.
func guess(raw string) (*Template, error) {
	hostStart := strings.Index(raw, "://") + 3
	pathStart := strings.IndexByte(raw[hostStart:], '/')
	if pathStart < 0 {
		return nil, fmt.Errorf("%w: no digits in the path of %q", ErrNoTemplate, truncate(raw))
	}
	pathStart += hostStart
	pathEnd := len(raw)
	if q := strings.IndexByte(raw, '?'); q >= 0 {
		pathEnd = q
	}
	fileStart := strings.LastIndexByte(raw[:pathEnd], '/') + 1
	if hasWord(raw[fileStart:pathEnd], "init") {
		return nil, fmt.Errorf("%w: %q is an init segment: it has no segment number", ErrNoTemplate, truncate(raw))
	}
	toks := tokenize(raw)
	pick, pickScore := -1, -1
	lastInPath := -1
	for k, tk := range toks {
		if !tk.digits || tk.off < pathStart || tk.off >= pathEnd || len(tk.text) > maxDigits || signed(raw, tk.off) || streamRun(raw, tk) {
			continue
		}
		lastInPath = k
		if tk.off < fileStart {
			continue
		}
		if s := indexScore(raw, tk); s >= pickScore {
			pick, pickScore = k, s
		}
	}
	if pick < 0 {
		pick = lastInPath
	}
	if pick < 0 {
		return nil, fmt.Errorf("%w: no digits in the path of %q", ErrNoTemplate, truncate(raw))
	}
	tk := toks[pick]
	v, _ := strconv.ParseInt(tk.text, 10, 64)
	w := 0
	if len(tk.text) > 1 && tk.text[0] == '0' {
		w = len(tk.text)
	}
	t := &Template{Step: 1, First: v, Last: v, Tentative: true}
	if tk.off > 0 {
		t.Parts = append(t.Parts, Part{Lit: raw[:tk.off]})
	}
	t.Parts = append(t.Parts, Part{Field: &Field{Width: w, Mul: 1}})
	if end := tk.off + len(tk.text); end < len(raw) {
		t.Parts = append(t.Parts, Part{Lit: raw[end:]})
	}
	return t, nil
}

func isLetter(c byte) bool { c |= 0x20; return 'a' <= c && c <= 'z' }

// streamWords name a stream (a DASH representation) in a segment's file name:
// the number glued to one says which stream, never which segment
// (ffmpeg's init-stream0.m4s and chunk-stream1-00001.m4s).
var streamWords = map[string]bool{"stream": true, "rep": true, "representation": true, "track": true}

// streamRun reports whether tk is a digit run of raw's file name (its path's
// last element) glued to a stream word.
func streamRun(raw string, tk token) bool {
	if !tk.digits {
		return false
	}
	end := len(raw)
	if q := strings.IndexAny(raw, "?#"); q >= 0 {
		end = q
	}
	file := strings.LastIndexByte(raw[:end], '/') + 1
	if tk.off < file || tk.off >= end {
		return false
	}
	i := tk.off
	for i > file && isLetter(raw[i-1]) {
		i--
	}
	return streamWords[strings.ToLower(raw[i:tk.off])]
}

// hasWord reports whether w is a whole word of name, words split at '-', '_'
// and '.' (as media.Classify tells init segments by name).
func hasWord(name, w string) bool {
	for _, f := range strings.FieldsFunc(strings.ToLower(name), func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
		if f == w {
			return true
		}
	}
	return false
}

func indexScore(raw string, tk token) int {
	i := tk.off
	for i > 0 && isLetter(raw[i-1]) {
		i--
	}
	if word := strings.ToLower(raw[i:tk.off]); word != "" {
		if indexWords[word] {
			return 3
		}
		return 0
	}
	if end := tk.off + len(tk.text); end < len(raw) && isLetter(raw[end]) {
		return 1
	}
	return 2
}
