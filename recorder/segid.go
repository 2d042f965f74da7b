package recorder

// A segIndex finds which segment a URL names, among the segments of the
// playlists seen. The URL as listed comes first; a URL that differs only in
// its query (a reloaded page's fresh token) is found by its path alone, but
// only while that path names a single segment: segments told apart by their
// query alone ("seg.ts?n=0", "seg.ts?n=3") are never taken for one another.
type segIndex[T comparable] struct {
	exact map[string]T
	loose map[string]T    // URL without its query → the one segment it names
	clash map[string]bool // URLs without query that name several segments
}

func newSegIndex[T comparable]() *segIndex[T] {
	return &segIndex[T]{exact: map[string]T{}, loose: map[string]T{}, clash: map[string]bool{}}
}

// add records that URL u names ref.
func (x *segIndex[T]) add(u string, ref T) {
	x.exact[u] = ref
	k := stripQuery(u)
	if x.clash[k] {
		return
	}
	if old, ok := x.loose[k]; ok && old != ref {
		delete(x.loose, k)
		x.clash[k] = true
		return
	}
	x.loose[k] = ref
}

// find returns the segment URL u names: the one listed with exactly u, else
// the only one whose URL differs from u in its query alone.
func (x *segIndex[T]) find(u string) (T, bool) {
	if ref, ok := x.exact[u]; ok {
		return ref, true
	}
	ref, ok := x.loose[stripQuery(u)]
	return ref, ok
}

// drop forgets every segment for which gone is true.
func (x *segIndex[T]) drop(gone func(T) bool) {
	for _, m := range []map[string]T{x.exact, x.loose} {
		for k, v := range m {
			if gone(v) {
				delete(m, k)
			}
		}
	}
}

// addExact records that URL u, and only u (query included), names ref: a
// live broadcast's segments may differ in their query alone, and the next
// one's URL must never be taken for one listed before it.
func (x *segIndex[T]) addExact(u string, ref T) {
	x.exact[u] = ref
}

// remove forgets that URL u names ref.
func (x *segIndex[T]) remove(u string, ref T) {
	if v, ok := x.exact[u]; ok && v == ref {
		delete(x.exact, u)
	}
	if k := stripQuery(u); x.loose[k] == ref {
		delete(x.loose, k)
	}
}
