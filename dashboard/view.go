package dashboard

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/redact"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// Stream is one row of the dashboard, as /api/streams and /events send it.
type Stream struct {
	ID       string    `json:"id"`
	State    string    `json:"state"`
	Phase    string    `json:"phase,omitempty"`  // what the run does now
	Reason   string    `json:"reason,omitempty"` // what it waits for
	Error    string    `json:"error,omitempty"`
	Causes   []string  `json:"causes"` // the error, one line per distinct cause
	Source   string    `json:"source"`
	Created  time.Time `json:"created"`
	Page     string    `json:"page,omitempty"`  // the Referer, credentials redacted
	Title    string    `json:"title,omitempty"` // the page's <title>
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

	Live     bool    `json:"live,omitempty"`     // a broadcast followed as it grows
	Recorded float64 `json:"recorded,omitempty"` // live: seconds recorded so far

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
			Done: int64(s.SegmentsDone), Total: int64(s.SegmentsTotal), ETA: -1, Causes: causes(s.Error),
			Live: s.Live, Recorded: s.RecordedSeconds,
		}
		if v.Causes == nil {
			v.Causes = []string{}
		}
		for k, val := range st.Headers {
			// Redacted here too: whatever the backend hands over, no secret reaches a page.
			v.Headers = append(v.Headers, Header{k, recorder.RedactHeader(k, val)})
		}
		v.Template, v.Error, v.Reason = redact.Text(v.Template), redact.Text(v.Error), redact.Text(v.Reason)
		for i, c := range v.Causes {
			v.Causes[i] = redact.Text(c)
		}
		sort.Slice(v.Headers, func(i, j int) bool { return v.Headers[i].Name < v.Headers[j].Name })
		if ref := st.Headers["Referer"]; ref != "" {
			v.Page = recorder.Redact(ref)
		}
		v.Title = redact.Text(s.Title)
		v.Host = hostOf(v.Page)
		if v.Host == "" {
			v.Host = hostOf(s.Input)
		}
		var left int64 = -1 // bytes still to come, when known
		if p := st.Progress; p != nil {
			v.Phase = p.State()
			if p.Live.Load() { // the snapshot is as old as the last save; the counter is now
				v.Live, v.Recorded = true, float64(p.Recorded.Load())/1000
			}
			if t := p.Total.Load(); t > 0 {
				v.Total, v.Done = t, p.Done.Load()
			}
			v.Failed, v.Bytes = p.Failed.Load(), p.Bytes.Load()+p.InFlight.Load()
			v.Retries = p.RetrySummary()
			have, want := p.Estimate()
			v.MB = float64(have) / 1e6 // with the browser's copies
			if want > 0 {
				left = want - have
			}
		}
		if v.Total > 0 && !running(s.State) && s.State != recorder.StateMerging {
			// One snapshot for all counts, so they add up: done + missing + gaps = total, failed within missing.
			v.Missing = int(max(0, v.Total-v.Done-int64(v.Gaps)))
			v.Failed = min(v.Failed, int64(v.Missing))
		}
		if running(s.State) || s.State == recorder.StateMerging {
			// The capture keeps the last reason until a run ends ("paused by you" after a resume): while it
			// works, it waits for nothing.
			v.Reason = ""
		}
		if v.MB == 0 {
			v.MB = float64(v.Bytes) / 1e6
		}
		v.Speed = h.rates.rate(s.ID, now, v.Bytes)
		if running(s.State) && left >= 0 && v.Speed > 0 {
			v.ETA = float64(left) / v.Speed
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

var (
	segmentLine = regexp.MustCompile(`^\s*(.*?)segment (\d+): (.*)$`)
	urlPrefix   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^\s]*?: `)
	moreLine    = regexp.MustCompile(`^\s*… and (\d+) more$`)
)

// causes turns a run's error into one line per distinct cause: an
// IncompleteError lists every failed segment with its URL, and the same 404
// twenty-seven times is one cause of twenty-seven segments.
func causes(text string) []string {
	if text == "" {
		return nil
	}
	type cause struct {
		why string
		idx []string
	}
	var order []*cause
	by := map[string]*cause{}
	var other []string
	more := 0
	for i, line := range strings.Split(text, "\n") {
		if m := moreLine.FindStringSubmatch(line); m != nil {
			more, _ = strconv.Atoi(m[1])
			continue
		}
		m := segmentLine.FindStringSubmatch(line)
		if m == nil || (i > 0 && strings.TrimSpace(m[1]) != "") {
			if strings.TrimSpace(line) != "" && !slices.Contains(other, line) {
				other = append(other, strings.TrimSpace(line))
			}
			continue
		}
		why := urlPrefix.ReplaceAllString(m[3], "")
		c := by[why]
		if c == nil {
			c = &cause{why: why}
			by[why] = c
			order = append(order, c)
		}
		c.idx = append(c.idx, m[2])
	}
	var out []string
	if len(order) > 0 {
		first, _, _ := strings.Cut(text, "\n")
		if m := segmentLine.FindStringSubmatch(first); m != nil {
			if head := strings.TrimSuffix(strings.TrimSpace(m[1]), ":"); head != "" {
				out = append(out, head)
			}
		}
	}
	for _, c := range order {
		list := c.idx
		if len(list) > 6 {
			list = append(append([]string{}, list[:3]...), "…", list[len(list)-1])
		}
		noun := "segments"
		if len(c.idx) == 1 {
			noun = "segment"
		}
		out = append(out, fmt.Sprintf("%d %s (%s): %s", len(c.idx), noun, strings.Join(list, ", "), c.why))
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("and %d more", more))
	}
	return append(out, other...)
}
