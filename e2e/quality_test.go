package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// fetchedLevels says, per variant of testmedia.Ladder, how often the CDN served its playlist and segments.
func (c *cdn) fetchedLevels() string {
	var out []string
	for k, r := range testmedia.Ladder {
		segs, _ := filepath.Glob(filepath.Join(c.dir, fmt.Sprintf("v%d_*.ts", k)))
		n := 0
		for _, s := range segs {
			n += c.count(filepath.Base(s))
		}
		out = append(out, fmt.Sprintf("%dp: playlist %d, segments %d", r.Height, c.count(r.Playlist), n))
	}
	return strings.Join(out, "; ")
}

// TestPlayerQualityUp: hls.js plays ffmpeg's three-variant ladder (testmedia.LadderHLS: 240p, 480p and
// 720p, audio muxed in each, 8 s in 1 s segments). It starts from its bandwidth estimate, on a low variant,
// and is sent up to the best one once it plays (hls.nextLevel; on loopback it often goes up on its own,
// but not always before the recording is made). The last segment of the lower variants is held at the CDN
// until hls.js has fetched a segment of the best one, so the recording cannot be made before the switch
// whoever fetches that segment. The one recording is one file with the video and the audio, the video at
// the height of the best level hls.js played, with every packet of that variant.
func TestPlayerQualityUp(t *testing.T) {
	start := time.Now()
	dir := t.TempDir()
	testmedia.LadderHLS(t, dir)
	top := len(testmedia.Ladder) - 1
	release := make(chan struct{})
	hold := map[string]chan struct{}{}
	for k := range top {
		hold[fmt.Sprintf("v%d_%03d.ts", k, testmedia.LadderSeconds-1)] = release
	}
	pr := newPlayerRigWith(t, dir, cdnOptions{hold: hold})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before the CDN's Close, which waits for the held requests
	bctx, closeBrowser := pr.browser(t, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")
	pr.play(t, bctx, "hlsjs", "https://"+cdnHost+"/v/master.m3u8", 0.3)
	first, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf(`(() => {
  window.maxHeight = hls.levels[hls.currentLevel].height;
  hls.on(Hls.Events.FRAG_LOADED, (ev, d) => { window.maxHeight = Math.max(window.maxHeight, hls.levels[d.frag.level].height); });
  const first = hls.currentLevel;
  hls.nextLevel = %d;
  return first;
})()`, top)))
	if err != nil {
		t.Fatalf("send hls.js up: %v", err)
	}
	t.Logf("hls.js played level %d (%dp) first; CDN then: %s", first, testmedia.Ladder[first].Height, pr.cdn.fetchedLevels())
	deadline := time.Now().Add(20 * time.Second)
	topSegs, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("v%d_*.ts", top)))
	for fetched := 0; fetched == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("hls.js fetched no segment of the best variant within 20 s; CDN: %s", pr.cdn.fetchedLevels())
		}
		for _, s := range topSegs {
			fetched += pr.cdn.count(filepath.Base(s))
		}
	}
	free()
	pr.playhead(t, bctx, "hlsjs", 2)
	s := waitSession(t, pr.store, "", time.Minute)
	maxHeight, err := chromedp.Run(bctx, chromedp.Evaluate[int](`window.maxHeight`))
	if err != nil {
		t.Fatal(err)
	}
	if errs := playerErrors(t, bctx); len(errs) > 0 {
		t.Errorf("hls.js reported errors:\n  %s", strings.Join(errs, "\n  "))
	}
	closeBrowser()
	t.Logf("CDN: %s", pr.cdn.fetchedLevels())
	checkOneDone(t, pr.store, s)
	ss, err := testmedia.StreamPackets(context.Background(), s.Output)
	if err != nil {
		t.Fatal(err)
	}
	v, a := ss.OfType("video"), ss.OfType("audio")
	if len(v) != 1 || len(a) != 1 || len(ss) != 2 {
		t.Fatalf("%s: streams %+v, want one video and one audio", s.Output, ss)
	}
	want, err := testmedia.StreamPackets(context.Background(), filepath.Join(dir, testmedia.Ladder[top].Playlist))
	if err != nil {
		t.Fatal(err)
	}
	if v[0].Height != maxHeight || v[0].Height != testmedia.Ladder[top].Height || v[0].Packets != want.OfType("video")[0].Packets {
		t.Errorf("recorded video %dx%d, %d packets; want the best level hls.js played, %dp, with the %d packets the CDN serves",
			v[0].Width, v[0].Height, v[0].Packets, maxHeight, want.OfType("video")[0].Packets)
	}
	if wa := want.OfType("audio")[0].Packets; a[0].Packets != wa {
		t.Errorf("recorded audio %d packets, want %d", a[0].Packets, wa)
	}
	t.Logf("recorded %dx%d; done %.1fs after the start", v[0].Width, v[0].Height, time.Since(start).Seconds())
}
