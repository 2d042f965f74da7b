package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { extraCommands = append(extraCommands, (*app).configCmd) }

// globalKeys are the root command's settings.
var globalKeys = []string{"data-dir", "ca-dir", "quiet", "debug"}

// runKeys are the settings of the commands that record (get, replay, watch)
// that a config file or the environment may also give.
var runKeys = []string{"concurrency", "retries", "allow-gaps", "keep-segments", "variant", "subs", "ffmpeg", "min-free",
	"listen", "out-dir", "allow-remote", "upstream-ca", "insecure-upstream", "browser", "headless", "chromium"}

// A setting is one key's effective value and where it came from.
type setting struct {
	Key     string `json:"key"`
	Value   any    `json:"value"`
	Source  string `json:"source"`            // "flag", "env", "file" or "default"
	From    string `json:"from,omitempty"`    // the flag, variable or file
	Problem string `json:"problem,omitempty"` // why the value cannot be used
}

func envName(key string) string {
	return "STREAMSNATCHER_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// lookupEnv is how viper sees the environment: an empty variable is unset.
func lookupEnv(key string) (string, bool) {
	v, ok := os.LookupEnv(envName(key))
	return v, ok && v != ""
}

// source says where key's value comes from; fl is the key's flag on the command running, if any.
func (a *app) source(key string, fl *pflag.Flag) (src, from string) {
	switch {
	case fl != nil && fl.Changed:
		return "flag", "--" + key
	}
	if _, ok := lookupEnv(key); ok {
		return "env", envName(key)
	}
	if a.v.InConfig(key) {
		return "file", a.v.ConfigFileUsed()
	}
	return "default", ""
}

// runFlagDefs holds the flags of every recording command, for their defaults and types.
func (a *app) runFlagDefs() *pflag.FlagSet {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	addRunFlags(fs)
	a.watchCmd().Flags().VisitAll(func(f *pflag.Flag) {
		if fs.Lookup(f.Name) == nil {
			fs.AddFlag(f)
		}
	})
	return fs
}

// applyRunConfig gives the run flags of cmd that the command line left unset
// their value from the environment or the config file, so every recording
// command honours them the same way: flag > env > file > default.
func (a *app) applyRunConfig(cmd *cobra.Command) error {
	f := cmd.Flags()
	for _, k := range runKeys {
		fl := f.Lookup(k)
		if fl == nil || fl.Changed {
			continue
		}
		src, from := a.source(k, nil)
		if src == "default" {
			continue
		}
		val := a.v.GetString(k)
		if src == "file" {
			val = configString(a.v.Get(k))
		}
		if err := f.Set(k, val); err != nil {
			return hinted(fmt.Errorf("%s %s: %q: %w", src, from, val, err), "fix the value, or override it with --%s", k)
		}
	}
	return nil
}

// configString renders a value read from a config file as a flag value.
func configString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// typed turns a flag value into a JSON value of the flag's type.
func typed(kind, s string) any {
	switch kind {
	case "bool":
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	case "int", "int64":
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	return s
}

func (a *app) settings(cmd *cobra.Command) []setting {
	var out []setting
	flags := cmd.Flags()
	for _, k := range globalKeys {
		fl := flags.Lookup(k)
		src, from := a.source(k, fl)
		kind := "string"
		if fl != nil {
			kind = fl.Value.Type()
		}
		val := configString(a.v.Get(k))
		out = append(out, setting{Key: k, Value: typed(kind, val), Source: src, From: from, Problem: invalid(fl, src, val)})
	}
	defs := a.runFlagDefs()
	for _, k := range runKeys {
		fl := defs.Lookup(k)
		if fl == nil {
			continue
		}
		src, from := a.source(k, nil)
		val := fl.DefValue
		switch src {
		case "env":
			val, _ = lookupEnv(k)
		case "file":
			val = configString(a.v.Get(k))
		}
		out = append(out, setting{Key: k, Value: typed(fl.Value.Type(), val), Source: src, From: from, Problem: invalid(fl, src, val)})
	}
	return out
}

// invalid says why val cannot be the value of flag fl ("" when it can):
// the check the commands make when they use it. fl belongs to a throwaway
// flag set or to a flag the command line did not set.
func invalid(fl *pflag.Flag, src, val string) string {
	if fl == nil || src == "default" || src == "flag" {
		return ""
	}
	old := fl.Value.String()
	defer fl.Value.Set(old)
	if err := fl.Value.Set(val); err != nil {
		return fmt.Sprintf("not a valid %s", fl.Value.Type())
	}
	return ""
}

// unknownKeys lists the keys of the config file, and the STREAMSNATCHER_*
// variables, that are no setting: a typo there is silently ignored otherwise.
func (a *app) unknownKeys() []string {
	known := map[string]bool{"config": true}
	for _, k := range append(append([]string{}, globalKeys...), runKeys...) {
		known[k] = true
	}
	var out []string
	for _, k := range a.v.AllKeys() {
		if !known[k] && a.v.InConfig(k) {
			out = append(out, fmt.Sprintf("%q in %s", k, a.v.ConfigFileUsed()))
		}
	}
	// Variables that are no setting but are read: stats on exit, a CPU profile, and the tests' own.
	envKnown := map[string]bool{"STREAMSNATCHER_STATS": true, "STREAMSNATCHER_CPUPROFILE": true, "STREAMSNATCHER_BENCH_LOG": true, "STREAMSNATCHER_SCREENSHOT": true}
	for k := range known {
		envKnown[envName(k)] = true
	}
	for _, kv := range os.Environ() {
		name, val, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "STREAMSNATCHER_") && !envKnown[name] && val != "" {
			out = append(out, "environment variable "+name)
		}
	}
	sort.Strings(out)
	return out
}

// configFile says which config file is used, whether it exists and why that one.
func (a *app) configFile(cmd *cobra.Command) (path string, loaded bool, src string) {
	path = a.v.ConfigFileUsed()
	switch {
	case cmd.Flags().Changed("config"):
		src = "flag --config"
	case os.Getenv("STREAMSNATCHER_CONFIG") != "":
		src = "env STREAMSNATCHER_CONFIG"
	default:
		src = "default"
	}
	if path != "" {
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
	}
	return path, path != "" && fileExistsCLI(path), src
}

func (a *app) configCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration and where each value comes from",
		Long: `Print every setting with its value and its source: a flag, a STREAMSNATCHER_* environment
variable (STREAMSNATCHER_DATA_DIR for data-dir), the config file, or the default, in that order of
precedence. The config file is $XDG_CONFIG_HOME/streamsnatcher/config.yaml unless --config or
STREAMSNATCHER_CONFIG names another; streamsnatcher.example.yaml in the source tree lists every key.
Global settings given as flags here (--data-dir, -q, ...) show as "flag"; run settings (concurrency,
listen, ...) are flags of get, replay and watch, so here they come from the environment, the file or
the defaults.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, loaded, src := a.configFile(cmd)
			list := a.settings(cmd)
			unknown := a.unknownKeys()
			var problems []string
			for _, s := range list {
				if s.Problem != "" {
					problems = append(problems, fmt.Sprintf("%s %v (from %s %s): %s", s.Key, s.Value, s.Source, s.From, s.Problem))
				}
			}
			for _, u := range unknown {
				problems = append(problems, "unknown setting "+u)
			}
			var bad error
			if len(problems) > 0 {
				bad = hinted(fmt.Errorf("the configuration has %d problem(s): %s", len(problems), strings.Join(problems, "; ")),
					"fix or remove them: streamsnatcher.example.yaml lists every key and its type")
			}
			if unknown == nil {
				unknown = []string{}
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				err := enc.Encode(struct {
					ConfigFile struct {
						Path   string `json:"path"`
						Loaded bool   `json:"loaded"`
						Source string `json:"source"`
					} `json:"config_file"`
					Settings []setting `json:"settings"`
					Unknown  []string  `json:"unknown"`
				}{ConfigFile: struct {
					Path   string `json:"path"`
					Loaded bool   `json:"loaded"`
					Source string `json:"source"`
				}{path, loaded, src}, Settings: list, Unknown: unknown})
				return errors.Join(err, bad)
			}
			state := "not found"
			if loaded {
				state = "loaded"
			}
			if path == "" {
				path = "(none)"
			}
			fmt.Fprintf(a.stdout, "config file: %s (%s; %s)\n", path, state, src)
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
			for _, s := range list {
				where := s.Source
				if s.From != "" {
					where += " " + s.From
				}
				if s.Problem != "" {
					where += "  <- INVALID: " + s.Problem
				}
				fmt.Fprintf(tw, "%s\t%v\t%s\n", s.Key, s.Value, where)
			}
			return errors.Join(tw.Flush(), bad)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
