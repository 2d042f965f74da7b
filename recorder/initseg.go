package recorder

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// Init sections are known by negative indices wherever segments are known by
// index (the capture's claims and answers from disk): init n (1-based, as
// segments name them) is index -n. Segment indices are never negative.
func initIndex(n int) int64 { return -int64(n) }

// file is where segment i (or init section -i) of t is kept once complete.
func (t *Track) file(i int64) string {
	if i < 0 {
		return t.InitPath(int(-i))
	}
	return t.SegmentPath(i)
}

// fileComplete reports whether the segment (or init section) file at p is
// complete on disk, as Track.Have does. It looks at the disk: never under c.mu.
func fileComplete(p string) bool {
	fi, err := statFile(p)
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
}

// statFile looks a segment file up for the capture; tests make it slow.
var statFile = os.Stat

// fetchInit fetches init section n of t, in, unless it is there, after the
// claim (o.Claim) that lets a copy the browser is fetching land instead. It
// waits that long at most for the browser's copy (0: until it lands), then
// fetches its own.
func fetchInit(ctx context.Context, t *Track, n int, in plan.Init, f *fetcher, o *Options, wait time.Duration) error {
	var show *growing
	if o.Claim != nil {
		cctx := ctx
		if wait > 0 {
			var cancel context.CancelFunc
			cctx, cancel = context.WithTimeout(ctx, wait)
			defer cancel()
		}
		h := o.Claim(cctx, t.ID, initIndex(n), true)
		if h.Release != nil {
			defer h.Release()
		}
		show = h.show
	}
	path := t.InitPath(n)
	if fileExists(path) {
		return nil
	}
	_, err := f.fetchShown(ctx, in.URL, in.Range, path, false, nil, show)
	return err
}

// onInit tees the browser's copy of a listed track's init section, or
// remembers an init segment seen next to segments whose numbering is learned.
func (c *Capture) onInit(ex *proxy.Exchange) proxy.BodyTap {
	if ex.Status != http.StatusOK {
		return nil
	}
	c.mu.Lock()
	p := c.onInitLocked(ex)
	c.unlock()
	return p.open()
}

func (c *Capture) onInitLocked(ex *proxy.Exchange) pendingTap {
	c.dashSeenLocked(ex.Req.URL.String())
	u := ex.Req.URL.String()
	ref, ok := c.bySegURL.find(u)
	if !ok && c.aside.ownerOf(u) != nil {
		return c.asideLocked(u, ex) // a live recording's, not listed yet (capture_live.go)
	}
	if !ok || ref.i >= 0 {
		c.rememberInitLocked(ex)
		return nil
	}
	c.refreshLocked(ref.l, keptHeaders(ex.Req.Header), "")
	return c.teeLocked(ref, ex)
}
