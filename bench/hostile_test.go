package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A hostile page (issue 10): it loads several playlists of 600,000 segments
// (15 MB each) through `watch` while the browser keeps using the proxy for
// other requests. The proxy must stay responsive, its memory bounded, the
// dashboard's API quick, and SIGTERM prompt.
const (
	hostileSegments  = 600_000
	hostilePlaylists = 5

	hostileP99Target  = 100 * time.Millisecond // proxied request to a healthy origin, while the playlists load
	hostileAPITarget  = 100 * time.Millisecond // /api/streams
	hostileRSSTarget  = 300                    // MB, peak RSS of the watch process
	hostileTermTarget = 5 * time.Second        // SIGTERM to exit
)

type hostileResult struct {
	requests      int
	p50, p99, max time.Duration
	apiMax        time.Duration
	rssMB         float64
	term          time.Duration
	sessions      int
}

func (r hostileResult) String() string {
	return fmt.Sprintf("%d proxied requests: p50 %s p99 %s max %s; /api/streams max %s; peak RSS %.0f MB; SIGTERM exit %s; %d recording(s)",
		r.requests, r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond), r.max.Round(time.Millisecond),
		r.apiMax.Round(100*time.Microsecond), r.rssMB, r.term.Round(time.Millisecond), r.sessions)
}

// hostilePlaylist is a media playlist of n segments.
func hostilePlaylist(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 26)
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n")
	for i := range n {
		fmt.Fprintf(&b, "#EXTINF:4,\nseg_%07d.ts\n", i)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.Bytes()
}

// runHostile starts `watch`, loads the hostile page through it and measures.
func runHostile(tb testing.TB, bin string) hostileResult {
	tb.Helper()
	pl := hostilePlaylist(hostileSegments)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/page.html":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<!doctype html><title>hostile</title>")
		case strings.HasSuffix(r.URL.Path, ".m3u8"):
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			w.Header().Set("Content-Length", strconv.Itoa(len(pl)))
			w.Write(pl)
		default:
			io.WriteString(w, "healthy")
		}
	}))
	defer origin.Close()

	home := tb.TempDir()
	cmd := exec.Command(bin, "watch", "--listen", "127.0.0.1:0", "--out-dir", filepath.Join(home, "out"),
		"--data-dir", filepath.Join(home, "data"), "--ca-dir", filepath.Join(home, "ca"))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STREAMSNATCHER_") && !strings.HasPrefix(kv, "XDG_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	addrc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`proxy on http://(127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		exited <- cmd.Wait()
	}()
	defer cmd.Process.Kill()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-exited:
		tb.Fatalf("watch exited before listening: %v", err)
	case <-time.After(30 * time.Second):
		tb.Fatal("watch did not say where it listens")
	}

	proxyURL, _ := url.Parse("http://" + addr)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL),
		MaxIdleConnsPerHost: 16}}
	get := func(u string, h map[string]string) error {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	page := origin.URL + "/page.html"
	if err := get(page, nil); err != nil {
		tb.Fatalf("the page through the proxy: %v", err)
	}

	// The browser keeps using the proxy while the page hands over its playlists.
	ctx, stop := context.WithCancel(context.Background())
	var lat []time.Duration
	var apiMax time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			t0 := time.Now()
			if err := get(origin.URL+"/healthy", nil); err != nil {
				tb.Errorf("healthy request: %v", err)
				return
			}
			mu.Lock()
			lat = append(lat, time.Since(t0))
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	})
	wg.Go(func() {
		api := &http.Client{Timeout: 30 * time.Second}
		for ctx.Err() == nil {
			t0 := time.Now()
			resp, err := api.Get("http://" + addr + "/api/streams")
			if err != nil {
				tb.Errorf("/api/streams: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			apiMax = max(apiMax, time.Since(t0))
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	})
	var loads sync.WaitGroup
	for i := range hostilePlaylists {
		loads.Go(func() {
			if err := get(fmt.Sprintf("%s/v%d/index.m3u8", origin.URL, i), map[string]string{"Referer": page}); err != nil {
				tb.Errorf("hostile playlist %d: %v", i, err)
			}
		})
	}
	loads.Wait()
	time.Sleep(time.Second) // what the playlists set off runs on after the bodies are through
	stop()
	wg.Wait()

	var res hostileResult
	res.rssMB = float64(vmHWM(cmd.Process.Pid)) / 1000
	resp, err := http.Get("http://" + addr + "/api/streams")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res.sessions = strings.Count(string(body), `"id"`)
	}
	t0 := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		res.term = time.Since(t0)
	case <-time.After(30 * time.Second):
		res.term = 30 * time.Second
	}

	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		tb.Fatal("no proxied request completed")
	}
	slices.Sort(lat)
	res.requests = len(lat)
	res.p50, res.p99, res.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	res.apiMax = apiMax
	return res
}

// vmHWM is a process's peak resident set in kB (0 if unknown).
func vmHWM(pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// TestHostilePage holds the bounds that do not depend on the machine's speed:
// memory, a prompt SIGTERM, no recording made of what is over the limit; and
// latencies an order of magnitude past the targets (CI shares its cores). The
// figures against the targets come from BenchmarkHostilePage.
func TestHostilePage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and moves 75 MB of playlists through it")
	}
	bin := buildBinary(t, t.TempDir())
	r := runHostile(t, bin)
	t.Log(r)
	if r.rssMB > hostileRSSTarget {
		t.Errorf("peak RSS %.0f MB, want at most %d MB", r.rssMB, hostileRSSTarget)
	}
	if r.term > hostileTermTarget {
		t.Errorf("SIGTERM took %s to end watch, want at most %s", r.term, hostileTermTarget)
	}
	if r.sessions != 0 {
		t.Errorf("%d recordings made of playlists over the segment limit, want none", r.sessions)
	}
	if r.p99 > 10*hostileP99Target || r.apiMax > 10*hostileAPITarget {
		t.Errorf("the proxy stalled: %s", r)
	}
}

// BenchmarkHostilePage prints the figures issue 10 sets targets for.
//
//	go test -bench HostilePage -run '^$' -benchtime 1x ./bench/
func BenchmarkHostilePage(b *testing.B) {
	bin := buildBinary(b, b.TempDir())
	for range b.N {
		r := runHostile(b, bin)
		b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99_ms")
		b.ReportMetric(float64(r.apiMax.Microseconds())/1000, "api_max_ms")
		b.ReportMetric(r.rssMB, "rss_MB")
		b.ReportMetric(r.term.Seconds(), "sigterm_s")
		verdict := "within targets"
		if r.p99 > hostileP99Target || r.apiMax > hostileAPITarget || r.rssMB > hostileRSSTarget || r.term > hostileTermTarget {
			verdict = "OVER TARGET"
		}
		fmt.Printf("hostile page, %d playlists of %d segments: %s — %s (targets: p99 %s, /api/streams %s, RSS %d MB, SIGTERM %s)\n",
			hostilePlaylists, hostileSegments, r, verdict, hostileP99Target, hostileAPITarget, hostileRSSTarget, hostileTermTarget)
	}
}
