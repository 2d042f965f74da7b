package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// Exit codes.
const (
	exitOK         = 0
	exitError      = 1 // bad input, a failure
	exitUsage      = 2 // bad flags or arguments
	exitIncomplete = 3 // segments missing, or paused for new credentials: resumable
	exitInterrupt  = 130
)

// app carries what every command shares: one viper instance and the streams.
type app struct {
	v      *viper.Viper
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	held   string // the directory of the session whose lock this command already holds
}

// Config is the effective configuration: flags > STREAMSNATCHER_* env > config file > defaults.
type Config struct {
	DataDir string `mapstructure:"data-dir"`
	CADir   string `mapstructure:"ca-dir"`
	Quiet   bool   `mapstructure:"quiet"`
	Debug   bool   `mapstructure:"debug"`
}

func (a *app) config() Config {
	return Config{
		DataDir: a.v.GetString("data-dir"),
		CADir:   a.v.GetString("ca-dir"),
		Quiet:   a.v.GetBool("quiet"),
		Debug:   a.v.GetBool("debug"),
	}
}

// Main runs the command line and returns the exit code.
func Main(args []string) int {
	return run(context.Background(), args, os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{v: viper.New(), stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	stopProfile := startProfile(stderr)
	err := root.ExecuteContext(ctx)
	stopProfile()
	printStats(stderr)
	if err == nil {
		return exitOK
	}
	if strings.HasPrefix(err.Error(), "unknown command ") {
		err = usageError{err}
	}
	return a.report(ctx, err)
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "streamsnatcher",
		Short:         "Record streaming video: learn the segment numbering, fetch every segment, merge with ffmpeg",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "config file (default $XDG_CONFIG_HOME/streamsnatcher/config.yaml)")
	pf.String("data-dir", defaultDataDir(), "where sessions are kept (env STREAMSNATCHER_DATA_DIR)")
	pf.String("ca-dir", defaultCADir(), "where the proxy's CA is kept (env STREAMSNATCHER_CA_DIR)")
	pf.BoolP("quiet", "q", false, "print no progress")
	pf.Bool("debug", false, "log every request and retry (secrets stay redacted)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.getCmd(), a.replayCmd(), a.sessionsCmd(), a.templateCmd())
	for _, c := range extraCommands {
		root.AddCommand(c(a))
	}
	usageArgs(root)
	return root
}

// usageArgs makes a wrong number of arguments a usage error (exit 2), like a
// bad flag, in every command.
func usageArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

// extraCommands lets other files of this package add commands (ca, watch, config).
var extraCommands []func(*app) *cobra.Command

// setup binds flags, environment and the config file into the one viper instance.
func (a *app) setup(cmd *cobra.Command) error {
	v := a.v
	v.SetEnvPrefix("STREAMSNATCHER")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(cmd.Flags()); err != nil {
		return err
	}
	cfg, _ := cmd.Flags().GetString("config")
	if cfg == "" {
		cfg = os.Getenv("STREAMSNATCHER_CONFIG")
	}
	explicit := cfg != ""
	if cfg == "" {
		if d, err := os.UserConfigDir(); err == nil {
			cfg = filepath.Join(d, "streamsnatcher", "config.yaml")
		}
	}
	if cfg != "" {
		v.SetConfigFile(cfg)
		if err := v.ReadInConfig(); err != nil {
			var notFound viper.ConfigFileNotFoundError
			if explicit || !(errors.As(err, &notFound) || errors.Is(err, os.ErrNotExist)) {
				if explicit || fileExistsCLI(cfg) {
					return hinted(fmt.Errorf("config file %s: %w", cfg, err), "fix the file or point --config at another one")
				}
			}
		}
	}
	level := slog.LevelWarn
	if v.GetBool("debug") {
		level = slog.LevelDebug
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

func fileExistsCLI(p string) bool { _, err := os.Stat(p); return err == nil }

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "streamsnatcher")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "streamsnatcher")
	}
	return "streamsnatcher-data"
}

func defaultCADir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "streamsnatcher", "ca")
	}
	return "streamsnatcher-ca"
}
