package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// version is what exported HAR files name as their creator.
const version = "dev"

// isHAR reports whether a replay argument names a HAR file rather than a session.
func isHAR(arg string) bool { return strings.EqualFold(filepath.Ext(arg), ".har") }

// readHAR reads a HAR file, refusing one over recorder.MaxHARSize before reading it.
func readHAR(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, hinted(err, "give the path of a HAR file saved from the browser's DevTools (Network tab: Save all as HAR)")
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > recorder.MaxHARSize {
		return nil, hinted(fmt.Errorf("%s: %w: %d MiB, the limit is %d MiB", name, recorder.ErrTooLarge, fi.Size()>>20, recorder.MaxHARSize>>20),
			"export only the video's requests: filter the Network tab by the stream's host before saving")
	}
	data, err := io.ReadAll(io.LimitReader(f, recorder.MaxHARSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, nil
}

// replayHAR learns every stream a HAR file holds and records them one by one.
func (a *app) replayHAR(cmd *cobra.Command, name string) error {
	f := cmd.Flags()
	if fresh, _ := f.GetString("url"); fresh != "" {
		return usageError{errors.New("--url applies to a saved session, not to a HAR file")}
	}
	data, err := readHAR(name)
	if err != nil {
		return err
	}
	h, err := recorder.ParseHAR(data)
	if err != nil {
		return hinted(fmt.Errorf("%s: %w", name, err), "save the HAR again from the browser's DevTools (Network tab: Save all as HAR with content)")
	}
	imp, err := recorder.SessionsFromHAR(h)
	if err != nil {
		return hinted(fmt.Errorf("%s: %w", name, err), "play the video for a few seconds with the DevTools Network tab open, so that it records the segment or playlist requests, then save the HAR again")
	}
	for _, why := range imp.Skipped {
		a.log.Debug("har: left out", "why", why)
	}
	quiet := a.config().Quiet
	if !quiet {
		fmt.Fprintf(a.stderr, "streamsnatcher: %s: %d stream(s), %d segment(s) carried in the file", name, len(imp.Sessions), len(imp.Bodies))
		if n := len(imp.Skipped); n > 0 {
			fmt.Fprintf(a.stderr, " (%d request(s) left out; --debug lists them)", n)
		}
		fmt.Fprintln(a.stderr)
	}
	headers, err := headerFlags(f, false)
	if err != nil {
		return err
	}
	out, _ := f.GetString("output")
	st, err := a.store()
	if err != nil {
		return err
	}
	// Make every session first, so a failure of one leaves the others resumable.
	for n, s := range imp.Sessions {
		for k, v := range headers {
			if s.Headers == nil {
				s.Headers = map[string]string{}
			}
			s.Headers[k] = v
		}
		target := out
		if target != "" && len(imp.Sessions) > 1 {
			target = fmt.Sprintf("%s-%d%s", strings.TrimSuffix(out, filepath.Ext(out)), n+1, filepath.Ext(out))
		}
		if s.Target, err = outputPath(target, s.Input); err != nil {
			return err
		}
		if err := st.Create(s); err != nil {
			return err
		}
		if !quiet {
			fmt.Fprintf(a.stderr, "streamsnatcher: session %s\n", s.ID)
		}
	}
	for _, b := range imp.Bodies {
		if err := imp.Sessions[b.Session].PutSegment(b.Index, b.Data); err != nil {
			return fmt.Errorf("%s: entry %d: %w", name, b.Entry, err)
		}
	}
	var errs []error
	for _, s := range imp.Sessions {
		if err := a.record(cmd, s, false); err != nil {
			if cmd.Context().Err() != nil {
				return err
			}
			if len(imp.Sessions) > 1 {
				fmt.Fprintf(a.stderr, "streamsnatcher: session %s: %v\n", s.ID, err)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// exportCmd is `sessions export --har ID [-o FILE]`.
func (a *app) exportCmd() *cobra.Command {
	var asHAR bool
	var out string
	cmd := &cobra.Command{
		Use:   "export --har ID [-o FILE]",
		Short: "Write a session as a HAR 1.2 file (with its cookies and headers)",
		Long: `Write a session as a HAR 1.2 file: one GET per segment, with the headers the session sends,
COOKIES AND AUTHORIZATION INCLUDED (it is your own export: keep the file private, it is written with mode
0600), and a 200 response with the segment's size when the file is on disk (no bodies). A playlist session
also gets its playlist, rebuilt from the segment list. 'streamsnatcher replay FILE.har' reads it back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !asHAR {
				return usageError{errors.New("say the format: --har (the only one so far)")}
			}
			s, err := a.loadSession(args[0])
			if err != nil {
				return err
			}
			h, err := recorder.ExportHAR(s, version)
			if err != nil {
				return hinted(err, "only a session whose segments are known can be exported: run 'streamsnatcher replay %s' first", s.ID)
			}
			data, err := json.MarshalIndent(h, "", "  ")
			if err != nil {
				return err
			}
			data = append(data, '\n')
			if out == "" || out == "-" {
				_, err := a.stdout.Write(data)
				return err
			}
			if err := writeFileAtomicCLI(out, data, 0o600); err != nil {
				return hinted(fmt.Errorf("export: %w", err), "choose a writable place with -o")
			}
			if !a.config().Quiet {
				fmt.Fprintf(a.stderr, "streamsnatcher: wrote %s (%d requests; it holds the session's cookies)\n", out, len(h.Log.Entries))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asHAR, "har", false, "write HAR 1.2")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write here instead of stdout (mode 0600)")
	return cmd
}

// writeFileAtomicCLI writes name via name.partial and a rename, so no half-written file is left.
func writeFileAtomicCLI(name string, data []byte, perm os.FileMode) error {
	tmp := name + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, name)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}
