package recorder

import (
	"net/http"
	"net/url"
	"strings"
)

// sensitiveHeaders are never printed with their values.
var sensitiveHeaders = map[string]bool{
	"cookie": true, "authorization": true, "proxy-authorization": true, "set-cookie": true,
}

// RedactHeader returns value, or a placeholder when the header carries a secret
// (cookies, credentials, tokens in custom headers).
func RedactHeader(name, value string) string {
	n := strings.ToLower(name)
	if sensitiveHeaders[n] || strings.Contains(n, "token") || strings.Contains(n, "auth") ||
		strings.Contains(n, "key") || strings.Contains(n, "secret") || strings.Contains(n, "session") {
		if value == "" {
			return ""
		}
		return "<redacted>"
	}
	return value
}

// Redact hides query values that look like credentials (tokens, signatures,
// long opaque strings) so a URL can be printed in logs and errors.
func Redact(raw string) string { return redactURL(raw) }

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redactUnparsed(raw)
	}
	if u.RawQuery == "" && u.User == nil {
		return raw
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	u.RawQuery = redactQuery(u.RawQuery)
	return u.String()
}

// redactUnparsed redacts a URL that url.Parse refuses (a bad escape, say):
// the user info and the query are found by their delimiters.
func redactUnparsed(raw string) string {
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
		out += "?" + redactQuery(query)
	}
	if hasFrag {
		out += "#" + frag
	}
	return out
}

func redactQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			continue
		}
		if sensitiveQuery(k, v) {
			parts[i] = k + "=REDACTED"
		}
	}
	return strings.Join(parts, "&")
}

func sensitiveQuery(k, v string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"token", "sig", "auth", "key", "hash", "hdnts", "hdnea", "policy", "session", "secret", "pass", "cred"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return len(v) >= 24
}

func canonicalHeader(k string) string { return http.CanonicalHeaderKey(k) }

// A RedactedSession is what may be shown of a session: its summary, the
// template or playlist with credentials hidden, and header values redacted.
type RedactedSession struct {
	Summary
	Source   string            `json:"source"`
	Page     string            `json:"page,omitempty"`
	Template string            `json:"template,omitempty"`
	Playlist string            `json:"playlist_url,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Target   string            `json:"target,omitempty"`
}

// Redacted returns the session as it may be printed.
func (s *Session) Redacted() RedactedSession {
	r := RedactedSession{Summary: s.Summary(), Source: s.Source, Page: redactURL(s.Page),
		Playlist: redactURL(s.PlaylistURL), Target: s.Target, Headers: map[string]string{}}
	if s.Template != nil {
		r.Template = redactURL(s.Template.String())
	}
	for k, v := range s.Headers {
		r.Headers[k] = RedactHeader(k, v)
	}
	return r
}
