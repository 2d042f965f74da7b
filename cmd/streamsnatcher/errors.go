package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"

	"github.com/streamsnatcher/streamsnatcher/merge"
	"github.com/streamsnatcher/streamsnatcher/playlist"
	"github.com/streamsnatcher/streamsnatcher/recorder"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// urlInText finds URLs inside an error message.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// usageError is a bad flag or argument: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// hintedError carries the advice printed under the error line.
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }

func hinted(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &hintedError{err: err, hint: fmt.Sprintf(format, args...)}
}

// sessionError names the session a failure belongs to, so the hint can say how to resume.
type sessionError struct {
	id  string
	err error
}

func (e *sessionError) Error() string { return e.err.Error() }
func (e *sessionError) Unwrap() error { return e.err }

// stoppedError is a live recording stopped by Ctrl-C and finalised: exit 130,
// but no error.
type stoppedError struct {
	output  string
	seconds float64
}

func (e *stoppedError) Error() string {
	return fmt.Sprintf("stopped: the live recording so far (%.0f s) is in %s", e.seconds, e.output)
}

// report prints err as `streamsnatcher: error: …` plus a hint, and picks the exit code.
func (a *app) report(ctx context.Context, err error) int {
	code := exitError
	msg := err.Error()
	hint := ""
	var he *hintedError
	var ue usageError
	var ie *recorder.IncompleteError
	var se *sessionError
	var pe *playlist.ParseError
	var nm *playlist.NoMatchError
	var ste *recorder.StartError
	var stopped *stoppedError
	if errors.As(err, &stopped) {
		fmt.Fprintf(a.stderr, "streamsnatcher: %s\n", stopped.Error())
		return exitInterrupt
	}
	id := "<session id>"
	if errors.As(err, &se) {
		id = se.id
	}
	resume := "streamsnatcher replay " + id
	switch {
	case errors.As(err, &he):
		hint = he.hint
	case errors.As(err, &ue):
		code = exitUsage
		hint = "see 'streamsnatcher --help'"
		if strings.HasPrefix(msg, "unknown command") {
			hint = "commands: get, replay, sessions, template, watch, ca, config"
		}
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		code = exitInterrupt
		msg = "interrupted; everything downloaded so far is kept"
		hint = "resume with: " + resume
	case errors.Is(err, recorder.ErrDRM):
		hint = "the video is encrypted with DRM: StreamSnatcher does not record protected content"
	case errors.Is(err, recorder.ErrLiveDASH):
		hint = "live DASH is followed on a SegmentTimeline or SegmentList, or on the clock from availabilityStartTime; this manifest gives neither"
	case errors.Is(err, recorder.ErrExpired):
		code = exitIncomplete
		hint = fmt.Sprintf("the origin wants headers, a cookie or a fresh token: copy them from the browser and resume with: %s -H 'Cookie: …' --referer URL (or --url a fresh segment URL)", resume)
	case errors.Is(err, recorder.ErrNotMedia):
		hint = "the origin sent a web page instead of video: the URL may need --referer or --cookie, or it is not a segment URL"
	case errors.Is(err, urltemplate.ErrNoPlaceholder), errors.Is(err, urltemplate.ErrNoTemplate):
		hint = "put (*) where the segment number goes, e.g. https://cdn.example.com/v/seg_(*).ts --pad 5, or give a .m3u8 playlist URL"
	case errors.Is(err, urltemplate.ErrBadURL):
		hint = "give an absolute http:// or https:// URL, quoted for the shell"
	case errors.As(err, &ste):
		hint = startHint(ste)
	case errors.Is(err, recorder.ErrNotFound):
		hint = "check the URL: the origin has no such segment"
	case errors.Is(err, recorder.ErrProbeLimit):
		hint = "say how long it is: --count N, or --duration hh:mm:ss with --segment-seconds S"
	case errors.Is(err, recorder.ErrLowDisk):
		code = exitIncomplete
		hint = "free some space, then resume with: " + resume + " (nothing downloaded is lost); or leave less free with --min-free, e.g. --min-free 100MB"
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		// Saving the session may have failed for the same reason: keep it to one line.
		msg = strings.ReplaceAll(msg, "\n", "; ")
		hint = "the disk is full: free some space, then resume with: " + resume + " (nothing downloaded is lost)"
	case errors.Is(err, recorder.ErrTooLarge):
		hint = "a response was bigger than the size cap: the URL may point at a whole file or a web page rather than a segment"
	case errors.Is(err, os.ErrPermission):
		hint = "choose a writable place with -o or --data-dir"
	case errors.Is(err, merge.ErrVerify) || strings.Contains(msg, "ffmpeg"):
		hint = "the segments are kept; retry the merge with: " + resume + " (--debug shows ffmpeg's output)"
	case errors.As(err, &nm):
		hint = noMatchHint(nm)
	case errors.As(err, &pe):
		hint = "the URL did not give a valid HLS playlist: open it in the browser's network tab and copy the .m3u8 request the player makes, or give a segment URL"
	case errors.Is(err, recorder.ErrNoSession):
		hint = "list sessions with: streamsnatcher sessions"
	case errors.Is(err, recorder.ErrBadSession):
		hint = "the session file is damaged; its segments are kept next to it"
	}
	if errors.As(err, &ue) {
		code = exitUsage // also when a hint came with it
	}
	if errors.As(err, &ie) {
		code = exitIncomplete
		if hint == "" || errors.Is(err, recorder.ErrNotFound) {
			hint = fmt.Sprintf("retry the missing segments with: %s   (or add --allow-gaps to merge without them)", resume)
		}
	}
	// Errors from parsers quote what the person typed: hide tokens and passwords in any URL.
	msg = urlInText.ReplaceAllStringFunc(msg, recorder.Redact)
	fmt.Fprintf(a.stderr, "streamsnatcher: error: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(a.stderr, "streamsnatcher: hint: %s\n", hint)
	}
	return code
}

// startHint is the advice for a range whose first segments are not there.
func startHint(ste *recorder.StartError) string {
	if ste.NextExists {
		return fmt.Sprintf("try --start %d, or leave --start out: the start is then found by itself", ste.Next)
	}
	return "check the URL: (*) must stand where the segment number goes and --pad match its digits (seg_00012.ts is --pad 5); or give one segment URL as the browser requests it, without (*), and the numbering is learned"
}

// noMatchHint says how to pick among a master playlist's choices.
func noMatchHint(nm *playlist.NoMatchError) string {
	switch nm.Of {
	case "audio rendition":
		return "give one of the choices' languages with --audio-lang, --audio all for every one, or neither for the default audio"
	case "subtitle rendition":
		return "give one of the choices' languages with --subs, or --subs all (the default) or --subs none"
	}
	return "give one of the choices with --variant (its index, WIDTHxHEIGHT, 720p or bandwidth), or leave it out for the best"
}
