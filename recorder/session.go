// Package recorder turns what was observed or typed into a complete recording: it
// keeps sessions on disk, learns streams from traffic, backfills every missing
// segment concurrently, finds where a video ends and hands the ordered segments to
// the merge package.
package recorder

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/redact"
	"github.com/streamsnatcher/streamsnatcher/plan"
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
	StateRecording   = "recording"   // following a live playlist, merging as it goes
)

// SessionVersion is the version of session.json this code writes. Version 1
// (no version field: one stream, HLS-VOD shaped) is still read, as one track.
const SessionVersion = 2

// A Session is one recording: a presentation of tracks (video, separate audio
// renditions, subtitles) that ends up in one output file. It is saved as
// session.json in its own directory; the segment files in each track's
// directory are the record of what is done.
type Session struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Source  string    `json:"source"`         // "get", "watch", "har"
	Page    string    `json:"page,omitempty"` // the page the stream was seen on (Referer)
	Title   string    `json:"title,omitempty"`
	Input   string    `json:"input,omitempty"`

	// Playlist is a master or media playlist (or DASH manifest) still to be
	// read into Tracks; Variant and Audio select from a master.
	Playlist string `json:"playlist,omitempty"`
	Variant  string `json:"variant,omitempty"`
	Audio    string `json:"audio,omitempty"` // "" default rendition, "all", or a language
	// Subtitles chooses the WebVTT renditions: "" or "all" every language, "none", or a language.
	Subtitles string `json:"subtitles,omitempty"`

	Tracks []*Track `json:"tracks,omitempty"`

	Headers map[string]string `json:"headers,omitempty"` // sent with every request: Referer, Cookie, ...

	State  string `json:"state"`
	Error  string `json:"error,omitempty"`
	Output string `json:"output,omitempty"` // the merged file, once written
	Target string `json:"target,omitempty"` // where the output goes

	dir  string     // the session directory
	mu   sync.Mutex // serialises Save
	snap atomic.Pointer[Snapshot]
}

// A Snapshot is what a session's last Save published, for readers that must
// not touch the disk or the session itself while a run owns it.
type Snapshot struct {
	Summary  Summary
	Template string            // the template or playlist, redacted
	Headers  map[string]string // values of secrets redacted
}

// MarshalJSON writes the session as the current version, whatever it was read as.
func (s *Session) MarshalJSON() ([]byte, error) {
	type plain Session
	return json.Marshal(struct {
		Version int `json:"version"` // shallower than plain's: it wins
		*plain
	}{SessionVersion, (*plain)(s)})
}

// Published returns the snapshot of the last Save (nil before the first).
func (s *Session) Published() *Snapshot { return s.snap.Load() }

// publish makes a snapshot from the session as it stands in memory.
func (s *Session) publish() {
	sum := Summary{ID: s.ID, State: s.State, Source: s.Source, Created: s.Created, Input: redactURL(s.Input),
		Page: redactURL(s.Page), Output: s.Output, Error: s.Error, Dir: s.dir, Missing: []int64{}, Gaps: []int64{}}
	for i, t := range s.Tracks {
		ts := TrackSummary{ID: t.ID, Kind: t.Kind, Language: t.Language, Total: t.Total(),
			Missing: slices.Clone(t.Missing), Gaps: slices.Clone(t.Gaps)}
		if ts.Missing == nil {
			ts.Missing = []int64{}
		}
		if ts.Gaps == nil {
			ts.Gaps = []int64{}
		}
		if s.State == StateDone {
			ts.Done = ts.Total - len(ts.Gaps)
		}
		if i == 0 {
			sum.Missing, sum.Gaps = ts.Missing, ts.Gaps
		}
		sum.SegmentsTotal += ts.Total
		sum.SegmentsDone += ts.Done
		sum.Tracks = append(sum.Tracks, ts)
	}
	sum.Live, sum.RecordedSeconds = s.recorded()
	snap := &Snapshot{Summary: sum, Headers: map[string]string{}}
	for k, v := range s.Headers {
		snap.Headers[k] = RedactHeader(k, v)
	}
	if t := s.Main(); t != nil && t.Template != nil {
		snap.Template = redactURL(t.Template.String())
	} else if t != nil && t.Source != "" {
		snap.Template = "playlist " + redactURL(t.Source)
	} else {
		snap.Template = "playlist " + redactURL(s.Playlist)
	}
	s.snap.Store(snap)
}

// Dir is the session's directory.
func (s *Session) Dir() string { return s.dir }

// Main is the session's main track (the video), or nil before the plan is read.
func (s *Session) Main() *Track {
	if len(s.Tracks) == 0 {
		return nil
	}
	return s.Tracks[0]
}

// Track returns the track with that id, or nil.
func (s *Session) Track(id string) *Track {
	for _, t := range s.Tracks {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// AddTrack adds t to the session, giving it a unique id and its directory.
func (s *Session) AddTrack(t *Track) {
	base := t.ID
	if base == "" {
		base = t.Kind
	}
	id := base
	for n := 2; s.Track(id) != nil; n++ {
		id = fmt.Sprintf("%s-%d", base, n)
	}
	t.ID = id
	s.Tracks = append(s.Tracks, t)
	t.bind(s.dir)
}

func (s *Session) bindTracks() {
	for _, t := range s.Tracks {
		t.bind(s.dir)
	}
}

// Total is the number of segments of every track in its known range.
func (s *Session) Total() int {
	n := 0
	for _, t := range s.Tracks {
		n += t.Total()
	}
	return n
}

// Done counts the complete segments on disk of every track.
func (s *Session) Done() int {
	n := 0
	for _, t := range s.Tracks {
		if s.State == StateDone {
			n += t.Total() - len(t.Gaps)
			continue
		}
		n += t.Done()
	}
	return n
}

// Save writes session.json atomically with mode 0600 (it holds cookies).
func (s *Session) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := s.encodeLocked()
	if err != nil {
		return err
	}
	return s.write(data)
}

// encode is Save without the disk: it publishes the session as it stands and
// returns what write puts in session.json. The capture encodes under its lock
// and writes after releasing it.
func (s *Session) encode() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.encodeLocked()
}

func (s *Session) encodeLocked() ([]byte, error) {
	if err := s.check(); err != nil { // what is written must read back (DecodeSession)
		return nil, fmt.Errorf("session %s: %w: %v", s.ID, ErrBadSession, err)
	}
	s.Updated = time.Now().UTC()
	s.Version = SessionVersion
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", s.ID, err)
	}
	s.publish()
	return append(data, '\n'), nil
}

// write puts data, from encode, in session.json.
func (s *Session) write(data []byte) error {
	return writeSession(filepath.Join(s.dir, "session.json"), data, 0o600)
}

// writeSession writes session.json; tests make it slow.
var writeSession = writeFileAtomic

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
	s.bindTracks()
	if s.Created.IsZero() {
		s.Created = time.Now().UTC()
	}
	if s.State == "" {
		s.State = StateNew
	}
	if err := s.Save(); err != nil {
		os.Remove(s.dir) // empty: leave no session that cannot be listed
		return err
	}
	return nil
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
	s.bindTracks()
	return s, nil
}

// ErrBadSession wraps every reason a session file is refused.
var ErrBadSession = errors.New("bad session file")

// DecodeSession parses and checks a session.json of any version. It does no I/O.
func DecodeSession(data []byte) (*Session, error) {
	var probe struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSession, err)
	}
	var s *Session
	switch probe.Version {
	case 0, 1:
		v1, err := decodeV1(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadSession, err)
		}
		s = v1
	case SessionVersion:
		s = &Session{}
		if err := json.Unmarshal(data, s); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadSession, err)
		}
	default:
		return nil, fmt.Errorf("%w: version %d is newer than this streamsnatcher (%d): upgrade it", ErrBadSession, probe.Version, SessionVersion)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSession, err)
	}
	return s, nil
}

const maxSegments = plan.MaxSegments

// check is the one validation for writer and reader: Save refuses nothing a
// later Load would refuse, because both ask check.
func (s *Session) check() error {
	switch {
	case s.ID == "" || strings.ContainsAny(s.ID, `/\`) || s.ID == "." || s.ID == "..":
		return fmt.Errorf("bad id %q", s.ID)
	case len(s.Tracks) == 0 && s.Playlist == "":
		return errors.New("no tracks and no playlist")
	}
	if len(s.Tracks) > 0 {
		pr := plan.Presentation{}
		for _, t := range s.Tracks {
			if t == nil {
				return errors.New("empty track")
			}
			pr.Tracks = append(pr.Tracks, &t.Track)
		}
		if err := pr.Check(); err != nil {
			return err
		}
	}
	for _, t := range s.Tracks {
		if err := t.checkRange(); err != nil {
			return fmt.Errorf("track %q: %w", t.ID, err)
		}
	}
	return nil
}

// Summary is what `sessions --json` prints for one session.
type Summary struct {
	ID            string         `json:"id"`
	State         string         `json:"state"`
	Source        string         `json:"source"`
	Created       time.Time      `json:"created"`
	Input         string         `json:"input,omitempty"`
	Page          string         `json:"page,omitempty"`
	Title         string         `json:"title,omitempty"` // the page's <title>
	SegmentsTotal int            `json:"segments_total"`
	SegmentsDone  int            `json:"segments_done"`
	Missing       []int64        `json:"missing"` // indices of the main track not on disk (or left out)
	Gaps          []int64        `json:"gaps"`    // indices of the main track left out of the output
	Tracks        []TrackSummary `json:"tracks,omitempty"`
	// Live is true for a broadcast followed as it grows; RecordedSeconds is how
	// much of the main track is recorded (a live one: merged so far; a VOD:
	// its listed length once done).
	Live            bool    `json:"live"`
	RecordedSeconds float64 `json:"recorded_seconds"`
	Output          string  `json:"output,omitempty"`
	Error           string  `json:"error,omitempty"`
	Dir             string  `json:"dir"`
}

// A TrackSummary is one track's part of a Summary.
type TrackSummary struct {
	ID       string  `json:"id"`
	Kind     string  `json:"kind"`
	Language string  `json:"language,omitempty"`
	Total    int     `json:"segments_total"`
	Done     int     `json:"segments_done"`
	Missing  []int64 `json:"missing"`
	Gaps     []int64 `json:"gaps"`
}

// Summary describes the session as it stands on disk.
func (s *Session) Summary() Summary {
	sum := Summary{
		ID: s.ID, State: s.State, Source: s.Source, Created: s.Created, Input: redactURL(s.Input),
		Page: redactURL(s.Page), Title: redact.Text(s.Title), SegmentsTotal: s.Total(), SegmentsDone: s.Done(),
		Output: s.Output, Error: s.Error, Dir: s.dir, Missing: []int64{}, Gaps: []int64{},
	}
	for i, t := range s.Tracks {
		ts := TrackSummary{ID: t.ID, Kind: t.Kind, Language: t.Language, Total: t.Total(),
			Missing: t.Missing, Gaps: t.Gaps}
		if s.State != StateDone {
			ts.Missing = t.MissingNow()
		}
		ts.Done = t.Total() - len(ts.Missing)
		if s.State != StateDone {
			ts.Done = t.Done()
		}
		if ts.Missing == nil {
			ts.Missing = []int64{}
		}
		if ts.Gaps == nil {
			ts.Gaps = []int64{}
		}
		if i == 0 {
			sum.Missing, sum.Gaps = ts.Missing, ts.Gaps
		}
		sum.Tracks = append(sum.Tracks, ts)
	}
	sum.Live, sum.RecordedSeconds = s.recorded()
	return sum
}

// recorded says whether the session is live and how many seconds of its main track are recorded.
func (s *Session) recorded() (live bool, seconds float64) {
	t := s.Main()
	switch {
	case t == nil:
		return false, 0
	case t.Follower != nil:
		return t.Live, math.Round(t.Follower.Recorded*1000) / 1000
	case s.State == StateDone:
		return false, math.Round(t.Duration()*1000) / 1000
	}
	return false, 0
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
