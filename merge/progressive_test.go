package merge

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// TestProgressive: while a Progressive merge runs, its partial output already
// plays (ffprobe reads it, it decodes without an error); Finish leaves a normal
// MP4 with every packet, and nothing partial.
func TestProgressive(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	out := filepath.Join(t.TempDir(), "live.mp4")
	mg, err := Start(context.Background(), Options{Output: out, Progressive: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Segments[:5] {
		if err := mg.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	// Fragments are written when the next key frame arrives: after five
	// segments of one second, at least three seconds must be readable.
	waitFor(t, func() bool {
		d, err := testmedia.Probe(context.Background(), out+PartialSuffix)
		return err == nil && d >= 3
	})
	if msg := decodeErrors(t, out+PartialSuffix); msg != "" {
		t.Errorf("the partial output does not decode cleanly: %s", msg)
	}
	for _, p := range m.Segments[5:] {
		if err := mg.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	res, err := mg.Finish()
	if err != nil {
		t.Fatal(err)
	}
	checkMerged(t, res, m, out)
	if left, _ := filepath.Glob(out + "*" + PartialSuffix); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// decodeErrors decodes path fully and returns what ffmpeg says at level error.
func decodeErrors(t *testing.T, path string) string {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-i", path, "-f", "null", "-")
	b, err := cmd.CombinedOutput()
	if err != nil && len(b) == 0 {
		return err.Error()
	}
	return strings.TrimSpace(string(b))
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
