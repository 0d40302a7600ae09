package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// overlayNode starts a btclient that finds peers only through the overlay.
// It returns its overlay and status addresses.
func overlayNode(t *testing.T, label, dir, torrentPath string, bootstrap []string, extra ...string) (overlayAddr, statusAddr string, p *proc) {
	t.Helper()
	op := freePort(t, "127.0.0.1")
	statusAddr = hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	args := []string{"-o", dir, "-p", "0", "--overlay-port", strconv.Itoa(op), "--advertise", "127.0.0.1",
		"--discovery-mode", "overlay", "--status", statusAddr, "--quiet"}
	if len(bootstrap) > 0 {
		args = append(args, "--bootstrap", joinArgs(bootstrap...))
	}
	args = append(args, extra...)
	p = btclient(t, label, append(args, torrentPath)...)
	return hostPort("127.0.0.1", op), statusAddr, p
}

func TestOverlayTenNodesShareAFileWithNoTracker(t *testing.T) {
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 24<<20)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	start := time.Now()
	seedOverlay, seedStatus, _ := overlayNode(t, "seeder", src, tor, nil)
	waitSeeding(t, seedStatus, time.Minute)

	// Nine leechers bootstrap along a binary tree rooted at the seeder: each
	// knows one or two overlay addresses, never the whole network.
	overlays := []string{seedOverlay}
	var statuses, dirs []string
	for i := 1; i <= 9; i++ {
		boot := []string{overlays[(i-1)/2]}
		if i >= 3 {
			boot = append(boot, overlays[i-1])
		}
		dir := t.TempDir()
		ov, st, _ := overlayNode(t, fmt.Sprintf("leecher %d", i), dir, tor, boot)
		overlays = append(overlays, ov)
		statuses = append(statuses, st)
		dirs = append(dirs, dir)
	}
	for i, st := range statuses {
		waitSeeding(t, st, 2*time.Minute)
		sameFile(t, content, filepath.Join(dirs[i], "data.bin"))
	}
	t.Logf("measured: 9 leechers complete through the overlay in %v", time.Since(start).Round(time.Millisecond))
}
