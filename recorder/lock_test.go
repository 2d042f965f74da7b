package recorder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
)

// TestLockHelperProcess is not a test: run by TestLockAcrossProcesses in a
// child process, it takes the lock of the session in $LOCK_SESSION_DIR, says
// "locked" and holds it until its stdin closes.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv("LOCK_SESSION_DIR")
	if dir == "" {
		t.Skip("helper process")
	}
	s, err := (&Store{}).Load(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	unlock, err := s.Lock("replay")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n')
	unlock()
	os.Exit(0)
}

// A second process cannot take a session another process holds; it is told
// who holds it. Listing needs no lock. Once the holder lets go (or dies), the
// lock is free again.
func TestLockAcrossProcesses(t *testing.T) {
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := listedURLs(&Session{Source: "get"}, "https://x/a.ts")
	if err := st.Create(s); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "LOCK_SESSION_DIR="+s.Dir())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper: %q", line)
	}

	_, err = s.Lock("watch")
	var iu *InUseError
	if !errors.Is(err, ErrSessionInUse) || !errors.As(err, &iu) {
		t.Fatalf("Lock while another process holds it: %v, want ErrSessionInUse", err)
	}
	want := fmt.Sprintf("session %s in use by PID %d (replay)", s.ID, cmd.Process.Pid)
	if err.Error() != want {
		t.Errorf("Lock: got %q, want %q", err, want)
	}
	if list, err := st.List(); err != nil || len(list) != 1 {
		t.Errorf("List while locked: %d sessions, %v; want the session listed", len(list), err)
	}

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	unlock, err := s.Lock("watch")
	if err != nil {
		t.Fatalf("Lock after the holder ended: %v", err)
	}
	defer unlock()
	data, _ := os.ReadFile(filepath.Join(s.Dir(), LockFile))
	if got := fmt.Sprintf("%d watch\n", os.Getpid()); string(data) != got {
		t.Errorf("lock file %q, want %q", data, got)
	}
	// Within one process too: a second taker (a dashboard action, another run) is refused.
	if _, err := s.Lock("watch"); !errors.Is(err, ErrSessionInUse) {
		t.Errorf("second Lock in the same process: %v, want ErrSessionInUse", err)
	}
}

// The capture does not run a session another process holds (a dashboard
// resume of a session a CLI replay is recording): it says why and writes nothing.
func TestCaptureWaitsForALockedSession(t *testing.T) {
	fx := newFixture(t, testorigin.Options{})
	s := fx.session(t, true)
	unlock, err := s.Lock("replay")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, fx.store, CaptureOptions{Run: fastOpts()})
	if err := c.Add(s); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	sts := c.Streams()
	want := fmt.Sprintf("in use by PID %d (replay)", os.Getpid())
	if len(sts) != 1 || !strings.Contains(sts[0].Reason, want) {
		t.Fatalf("streams %+v: want the reason to say %q", sts, want)
	}
	if n := s.Done(); n != 0 || fx.origin.TotalHits() != 0 {
		t.Errorf("%d segments written, %d requests made for a session another process holds", n, fx.origin.TotalHits())
	}
}
