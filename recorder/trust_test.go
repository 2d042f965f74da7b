package recorder

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
)

// A certificate the client does not trust fails the run at once, naming the
// x509 cause: retrying every segment cannot help.
func TestRunUntrustedOriginFailsFast(t *testing.T) {
	fx := newFixture(t, testorigin.Options{TLS: true})
	s := fx.session(t, true)
	o := fastOpts()
	o.Concurrency = 2
	o.Backoff, o.MaxBackoff = time.Second, time.Second // retries would show in the time taken
	o.Client = NewClient(nil, o.Concurrency)           // the system roots only
	o.Progress = NewProgress()
	start := time.Now()
	_, err := Run(context.Background(), s, o, MergeOptions{})
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "x509: ") {
		t.Fatalf("Run: %v, want ErrUntrusted naming the x509 cause", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("Run took %s to give up: it retried", d)
	}
	if n := o.Progress.Attempts.Load(); n > int64(o.Concurrency) {
		t.Errorf("%d attempts, want at most one per worker", n)
	}
	if s.State != StateFailed {
		t.Errorf("state %q, want %q", s.State, StateFailed)
	}
}
