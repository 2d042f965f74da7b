package recorder

import (
	"context"
	"net/http"
	"os"

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

// fetchInit fetches init section n of t unless it is there, after the claim
// (o.Claim) that lets a copy the browser is fetching land instead.
func fetchInit(ctx context.Context, t *Track, n int, f *fetcher, o *Options) error {
	var show *growing
	if o.Claim != nil {
		h := o.Claim(ctx, t.ID, initIndex(n), true)
		if h.Release != nil {
			defer h.Release()
		}
		show = h.show
	}
	path := t.InitPath(n)
	if fileExists(path) {
		return nil
	}
	in := t.Inits[n-1]
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
	ref, ok := c.bySegURL.find(ex.Req.URL.String())
	if !ok || ref.i >= 0 {
		c.rememberInitLocked(ex)
		return nil
	}
	c.refreshLocked(ref.l, keptHeaders(ex.Req.Header), "")
	return c.teeLocked(ref, ex)
}
