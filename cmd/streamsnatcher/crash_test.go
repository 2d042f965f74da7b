package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/merge"
)

// buildBinary compiles the real streamsnatcher binary into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "streamsnatcher")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// isolatedEnv is the environment for the binary: no user config, no user data dir.
func isolatedEnv(home string) []string {
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".data"), "PATH=" + os.Getenv("PATH")}
	if v := os.Getenv("TMPDIR"); v != "" {
		env = append(env, "TMPDIR="+v)
	}
	return env
}

// sessionState reads the state saved in session.json, "" while there is none.
func sessionState(dir string) string {
	st, _ := sessionSaved(dir)
	return st
}

// sessionSaved reads the state and the time of the last save of session.json.
func sessionSaved(dir string) (string, time.Time) {
	data, err := os.ReadFile(filepath.Join(dir, "session.json"))
	if err != nil {
		return "", time.Time{}
	}
	var s struct {
		State   string
		Updated time.Time
	}
	if json.Unmarshal(data, &s) != nil {
		return "", time.Time{}
	}
	return s.State, s.Updated
}

// segmentsDone counts the completed segment files of a session.
func segmentsDone(dir string) int {
	entries, _ := os.ReadDir(filepath.Join(dir, "video", "segments"))
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".ts") {
			n++
		}
	}
	return n
}

func partialFiles(t *testing.T, roots ...string) []string {
	t.Helper()
	var found []string
	for _, root := range roots {
		filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error {
			if strings.HasSuffix(p, ".partial") {
				found = append(found, p)
			}
			return nil
		})
	}
	return found
}

// A killPlan says when to SIGKILL a run: in the backfill once done reaches
// atDone (plus a jitter), or in the merge a delay after the state turns "merging".
type killPlan struct {
	phase  string // "backfill" or "merge"
	atDone int
	jitter time.Duration
}

// TestCrashResume kills the real binary with SIGKILL at random moments of the
// backfill and of the merge, then replays the session until it completes.
// Across all runs each segment must come whole from the origin exactly once,
// the output must hold every packet of the source, and no .partial may remain.
func TestCrashResume(t *testing.T) {
	bin := buildBinary(t)
	media := testmedia.ForTest(t, testmedia.Spec{Seconds: 40, SegmentSeconds: 1, Width: 160, Height: 90, FPS: 25, SampleRate: 22050})
	n := len(media.Segments)
	var maxSeg int64
	for _, p := range media.Segments {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		maxSeg = max(maxSeg, fi.Size())
	}
	// Each segment takes ~250 ms to arrive; with 4 at once a full backfill lasts ~2.5 s.
	origin := testorigin.Start(t, testorigin.Options{Dir: media.Dir, Prefix: "/v/", ConnRate: maxSeg * 4, TTFB: 20 * time.Millisecond})

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 42))
	t.Logf("seed %d, %d segments of up to %d bytes", seed, n, maxSeg)

	backfillKills, mergeKills := 8, 3
	if testing.Short() {
		backfillKills, mergeKills = 3, 1
	}
	var plans []killPlan
	// Kill points spread over the download: each a few segments after the last.
	step := max(1, (n-4)/backfillKills)
	for k := 0; k < backfillKills; k++ {
		at := k*step + rng.IntN(step)
		plans = append(plans, killPlan{phase: "backfill", atDone: at, jitter: time.Duration(rng.IntN(120)) * time.Millisecond})
	}
	for k := 0; k < mergeKills; k++ {
		plans = append(plans, killPlan{phase: "merge", jitter: time.Duration(rng.IntN(5)) * time.Millisecond})
	}

	home := t.TempDir()
	work := t.TempDir()
	dataDir := filepath.Join(home, ".data", "streamsnatcher")
	out := filepath.Join(work, "out.mp4")
	common := []string{"-q", "--concurrency", "4"}
	firstArgs := append([]string{"get", origin.URL + "seg_(*).ts", "--pad", "5", "--count", fmt.Sprint(n), "-o", out}, common...)

	sessionDir := func() string {
		entries, _ := os.ReadDir(filepath.Join(dataDir, "sessions"))
		for _, e := range entries {
			if e.IsDir() {
				return filepath.Join(dataDir, "sessions", e.Name())
			}
		}
		return ""
	}

	// After every run: how often the origin had served each segment whole, and
	// which segments were complete on disk. A segment on disk must never be
	// served again; a segment the origin finished sending while the process
	// died (it counts a response complete just before pacing out the last byte)
	// is not on disk and is, rightly, fetched again: those are counted apart.
	seg := func(i int) string { return filepath.Base(media.Segments[i]) }
	prevServed := make([]int, n)
	prevOnDisk := make([]bool, n)
	lostInFlight := make([]int, n)
	var refetched, lostBytes int64
	size := func(i int) int64 { fi, _ := os.Stat(media.Segments[i]); return fi.Size() }
	// The final run completes: what it fetched went into the output, and its
	// segment files are removed after the merge, so none of it is lost.
	snapshot := func(label string, final bool) {
		settle(origin)
		dir := sessionDir()
		for i := 0; i < n; i++ {
			served := origin.Completed(seg(i))
			_, err := os.Stat(filepath.Join(dir, "video", "segments", fmt.Sprintf("%06d.ts", i)))
			onDisk := err == nil || final
			delta := served - prevServed[i]
			switch {
			case prevOnDisk[i] && delta > 0:
				refetched += int64(delta) * size(i)
				t.Errorf("%s: %s was complete on disk, yet the origin served it whole %d more time(s)", label, seg(i), delta)
			case delta > 0 && !onDisk:
				lostInFlight[i] += delta
				lostBytes += int64(delta) * size(i)
			}
			prevServed[i], prevOnDisk[i] = served, onDisk || prevOnDisk[i]
		}
	}

	start := time.Now()
	killed := 0
	phases := map[string]int{}
	for run := 0; ; run++ {
		if run > len(plans)+5 {
			t.Fatalf("still not complete after %d runs", run)
		}
		args := firstArgs
		if run > 0 {
			args = append([]string{"replay", filepath.Base(sessionDir())}, common...)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Env = isolatedEnv(home)
		cmd.Dir = work
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()

		var plan *killPlan
		if killed < len(plans) {
			plan = &plans[killed]
		}
		var err error
		phase, doneAt := "", 0
		if plan == nil {
			err = <-exited
		} else {
			err, phase, doneAt = killWhen(t, cmd, exited, sessionDir, out+merge.PartialSuffix, n, plan)
		}
		if phase != "" {
			killed++
			phases[phase]++
			t.Logf("kill %2d: run %d (%s) SIGKILL during %s with %d/%d segments done, state %q",
				killed, run, args[0], phase, doneAt, n, sessionState(sessionDir()))
			snapshot(fmt.Sprintf("after kill %d", killed), false)
			continue
		}
		if err != nil {
			t.Fatalf("run %d (%s): %v\n%s", run, strings.Join(args, " "), err, stderr.String())
		}
		if plan != nil {
			// The run finished before its kill point: that point is lost, the test is weaker.
			t.Fatalf("run %d finished before its %s kill point; only %d kill points made", run, plan.phase, killed)
		}
		snapshot("after the final run", true)
		break
	}
	elapsed := time.Since(start)

	v, a, err := testmedia.CountPackets(context.Background(), out)
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	if v != media.VideoPackets || a != media.AudioPackets {
		t.Errorf("output has video %d audio %d packets, source %d %d", v, a, media.VideoPackets, media.AudioPackets)
	}
	var sum int64
	lost := 0
	for i := 0; i < n; i++ {
		sum += size(i)
		lost += lostInFlight[i]
		// Whole exactly once, apart from copies the origin finished while the process was being killed.
		if c := origin.Completed(seg(i)); c-lostInFlight[i] != 1 {
			t.Errorf("origin served %s whole %d times (%d of them cut off by a kill), want exactly once", seg(i), c, lostInFlight[i])
		}
	}
	if left := partialFiles(t, home, work); len(left) > 0 {
		t.Errorf(".partial files left behind: %v", left)
	}
	if phases["backfill"] == 0 || phases["merge"] == 0 {
		t.Errorf("kill points by phase %v: want some in each", phases)
	}
	if st := sessionState(sessionDir()); st != "done" {
		t.Errorf("session state %q, want done", st)
	}
	t.Logf("%d kill points survived (%d backfill, %d merge) in %.1fs; output video %d audio %d packets = source; "+
		"bytes re-fetched for completed segments: %d; %d segment(s) (%d bytes) finished by the origin as the process died and fetched again; "+
		"origin sent %d bytes for %d bytes of segments",
		killed, phases["backfill"], phases["merge"], elapsed.Seconds(), v, a, refetched, lost, lostBytes, origin.BytesSent(), sum)
}

// settle waits until the origin has stopped sending: the responses cut off by
// a kill finish (or fail) within a few pacing intervals.
func settle(o *testorigin.Origin) {
	last, still := o.BytesSent(), 0
	for deadline := time.Now().Add(3 * time.Second); still < 5 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		if b := o.BytesSent(); b == last {
			still++
		} else {
			last, still = b, 0
		}
	}
}

// killWhen waits for plan's moment and sends SIGKILL. It returns the phase and
// the segments done when the kill landed, or phase "" when the process exited
// first (its Wait error is returned). The merge's moment is this run's ffmpeg
// writing the output (partial) with all but the last two of the n segments on disk: the
// merge streams segments into ffmpeg as they land, so once the last is in, the
// "merging" state lasts only for ffmpeg's drain and the verification, a few
// milliseconds here, too short to hit reliably.
func killWhen(t *testing.T, cmd *exec.Cmd, exited chan error, sessionDir func() string, partial string, n int, plan *killPlan) (error, string, int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	started := time.Now()
	startDone := -1
	for {
		select {
		case err := <-exited:
			return err, "", 0
		case <-deadline:
			cmd.Process.Kill()
			<-exited
			t.Fatalf("kill point %+v not reached within 30s", *plan)
		case <-tick.C:
		}
		dir := sessionDir()
		if dir == "" {
			continue
		}
		state, updated := sessionSaved(dir)
		if updated.Before(started) {
			continue // saved by an earlier run: this one has not got going yet
		}
		done := segmentsDone(dir)
		if startDone < 0 {
			startDone = done
		}
		ready := false
		switch plan.phase {
		case "backfill":
			// At least one segment of this run must have landed.
			ready = (state == "downloading" || state == "new") && done >= max(plan.atDone, startDone+1)
			if state == "merging" || state == "done" {
				// The download finished before this point: the kill lands in the merge.
				ready = true
			}
		case "merge":
			// This run's ffmpeg is writing the output (a killed run's stays behind).
			fi, err := os.Stat(partial)
			ready = state == "merging" || done >= n-2 && err == nil && fi.ModTime().After(started)
		}
		if !ready {
			continue
		}
		select {
		case err := <-exited:
			return err, "", 0
		case <-time.After(plan.jitter):
		}
		done = segmentsDone(dir)
		state = sessionState(dir)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := <-exited
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				phase := plan.phase
				if state == "merging" {
					phase = "merge"
				}
				return nil, phase, done
			}
		}
		return err, "", 0
	}
}
