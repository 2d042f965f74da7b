package dashboard

import (
	"net/url"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// Stream is one row of the dashboard, as /api/streams and /events send it.
type Stream struct {
	ID       string    `json:"id"`
	State    string    `json:"state"`
	Phase    string    `json:"phase,omitempty"`  // what the run does now
	Reason   string    `json:"reason,omitempty"` // what it waits for
	Error    string    `json:"error,omitempty"`
	Source   string    `json:"source"`
	Created  time.Time `json:"created"`
	Page     string    `json:"page,omitempty"` // the Referer, credentials redacted
	Host     string    `json:"host"`
	Template string    `json:"template"`
	Headers  []Header  `json:"headers"`

	Done    int64   `json:"done"`
	Total   int64   `json:"total"` // 0 while unknown
	Missing int     `json:"missing"`
	Gaps    int     `json:"gaps"` // left out of the output (allow-gaps)
	Failed  int64   `json:"failed"`
	Bytes   int64   `json:"bytes"`
	MB      float64 `json:"mb"`
	Speed   float64 `json:"speed"` // bytes per second over the last seconds
	ETA     float64 `json:"eta"`   // seconds; -1 when unknown
	Retries string  `json:"retries,omitempty"`

	Output string `json:"output,omitempty"` // the finished file's name
	File   string `json:"file,omitempty"`   // where to download it
}

// Header is a captured request header; secret values are already redacted.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (h *handler) snapshot() []Stream {
	now := time.Now()
	sts := h.b.Streams()
	out := make([]Stream, 0, len(sts))
	ids := make(map[string]bool, len(sts))
	for _, st := range sts {
		s := st.Session
		ids[s.ID] = true
		v := Stream{
			ID: s.ID, State: s.State, Reason: st.Reason, Error: s.Error, Source: s.Source, Created: s.Created,
			Template: st.Template, Headers: []Header{}, Missing: len(s.Missing), Gaps: len(s.Gaps),
			Done: int64(s.SegmentsDone), Total: int64(s.SegmentsTotal), ETA: -1,
		}
		for k, val := range st.Headers {
			v.Headers = append(v.Headers, Header{k, val})
		}
		sort.Slice(v.Headers, func(i, j int) bool { return v.Headers[i].Name < v.Headers[j].Name })
		if ref := st.Headers["Referer"]; ref != "" {
			v.Page = recorder.Redact(ref)
		}
		v.Host = hostOf(v.Page)
		if v.Host == "" {
			v.Host = hostOf(s.Input)
		}
		var fetched int64
		if p := st.Progress; p != nil {
			v.Phase = p.State()
			if t := p.Total.Load(); t > 0 {
				v.Total, v.Done = t, p.Done.Load()
			}
			v.Failed, v.Bytes, fetched = p.Failed.Load(), p.Bytes.Load(), p.Fetched.Load()
			v.Retries = p.RetrySummary()
		}
		if running(s.State) || s.State == recorder.StateMerging {
			// The capture keeps the last reason until a run ends ("paused by you" after a resume): while it
			// works, it waits for nothing.
			v.Reason = ""
		}
		v.MB = float64(v.Bytes) / 1e6
		v.Speed = h.rates.rate(s.ID, now, v.Bytes)
		if running(s.State) && v.Total > 0 && fetched > 0 && v.Speed > 0 {
			v.ETA = float64(v.Total-v.Done) * float64(v.Bytes) / float64(fetched) / v.Speed
		}
		if s.State == recorder.StateDone && s.Output != "" {
			v.Output = filepath.Base(s.Output)
			v.File = "/files/" + url.PathEscape(s.ID)
		}
		out = append(out, v)
	}
	h.rates.forget(ids)
	return out
}

func running(state string) bool {
	return state == recorder.StateDownloading || state == recorder.StateProbing || state == recorder.StateNew
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// rateTracker turns byte counters into a speed over the last few seconds.
type rateTracker struct {
	mu   sync.Mutex
	last map[string][]sample
}

type sample struct {
	t time.Time
	n int64
}

const rateWindow = 5 * time.Second

func (r *rateTracker) rate(id string, now time.Time, n int64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ss := r.last[id]
	if len(ss) > 0 && n < ss[len(ss)-1].n {
		ss = nil // a new run started counting again
	}
	if len(ss) == 0 || now.Sub(ss[len(ss)-1].t) >= 200*time.Millisecond {
		ss = append(ss, sample{now, n})
	}
	for len(ss) > 2 && now.Sub(ss[1].t) > rateWindow {
		ss = ss[1:]
	}
	r.last[id] = ss
	first := ss[0]
	if d := now.Sub(first.t).Seconds(); d >= 0.4 {
		return float64(n-first.n) / d
	}
	return 0
}

func (r *rateTracker) forget(keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.last {
		if !keep[id] {
			delete(r.last, id)
		}
	}
}
