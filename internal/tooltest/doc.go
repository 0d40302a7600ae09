// Package tooltest runs the real third-party tools that btclient's tests
// compare it against, so that no test needs files from outside the
// repository: torrent makers and readers (transmission-create and
// transmission-show, mktorrent, libtorrent through Debian's python3) and
// opentracker. A missing tool skips the test, or fails it under CI, where
// scripts/install-test-deps.sh must have installed it.
package tooltest

import (
	"os"
	"os/exec"
	"testing"
)

// Need skips t when the program name is not installed, and fails it under
// CI (the CI environment variable set), where a missing tool is a broken
// setup rather than a reason to pass.
func Need(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed under CI: %v", name, err)
		}
		t.Skipf("%s is not installed (scripts/install-test-deps.sh installs it): %v", name, err)
	}
	return path
}
