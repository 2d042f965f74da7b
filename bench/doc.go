// Package bench holds the performance benchmark of the headless core (issue 2): how long `streamsnatcher get`
// takes to turn a VOD on a simulated CDN into a verified .mp4, compared with the raw time the link needs to move
// the same bytes, and how much memory the tool uses while doing it.
//
// The benchmark lives in bench_test.go and is run by hand, never by CI:
//
//	go test -bench . -run '^$' -benchtime 1x ./bench/
//
// See README.md for what each figure means.
package bench
