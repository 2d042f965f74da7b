package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that the command's goroutines may write to concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWatchCommand runs `watch` as a new user would: it makes the CA on first
// use (key 0600), tells where the proxy and dashboard are, serves /ca.pem and
// the dashboard on its own address, lets `sessions --json` run beside it, and
// ends cleanly (exit 0) on Ctrl-C.
func TestWatchCommand(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, ".data"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"watch", "--listen", "127.0.0.1:0", "--out-dir", t.TempDir()}, &stdout, &stderr)
	}()

	addrRE := regexp.MustCompile(`proxy on http://(127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(20 * time.Second); addr == ""; {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-exited:
			t.Fatalf("watch exited early with %d:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch did not say where it listens:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	key := filepath.Join(home, ".config", "streamsnatcher", "ca", "rootCA-key.pem")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key %s: %v, mode %v; want 0600", key, err, fi.Mode().Perm())
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/ca.pem"); code != http.StatusOK || !strings.HasPrefix(body, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("/ca.pem: %d %.40q", code, body)
	}
	if code, body := get("/"); code != http.StatusOK || !strings.Contains(body, "StreamSnatcher") {
		t.Errorf("dashboard: %d %.60q", code, body)
	}
	if code, body := get("/api/streams"); code != http.StatusOK || !json.Valid([]byte(body)) {
		t.Errorf("/api/streams: %d %.60q", code, body)
	}

	// Another process (here: another run) reads the sessions while watch runs.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"sessions", "--json"}, &out, &errb); code != 0 || !json.Valid(out.Bytes()) {
		t.Errorf("sessions --json beside watch: exit %d, %q %q", code, out.String(), errb.String())
	}

	cancel() // Ctrl-C
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("watch exited %d on Ctrl-C, want 0:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not stop on Ctrl-C")
	}
	if !strings.Contains(stderr.String(), "streamsnatcher: stopped") || strings.Contains(stderr.String(), "error:") {
		t.Errorf("watch's last words:\n%s", stderr.String())
	}
}

// A non-loopback listen address is refused unless --allow-remote.
func TestWatchRefusesRemoteListen(t *testing.T) {
	code, _, stderr := runIsolated(t, "watch", "--listen", "0.0.0.0:0")
	if code == 0 || !strings.Contains(stderr, "streamsnatcher: error: ") || !strings.Contains(stderr, "--allow-remote") {
		t.Errorf("watch --listen 0.0.0.0:0: exit %d\n%s", code, stderr)
	}
}
