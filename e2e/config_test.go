package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
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
		"super-seed": "auto",
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

// Issue 17, done means 5, for the sharing daemon: every setting of
// `btclient share` from the file (the folder itself included), then a bad key.
func TestShareConfigFileWithEverySetting(t *testing.T) {
	folder := t.TempDir()
	randomFile(t, folder, ".hidden but shared.bin", 10<<10)
	rpcAddr := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	status := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	dead := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	settings := map[string]string{
		"rpc-listen": rpcAddr, "rpc-auth": "user:pass", "rpc-insecure": "false", "rpc-allow-host": "example.test",
		"download-dir": t.TempDir(), "watch": t.TempDir(), "status": status, "share": folder, "share-hidden": "true",
		"port": strconv.Itoa(freePort(t, "127.0.0.1")), "max-upload-rate": "10MiB", "max-download-rate": "50MiB",
		"state-dir": t.TempDir(), "bootstrap": dead, "overlay-port": "0", "discovery-mode": "overlay",
		"tracker": "http://" + dead + "/announce", "dns": dead, "advertise": "127.0.0.1", "swarm-key": "s3cret",
		"register": "node1", "dns-api": "http://" + dead, "bind": "127.0.0.1", "fallback-after": "1s",
		"dht": "false", "dht-port": "0", "dht-bootstrap": dead, "super-seed": "off",
	}
	var conf strings.Builder
	for _, name := range flagsOf(t, "share") {
		if name == "help" || name == "version" || name == "config" {
			continue
		}
		v, ok := settings[name]
		if !ok {
			t.Fatalf("the test has no value for --%s: add it", name)
		}
		fmt.Fprintf(&conf, "%s = %s\n", name, v)
	}
	path := filepath.Join(t.TempDir(), "share.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// No folder on the command line: the file names it.
	p := btclient(t, "configured sharer", "share", "--config", path)
	testwait.Until(t, 30*time.Second, "the hidden file shared, as the file says", func() bool {
		if p.exited() {
			t.Fatalf("exited: %s", tail(p.out.String(), 2000))
		}
		st, ok := getDaemonShare(status)
		return ok && st == 1
	})
	d := &daemon{proc: p, t: t, rpcAddr: rpcAddr, auth: "user:pass"}
	var got map[string]any
	d.call("session-get", nil, &got)
	if got["download-dir"] != settings["download-dir"] {
		t.Errorf("download-dir %v, want the file's %s", got["download-dir"], settings["download-dir"])
	}

	bad := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(bad, []byte("share="+folder+"\nshare-everything=yes\n"), 0o600)
	cmd := exec.Command(binary, "share", "--config", bad)
	msg, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(msg), `"share-everything"`) || strings.Count(strings.TrimSpace(string(msg)), "\n") != 0 {
		t.Fatalf("a bad key: exit %d, %q; want 2 and one line naming the key", code, msg)
	}
}

// getDaemonShare returns how many entries a daemon's shared folders publish.
func getDaemonShare(addr string) (shared int, ok bool) {
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var body struct {
		Share struct {
			Folders []struct {
				Shared int `json:"shared"`
			} `json:"folders"`
		} `json:"share"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return 0, false
	}
	for _, f := range body.Share.Folders {
		shared += f.Shared
	}
	return shared, true
}
