package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// runIsolated runs the command line in-process with an isolated home and data dir.
func runIsolated(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, ".data"))
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// errorLines returns the `streamsnatcher: error:` lines of stderr.
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "streamsnatcher: error: ") {
			out = append(out, l)
		}
	}
	return out
}

// TestMalformedPlaylist: a .m3u8 URL serving garbage gives one error line
// quoting the offending playlist line, a hint, and a non-zero exit.
func TestMalformedPlaylist(t *testing.T) {
	dir := t.TempDir()
	if err := testorigin.WriteFiles(dir, map[string][]byte{
		"garbage.m3u8": []byte("#EXTM3U\n#EXT-X-TARGETDURATION:banana\n#EXTINF:x,\nseg.ts\n"),
		"html.m3u8":    []byte("<html><body>Not Found</body></html>\n"),
	}); err != nil {
		t.Fatal(err)
	}
	o := testorigin.Start(t, testorigin.Options{Dir: dir, Prefix: "/v/"})
	tests := []struct {
		name, file, quote string
	}{
		{"bad tag value", "garbage.m3u8", "banana"},
		{"not a playlist", "html.m3u8", "<html>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runIsolated(t, "get", o.URL+tc.file, "-o", filepath.Join(t.TempDir(), "x.mp4"), "-q")
			if code == exitOK {
				t.Fatalf("exit 0 for a malformed playlist; stderr:\n%s", stderr)
			}
			lines := errorLines(stderr)
			if len(lines) != 1 || !strings.Contains(lines[0], tc.quote) || !strings.Contains(lines[0], "playlist") {
				t.Errorf("error lines %q: want one naming the playlist and quoting %q", lines, tc.quote)
			}
			if !strings.Contains(stderr, "streamsnatcher: hint: ") {
				t.Errorf("no hint in:\n%s", stderr)
			}
		})
	}
}

// TestProbeLimitCLI: an origin answering media for every index would keep
// probing going forever; it stops within its budget with the probe-limit
// error and the hint to give a count or a duration.
func TestProbeLimitCLI(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		pkt := make([]byte, 188*2)
		pkt[0], pkt[188] = 0x47, 0x47
		w.Header().Set("Content-Type", "video/mp2t")
		w.Write(pkt)
	}))
	defer srv.Close()
	code, _, stderr := runIsolated(t, "get", srv.URL+"/v/seg_5.ts", "-o", filepath.Join(t.TempDir(), "x.mp4"), "-q")
	if code == exitOK {
		t.Fatalf("exit 0; stderr:\n%s", stderr)
	}
	lines := errorLines(stderr)
	if len(lines) != 1 || !strings.Contains(lines[0], "probe budget spent") {
		t.Errorf("error lines %q: want one naming the probe budget", lines)
	}
	if !strings.Contains(stderr, "hint: say how long it is: --count N") {
		t.Errorf("no probe-limit hint in:\n%s", stderr)
	}
	if h := hits.Load(); h > 64 {
		t.Errorf("%d requests, more than the default budget of 64", h)
	}
	t.Logf("probing stopped after %d requests", hits.Load())
}

// TestNamesSanitized: output names derived from URLs never escape the directory.
func TestNamesSanitized(t *testing.T) {
	tests := []struct{ name, in string }{
		{"dotdot path", "https://cdn.example.com/../../etc/passwd/seg_(*).ts"},
		{"encoded slash", "https://cdn.example.com/a%2F..%2F..%2Fb/x/seg_(*).ts"},
		{"dots only", "https://cdn.example.com/../../seg.ts"},
		{"backslashes", `https://cdn.example.com/..\..\win/x/seg.ts`},
		{"hidden", "https://cdn.example.com/.ssh/x/seg.ts"},
		{"no path", "https://../"},
		{"unparsable", "http://[::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := derivedName(tc.in)
			if got != filepath.Base(got) || strings.Contains(got, "..") || strings.ContainsAny(got, `/\`) ||
				strings.HasPrefix(got, ".") || !strings.HasSuffix(got, ".mp4") || got == ".mp4" {
				t.Errorf("derivedName(%q) = %q: not a plain file name", tc.in, got)
			}
		})
	}
	for _, in := range []string{"..", "../..", "/", ".", "a/../b", "....", "\x00", strings.Repeat("x", 500)} {
		got := sanitizeName(in)
		if got == "" || got != filepath.Base(got) || strings.Contains(got, "..") || strings.ContainsAny(got, "/\\\x00") || len(got) > 80 || strings.HasPrefix(got, ".") {
			t.Errorf("sanitizeName(%q) = %q", in, got)
		}
	}
}

// TestReportDiskFull: the error a full disk produces in the recorder prints as
// one line with the "disk is full" hint and a non-zero exit code.
func TestReportDiskFull(t *testing.T) {
	segErr := &recorder.SegmentError{Index: 3, URL: "https://x/seg_3.ts",
		Err: fmt.Errorf("segment file: %w", &os.PathError{Op: "write", Path: "/d/000003.ts.partial", Err: syscall.ENOSPC})}
	saveErr := &os.PathError{Op: "write", Path: "/d/.session.json.partial", Err: syscall.ENOSPC}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"segment", segErr},
		{"segment and session", fmt.Errorf("%w", errors.Join(segErr, saveErr))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			a := &app{stderr: &errb}
			code := a.report(context.Background(), &sessionError{id: "20260101-000000-abcdef", err: tc.err})
			if code == exitOK {
				t.Errorf("exit code 0")
			}
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "streamsnatcher: error: ") ||
				!strings.Contains(lines[1], "disk is full") || !strings.Contains(lines[1], "replay 20260101-000000-abcdef") {
				t.Errorf("report printed:\n%s\nwant one error line and the disk-full hint naming the session", errb.String())
			}
		})
	}
}

// TestRedactedDebug runs the real binary with --debug and secrets in a
// Cookie, an Authorization header, a custom header and the URL's query,
// against an origin answering 403 and one answering 500: no secret may appear
// in stdout or stderr.
func TestRedactedDebug(t *testing.T) {
	bin := buildBinary(t)
	media := testmedia.ForTest(t, testmedia.Small)
	forbid := testorigin.Start(t, testorigin.Options{Dir: media.Dir, Prefix: "/v/", RequireCookie: "sess=other"})
	failing := testorigin.Start(t, testorigin.Options{Dir: media.Dir, Prefix: "/v/", Faults: testorigin.Faults{P500: 1}})
	secrets := []string{"C00KIESECRET", "AUTHSECRET", "TOKENSECRET", "APIKEYSECRET", "SIGSECRET"}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"403 template", []string{"get", forbid.URL + "seg_(*).ts?token=TOKENSECRET&sig=SIGSECRET", "--pad", "5", "--count", "3"}},
		{"500 template", []string{"get", failing.URL + "seg_(*).ts?token=TOKENSECRET", "--pad", "5", "--count", "2", "--retries", "2"}},
		{"403 learned", []string{"get", forbid.URL + "seg_00001.ts?token=TOKENSECRET"}},
		{"403 playlist", []string{"get", forbid.URL + "index.m3u8?token=TOKENSECRET"}},
		{"bad pad", []string{"get", forbid.URL + "seg_(*).ts?token=TOKENSECRET", "--pad", "40", "--count", "2"}},
		{"bad url", []string{"get", "ftp://user:PASSSECRET@x/seg.ts?token=TOKENSECRET"}},
		{"bad header", []string{"get", forbid.URL + "seg_(*).ts", "--count", "1", "-H", "Authorization AUTHSECRET"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			args := append([]string{"--debug"}, tc.args...)
			args = append(args, "-o", filepath.Join(home, "x.mp4"), "--cookie", "sess=C00KIESECRET",
				"-H", "Authorization: Bearer AUTHSECRET", "-H", "X-Api-Key: APIKEYSECRET")
			cmd := exec.Command(bin, args...)
			cmd.Env = isolatedEnv(home)
			cmd.Dir = home
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			if err == nil {
				t.Fatalf("exit 0 against a refusing origin")
			}
			all := out.String() + errb.String()
			for _, s := range append(secrets, "PASSSECRET") {
				if strings.Contains(all, s) {
					t.Errorf("secret %s printed:\n%s", s, all)
				}
			}
			if len(errorLines(errb.String())) != 1 {
				t.Errorf("want one error line in:\n%s", errb.String())
			}
			t.Logf("%d bytes of output, %d debug lines", len(all), strings.Count(all, "level=DEBUG"))
		})
	}
}
