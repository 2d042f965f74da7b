package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/streamsnatcher/streamsnatcher/recorder"
)

func (a *app) sessionsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List saved sessions (show ID, rm ID, export --har ID)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			list, lerr := st.List()
			sums := make([]recorder.Summary, 0, len(list))
			for _, s := range list {
				sums = append(sums, s.Summary())
			}
			if lerr != nil {
				fmt.Fprintf(a.stderr, "streamsnatcher: warning: %v\n", lerr)
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(sums)
			}
			if len(sums) == 0 {
				fmt.Fprintln(a.stderr, "streamsnatcher: no sessions yet")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tSEGMENTS\tMISSING\tGAPS\tOUTPUT")
			for _, s := range sums {
				total := fmt.Sprint(s.SegmentsTotal)
				if s.SegmentsTotal == 0 {
					total = "?"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d/%s\t%d\t%d\t%s\n", s.ID, s.State, s.SegmentsDone, total, len(s.Missing), len(s.Gaps), s.Output)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.AddCommand(a.exportCmd())
	cmd.AddCommand(&cobra.Command{
		Use:   "show ID",
		Short: "Print one session as JSON, cookies and tokens redacted",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.loadSession(args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(s.Redacted())
		},
	}, &cobra.Command{
		Use:   "rm ID...",
		Short: "Remove sessions and their segments (not their output files)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			for _, id := range args {
				s, err := st.Load(id)
				if err != nil {
					return err
				}
				unlock, err := a.lockSession(s, "sessions rm")
				if err != nil {
					return err
				}
				err = os.RemoveAll(s.Dir())
				unlock()
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "streamsnatcher: removed session %s\n", s.ID)
			}
			return nil
		},
	})
	return cmd
}
