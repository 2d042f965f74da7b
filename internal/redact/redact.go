// Package redact hides credentials in what a person or a log can see: query values of URLs that look like
// tokens or signatures, user info, and the values of headers that carry secrets. It is shared by the proxy
// (which cannot import the recorder) and the recorder, so both hide the same things.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Placeholder replaces a secret header value.
const Placeholder = "<redacted>"

// secretNameParts mark a header or query parameter whose value is a credential.
var secretNameParts = []string{
	"cookie", "auth", "token", "sig", "key", "session", "secret", "pass", "policy", "cred",
	"hdnts", "hdnea", "hash", "csrf", "xsrf",
}

// SecretName reports whether a header or query parameter name suggests a credential
// (Authorization, Cookie, X-Signature, X-Api-Key, Policy, session_id, …).
func SecretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range secretNameParts {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// Header returns a header value as it may be shown: a placeholder when the header's name suggests a
// credential, otherwise the value with every URL in it redacted (a Referer or Origin carrying ?token=…).
func Header(name, value string) string {
	if value == "" {
		return ""
	}
	if SecretName(name) {
		return Placeholder
	}
	return Text(value)
}

// Headers returns a redacted copy of h.
func Headers(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = Header(k, v)
	}
	return out
}

// urlInText finds absolute URLs inside free text (a log line, an error, a header value).
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// Text redacts every URL inside s.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, URL)
}

// URL hides user info and the query values that look like credentials (a secret-sounding name, or a long
// opaque value), so a URL can be printed in logs and errors. A URL that url.Parse refuses is redacted by its
// delimiters.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return unparsed(raw)
	}
	if u.RawQuery == "" && u.User == nil {
		return raw
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	u.RawQuery = Query(u.RawQuery)
	return u.String()
}

func unparsed(raw string) string {
	rest, frag, hasFrag := strings.Cut(raw, "#")
	base, query, hasQuery := strings.Cut(rest, "?")
	if scheme, after, ok := strings.Cut(base, "://"); ok {
		host, path, _ := strings.Cut(after, "/")
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = "redacted@" + host[at+1:]
		}
		base = scheme + "://" + host
		if path != "" || strings.Contains(after, "/") {
			base += "/" + path
		}
	}
	out := base
	if hasQuery {
		out += "?" + Query(query)
	}
	if hasFrag {
		out += "#" + frag
	}
	return out
}

// Query redacts the values of a raw query string that look like credentials.
func Query(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			continue
		}
		if SecretName(k) || len(v) >= 24 {
			parts[i] = k + "=REDACTED"
		}
	}
	return strings.Join(parts, "&")
}
