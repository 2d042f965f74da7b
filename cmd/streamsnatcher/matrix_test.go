package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// TestGetHLSMatrix: `get URL` with defaults, on every case of the HLS matrix, exits 0 and leaves exactly one
// file, named from the URL, with video and audio that decode cleanly. The recorder's matrix test checks
// the contents packet by packet; this checks what a person typing the command sees.
func TestGetHLSMatrix(t *testing.T) {
	m := testmedia.HLSMatrix(t)
	o := testorigin.Start(t, testorigin.Options{Dir: m.Root, Prefix: "/hls/"})
	for _, name := range testmedia.MatrixCases {
		t.Run(name, func(t *testing.T) {
			c := m.Cases[name]
			home := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			t.Setenv("XDG_DATA_HOME", filepath.Join(home, ".data"))
			work := t.TempDir()
			t.Chdir(work)
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"get", o.URL + name + "/" + c.Entry}, &stdout, &stderr); code != 0 {
				t.Fatalf("get: exit %d\nstderr:\n%s", code, stderr.String())
			}
			entries, err := os.ReadDir(work)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || filepath.Ext(entries[0].Name()) != ".mp4" {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Fatalf("files left in the working directory: %v, want one .mp4", names)
			}
			out := filepath.Join(work, entries[0].Name())
			if got := strings.TrimSpace(stdout.String()); got != out {
				t.Errorf("stdout %q, want the output's path %q", got, out)
			}
			ss, err := testmedia.StreamPackets(context.Background(), out)
			if err != nil {
				t.Fatal(err)
			}
			if len(ss.OfType("video")) != 1 || len(ss.OfType("audio")) != 1 {
				t.Errorf("output streams %+v, want one video and one audio", ss)
			}
			testmedia.CheckCleanDecode(t, out)

			warned := strings.Contains(stderr.String(), "streamsnatcher: warning:")
			if name != testmedia.CaseGap {
				if warned {
					t.Errorf("a warning for a complete recording:\n%s", stderr.String())
				}
				return
			}
			// The hole is named, and the session lists it.
			if !warned || !strings.Contains(stderr.String(), "EXT-X-GAP") || !strings.Contains(stderr.String(), c.Gap) {
				t.Errorf("stderr does not warn of the EXT-X-GAP at %s:\n%s", c.Gap, stderr.String())
			}
			stdout.Reset()
			stderr.Reset()
			if code := run(context.Background(), []string{"sessions", "--json"}, &stdout, &stderr); code != 0 {
				t.Fatalf("sessions --json: exit %d: %s", code, stderr.String())
			}
			var sums []recorder.Summary
			if err := json.Unmarshal(stdout.Bytes(), &sums); err != nil {
				t.Fatalf("sessions --json: %v\n%s", err, stdout.String())
			}
			if len(sums) != 1 || len(sums[0].Gaps) != 1 || sums[0].Gaps[0] != int64(c.GapIndex) {
				t.Errorf("sessions --json: %s, want one session with gaps [%d]", stdout.String(), c.GapIndex)
			}
		})
	}
}
