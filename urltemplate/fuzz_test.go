package urltemplate

import (
	"strings"
	"testing"
)

// sanitize maps arbitrary bytes onto URL-safe text that cannot look like a hex
// hash next to the index (no a-f letters).
func sanitize(s string, alphabet string) string {
	var b strings.Builder
	for i := 0; i < len(s) && i < 40; i++ {
		b.WriteByte(alphabet[int(s[i])%len(alphabet)])
	}
	return b.String()
}

const pathAlphabet = "ghkmpqstuvwxyz0123456789-_/"

// FuzzLearn generates URLs from a random template and checks that Learn finds a
// template that regenerates every one of them, with the same spacing and step.
func FuzzLearn(f *testing.F) {
	f.Add("live/segment", "", uint8(3), uint16(0), uint32(0), uint8(0), uint8(5), false)
	f.Add("v/720p/x", "ts?token=T", uint8(6), uint16(0), uint32(12), uint8(0), uint8(9), true)
	f.Add("hls/seg", "v1-a1.ts", uint8(0), uint16(9), uint32(98), uint8(7), uint8(40), false)
	f.Add("", "", uint8(0), uint16(999), uint32(999999999), uint8(255), uint8(0), true)
	f.Fuzz(func(t *testing.T, prefix, suffix string, width uint8, step uint16, start uint32, extra, count uint8, query bool) {
		w := int(width % 12)
		st := int64(step%1000) + 1
		first := int64(start % 1_000_000_000)
		mul2, add2 := int64(extra%5)+1, int64(extra/5)
		tpl := &Template{Step: st}
		tpl.Parts = append(tpl.Parts, Part{Lit: "https://h.example/" + sanitize(prefix, pathAlphabet) + "_"})
		tpl.Parts = append(tpl.Parts, Part{Field: &Field{Width: w, Mul: 1}})
		tail := "." + sanitize(suffix, pathAlphabet+"?=&.")
		if extra > 0 {
			tpl.Parts = append(tpl.Parts, Part{Lit: "_p"}, Part{Field: &Field{Mul: mul2, Add: add2}})
		}
		if query {
			tail += "?tok=" + sanitize(suffix, "QRZ019")
		}
		tpl.Parts = append(tpl.Parts, Part{Lit: tail})

		ks := []int64{0, 1, 2, int64(count%50) + 3}
		var urls []string
		for _, k := range ks {
			urls = append(urls, tpl.URL(first+k*st))
		}
		input := append([]string{urls[3], urls[0]}, urls...) // out of order, with duplicates
		got, err := Learn(input)
		if err != nil {
			t.Fatalf("Learn(%q): %v", urls, err)
		}
		if got.Step != st || got.Tentative {
			t.Fatalf("Learn(%q): got %s, want step %d, not tentative", urls, got, st)
		}
		var i0 int64
		for j, u := range urls {
			i, ok := got.Match(u)
			if !ok || got.URL(i) != u {
				t.Fatalf("Learn(%q) = %s: Match(%q) = %d, %v; want the index that regenerates it", urls, got, u, i, ok)
			}
			if j == 0 {
				i0 = i
			} else if i-i0 != ks[j]*st {
				t.Fatalf("Learn(%q) = %s: index of %q is %d, want %d", urls, got, u, i, i0+ks[j]*st)
			}
			if li, ok := got.MatchLoose(u); !ok || li != i {
				t.Fatalf("MatchLoose(%q) = %d, %v; want %d", u, li, ok, i)
			}
		}
		if got.First != i0 || got.Last != i0+ks[3]*st {
			t.Fatalf("Learn(%q) = %s: want seen %d..%d", urls, got, i0, i0+ks[3]*st)
		}
	})
}

// FuzzLearnAny feeds arbitrary strings: Learn never panics, and whenever it
// succeeds every input maps to an index that regenerates it, and all inputs
// share a Shape. Match on an arbitrary string only succeeds if it regenerates.
func FuzzLearnAny(f *testing.F) {
	f.Add("https://c.example.com/v/000012.ts?token=T", "https://c.example.com/v/000013.ts?token=T", "https://c.example.com/v/000015.ts?token=T", "https://c.example.com/v/000099.ts?token=U")
	f.Add("https://c.example.com/s/12/seg12_part24.ts", "https://c.example.com/s/13/seg13_part26.ts", "", "https://c.example.com/s/1/seg1_part2.ts")
	f.Add("https://c.example.com/v/3f9a1c0e.ts", "https://c.example.com/v/7f2a5c9e.ts", "https://c.example.com/v/1f1a1c1e.ts", "x")
	f.Add("http://h/1", "http://h/2#x", "http://h/99999999999999999999", "http://h/-1")
	f.Fuzz(func(t *testing.T, a, b, c, probe string) {
		urls := []string{a, b}
		if c != "" {
			urls = append(urls, c)
		}
		tpl, err := Learn(urls)
		if err != nil {
			return
		}
		if tpl.Step < 1 || tpl.First > tpl.Last {
			t.Fatalf("Learn(%q): got %s, want step ≥ 1 and First ≤ Last", urls, tpl)
		}
		_ = tpl.String()
		for _, u := range urls {
			u, _, _ = strings.Cut(u, "#")
			i, ok := tpl.Match(u)
			if !ok || tpl.URL(i) != u || i < tpl.First || i > tpl.Last {
				t.Fatalf("Learn(%q) = %s: Match(%q) = %d, %v", urls, tpl, u, i, ok)
			}
			if Shape(u) != Shape(urls[0]) {
				t.Fatalf("Learn(%q) succeeded but Shape(%q) = %q differs from %q", urls, u, Shape(u), Shape(urls[0]))
			}
		}
		if i, ok := tpl.Match(probe); ok && (i < 0 || tpl.URL(i) != probe) {
			t.Fatalf("Match(%q) = %d, true but URL(%d) = %q", probe, i, i, tpl.URL(i))
		}
		if i, ok := tpl.MatchLoose(probe); ok && i < 0 {
			t.Fatalf("MatchLoose(%q) = %d, true", probe, i)
		}
	})
}

// FuzzPlaceholder: whenever Placeholder succeeds, URL(n) has no "(*)" left,
// is an absolute http(s) URL, and Match maps it back to n.
func FuzzPlaceholder(f *testing.F) {
	f.Add("https://cdn.example.com/v/seg(*).ts?x=1", uint8(0), uint64(7))
	f.Add("https://cdn.example.com/v/(*)0.ts", uint8(5), uint64(123456))
	f.Add("http://h/((*)*)", uint8(1), uint64(0))
	f.Add("https://cdn(*).example.com/", uint8(19), uint64(1<<62))
	f.Add("(*)", uint8(0), uint64(1))
	f.Fuzz(func(t *testing.T, raw string, pad uint8, n uint64) {
		tpl, err := Placeholder(raw, int(pad%20))
		if err != nil {
			return
		}
		i := int64(n % 1_000_000_000_000_000)
		u := tpl.URL(i)
		if strings.Contains(u, "(*)") {
			t.Fatalf("Placeholder(%q).URL(%d) = %q still holds (*)", raw, i, u)
		}
		if got, ok := tpl.Match(u); !ok || got != i {
			t.Fatalf("Placeholder(%q, %d): Match(%q) = %d, %v; want %d", raw, pad%20, u, got, ok, i)
		}
	})
}
