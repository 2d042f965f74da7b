package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// The simulated CDN, on loopback. MB here and in every figure is 10^6 bytes.
const (
	cdnTTFB      = 30 * time.Millisecond
	cdnConnRate  = 8_000_000   // bytes/s per connection
	cdnTotalRate = 200_000_000 // bytes/s over all connections
	linkConns    = 64          // parallel connections of the raw link measurement

	targetRatio      = 1.5 // get time / link time, issue 2
	targetRatioAudio = 1.3 // the same with a separate audio rendition, issue 8
	rssBudgetMB      = 64  // peak RSS of streamsnatcher, issues 2 and 8
)

// sweep is the --concurrency values tried on the 600 s video.
var sweep = []int{8, 16, 32, 64}

// BenchmarkGet measures, for each video, (a) the raw link time, (b) the time of a whole `streamsnatcher get`
// process from start to verified .mp4, (c) their ratio and (d) the tool's peak RSS; then the same for the 600 s
// video at several --concurrency values. The videos are the 600 s one, it four times over, and it as a master
// playlist with a separate audio rendition (get records both tracks at once and muxes them). It prints a table
// at the end.
func BenchmarkGet(b *testing.B) {
	if testing.Short() {
		b.Skip("the get benchmark moves about a gigabyte through ffmpeg; not in -short")
	}
	bin := buildBinary(b, b.TempDir())

	start := time.Now()
	base, err := baseMedia()
	if err != nil {
		b.Fatalf("600 s video: %v", err)
	}
	fmt.Printf("600 s video ready in %s: %s\n", time.Since(start).Round(time.Millisecond), base.describe())
	start = time.Now()
	long, err := loopedMedia(base)
	if err != nil {
		b.Fatalf("2400 s video: %v", err)
	}
	fmt.Printf("2400 s video ready in %s: %s\n", time.Since(start).Round(time.Millisecond), long.describe())
	start = time.Now()
	aud, err := renditionsMedia(base)
	if err != nil {
		b.Fatalf("600 s video with separate audio: %v", err)
	}
	fmt.Printf("600 s video with separate audio ready in %s: %s\n", time.Since(start).Round(time.Millisecond), aud.describe())

	var t table
	for _, m := range []*media{base, long, aud} {
		b.Run("video="+m.Name, func(b *testing.B) { benchGet(b, bin, m, 0, &t) })
	}
	for _, c := range sweep {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) { benchGet(b, bin, base, c, &t) })
	}
	t.print(os.Stdout)
}

// benchGet runs b.N rounds of (link, get) against a fresh origin serving m. conc 0 leaves --concurrency at its
// default. Only the get processes are timed by b; the link is timed separately, right before each get, so both
// see the same load on the machine.
func benchGet(b *testing.B, bin string, m *media, conc int, t *table) {
	o := testorigin.Start(b, testorigin.Options{
		Dir:       m.Dir,
		TTFB:      cdnTTFB,
		ConnRate:  cdnConnRate,
		TotalRate: cdnTotalRate,
	})
	var link, get, download time.Duration
	var rssKB int64
	phases := true
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		l, err := linkTime(context.Background(), o.URL, m)
		if err != nil {
			b.Fatalf("link: %v", err)
		}
		link += l
		b.StartTimer()
		r, err := runGet(bin, b.TempDir(), o.URL, m, conc)
		b.StopTimer()
		if err != nil {
			b.Fatalf("get: %v", err)
		}
		get += r.elapsed
		download += r.download
		phases = phases && r.phases
		rssKB = max(rssKB, r.rssKB)
		b.StartTimer()
	}
	b.StopTimer()

	n := float64(b.N)
	r := row{
		video:    m.Name,
		conc:     conc,
		segments: len(m.Segments),
		mb:       float64(m.Bytes) / 1e6,
		linkS:    link.Seconds() / n,
		getS:     get.Seconds() / n,
		rssMB:    float64(rssKB) * 1024 / 1e6,
		dlS:      math.NaN(),
		target:   targetRatio,
	}
	if m.Master != "" {
		r.target = targetRatioAudio
	}
	if phases {
		r.dlS = download.Seconds() / n
		b.ReportMetric(r.dlS, "download_s")
		b.ReportMetric(r.getS-r.dlS, "tail_s")
	}
	if r.conc == 0 {
		r.conc = recorder.DefaultConcurrency
	}
	b.ReportMetric(r.linkS, "link_s")
	b.ReportMetric(r.getS, "get_s")
	b.ReportMetric(r.ratio(), "ratio")
	b.ReportMetric(r.rssMB, "rss_MB")
	b.Logf("%s", r)
	t.add(b.Name(), r)
}

// linkTime fetches every segment of m from base into io.Discard over linkConns parallel connections: what the
// link allows, with nothing written to disk.
func linkTime(ctx context.Context, base string, m *media) (time.Duration, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: linkConns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var total int64

	start := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(linkConns)
	for _, s := range m.Segments {
		g.Go(func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+s, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: status %s", s, resp.Status)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	if total != m.Bytes {
		return 0, fmt.Errorf("got %d bytes, want %d", total, m.Bytes)
	}
	return elapsed, nil
}

// getRun is one measured `streamsnatcher get`.
type getRun struct {
	elapsed  time.Duration
	rssKB    int64
	download time.Duration // from start until the last segment was handed to ffmpeg
	phases   bool          // download is known
}

// drainedLine is merge's debug line "ffmpeg drained": logged when ffmpeg has exited after its input was closed,
// which happens right after the last segment was downloaded and appended. A recording of several tracks logs
// one per track.
var drainedLine = regexp.MustCompile(`(?m)^time=(\S+) level=DEBUG msg="ffmpeg drained" seconds=([0-9.eE+-]+)`)

// downloadTime finds, in the --debug log of a get started at start, when the download ended: when merge closed
// ffmpeg's input, the last time if it did so for several tracks. ok is false when the log does not say (the
// line is a debug aid of merge, not an interface).
func downloadTime(log []byte, start time.Time) (d time.Duration, ok bool) {
	for _, m := range drainedLine.FindAllSubmatch(log, -1) {
		at, err := time.Parse(time.RFC3339Nano, string(m[1]))
		if err != nil {
			return 0, false
		}
		drain, err := strconv.ParseFloat(string(m[2]), 64)
		if err != nil {
			return 0, false
		}
		d, ok = max(d, at.Sub(start)-time.Duration(drain*float64(time.Second))), true
	}
	return d, ok
}

var statsLine = regexp.MustCompile(`(?m)^streamsnatcher: stats: maxrss_kb=(\d+)$`)

// runGet runs the real binary on the (*) URL of m under base, or on its master playlist, in dir, and checks the
// .mp4 it writes.
func runGet(bin, dir, base string, m *media, conc int) (getRun, error) {
	out := filepath.Join(dir, "out.mp4")
	args := []string{"get", base + "seg_(*).ts", "--pad", "5", "--count", strconv.Itoa(len(m.Segments))}
	switch {
	case m.Manifest != "":
		args = []string{"get", base + m.Manifest}
	case m.Master != "":
		args = []string{"get", base + m.Master}
	}
	args = append(args, "-o", out, "-q", "--debug", "--data-dir", filepath.Join(dir, "data"))
	if conc > 0 {
		args = append(args, "--concurrency", strconv.Itoa(conc))
	}
	// The stats line is getrusage's ru_maxrss, which Linux carries over from the memory image an execve replaces.
	// Go starts children with vfork semantics (the child shares this process's memory until it execs), so a
	// direct child would report max(this benchmark's RSS, its own). sh forks a small copy of itself first, so
	// the figure is streamsnatcher's own. ("exit" after the command keeps sh from exec-ing it directly.)
	cmd := exec.Command("/bin/sh", append([]string{"-c", `"$@"; exit $?`, "sh", bin}, args...)...)
	// Nothing from the caller's STREAMSNATCHER_* environment or config file may change the run.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STREAMSNATCHER_") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "STREAMSNATCHER_STATS=1", "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	keep := keepName(m)
	if keep != "" {
		cmd.Env = append(cmd.Env, "STREAMSNATCHER_CPUPROFILE="+keep+".pprof")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if keep != "" {
		defer func() { os.WriteFile(keep+".log", stderr.Bytes(), 0o644) }()
	}

	start := time.Now()
	err := cmd.Run()
	r := getRun{elapsed: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	sm := statsLine.FindSubmatch(stderr.Bytes())
	if sm == nil {
		return r, fmt.Errorf("no stats line in stderr: %q", stderr.String())
	}
	r.rssKB, _ = strconv.ParseInt(string(sm[1]), 10, 64)
	r.download, r.phases = downloadTime(stderr.Bytes(), start)

	if err := checkOutput(out, m); err != nil {
		return r, err
	}
	// The next round should not pay for this one's gigabyte on disk.
	if err := os.RemoveAll(dir); err != nil {
		return r, err
	}
	return r, nil
}

var keepRound atomic.Int64

// keepName is where a get's --debug log (.log) and CPU profile (.pprof) are kept when STREAMSNATCHER_BENCH_KEEP
// names a directory: NAME-ROUND, counted over the benchmark process; "" when not asked.
func keepName(m *media) string {
	dir := os.Getenv("STREAMSNATCHER_BENCH_KEEP")
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%02d", m.Name, keepRound.Add(1)))
}

// checkOutput checks the .mp4 get wrote from m: it lasts as long as m (within max(1 s, 1 %)) and, where m knows
// its packet counts, holds one video and one audio stream with exactly those packets, each stream as long as m.
func checkOutput(out string, m *media) error {
	d, err := testmedia.Probe(context.Background(), out)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if !closeTo(d, m.Seconds) {
		return fmt.Errorf("output %s lasts %.3fs, want %.3fs", out, d, m.Seconds)
	}
	if m.VideoPackets == 0 && m.AudioPackets == 0 {
		return nil
	}
	streams, err := probeStreams(out)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	want := map[string]int{"video": m.VideoPackets, "audio": m.AudioPackets}
	if len(streams) != len(want) {
		return fmt.Errorf("output %s has %d streams %+v, want one video and one audio", out, len(streams), streams)
	}
	for _, st := range streams {
		w, ok := want[st.kind]
		delete(want, st.kind)
		switch {
		case !ok:
			return fmt.Errorf("output %s: unexpected or second %s stream", out, st.kind)
		case st.packets != w:
			return fmt.Errorf("output %s: %s stream has %d packets, the source %d", out, st.kind, st.packets, w)
		case !closeTo(st.seconds, m.Seconds):
			return fmt.Errorf("output %s: %s stream lasts %.3fs, want %.3fs", out, st.kind, st.seconds, m.Seconds)
		}
	}
	return nil
}

// closeTo says whether a duration is within max(1 s, 1 %) of want.
func closeTo(got, want float64) bool { return math.Abs(got-want) <= max(1, 0.01*want) }

// outStream is one stream of an output, as ffprobe counts it.
type outStream struct {
	kind    string // codec_type
	packets int
	seconds float64
}

// probeStreams reads every packet of path (-count_packets) and each stream's duration.
func probeStreams(path string) ([]outStream, error) {
	cmd := exec.Command("ffprobe", "-v", "error", "-count_packets",
		"-show_entries", "stream=codec_type,nb_read_packets,duration", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	data, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ffprobe %s: %w: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	var v struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			Packets   string `json:"nb_read_packets"`
			Duration  string `json:"duration"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	var out []outStream
	for _, s := range v.Streams {
		n, err := strconv.Atoi(s.Packets)
		if err != nil {
			return nil, fmt.Errorf("ffprobe %s: %s packets %q: %w", path, s.CodecType, s.Packets, err)
		}
		d, err := strconv.ParseFloat(s.Duration, 64)
		if err != nil {
			return nil, fmt.Errorf("ffprobe %s: %s duration %q: %w", path, s.CodecType, s.Duration, err)
		}
		out = append(out, outStream{kind: s.CodecType, packets: n, seconds: d})
	}
	return out, nil
}

// buildBinary builds cmd/streamsnatcher into dir once.
func buildBinary(b testing.TB, dir string) string {
	b.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		b.Fatalf("the benchmark builds the binary: %v", err)
	}
	bin := filepath.Join(dir, "streamsnatcher")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/streamsnatcher/streamsnatcher/cmd/streamsnatcher")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// row is one line of the printed table.
type row struct {
	video       string
	conc        int
	segments    int
	mb          float64
	linkS, getS float64
	dlS         float64 // NaN if unknown
	rssMB       float64
	target      float64 // the ratio it must stay within
}

func (r row) ratio() float64 { return r.getS / r.linkS }

func (r row) String() string {
	dl, tail := "-", "-"
	if !math.IsNaN(r.dlS) {
		dl, tail = fmt.Sprintf("%.2f", r.dlS), fmt.Sprintf("%.2f", r.getS-r.dlS)
	}
	return fmt.Sprintf("%-6s %4d %9d %8.1f %7.2f %7.2f %6.2f %12.1f %11s %7s%s", r.video, r.conc, r.segments, r.mb,
		r.linkS, r.getS, r.ratio(), r.rssMB, dl, tail, r.verdict())
}

func (r row) verdict() string {
	var over []string
	if r.ratio() > r.target {
		over = append(over, fmt.Sprintf("ratio > %.1f", r.target))
	}
	if r.rssMB > rssBudgetMB {
		over = append(over, fmt.Sprintf("RSS > %d MB", rssBudgetMB))
	}
	if len(over) == 0 {
		return ""
	}
	return "  over target: " + strings.Join(over, ", ")
}

// table collects one row per sub-benchmark. The testing package runs a sub-benchmark once with b.N = 1 before
// the b.N that -benchtime asks for, so a later row replaces an earlier one of the same name.
type table struct {
	mu    sync.Mutex
	names []string
	rows  []row
}

func (t *table) add(name string, r row) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, n := range t.names {
		if n == name {
			t.rows[i] = r
			return
		}
	}
	t.names = append(t.names, name)
	t.rows = append(t.rows, r)
}

func (t *table) print(w io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\nstreamsnatcher get vs. the raw link: CDN on loopback, TTFB %s, %d MB/s per connection, %d MB/s in all;\n",
		cdnTTFB, cdnConnRate/1_000_000, cdnTotalRate/1_000_000)
	fmt.Fprintf(w, "link = %d connections into io.Discard; get = the whole process to a verified .mp4; targets: ratio <= %.1f (%.1f with\n",
		linkConns, targetRatio, targetRatioAudio)
	fmt.Fprintf(w, "separate audio, +a), RSS <= %d MB;\n", rssBudgetMB)
	fmt.Fprintf(w, "download = start until the last segment is in ffmpeg; tail = get - download (ffmpeg finishing, verification, fsync)\n\n")
	fmt.Fprintf(w, "%-6s %4s %9s %8s %7s %7s %6s %12s %11s %7s\n", "video", "conc", "segments", "MB", "link s", "get s", "ratio",
		"peak RSS MB", "download s", "tail s")
	for _, r := range t.rows {
		fmt.Fprintln(w, r)
	}
	fmt.Fprintln(w)
}
