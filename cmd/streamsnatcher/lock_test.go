package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/recorder"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// Two processes on one session: a replay runs in a child process (the real
// binary) against a slow origin; a second replay, and a 'sessions rm', are
// refused with who holds the session, while 'sessions' still lists it. The
// first replay then finishes with every segment: nothing was deleted under it.
func TestSecondProcessRefusedOnLockedSession(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	o := testorigin.Start(t, testorigin.Options{Dir: m.Dir, Prefix: "/v/abc/720p/", TTFB: 300 * time.Millisecond,
		RequireReferer: harReferer, RequireCookie: harCookie})
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, ".data"))
	st, err := recorder.NewStore(filepath.Join(home, ".data", "streamsnatcher"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := urltemplate.Placeholder(o.URL+"seg_(*).ts", 5)
	if err != nil {
		t.Fatal(err)
	}
	s := &recorder.Session{Source: "get", Headers: map[string]string{"Referer": harReferer, "Cookie": harCookie}}
	tr := recorder.NewTemplateTrack(tmpl, 0)
	tr.Last, tr.EndKnown = int64(len(m.Segments)-1), true
	s.AddTrack(tr)
	if err := st.Create(s); err != nil {
		t.Fatal(err)
	}

	// The child: this test binary under the name "streamsnatcher" runs the real command line.
	bin := filepath.Join(t.TempDir(), "streamsnatcher")
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "first.mp4")
	child := exec.Command(bin, "replay", s.ID, "--concurrency", "1", "--keep-segments", "-o", out, "-q")
	var childErr bytes.Buffer
	child.Stderr = &childErr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	lock := filepath.Join(s.Dir(), recorder.LockFile)
	want := fmt.Sprintf("%d replay\n", child.Process.Pid)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(lock); string(b) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child never took the lock; stderr %s", childErr.String())
		}
	}

	second := func(args ...string) (int, string) {
		var so, se bytes.Buffer
		code := run(context.Background(), args, &so, &se)
		return code, se.String()
	}
	msg := fmt.Sprintf("streamsnatcher: error: session %s in use by PID %d (replay)\n", s.ID, child.Process.Pid)
	for _, args := range [][]string{{"replay", s.ID}, {"sessions", "rm", s.ID}} {
		code, stderr := second(args...)
		if code == exitOK || !strings.Contains(stderr, msg) || !strings.Contains(stderr, "streamsnatcher: hint: wait for that process") {
			t.Errorf("%v while another process holds the session: exit %d, stderr %q; want %q and a hint", args, code, stderr, msg)
		}
	}
	var so, se bytes.Buffer
	if code := run(context.Background(), []string{"sessions", "--json"}, &so, &se); code != exitOK || !strings.Contains(so.String(), s.ID) {
		t.Errorf("sessions while locked: exit %d, %s %s; want the session listed", code, so.String(), se.String())
	}

	if err := child.Wait(); err != nil {
		t.Fatalf("the first replay: %v; stderr %s", err, childErr.String())
	}
	done, err := st.Load(s.ID)
	if err != nil || done.State != recorder.StateDone || len(done.Main().MissingNow()) != 0 {
		t.Fatalf("after the first replay: %+v, %v; want done with every segment kept", done, err)
	}
	if b, _ := os.ReadFile(lock); len(b) != 0 {
		t.Errorf("lock file after the holder ended: %q, want empty", b)
	}
	// Free again: a replay now works (the output is there already).
	if code, stderr := second("replay", s.ID, "-q"); code != exitOK {
		t.Errorf("replay after the holder ended: exit %d, %s", code, stderr)
	}
}
