package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
)

// TestDASHScripts runs the real binary on what ffmpeg's dash muxer writes
// ($Number$ template, 4 s of video and audio), served under a path with a
// digit by an origin that demands a Referer and a cookie. Each script sees
// $DASH (the base URL), $REFERER and $COOKIE; besides out.mpd the origin has
// the same manifest with no extension (manifest), one with DRM (drm.mpd) and a
// live one that does not say when it started (live.mpd).
func TestDASHScripts(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("this test needs the real ffmpeg: %v", err)
	}
	dir := t.TempDir()
	out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "4", "-c:v", "libx264", "-g", "25", "-c:a", "aac",
		"-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "0",
		filepath.Join(dir, "out.mpd")).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	mpd, err := os.ReadFile(filepath.Join(dir, "out.mpd"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(mpd)
	for name, body := range map[string]string{
		"manifest": s,
		"drm.mpd":  strings.Replace(s, `<Representation id="0"`, `<ContentProtection schemeIdUri="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"/><Representation id="0"`, 1),
		"live.mpd": strings.Replace(s, `type="static"`, `type="dynamic"`, 1), // on the clock, with no availabilityStartTime
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// What the manifest presents, as ffmpeg's own dash demuxer reads it.
	wantV, wantA, err := testmedia.CountPackets(context.Background(), filepath.Join(dir, "out.mpd"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/dash",
		Setup: func(env *testscript.Env) error {
			o, err := testorigin.New(testorigin.Options{Dir: dir, Prefix: "/v/9/dash/",
				RequireReferer: "https://video.example/watch", RequireCookie: "sess=ok"})
			if err != nil {
				return err
			}
			env.Defer(o.Close)
			env.Setenv("DASH", o.URL)
			env.Setenv("REFERER", "https://video.example/watch")
			env.Setenv("COOKIE", "sess=ok")
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			env.Setenv("XDG_DATA_HOME", filepath.Join(env.WorkDir, ".data"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// complete FILE: FILE has the manifest's video and audio packets and decodes cleanly.
			"complete": func(ts *testscript.TestScript, neg bool, args []string) {
				p := ts.MkAbs(args[0])
				v, a, err := testmedia.CountPackets(context.Background(), p)
				ok := err == nil && v == wantV && a == wantA
				if ok {
					msg, err := exec.Command(ffmpeg, "-v", "error", "-i", p, "-f", "null", "-").CombinedOutput()
					ok = err == nil && len(strings.TrimSpace(string(msg))) == 0
				}
				if ok == neg {
					ts.Fatalf("complete %s: video %d audio %d (err %v), manifest video %d audio %d", args[0], v, a, err, wantV, wantA)
				}
			},
			// nopartial DIR: no .partial file anywhere under DIR.
			"nopartial": func(ts *testscript.TestScript, neg bool, args []string) {
				var found []string
				filepath.Walk(ts.MkAbs(args[0]), func(p string, _ os.FileInfo, _ error) error {
					if strings.HasSuffix(p, ".partial") {
						found = append(found, p)
					}
					return nil
				})
				if (len(found) > 0) != neg {
					ts.Fatalf("partial files: %v", found)
				}
			},
		},
	})
}
