package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

const (
	harReferer = "https://video.example/watch"
	harCookie  = "sess=ok"
)

// harFixture is an origin serving real segments that demands a Referer and a cookie.
func harFixture(t *testing.T) (*testmedia.Media, *testorigin.Origin) {
	t.Helper()
	m := testmedia.ForTest(t, testmedia.Small)
	o := testorigin.Start(t, testorigin.Options{Dir: m.Dir, Prefix: "/v/abc/720p/", RequireReferer: harReferer, RequireCookie: harCookie})
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no config file of the person running the tests
	return m, o
}

// harEntry is a GET of u as the browser made it; body, when given, is embedded as base64.
func harEntry(u, mime string, body []byte) recorder.HAREntry {
	e := recorder.HAREntry{
		Request: recorder.HARRequest{Method: "GET", URL: u, HTTPVersion: "http/2.0",
			Headers: []recorder.HARHeader{{Name: ":authority", Value: "127.0.0.1"}, {Name: "referer", Value: harReferer},
				{Name: "accept", Value: "*/*"}},
			Cookies: []recorder.HARCookie{{Name: "sess", Value: "ok"}}},
		Response: recorder.HARResponse{Status: 200, Content: recorder.HARContent{MimeType: mime}},
	}
	if body != nil {
		e.Response.Content.Text = base64.StdEncoding.EncodeToString(body)
		e.Response.Content.Encoding = "base64"
		e.Response.Content.Size = int64(len(body))
	}
	return e
}

func writeHAR(t *testing.T, entries ...recorder.HAREntry) string {
	t.Helper()
	data, err := json.Marshal(&recorder.HAR{Log: recorder.HARLog{Version: "1.2", Creator: recorder.HARCreator{Name: "test"}, Entries: entries}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "capture.har")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// harCLI runs the command line in-process and returns its exit code and output.
func harCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	t.Logf("streamsnatcher %s: exit %d\nstderr:\n%s", strings.Join(args, " "), code, stderr.String())
	return code, stdout.String(), stderr.String()
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func assertComplete(t *testing.T, m *testmedia.Media, out string) {
	t.Helper()
	v, a, err := testmedia.CountPackets(context.Background(), out)
	if err != nil || v != m.VideoPackets || a != m.AudioPackets {
		t.Errorf("%s: video %d audio %d (err %v), source video %d audio %d", out, v, a, err, m.VideoPackets, m.AudioPackets)
	}
}

// TestReplayHAR records from DevTools-style HAR files against a real origin:
// the segments the HAR carries are not fetched again, the others exactly once.
func TestReplayHAR(t *testing.T) {
	tests := []struct {
		name     string
		playlist bool // the HAR holds the media playlist with its content
	}{
		{"segments only: numbering learned, end probed", false},
		{"media playlist with content", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, o := harFixture(t)
			var entries []recorder.HAREntry
			entries = append(entries, harEntry(o.PageURL(), "text/html", []byte("<html></html>")))
			if tt.playlist {
				entries = append(entries, harEntry(o.URL+"index.m3u8", "application/vnd.apple.mpegurl", nil))
				entries[1].Response.Content.Text = string(readFile(t, m.Playlist))
			}
			for i, seg := range m.Segments[:4] {
				var body []byte
				if i < 2 {
					body = readFile(t, seg)
				}
				entries = append(entries, harEntry(o.URL+path.Base(seg), "video/mp2t", body))
			}
			har := writeHAR(t, entries...)
			out := filepath.Join(t.TempDir(), "out.mp4")
			code, stdout, stderr := harCLI(t, "replay", har, "-o", out, "--data-dir", t.TempDir())
			if code != exitOK {
				t.Fatalf("replay %s: exit %d, want 0", har, code)
			}
			if strings.TrimSpace(stdout) != out {
				t.Errorf("stdout: got %q, want %q", stdout, out)
			}
			if !strings.Contains(stderr, "1 stream(s), 2 segment(s) carried in the file") {
				t.Errorf("stderr: %q", stderr)
			}
			assertComplete(t, m, out)
			for i, seg := range m.Segments {
				name := path.Base(seg)
				switch {
				case i < 2:
					if n := o.Hits(name); n != 0 {
						t.Errorf("%s (in the HAR): origin hit %d times, want 0", name, n)
					}
				case tt.playlist:
					if n := o.Hits(name); n != 1 {
						t.Errorf("%s: origin hit %d times, want 1", name, n)
					}
				default: // probing may ask for a range of it; the whole of it is sent once
					if n := o.Completed(name); n != 1 {
						t.Errorf("%s: origin served it %d times, want 1", name, n)
					}
				}
			}
			if tt.playlist && o.Hits("index.m3u8") != 0 {
				t.Errorf("index.m3u8 (in the HAR): origin hit %d times, want 0", o.Hits("index.m3u8"))
			}
		})
	}
}

// TestExportHARRoundTrip records a stream, exports its session as HAR and
// records it again from that HAR: the same template, the same video.
func TestExportHARRoundTrip(t *testing.T) {
	m, o := harFixture(t)
	data := t.TempDir()
	first := filepath.Join(t.TempDir(), "first.mp4")
	if code, _, _ := harCLI(t, "get", o.URL+"seg_00003.ts", "--referer", harReferer, "--cookie", harCookie, "-o", first, "--data-dir", data, "-q"); code != exitOK {
		t.Fatalf("get: exit %d", code)
	}
	st, err := recorder.NewStore(data)
	if err != nil {
		t.Fatal(err)
	}
	list, err := st.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions: %d (%v), want 1", len(list), err)
	}
	orig := list[0]

	har := filepath.Join(t.TempDir(), "s.har")
	code, _, stderr := harCLI(t, "sessions", "export", "--har", orig.ID, "-o", har, "--data-dir", data)
	if code != exitOK || !strings.Contains(stderr, "it holds the session's cookies") {
		t.Fatalf("export: exit %d, stderr %q", code, stderr)
	}
	if fi, err := os.Stat(har); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("exported HAR: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if code, stdout, _ := harCLI(t, "sessions", "export", "--har", orig.ID, "--data-dir", data); code != exitOK || !strings.Contains(stdout, harCookie) {
		t.Errorf("export to stdout: exit %d, cookie in it: %v", code, strings.Contains(stdout, harCookie))
	}

	data2 := t.TempDir()
	second := filepath.Join(t.TempDir(), "second.mp4")
	if code, _, _ := harCLI(t, "replay", har, "-o", second, "--data-dir", data2, "-q"); code != exitOK {
		t.Fatalf("replay of the export: exit %d", code)
	}
	assertComplete(t, m, second)
	st2, _ := recorder.NewStore(data2)
	list2, err := st2.List()
	if err != nil || len(list2) != 1 {
		t.Fatalf("sessions after replay: %d (%v), want 1", len(list2), err)
	}
	got := list2[0]
	g, ot := got.Main(), orig.Main()
	if got.Source != "har" || !reflect.DeepEqual(g.Template.Parts, ot.Template.Parts) || g.First != ot.First ||
		g.Last != ot.Last || !reflect.DeepEqual(got.Headers, orig.Headers) {
		t.Errorf("replayed session: source %q template %v %d..%d headers %v; want template %v %d..%d headers %v",
			got.Source, g.Template, g.First, g.Last, got.Headers, ot.Template, ot.First, ot.Last, orig.Headers)
	}
}

// TestExampleConfig: streamsnatcher.example.yaml names every key `config` knows, and
// uncommented it is a config file the tool loads, each key coming from the file.
func TestExampleConfig(t *testing.T) {
	data := readFile(t, filepath.Join("..", "..", "streamsnatcher.example.yaml"))
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if k, ok := strings.CutPrefix(l, "# "); ok && strings.Contains(k, ": ") && !strings.Contains(strings.SplitN(k, ":", 2)[0], " ") {
			if i := strings.Index(k, "  #"); i >= 0 {
				k = k[:i]
			}
			lines = append(lines, k)
		}
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	code, stdout, _ := harCLI(t, "config", "--json", "--config", cfg)
	if code != exitOK {
		t.Fatalf("config --config example: exit %d", code)
	}
	var got struct {
		Settings []setting `json:"settings"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if want := len(globalKeys) + len(runKeys); len(got.Settings) != want {
		t.Errorf("settings: got %d, want %d", len(got.Settings), want)
	}
	for _, s := range got.Settings {
		if s.Source != "file" {
			t.Errorf("%s: source %q, want file (the example lacks it?)", s.Key, s.Source)
		}
	}
}
