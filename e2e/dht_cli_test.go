package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"net/netip"

	"btclient/internal/testwait"
)

func TestDHTCLIRejectsBadUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"unknown flag", []string{"--no-such-flag"}, "", "unknown flag"},
		{"stray argument", []string{"extra"}, "", "unexpected argument"},
		{"listen without a port", []string{"--listen", "127.0.0.1"}, "", "--listen"},
		{"listen port out of range", []string{"--listen", "127.0.0.1:70000"}, "", "0-65535"},
		{"bootstrap without a port", []string{"--bootstrap", "router.example"}, "", "--bootstrap"},
		{"a bad flag from the environment", nil, "BTCLIENT_QUIET=maybe", "BTCLIENT_QUIET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, append([]string{"dht"}, tt.args...)...)
			cmd.Env = cleanEnv()
			if tt.env != "" {
				cmd.Env = append(cmd.Env, tt.env)
			}
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestDHTCLISavesItsTableAndRejoinsWithoutBootstrap is done-means 4 at the
// CLI: `btclient dht --state FILE` saves its table on SIGINT (exit 0), and
// started again with no --bootstrap it is back in the DHT from that table:
// a fresh node that knows only it finds a peer announced elsewhere.
func TestDHTCLISavesItsTableAndRejoinsWithoutBootstrap(t *testing.T) {
	boot := hostPort("127.0.0.10", freePort(t, "127.0.0.10"))
	btclientDHT(t, "bootstrap", boot)
	other := goDHT(t, hostPort("127.0.0.12", freePort(t, "127.0.0.12")), boot)

	state := filepath.Join(t.TempDir(), "dht.state")
	listen := hostPort("127.0.0.11", freePort(t, "127.0.0.11"))
	first := btclientDHT(t, "dht with state", listen, "--bootstrap", boot, "--state", state)
	first.waitOutput(30*time.Second, `msg="dht: joined"`)
	first.signal(syscall.SIGINT)
	if code := first.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGINT, want 0", code)
	}
	if fi, err := os.Stat(state); err != nil || fi.Size() < 26 {
		t.Fatalf("no table saved in %s: %v", state, err)
	}

	ih := randomInfoHash(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := other.Announce(ctx, ih, 7010, false); err != nil {
		t.Fatal(err)
	}

	// Started again with only its state (BTCLIENT_STATE: flags come from the
	// environment too).
	again := startEnv(t, "dht restarted", []string{"BTCLIENT_STATE=" + state}, binary, "dht", "--listen", listen)
	again.waitOutput(30*time.Second, `msg="dht: joined"`)

	seeker := goDHT(t, hostPort("127.0.0.13", freePort(t, "127.0.0.13")), listen)
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.12"), 7010)
	testwait.Until(t, 30*time.Second, "a node that knows only the restarted one to find the peer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		peers, _ := seeker.GetPeers(ctx, ih)
		return slices.Contains(peers, want)
	})
	again.signal(syscall.SIGTERM)
	if code := again.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
}
