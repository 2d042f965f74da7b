package recorder

import (
	"net/http"

	"github.com/streamsnatcher/streamsnatcher/internal/redact"
)

// RedactHeader returns value as it may be shown: a placeholder when the
// header's name suggests a credential (cookies, authorization, tokens,
// signatures, keys in custom headers), otherwise the value with the
// credentials in any URL it holds hidden (a Referer or Origin with ?token=…).
func RedactHeader(name, value string) string { return redact.Header(name, value) }

// Redact hides query values that look like credentials (tokens, signatures,
// long opaque strings) so a URL can be printed in logs and errors.
func Redact(raw string) string { return redact.URL(raw) }

func redactURL(raw string) string { return redact.URL(raw) }

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
		Playlist: redactURL(s.Playlist), Target: s.Target, Headers: map[string]string{}}
	if t := s.Main(); t != nil {
		r.Gaps = t.Gaps
		if t.Template != nil {
			r.Template = redactURL(t.Template.String())
		}
		if t.Source != "" {
			r.Playlist = redactURL(t.Source)
		}
	}
	for k, v := range s.Headers {
		r.Headers[k] = RedactHeader(k, v)
	}
	return r
}
