package recorder

import (
	"context"
	"net/http"
	"os"
	"path/filepath"

	"github.com/streamsnatcher/streamsnatcher/proxy"
)

// initIndex stands for a stream's init segment (fMP4's EXT-X-MAP) wherever
// segments are known by index: the capture's claims and answers from disk.
// Segment indices are never negative.
const initIndex int64 = -1

// initFile is where the init segment of s is kept.
func initFile(s *Session) string {
	return filepath.Join(s.dir, "init"+filepath.Ext(urlPath(s.InitURL)))
}

// segFile is where segment i of s (or its init segment) is kept once complete.
func segFile(s *Session, i int64) string {
	if i == initIndex {
		return initFile(s)
	}
	return s.SegmentPath(i)
}

// haveFile reports whether segment i of s (or its init segment) is complete on disk.
func haveFile(s *Session, i int64) bool {
	if i != initIndex {
		return s.Have(i)
	}
	fi, err := os.Stat(initFile(s))
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
}

// fetchInit fetches the init segment of s into path unless it is there, after
// the claim (o.Claim) that lets a copy the browser is fetching land instead.
func fetchInit(ctx context.Context, s *Session, f *fetcher, o *Options, path string) error {
	if o.Claim != nil {
		_, release := o.Claim(ctx, initIndex)
		if release != nil {
			defer release()
		}
	}
	if fileExists(path) {
		return nil
	}
	_, err := f.fetch(ctx, s.InitURL, path, true)
	return err
}

// onInit tees the browser's copy of a playlist stream's init segment.
func (c *Capture) onInit(ex *proxy.Exchange) proxy.BodyTap {
	if ex.Status != http.StatusOK {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ref, ok := c.bySegURL.find(ex.Req.URL.String())
	if !ok || ref.i != initIndex {
		return nil
	}
	c.refreshLocked(ref.l, keptHeaders(ex.Req.Header), "")
	return c.teeLocked(ref.l, initIndex, ex)
}
