package e2e

import (
	"btclient/internal/testwait"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// portFreeOn returns a port free on every host given.
func portFreeOn(t *testing.T, hosts ...string) int {
	t.Helper()
	for range 50 {
		p := freePort(t, hosts[0])
		ok := true
		for _, h := range hosts[1:] {
			l, err := net.Listen("tcp", hostPort(h, p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no port free on every host")
	return 0
}

func TestBootstrapByNameRegisteredInDNSD(t *testing.T) {
	dnsPort := freePort(t, "127.0.0.1")
	apiPort := freePort(t, "127.0.0.1")
	dnsAddr := hostPort("127.0.0.1", dnsPort)
	apiURL := "http://" + hostPort("127.0.0.1", apiPort)
	btclient(t, "dnsd", "dnsd", "--listen", dnsAddr, "--api", hostPort("127.0.0.1", apiPort), "--quiet")

	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 8<<20)
	tor := makeTorrent(t, content)

	// Each node has its own loopback address, as containers have their own
	// IPs, so all can use one overlay port behind one name.
	hosts := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	op := portFreeOn(t, hosts...)
	const name = "swarm.btclient.test"
	node := func(i int, dir string, extra ...string) (string, *proc) {
		status := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
		args := []string{"-o", dir, "-p", "0", "--bind", hosts[i], "--overlay-port", strconv.Itoa(op),
			"--dns", dnsAddr, "--bootstrap", fmt.Sprintf("%s:%d", name, op),
			"--register", name, "--dns-api", apiURL,
			"--discovery-mode", "overlay", "--status", status, "--quiet"}
		return status, btclient(t, fmt.Sprintf("node %d", i), append(append(args, extra...), tor)...)
	}
	seedStatus, _ := node(0, src)
	waitSeeding(t, seedStatus, 30*time.Second)
	testwait.Until(t, 10*time.Second, "the seeder's record in dnsd", func() bool {
		out, err := digShort(dnsPort, name)
		return err == nil && out != ""
	})
	var statuses, dirs []string
	var procs []*proc
	for i := 1; i < 3; i++ {
		dir := t.TempDir()
		st, p := node(i, dir)
		statuses, dirs, procs = append(statuses, st), append(dirs, dir), append(procs, p)
	}
	seedOverlay := hostPort(hosts[0], op)
	for i, st := range statuses {
		waitSeeding(t, st, time.Minute)
		sameFile(t, content, filepath.Join(dirs[i], "data.bin"))
		// The only way it knew the seeder is the name's A records.
		if !strings.Contains(procs[i].out.String(), seedOverlay) {
			t.Errorf("node %d never bootstrapped to %s through %s", i+1, seedOverlay, name)
		}
	}
}

func TestBootstrapFallsBackToSystemResolverWhenDNSDIsDown(t *testing.T) {
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 4<<20)
	tor := makeTorrent(t, content)
	seedOverlay, seedStatus, _ := overlayNode(t, "seeder", src, tor, nil)
	waitSeeding(t, seedStatus, 30*time.Second)
	_, port, _ := net.SplitHostPort(seedOverlay)

	deadDNS := hostPort("127.0.0.1", freePort(t, "127.0.0.1")) // nothing listens here
	dst := t.TempDir()
	_, st, _ := overlayNode(t, "leecher", dst, tor, []string{"localhost:" + port}, "--dns", deadDNS)
	waitSeeding(t, st, time.Minute)
	sameFile(t, content, filepath.Join(dst, "data.bin"))
}

// digShort asks the dnsd on port for name's A records with the real dig.
func digShort(port int, name string) (string, error) {
	out, err := exec.Command("dig", "@127.0.0.1", "-p", strconv.Itoa(port), name, "A", "+short", "+norec", "+time=1", "+tries=1").Output()
	return strings.TrimSpace(string(out)), err
}
