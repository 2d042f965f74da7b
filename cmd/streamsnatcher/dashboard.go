package main

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/streamsnatcher/streamsnatcher/certs"
	"github.com/streamsnatcher/streamsnatcher/dashboard"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// dashboard serves the proxy's own pages: the live dashboard over the capture.
func (a *app) dashboard(c *recorder.Capture, ca *certs.CA) http.Handler {
	b := &dashBackend{a: a, c: c,
		ca: dashboard.CAInfo{PEM: ca.CertPEM(), SPKI: ca.SPKIHash(), TrustSteps: certs.TrustInstructions(ca)}}
	b.outDir = a.v.GetString("out-dir")
	if abs, err := filepath.Abs(b.outDir); err == nil {
		b.outDir = abs
	}
	return dashboard.New(dashboard.Options{Backend: b, Logger: a.log,
		ChromiumArgs: func(addr string) []string {
			// Shown as a shell command: quoted, with a fresh profile directory.
			args := ChromiumArgs(addr, b.ca.SPKI, "\x00")
			for i, arg := range args {
				if strings.Contains(arg, "\x00") {
					args[i] = strings.ReplaceAll(arg, "\x00", `"$(mktemp -d)"`)
				} else if strings.Trim(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:@,") != "" {
					args[i] = "'" + strings.ReplaceAll(arg, "'", `'\''`) + "'"
				}
			}
			return args
		}})
}

// dashBackend is what the dashboard drives: the capture of `watch`.
type dashBackend struct {
	a      *app
	c      *recorder.Capture
	ca     dashboard.CAInfo
	outDir string
}

func (b *dashBackend) Streams() []recorder.StreamStatus { return b.c.Streams() }
func (b *dashBackend) Act(id, action string) error      { return b.c.Act(id, action) }
func (b *dashBackend) CA() dashboard.CAInfo             { return b.ca }

// StartGet builds a session as `get` does from the dashboard's form and lets the capture run it; the video goes
// to watch's --out-dir.
func (b *dashBackend) StartGet(f dashboard.GetForm) (string, error) {
	o := getOptions{pad: f.Pad, count: f.Count, duration: f.Duration, segmentSeconds: f.SegmentSeconds}
	s, err := o.session([]string{f.URL})
	if err != nil {
		return "", withHint(err)
	}
	s.Headers = map[string]string{"User-Agent": defaultUserAgent}
	if f.Referer != "" {
		if strings.ContainsAny(f.Referer, "\r\n") || checkURL(f.Referer) != nil {
			return "", errors.New("referer: give the address of the page the video plays on (http or https)")
		}
		s.Headers["Referer"] = f.Referer
		s.Page = f.Referer
	}
	st, err := b.a.store()
	if err != nil {
		return "", err
	}
	if err := st.Create(s); err != nil {
		return "", err
	}
	s.Target = filepath.Join(b.outDir, strings.TrimSuffix(derivedName(f.URL), ".mp4")+"-"+s.ID+".mp4")
	if err := s.Save(); err != nil {
		return "", err
	}
	if err := b.c.Add(s); err != nil {
		return "", fmt.Errorf("session %s: %w", s.ID, err)
	}
	return s.ID, nil
}

// withHint puts a hinted error's advice into its message: the dashboard shows one line.
func withHint(err error) error {
	var he *hintedError
	if errors.As(err, &he) {
		return fmt.Errorf("%w (%s)", err, he.hint)
	}
	return err
}
