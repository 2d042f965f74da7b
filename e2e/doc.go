// Package e2e holds the end-to-end tests: a real headless Chromium plays HLS
// through the real proxy while StreamSnatcher learns, backfills and merges it.
package e2e
