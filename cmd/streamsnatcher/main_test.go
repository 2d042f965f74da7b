package main

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"streamsnatcher": func() { os.Exit(Main(os.Args[1:])) },
	})
}

// TestScripts runs the real binary against a test origin serving real segments
// that demands a Referer and a cookie. Each script sees $ORIGIN (the base URL),
// $REFERER and $COOKIE.
func TestScripts(t *testing.T) {
	media := testmedia.ForTest(t, testmedia.Small)
	fromOne := renumberFromOne(t, media)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			o, err := testorigin.New(testorigin.Options{
				Dir: media.Dir, Prefix: "/v/abc/720p/",
				RequireReferer: "https://video.example/watch", RequireCookie: "sess=ok",
			})
			if err != nil {
				return err
			}
			env.Defer(o.Close)
			// The same over HTTPS with its own certificate: $TLSCA is its PEM.
			tlsOrigin, err := testorigin.New(testorigin.Options{
				Dir: media.Dir, Prefix: "/v/abc/720p/", TLS: true,
				RequireReferer: "https://video.example/watch", RequireCookie: "sess=ok",
			})
			if err != nil {
				return err
			}
			env.Defer(tlsOrigin.Close)
			certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsOrigin.Certificate().Raw})
			if err := os.WriteFile(filepath.Join(env.WorkDir, "cert.pem"), certPEM, 0o644); err != nil {
				return err
			}
			env.Setenv("TLSORIGIN", tlsOrigin.URL)
			env.Setenv("TLSCA", filepath.Join(env.WorkDir, "cert.pem"))
			env.Setenv("ORIGIN", o.URL)
			// $ORIGIN1 is a site numbering its segments from 1, with no checks.
			o1, err := testorigin.New(testorigin.Options{Dir: fromOne, Prefix: "/v/one/"})
			if err != nil {
				return err
			}
			env.Defer(o1.Close)
			env.Setenv("ORIGIN1", o1.URL)
			// $GAPORIGIN is the same site without its segment 3, with no checks.
			og, err := testorigin.New(testorigin.Options{Dir: withoutSegment(t, media, 3), Prefix: "/v/gap/"})
			if err != nil {
				return err
			}
			env.Defer(og.Close)
			env.Setenv("GAPORIGIN", og.URL)
			// $SITE serves $SITEDIR, which holds the media's segments and
			// index.m3u8 and where a script puts its own playlists; no checks.
			siteDir := filepath.Join(env.WorkDir, "site")
			if err := copySite(media, siteDir); err != nil {
				return err
			}
			site, err := testorigin.New(testorigin.Options{Dir: siteDir, Prefix: "/site/"})
			if err != nil {
				return err
			}
			env.Defer(site.Close)
			env.Setenv("SITE", site.URL)
			env.Setenv("SITEDIR", siteDir)
			env.Setenv("ROOT", o.Root)
			env.Setenv("REFERER", "https://video.example/watch")
			env.Setenv("COOKIE", "sess=ok")
			env.Setenv("NSEG", fmt.Sprint(len(media.Segments)))
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			env.Setenv("XDG_DATA_HOME", filepath.Join(env.WorkDir, ".data"))
			env.Values["media"] = media
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// complete FILE: FILE has exactly the source's video and audio packets.
			"complete": func(ts *testscript.TestScript, neg bool, args []string) {
				m := ts.Value("media").(*testmedia.Media)
				v, a, err := testmedia.CountPackets(context.Background(), ts.MkAbs(args[0]))
				ok := err == nil && v == m.VideoPackets && a == m.AudioPackets
				if ok == neg {
					ts.Fatalf("complete %s: video %d audio %d (err %v), source video %d audio %d", args[0], v, a, err, m.VideoPackets, m.AudioPackets)
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
			// status CODE PROG ARGS...: run PROG and check its exit code; its output is then stdout and stderr.
			"status": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: status CODE PROG ARGS...")
				}
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					var ee *exec.ExitError
					if !errors.As(err, &ee) {
						ts.Fatalf("%s: %v", args[1], err)
					}
					got = ee.ExitCode()
				}
				if got != want {
					ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
				}
			},
			// mode FILE PERM: the file's permission bits, e.g. 0600.
			"mode": func(ts *testscript.TestScript, neg bool, args []string) {
				fi, err := os.Stat(ts.MkAbs(args[0]))
				ts.Check(err)
				if got := fmt.Sprintf("%04o", fi.Mode().Perm()); (got == args[1]) == neg {
					ts.Fatalf("mode of %s is %s, want %s", args[0], got, args[1])
				}
			},
		},
	})
}

// renumberFromOne copies the media's segments as seg_00001.ts, seg_00002.ts, ….
func renumberFromOne(t *testing.T, media *testmedia.Media) string {
	dir := t.TempDir()
	for i, seg := range media.Segments {
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seg_%05d.ts", i+1)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// withoutSegment copies the media's segments, all but segment i.
func withoutSegment(t *testing.T, media *testmedia.Media, i int) string {
	dir := t.TempDir()
	segs, _, err := media.CopyTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(segs[i]); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copySite copies the media's segments and index.m3u8 into dir.
func copySite(media *testmedia.Media, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if _, _, err := media.CopyTo(dir); err != nil {
		return err
	}
	data, err := os.ReadFile(media.Playlist)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.m3u8"), data, 0o644)
}
