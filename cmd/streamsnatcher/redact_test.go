package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/recorder"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// 'sessions show' and a --debug replay print no secret: not the Referer's
// token, the cookie, authorization, a custom signature or key header, nor the
// tokens in the segment URLs that the debug log names as it retries.
func TestSessionsShowAndDebugRedact(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	o := testorigin.Start(t, testorigin.Options{Dir: m.Dir, Prefix: "/v/abc/720p/", RequireReferer: "https://nobody.example/"})
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, ".data"))
	st, err := recorder.NewStore(filepath.Join(home, ".data", "streamsnatcher"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := urltemplate.Placeholder(o.URL+"seg_(*).ts?token=SECRET1&Policy=SECRET2&n=1", 5)
	if err != nil {
		t.Fatal(err)
	}
	s := &recorder.Session{Source: "watch",
		Page: "https://videos.example/watch?token=SECRET3",
		Headers: map[string]string{
			"Referer": "https://videos.example/watch?token=SECRET3&id=1", "Origin": "https://u:SECRET4@videos.example",
			"Cookie": "sess=SECRET5", "Authorization": "Bearer SECRET6", "X-Signature": "SECRET7", "X-Api-Key": "SECRET8",
		}}
	tr := recorder.NewTemplateTrack(tmpl, 0)
	tr.Last, tr.EndKnown = 2, true
	s.AddTrack(tr)
	if err := st.Create(s); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"sessions", "show", s.ID},
		{"--debug", "sessions", "show", s.ID},
		{"--debug", "replay", s.ID, "--retries", "2"}, // 403s: errors and retries name the URLs
	} {
		var so, se bytes.Buffer
		code := run(context.Background(), args, &so, &se)
		out := so.String() + se.String()
		if strings.Contains(out, "SECRET") {
			t.Errorf("%v (exit %d) prints a secret:\n%s", args, code, out)
		}
		if !strings.Contains(out, "n=1") && !strings.Contains(out, "id=1") || args[1] == "replay" && !strings.Contains(out, "status 403") {
			t.Errorf("%v: the test proves nothing, output:\n%s", args, out)
		}
	}
}
