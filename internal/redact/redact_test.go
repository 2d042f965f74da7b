package redact

import (
	"strings"
	"testing"
)

// Every kind of secret the issue names: none survives, and what is not secret stays readable.
func TestSecrets(t *testing.T) {
	const secret = "SECRET1"
	tests := []struct {
		name, header, value, keep string
	}{
		{"referer token", "Referer", "https://site.example/watch?token=SECRET1&n=2", "n=2"},
		{"origin policy", "Origin", "https://site.example/?Policy=SECRET1", "site.example"},
		{"cloudfront trio", "Referer", "https://d.example/v?Policy=SECRET1&Signature=SECRET1&Key-Pair-Id=SECRET1&x=1", "x=1"},
		{"akamai", "Referer", "https://a.example/v?hdnts=SECRET1", "a.example"},
		{"user info", "Referer", "https://u:SECRET1@site.example/", "site.example"},
		{"long opaque value", "Referer", "https://site.example/?x=SECRET1SECRET1SECRET1SECRET1", "site.example"},
		{"cookie", "Cookie", "sess=SECRET1", ""},
		{"authorization", "Authorization", "Bearer SECRET1", ""},
		{"proxy authorization", "Proxy-Authorization", "Basic SECRET1", ""},
		{"signature", "X-Signature", "SECRET1", ""},
		{"api key", "X-Api-Key", "SECRET1", ""},
		{"custom token", "X-Auth-Token", "SECRET1", ""},
		{"session", "X-Session-Id", "SECRET1", ""},
		{"password", "X-Password", "SECRET1", ""},
		{"policy", "X-Policy", "SECRET1", ""},
		{"plain header kept", "User-Agent", "Mozilla/5.0", "Mozilla/5.0"},
		{"plain x- header kept", "X-Requested-With", "XMLHttpRequest", "XMLHttpRequest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Header(tc.header, tc.value)
			if strings.Contains(got, secret) || !strings.Contains(got, tc.keep) {
				t.Errorf("Header(%q, %q) = %q: want no secret and %q kept", tc.header, tc.value, got, tc.keep)
			}
		})
	}
}

func TestText(t *testing.T) {
	in := `upstream request failed url=https://cdn.example/v/1.ts?token=SECRET1&n=2 err="dial tcp: refused"`
	got := Text(in)
	if strings.Contains(got, "SECRET1") || !strings.Contains(got, "n=2") || !strings.Contains(got, "dial tcp") {
		t.Errorf("Text(%q) = %q", in, got)
	}
}
