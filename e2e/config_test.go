package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"btclient/internal/testwait"
)

var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`)

// flagsOf lists the flags `btclient ARGS --help` prints.
func flagsOf(t *testing.T, args ...string) []string {
	t.Helper()
	out, _ := exec.Command(binary, append(args, "--help")...).CombinedOutput()
	var names []string
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("no flags in --help:\n%s", out)
	}
	return names
}

// Issue 17, done means 5: --config with every setting of the download
// command, then with a bad key (exit 2, the key named).
func TestConfigFileWithEverySetting(t *testing.T) {
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 2<<20)
	tor := makeTorrent(t, content, "--piece-length", "64KiB")
	peer, _, _ := seeder(t, "seeder", src, tor)
	dst, state := t.TempDir(), t.TempDir()
	status := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	port := freePort(t, "127.0.0.1")
	dead := hostPort("127.0.0.1", freePort(t, "127.0.0.1")) // nothing listens there
	settings := map[string]string{
		"out": dst, "port": strconv.Itoa(port), "peer": peer, "seed": "false", "quiet": "true",
		"status": status, "max-upload-rate": "10MiB", "max-download-rate": "50MiB", "state-dir": state,
		"bootstrap": dead, "overlay-port": "0", "discovery-mode": "auto", "tracker": "http://" + dead + "/announce",
		"dns": dead, "advertise": "127.0.0.1", "swarm-key": "s3cret", "register": "node1", "dns-api": "http://" + dead,
		"bind": "127.0.0.1", "fallback-after": "1s", "dht": "true", "dht-port": "0", "dht-bootstrap": dead,
	}
	var conf strings.Builder
	conf.WriteString("# every setting of the download command\n")
	for _, name := range flagsOf(t) {
		if name == "help" || name == "version" || name == "config" {
			continue
		}
		v, ok := settings[name]
		if !ok {
			t.Fatalf("the test has no value for --%s: add it", name)
		}
		if name == "max-upload-rate" { // a variable's name works as well
			name = "BTCLIENT_MAX_UPLOAD_RATE"
		}
		fmt.Fprintf(&conf, "%s = %s\n", name, v)
	}
	path := filepath.Join(t.TempDir(), "btclient.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	l := btclient(t, "configured leecher", "--config", path, tor)
	testwait.Until(t, 30*time.Second, "the status server the file names", func() bool {
		_, ok := getStatus(status)
		return ok || l.exited()
	})
	if code := l.wait(time.Minute); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin")) // --out from the file
	if _, err := os.Stat(filepath.Join(state, "torrents")); err != nil {
		t.Fatalf("--state-dir from the file not used: %v", err)
	}
	out := l.out.String()
	for _, want := range []string{fmt.Sprintf("addr=127.0.0.1:%d", port), "swarm_key=true"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q (a setting of the file not applied):\n%s", want, tail(out, 2000))
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(bad, []byte("port=7000\nsharing-ratio=2\n"), 0o600)
	cmd := exec.Command(binary, "--config", bad, tor)
	msg, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(msg), `"sharing-ratio"`) || strings.Count(strings.TrimSpace(string(msg)), "\n") != 0 {
		t.Fatalf("a bad key: exit %d, %q; want 2 and one line naming the key", code, msg)
	}
}
