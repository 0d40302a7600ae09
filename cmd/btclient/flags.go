package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// newFlagSet returns a flag set that reports errors instead of exiting, so a
// subcommand can turn them into exit status 2.
func newFlagSet(name, usage string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags:\n%s", usage, fs.FlagUsages())
		fmt.Fprintf(stderr, "\nEvery flag can also be set as BTCLIENT_<FLAG> (dashes become underscores).\n")
	}
	return fs
}

// parseFlags parses args, then fills every flag not given on the command line
// from the environment variable BTCLIENT_<FLAG>. It returns done=true with the
// exit status when the command should stop (help or a bad flag).
func parseFlags(fs *pflag.FlagSet, args []string, stderr io.Writer) (done bool, code int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return true, exitOK
		}
		return true, usageError(stderr, "%v (see --help)", err)
	}
	var envErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || envErr != nil {
			return
		}
		name := envName(f.Name)
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("%s=%q: %w", name, v, err)
		}
	})
	if envErr != nil {
		return true, usageError(stderr, "%v", envErr)
	}
	if f := fs.Lookup(configFlag); f != nil && f.Value.String() != "" {
		if err := loadConfig(fs, f.Value.String()); err != nil {
			return true, usageError(stderr, "%v", err)
		}
	}
	return false, exitOK
}

// configFlag names a configuration file (seed 000's RF04).
const configFlag = "config"

// maxConfigSize bounds a configuration file.
const maxConfigSize = 1 << 20

// addConfigFlag gives a command --config FILE.
func addConfigFlag(fs *pflag.FlagSet) {
	fs.String(configFlag, "", "read settings from `FILE`: NAME=value lines, NAME a flag's name or its BTCLIENT_ variable\n(# starts a comment); flags and environment variables override what it says")
}

// loadConfig sets every flag fs has not got from the command line or the
// environment from the file at path: lines of NAME=value, where NAME is a
// flag's name (max-upload-rate) or its variable (BTCLIENT_MAX_UPLOAD_RATE).
// A list flag given on several lines takes every value. An unknown name is
// an error that names it.
func loadConfig(fs *pflag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	if len(data) > maxConfigSize {
		return fmt.Errorf("--config %s: more than %d bytes", path, maxConfigSize)
	}
	preset := map[string]bool{} // given on the command line or in the environment
	fs.Visit(func(f *pflag.Flag) { preset[f.Name] = true })
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("--config %s: line %d: want NAME=value, got %q", path, i+1, line)
		}
		key, value = strings.TrimSpace(key), unquote(strings.TrimSpace(value))
		name := key
		if strings.HasPrefix(key, "BTCLIENT_") {
			name = strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(key, "BTCLIENT_"), "_", "-"))
		}
		f := fs.Lookup(name)
		if f == nil || name == configFlag {
			return fmt.Errorf("--config %s: line %d: unknown setting %q", path, i+1, key)
		}
		if preset[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("--config %s: line %d: %s: %w", path, i+1, key, err)
		}
	}
	return nil
}

// unquote drops one pair of matching quotes around a value.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// envName maps a flag name to its environment variable.
func envName(flag string) string {
	return "BTCLIENT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}
