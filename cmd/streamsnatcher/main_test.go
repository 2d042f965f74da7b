package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
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
