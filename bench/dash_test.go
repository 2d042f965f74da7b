package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/dash"
)

// dashVersion is part of the DASH video's cache key: bump it when dashMedia changes.
const dashVersion = "1"

// BenchmarkGetDASH is BenchmarkGet on the 600 s video as DASH: ffmpeg's dash muxer, stream copy of the same
// segments into fMP4 ($Number$ template, 4 s segments, video and audio as separate representations), so
// get downloads two tracks side by side and muxes them live (merge.Mux). Target: the same ratio as HLS's, or issue 9's 1.3.
func BenchmarkGetDASH(b *testing.B) {
	if testing.Short() {
		b.Skip("the DASH benchmark moves 190 MB through ffmpeg; not in -short")
	}
	bin := buildBinary(b, b.TempDir())
	base, err := baseMedia()
	if err != nil {
		b.Fatalf("600 s video: %v", err)
	}
	start := time.Now()
	m, err := dashMedia(base)
	if err != nil {
		b.Fatalf("600 s DASH video: %v", err)
	}
	fmt.Printf("600 s DASH video ready in %s: %s\n", time.Since(start).Round(time.Millisecond), m.describe())
	var t table
	b.Run("video="+m.Name, func(b *testing.B) { benchGet(b, bin, m, 0, &t) })
	t.print(os.Stdout)
}

// dashMedia remuxes the base video into DASH next to testmedia's cache, once.
func dashMedia(base *media) (*media, error) {
	h := sha256.Sum256([]byte(dashVersion + "\n" + base.Dir))
	dir := filepath.Join(filepath.Dir(base.Dir), fmt.Sprintf("bench-dash-%s-%s", base.Name, hex.EncodeToString(h[:8])))
	if _, err := os.Stat(filepath.Join(dir, "out.mpd")); err != nil {
		tmp, err := os.MkdirTemp(filepath.Dir(dir), ".bench-dash-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
			"-i", filepath.Join(base.Dir, "index.m3u8"), "-map", "0", "-c", "copy", "-tag:v", "avc1", "-tag:a", "mp4a",
			"-f", "dash", "-seg_duration", "4", "-use_template", "1", "-use_timeline", "0",
			filepath.Join(tmp, "out.mpd")).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("ffmpeg dash: %v: %s", err, out)
		}
		if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
			return nil, err
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "out.mpd"))
	if err != nil {
		return nil, err
	}
	mpd, err := dash.Parse(data, &url.URL{Scheme: "http", Host: "bench.invalid", Path: "/out.mpd"})
	if err != nil {
		return nil, err
	}
	p, err := mpd.Plan(dash.Selection{})
	if err != nil {
		return nil, err
	}
	m := &media{Name: base.Name + "-dash", Dir: dir, Manifest: "out.mpd", Seconds: base.Seconds}
	for _, tr := range p.Tracks {
		var urls []string
		for _, in := range tr.Inits {
			urls = append(urls, in.URL)
		}
		for _, s := range tr.Segments {
			urls = append(urls, s.URL)
		}
		for _, u := range urls {
			name := path.Base(u)
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				return nil, err
			}
			m.Segments = append(m.Segments, name)
			m.Bytes += fi.Size()
		}
	}
	return m, nil
}
