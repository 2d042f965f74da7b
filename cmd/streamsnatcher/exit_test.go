package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
)

// Ctrl-C during a download exits 130, keeps the session and says how to resume.
// (The other exit codes are in testdata/script/exit_codes.txtar.)
func TestExitInterrupt(t *testing.T) {
	media := testmedia.ForTest(t, testmedia.Small)
	o := testorigin.Start(t, testorigin.Options{Dir: media.Dir, Prefix: "/v/", TTFB: time.Minute})
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, ".data"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"get", o.URL + "seg_(*).ts", "--pad", "5", "--count", "8", "-o", filepath.Join(home, "x.mp4")}, &stdout, &stderr)
	}()
	sessionRE := regexp.MustCompile(`streamsnatcher: session (\S+)\n`)
	var id string
	for deadline := time.Now().Add(20 * time.Second); id == ""; time.Sleep(10 * time.Millisecond) {
		if m := sessionRE.FindStringSubmatch(stderr.String()); m != nil {
			id = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no session line:\n%s", stderr.String())
		}
	}
	cancel() // Ctrl-C, while the first request waits for the origin
	select {
	case code := <-exited:
		if code != exitInterrupt {
			t.Errorf("exit %d on Ctrl-C, want %d:\n%s", code, exitInterrupt, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("get did not stop on Ctrl-C")
	}
	if !strings.Contains(stderr.String(), "streamsnatcher: hint: resume with: streamsnatcher replay "+id) {
		t.Errorf("no resume hint:\n%s", stderr.String())
	}
}
