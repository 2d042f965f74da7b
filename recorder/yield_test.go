package recorder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// A run that yields (Options.Yield) while a segment is on its way lets that
// transfer land whole, starts no other request, makes no output and says
// ErrYielded; the next run goes on from what is on disk, and the origin
// served the held segment once.
func TestRunYieldLetsTransfersLand(t *testing.T) {
	m := testmedia.ForTest(t, testmedia.Small)
	held := filepath.Base(m.Segments[2])
	var (
		mu      sync.Mutex
		hits    = map[string]int{}
		midway  = make(chan struct{})
		release = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(r.URL.Path)
		data, err := os.ReadFile(filepath.Join(m.Dir, name))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		hits[name]++
		mu.Unlock()
		w.Header().Set("Content-Type", "video/mp2t")
		if name != held {
			w.Write(data)
			return
		}
		// Half, then the rest once the test says so.
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		close(midway)
		<-release
		w.Write(data[len(data)/2:])
	}))
	t.Cleanup(srv.Close)
	requests := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, k := range hits {
			n += k
		}
		return n
	}

	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := urltemplate.Placeholder(srv.URL+"/"+"seg_(*).ts", 5)
	if err != nil {
		t.Fatal(err)
	}
	s := known(withTemplate(&Session{Source: "get", Target: filepath.Join(t.TempDir(), "out.mp4")}, tmpl, 0, false),
		int64(len(m.Segments)-1))
	if err := st.Create(s); err != nil {
		t.Fatal(err)
	}
	yield := make(chan struct{})
	o := Options{Concurrency: 1, Yield: yield} // one at a time: segments 3.. wait behind the held one
	atYield := make(chan int, 1)
	go func() {
		<-midway
		close(yield)
		atYield <- requests()
		time.Sleep(300 * time.Millisecond) // time for a request the yield failed to stop
		close(release)
	}()
	_, err = Run(context.Background(), s, o, MergeOptions{KeepSegments: true})
	if !errors.Is(err, ErrYielded) {
		t.Fatalf("Run: %v, want ErrYielded", err)
	}
	if s.State != StateInterrupted || s.Output != "" {
		t.Fatalf("state %s, output %q: want interrupted, no output", s.State, s.Output)
	}
	want, _ := os.ReadFile(m.Segments[2])
	got, err := os.ReadFile(s.Main().SegmentPath(2))
	if err != nil || len(got) != len(want) {
		t.Fatalf("the held segment: %d bytes (%v), want all %d: the transfer under way must land", len(got), err, len(want))
	}
	if n, before := requests(), <-atYield; n != before {
		t.Fatalf("%d requests after the yield, want none", n-before)
	}
	for _, i := range []int64{3, 4} {
		if s.Main().Have(i) {
			t.Fatalf("segment %d was fetched after the yield", i)
		}
	}

	res, err := Run(context.Background(), s, Options{Concurrency: 4}, MergeOptions{})
	if err != nil {
		t.Fatalf("the run after the yield: %v", err)
	}
	v, a, err := testmedia.CountPackets(context.Background(), res.Output)
	if err != nil || v != m.VideoPackets || a != m.AudioPackets {
		t.Fatalf("output packets video %d audio %d (%v), want %d %d", v, a, err, m.VideoPackets, m.AudioPackets)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := hits[held]; n != 1 {
		t.Errorf("%s served %d times, want once: the yield must not waste the transfer under way", held, n)
	}
}

// heldOrigin serves the files under dir at /hls/, holding one of them (held, a
// path under dir) after half its body until release closes; midway closes when
// it is held.
type heldOrigin struct {
	URL     string
	midway  chan struct{}
	release chan struct{}
	mu      sync.Mutex
	hits    map[string]int
}

func startHeldOrigin(t *testing.T, dir, held string) *heldOrigin {
	ho := &heldOrigin{midway: make(chan struct{}), release: make(chan struct{}), hits: map[string]int{}}
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/hls/")
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if !ok || err != nil {
			http.NotFound(w, r)
			return
		}
		ho.mu.Lock()
		ho.hits[name]++
		ho.mu.Unlock()
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		if name != held {
			w.Write(data)
			return
		}
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		once.Do(func() { close(ho.midway) })
		select {
		case <-ho.release:
		case <-r.Context().Done():
			return
		}
		w.Write(data[len(data)/2:])
	}))
	t.Cleanup(srv.Close)
	ho.URL = srv.URL + "/hls/"
	return ho
}

func (ho *heldOrigin) served(name string) int {
	ho.mu.Lock()
	defer ho.mu.Unlock()
	return ho.hits[name]
}

// The player switching subtitles on while it reads a segment the backfill is
// fetching: the run goes on with the new track, and the browser's read of that
// segment is not cut off (before Options.Yield, the restart cancelled the
// transfer and the browser's answer ended in an error).
func TestCaptureAddsSubtitlesWithoutCuttingTheBrowser(t *testing.T) {
	root := subtitleMedia(t)
	dir := filepath.Join(root, "plain")
	const held = "plain/seg_0_002.ts"
	o := startHeldOrigin(t, root, held)
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ro := fastOpts()
	ro.Concurrency = 1 // in order: 0, 1, then 2 is held
	c := NewCapture(ctx, st, CaptureOptions{OutDir: t.TempDir(), Run: ro})
	t.Cleanup(func() { cancel(); c.Wait() })
	h := map[string]string{"Referer": testReferer}
	for _, name := range []string{"master.m3u8", "out_0_vtt.m3u8", "out_0.m3u8"} {
		browse(t, c, o.URL+"plain/"+name, []byte(readText(t, filepath.Join(dir, name))), h)
	}
	select {
	case <-o.midway:
	case <-time.After(30 * time.Second):
		t.Fatal("the backfill never reached the held segment")
	}
	resp := c.Respond(httptest.NewRequest(http.MethodGet, o.URL+held, nil))
	if resp == nil {
		t.Fatal("the held segment: forwarded, want it answered from the backfill's copy on its way")
	}
	read := make(chan error, 1)
	var got []byte
	go func() {
		var err error
		got, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		read <- err
	}()
	browse(t, c, o.URL+"plain/fr_vtt.m3u8", []byte(readText(t, filepath.Join(dir, "fr_vtt.m3u8"))), h)
	time.Sleep(200 * time.Millisecond) // the run stops for the new track while the segment is held
	close(o.release)
	want, _ := os.ReadFile(filepath.Join(root, held))
	if err := <-read; err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the browser's read of the held segment: %d of %d bytes, %v: want it whole", len(got), len(want), err)
	}
	s := waitState(t, st, onlySession(t, st).ID, StateDone)
	ss, err := testmedia.StreamPackets(context.Background(), s.Output)
	if err != nil {
		t.Fatal(err)
	}
	if subs := ss.OfType("subtitle"); len(subs) != 2 {
		t.Fatalf("output streams %+v, want two subtitle streams (en, fr)", ss)
	}
	if n := o.served(held); n != 1 {
		t.Errorf("the origin served %s %d times, want once", held, n)
	}
}
