package recorder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrSessionInUse means another process (or another run in this one) holds the
// session's lock: two writers on one session lose updates and delete each
// other's segments.
var ErrSessionInUse = errors.New("session in use")

// An InUseError names who holds a session's lock. It matches ErrSessionInUse.
type InUseError struct {
	ID      string
	PID     int    // 0 when the lock file could not be read
	Command string // "watch", "replay", "get", …
}

func (e *InUseError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("session %s in use by another process", e.ID)
	}
	return fmt.Sprintf("session %s in use by PID %d (%s)", e.ID, e.PID, e.Command)
}

// Is makes errors.Is(err, ErrSessionInUse) hold.
func (e *InUseError) Is(target error) bool { return target == ErrSessionInUse }

// LockFile is the name of a session's lock file, inside its directory.
const LockFile = "lock"

// Lock takes the session's advisory lock (flock on <session>/lock), writing
// this process's PID and cmd into the file so a second taker can say who holds
// it. It does not wait: a held lock is an *InUseError. The lock lasts until
// unlock is called or the process ends (the kernel drops it even after a
// crash). Reading a session (sessions, sessions show) needs no lock.
func (s *Session) Lock(cmd string) (unlock func(), err error) {
	if s.dir == "" {
		return nil, fmt.Errorf("session %s: lock: the session has no directory", s.ID)
	}
	path := filepath.Join(s.dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("session %s: lock: %w", s.ID, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, readHolder(s.ID, path)
		}
		return nil, fmt.Errorf("session %s: lock: %w", s.ID, err)
	}
	// Ours now: say who we are (the file's previous content was a past holder's).
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(fmt.Sprintf("%d %s\n", os.Getpid(), cmd)), 0)
	}
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// readHolder reads "PID command" from a held lock file. The holder may not have
// written it yet: then the error names no PID.
func readHolder(id, path string) error {
	e := &InUseError{ID: id}
	data, err := os.ReadFile(path)
	if err != nil {
		return e
	}
	pid, cmd, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
	if n, err := strconv.Atoi(pid); err == nil && n > 0 {
		e.PID, e.Command = n, cmd
	}
	return e
}
