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
	return false, exitOK
}

// envName maps a flag name to its environment variable.
func envName(flag string) string {
	return "BTCLIENT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}
