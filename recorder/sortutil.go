package recorder

import "slices"

func sortInts(a []int64) []int64 { slices.Sort(a); return a }

func sortSegErrs(a []*SegmentError) {
	slices.SortFunc(a, func(x, y *SegmentError) int {
		switch {
		case x.Index < y.Index:
			return -1
		case x.Index > y.Index:
			return 1
		}
		return 0
	})
}
