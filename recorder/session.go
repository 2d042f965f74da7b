// Package recorder turns what was observed or typed into a complete recording: it
// keeps sessions on disk, learns streams from traffic, backfills every missing
// segment concurrently, finds where a video ends and hands the ordered segments to
// the merge package.
package recorder

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

// Session states.
const (
	StateNew         = "new"         // created, nothing fetched yet
	StateLearning    = "learning"    // watching traffic, template not certain yet
	StateProbing     = "probing"     // looking for where the video ends
	StateDownloading = "downloading" // backfilling missing segments
	StatePaused      = "paused"      // origin refused access (expired token or cookie); resumable
	StateMerging     = "merging"     // ffmpeg is building the output
	StateDone        = "done"        // output written and verified
	StateIncomplete  = "incomplete"  // segments still missing after every retry; resumable
	StateInterrupted = "interrupted" // stopped by the user or a crash; resumable
	StateFailed      = "failed"      // a permanent error (see Error); resumable after fixing it
)

// A Session is one recording: one stream of numbered segments and where its
// output goes. It is saved as session.json in its own directory; the segment
// files next to it are the record of what is done.
type Session struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Source  string    `json:"source"`         // "get", "watch", "har"
	Page    string    `json:"page,omitempty"` // the page the stream was seen on (Referer)
	Input   string    `json:"input,omitempty"`

	// Either Template or Segments (from a media playlist) says where segment i is.
	Template    *urltemplate.Template `json:"template,omitempty"`
	PlaylistURL string                `json:"playlist_url,omitempty"`
	Segments    []string              `json:"segments,omitempty"`  // playlist streams: URL of index i
	Durations   []float64             `json:"durations,omitempty"` // playlist streams: seconds of index i
	InitURL     string                `json:"init_url,omitempty"`  // fMP4 init segment (EXT-X-MAP)
	Key         *Key                  `json:"key,omitempty"`       // AES-128 key for every segment, if encrypted
	Ext         string                `json:"ext"`                 // segment file extension: ".ts", ".m4s", ".aac"
	// Encrypted playlist streams: the media sequence number of index 0 (the IV
	// of a segment without an explicit one is its sequence number), and the
	// explicit IV of each index when they differ between segments.
	MediaSequence int64    `json:"media_sequence,omitempty"`
	IVs           []string `json:"ivs,omitempty"`

	Headers map[string]string `json:"headers,omitempty"` // sent with every request: Referer, Cookie, ...

	First    int64 `json:"first"`     // first index
	Last     int64 `json:"last"`      // last index; valid when EndKnown
	EndKnown bool  `json:"end_known"` // Last is certain (playlist, count or probing)

	State      string  `json:"state"`
	Error      string  `json:"error,omitempty"`
	Missing    []int64 `json:"missing,omitempty"`     // indices still missing at the last save
	Output     string  `json:"output,omitempty"`      // the merged file, once written
	Target     string  `json:"target,omitempty"`      // where the output goes
	ProbeStart bool    `json:"probe_start,omitempty"` // look below First for the first segment
	Gaps       []int64 `json:"gaps,omitempty"`        // indices left out of Output (only with allow-gaps)

	dir string     // the session directory
	mu  sync.Mutex // serialises Save
}

// A Key is an AES-128 key reference from a media playlist.
type Key struct {
	Method string `json:"method"`
	URI    string `json:"uri"`
	IV     string `json:"iv,omitempty"`
}

// Dir is the session's directory.
func (s *Session) Dir() string { return s.dir }

// SegmentDir holds the completed segment files, one per index.
func (s *Session) SegmentDir() string { return filepath.Join(s.dir, "segments") }

// SegmentPath is where segment index i is kept once complete.
func (s *Session) SegmentPath(i int64) string {
	return filepath.Join(s.SegmentDir(), fmt.Sprintf("%06d%s", i, s.ext()))
}

func (s *Session) ext() string {
	if s.Ext == "" {
		return ".ts"
	}
	return s.Ext
}

// Step is the distance between consecutive indices.
func (s *Session) Step() int64 {
	if s.Template != nil && s.Template.Step > 1 {
		return s.Template.Step
	}
	return 1
}

// URL is the address of segment index i.
func (s *Session) URL(i int64) string {
	if s.Template != nil {
		return s.Template.URL(i)
	}
	if i >= 0 && i < int64(len(s.Segments)) {
		return s.Segments[i]
	}
	return ""
}

// Indices lists every index of the session's known range in order.
func (s *Session) Indices() []int64 {
	if !s.EndKnown || s.Last < s.First {
		return nil
	}
	out := make([]int64, 0, (s.Last-s.First)/s.Step()+1)
	for i := s.First; i <= s.Last; i += s.Step() {
		out = append(out, i)
	}
	return out
}

// Total is the number of segments in the known range (0 while the end is unknown).
func (s *Session) Total() int {
	if !s.EndKnown || s.Last < s.First {
		return 0
	}
	return int((s.Last-s.First)/s.Step() + 1)
}

// Have reports whether segment i is complete on disk.
func (s *Session) Have(i int64) bool {
	fi, err := os.Stat(s.SegmentPath(i))
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
}

// Done counts the complete segments on disk within the known range.
func (s *Session) Done() int {
	if s.State == StateDone {
		return s.Total()
	}
	entries, err := os.ReadDir(s.SegmentDir())
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), s.ext()) {
			n++
		}
	}
	return n
}

// MissingNow lists the indices in the known range that are not complete on disk.
func (s *Session) MissingNow() []int64 {
	var out []int64
	for _, i := range s.Indices() {
		if !s.Have(i) {
			out = append(out, i)
		}
	}
	return out
}

// Save writes session.json atomically with mode 0600 (it holds cookies).
func (s *Session) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Updated = time.Now().UTC()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("session %s: %w", s.ID, err)
	}
	return writeFileAtomic(filepath.Join(s.dir, "session.json"), append(data, '\n'), 0o600)
}

// A Store keeps sessions under <data dir>/sessions.
type Store struct {
	Root string // <data dir>/sessions
}

// NewStore returns the store under dataDir, creating it with mode 0700.
func NewStore(dataDir string) (*Store, error) {
	root := filepath.Join(dataDir, "sessions")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// MkdirAll keeps an existing directory's mode; tighten ours.
	if err := os.Chmod(root, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	return &Store{Root: root}, nil
}

// Create makes a new, empty session directory (0700) and saves s into it.
func (st *Store) Create(s *Session) error {
	if s.ID == "" {
		s.ID = NewID(time.Now())
	}
	s.dir = filepath.Join(st.Root, s.ID)
	if err := os.Mkdir(s.dir, 0o700); err != nil {
		return fmt.Errorf("session %s: %w", s.ID, err)
	}
	if s.Created.IsZero() {
		s.Created = time.Now().UTC()
	}
	if s.State == "" {
		s.State = StateNew
	}
	return s.Save()
}

// NewID returns a sortable, unique session id such as 20261125-184100-3fa9c2.
func NewID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// ErrNoSession is returned by Load when no session has that id or path.
var ErrNoSession = errors.New("no such session")

// Load reads a session by id or by the path of its directory or session.json.
func (st *Store) Load(idOrPath string) (*Session, error) {
	dir := idOrPath
	if filepath.Base(dir) == "session.json" {
		dir = filepath.Dir(dir)
	}
	if !strings.ContainsRune(idOrPath, os.PathSeparator) && st != nil {
		if _, err := os.Stat(filepath.Join(st.Root, idOrPath)); err == nil {
			dir = filepath.Join(st.Root, idOrPath)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "session.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%q: %w", idOrPath, ErrNoSession)
	}
	if err != nil {
		return nil, fmt.Errorf("session %q: %w", idOrPath, err)
	}
	s, err := DecodeSession(data)
	if err != nil {
		return nil, fmt.Errorf("session %q: %w", idOrPath, err)
	}
	s.dir = dir
	return s, nil
}

// ErrBadSession wraps every reason a session file is refused.
var ErrBadSession = errors.New("bad session file")

// DecodeSession parses and checks a session.json. It does no I/O.
func DecodeSession(data []byte) (*Session, error) {
	var s Session
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSession, err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSession, err)
	}
	return &s, nil
}

const maxSegments = 1 << 20

func (s *Session) check() error {
	switch {
	case s.ID == "" || strings.ContainsAny(s.ID, `/\`) || s.ID == "." || s.ID == "..":
		return fmt.Errorf("bad id %q", s.ID)
	case s.Template == nil && len(s.Segments) == 0 && s.PlaylistURL == "":
		return errors.New("no template, segment list or playlist")
	case s.Template != nil && len(s.Template.Parts) == 0:
		return errors.New("empty template")
	case s.First < 0 || (s.EndKnown && s.Last < s.First):
		return fmt.Errorf("bad range %d..%d", s.First, s.Last)
	case s.EndKnown && (s.Last-s.First)/s.Step() >= maxSegments:
		return fmt.Errorf("range %d..%d is over %d segments", s.First, s.Last, maxSegments)
	case s.Template == nil && len(s.Segments) > 0 && s.EndKnown && s.Last >= int64(len(s.Segments)):
		return fmt.Errorf("range ends at %d but only %d segments are listed", s.Last, len(s.Segments))
	case strings.ContainsAny(s.Ext, `/\`) || len(s.Ext) > 8:
		return fmt.Errorf("bad extension %q", s.Ext)
	case s.EndKnown && s.Last > math.MaxInt64-s.Step():
		return fmt.Errorf("range ends at %d, too close to the largest index", s.Last)
	}
	if s.Key != nil {
		if err := s.Key.check(); err != nil {
			return err
		}
	}
	switch {
	case s.MediaSequence < 0 || s.MediaSequence > math.MaxInt64-maxSegments:
		return fmt.Errorf("bad media sequence %d", s.MediaSequence)
	case len(s.IVs) > 0 && (s.Key == nil || len(s.IVs) != len(s.Segments)):
		return fmt.Errorf("%d IVs for %d segments", len(s.IVs), len(s.Segments))
	}
	for _, iv := range s.IVs {
		if iv != "" {
			if _, err := parseIV(iv); err != nil {
				return err
			}
		}
	}
	if s.Template != nil {
		for _, p := range s.Template.Parts {
			if p.Field != nil && (p.Field.Width < 0 || p.Field.Width > maxFieldWidth) {
				return fmt.Errorf("template field width %d outside 0..%d", p.Field.Width, maxFieldWidth)
			}
		}
	}
	return nil
}

// maxFieldWidth bounds a template field's zero padding (an int64 has 19 digits).
const maxFieldWidth = 32

// Summary is what `sessions --json` prints for one session.
type Summary struct {
	ID            string    `json:"id"`
	State         string    `json:"state"`
	Source        string    `json:"source"`
	Created       time.Time `json:"created"`
	Input         string    `json:"input,omitempty"`
	SegmentsTotal int       `json:"segments_total"`
	SegmentsDone  int       `json:"segments_done"`
	Missing       []int64   `json:"missing"`
	Gaps          []int64   `json:"gaps"` // left out of the output (allow-gaps): not in segments_done
	Output        string    `json:"output,omitempty"`
	Error         string    `json:"error,omitempty"`
	Dir           string    `json:"dir"`
}

// Summary describes the session as it stands on disk.
func (s *Session) Summary() Summary {
	missing := s.Missing
	if s.State != StateDone {
		missing = s.MissingNow()
	}
	if missing == nil {
		missing = []int64{}
	}
	gaps, done := []int64{}, s.Done()
	if s.State == StateDone && len(s.Gaps) > 0 {
		gaps = append(gaps, s.Gaps...)
		done = max(0, done-len(gaps)) // a merge with gaps is not complete
	}
	return Summary{
		ID: s.ID, State: s.State, Source: s.Source, Created: s.Created, Input: redactURL(s.Input),
		SegmentsTotal: s.Total(), SegmentsDone: done, Missing: missing, Gaps: gaps,
		Output: s.Output, Error: s.Error, Dir: s.dir,
	}
}

// List loads every session, oldest first. Unreadable ones are skipped and reported in the error.
func (st *Store) List() ([]*Session, error) {
	entries, err := os.ReadDir(st.Root)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	var out []*Session
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		s, err := st.Load(filepath.Join(st.Root, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, errors.Join(errs...)
}

// writeFileAtomic writes data to name via a temporary file, fsync and rename.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.partial")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
