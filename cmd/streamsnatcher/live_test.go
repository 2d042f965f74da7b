package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// startBroadcast runs ffmpeg -re publishing seconds of a sliding-window live
// HLS playlist on loopback and returns its URL.
func startBroadcast(t *testing.T, seconds string) string {
	t.Helper()
	dir := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc=size=160x90:rate=25:duration="+seconds,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration="+seconds,
		"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
		"-sc_threshold", "0", "-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_list_size", "5",
		"-hls_flags", "delete_segments", "-hls_segment_filename", filepath.Join(dir, "s%03d.ts"), filepath.Join(dir, "live.m3u8"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(dir, "live.m3u8")); err == nil && bytes.Count(b, []byte("#EXTINF")) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broadcast did not start")
		}
	}
	return srv.URL + "/live.m3u8"
}

// decodeErrors decodes path fully and returns what ffmpeg reports at level error.
func decodeErrors(path string) string {
	out, err := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil && len(out) == 0 {
		return err.Error()
	}
	return strings.TrimSpace(string(out))
}

// waitDuration waits until the media file at path lasts at least secs.
func waitDuration(t *testing.T, path string, secs float64, exited chan error) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if d, err := testmedia.Probe(context.Background(), path); err == nil && d >= secs {
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("the recording exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %.0fs", path, secs)
		}
	}
}

// TestLiveKill: a live recording killed with SIGKILL leaves a file that
// ffprobe reads and that decodes cleanly up to where it stopped.
func TestLiveKill(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	url := startBroadcast(t, "12")
	home, work := t.TempDir(), t.TempDir()
	out := filepath.Join(work, "live.mp4")
	cmd := exec.Command(bin, "get", url, "-o", out, "-q")
	cmd.Env, cmd.Dir = isolatedEnv(home), work
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	partial := out + ".partial"
	waitDuration(t, partial, 4, exited)
	cmd.Process.Signal(syscall.SIGKILL)
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("exit: %v, want killed\n%s", err, stderr.String())
	}
	// ffmpeg outlives the kill just long enough to read the end of its input and close the file.
	var last int64 = -1
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		fi, err := os.Stat(partial)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() == last {
			break
		}
		last = fi.Size()
	}
	d, err := testmedia.Probe(context.Background(), partial)
	if err != nil || d < 4 {
		t.Fatalf("after SIGKILL %s lasts %.2fs (%v), want the 4 s or more recorded", partial, d, err)
	}
	if msg := decodeErrors(partial); msg != "" {
		t.Errorf("after SIGKILL %s does not decode cleanly: %s", partial, msg)
	}
	v, a, err := testmedia.CountPackets(context.Background(), partial)
	if err != nil || v == 0 || a == 0 {
		t.Errorf("after SIGKILL %s: video %d audio %d packets (%v), want both", partial, v, a, err)
	}
	t.Logf("killed mid-recording: %s plays, %.2fs, video %d audio %d packets", filepath.Base(partial), d, v, a)
}

// TestLiveInterrupt: Ctrl-C (SIGINT) stops a live recording and finalises
// the file; the exit code is 130, as for every interrupt, and no error is printed.
// --live-for stops by itself with exit 0.
func TestLiveInterrupt(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	url := startBroadcast(t, "14")
	home, work := t.TempDir(), t.TempDir()

	run := func(out string, extra ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer, chan error) {
		cmd := exec.Command(bin, append([]string{"get", url, "-o", out}, extra...)...)
		cmd.Env, cmd.Dir = isolatedEnv(home), work
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		return cmd, &stdout, &stderr, exited
	}

	stopped := filepath.Join(work, "stopped.mp4")
	cmd, stdout, stderr, exited := run(stopped)
	timed := filepath.Join(work, "timed.mp4")
	_, tout, terr, texited := run(timed, "--live-for", "3s")

	waitDuration(t, stopped+".partial", 3, exited)
	cmd.Process.Signal(os.Interrupt)
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupt {
		t.Errorf("after Ctrl-C: %v, want exit %d\n%s", err, exitInterrupt, stderr.String())
	}
	if strings.Contains(stderr.String(), "error:") || !strings.Contains(stderr.String(), "stopped: the live recording so far") {
		t.Errorf("after Ctrl-C stderr:\n%s", stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != stopped {
		t.Errorf("stdout %q, want %q", got, stopped)
	}
	if d, err := testmedia.Probe(context.Background(), stopped); err != nil || d < 3 {
		t.Errorf("after Ctrl-C %s lasts %.2fs (%v)", stopped, d, err)
	}

	if err := <-texited; err != nil {
		t.Fatalf("--live-for: %v\n%s", err, terr.String())
	}
	if got := strings.TrimSpace(tout.String()); got != timed {
		t.Errorf("--live-for stdout %q, want %q", got, timed)
	}
	if !strings.Contains(terr.String(), "--live-for") {
		t.Errorf("--live-for: stderr does not say why it ended:\n%s", terr.String())
	}
	if left := partialFiles(t, home, work); len(left) > 0 {
		t.Errorf(".partial files left behind: %v", left)
	}
}
