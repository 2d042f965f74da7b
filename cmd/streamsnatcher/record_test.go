package main

import "testing"

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"512MiB", 512 << 20, true},
		{"200MB", 200_000_000, true},
		{" 2 GiB ", 2 << 30, true},
		{"1.5G", 3 << 29, true},
		{"100m", 100 << 20, true},
		{"1TB", 1e12, true},
		{"", 0, false},
		{"lots", 0, false},
		{"-1MB", 0, false},
		{"5XB", 0, false},
		{"1e30TB", 0, false},
	} {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
