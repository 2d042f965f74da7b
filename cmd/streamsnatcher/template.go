package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

func (a *app) templateCmd() *cobra.Command {
	var asJSON bool
	var next int
	cmd := &cobra.Command{
		Use:   "template URL...",
		Short: "Learn the numbering template from segment URLs and print it",
		Example: `  streamsnatcher template https://cdn.example.com/v/720p/000012.ts?token=abc https://cdn.example.com/v/720p/000013.ts?token=abc
  streamsnatcher template --next 3 https://cdn.example.com/v/seg_041.ts`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if next < 0 || next > 1_000_000 {
				return usageError{fmt.Errorf("--next %d: want 0..1000000", next)}
			}
			for _, u := range args {
				if err := checkURL(u); err != nil {
					return err
				}
			}
			if err := distinctURLs(args); err != nil {
				return err
			}
			t, err := urltemplate.Learn(args)
			if err != nil {
				return err
			}
			if next > 0 {
				last, ok := t.Match(args[len(args)-1])
				if !ok {
					last = t.Last
				}
				for i := 1; i <= next; i++ {
					fmt.Fprintln(a.stdout, t.URL(last+int64(i)*t.Step))
				}
				return nil
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Template    string             `json:"template"`    // the URL with {index…} where the number goes
					Description string             `json:"description"` // the same for people, with step and range
					Example     string             `json:"example"`
					Step        int64              `json:"step"`
					First       int64              `json:"first"`
					Last        int64              `json:"last"`
					Tentative   bool               `json:"tentative"`
					Parts       []urltemplate.Part `json:"parts"`
				}{t.Pattern(), t.String(), t.URL(t.First), t.Step, t.First, t.Last, t.Tentative, t.Parts})
			}
			fmt.Fprintln(a.stdout, t.String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the template as JSON")
	cmd.Flags().IntVar(&next, "next", 0, "print the N URLs that follow the last URL given")
	return cmd
}

// distinctURLs refuses the same URL given more than once and nothing else:
// two identical URLs are one observation, and a constant number in them
// (720p, v2) would be taken for the counter.
func distinctURLs(args []string) error {
	if len(args) < 2 {
		return nil
	}
	first, _, _ := strings.Cut(args[0], "#")
	for _, u := range args[1:] {
		if u, _, _ := strings.Cut(u, "#"); u != first {
			return nil
		}
	}
	return hinted(usageError{fmt.Errorf("the %d URLs are the same: nothing in them counts", len(args))},
		"give two segment URLs with different numbers (the browser's network tab lists them), or one URL alone for a tentative guess")
}
