package e2e

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"btclient/internal/testwait"
)

// A seeder whose upload is capped super-seeds: it sends each piece about
// once, and the leechers, told of each other, trade the rest.
func TestCappedSeederSendsTheFileOnce(t *testing.T) {
	src := t.TempDir()
	const size = 16 << 20
	content := randomFile(t, src, "data.bin", size)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	seed, seedStatus, _ := seeder(t, "seeder", src, tor, "--max-upload-rate", "4MiB")

	const leechers = 3
	var ports []int
	var addrs []string
	for range leechers {
		p := freePort(t, "127.0.0.1")
		ports = append(ports, p)
		addrs = append(addrs, hostPort("127.0.0.1", p))
	}
	var dirs, statuses []string
	for i, port := range ports {
		dir := t.TempDir()
		st := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
		peers := joinArgs(append([]string{seed}, addrs...)...)
		btclient(t, "leecher "+strconv.Itoa(i), "-o", dir, "-p", strconv.Itoa(port), "--status", st, "--quiet",
			"--discovery-mode", "tracker", "--peer", peers, tor)
		dirs, statuses = append(dirs, dir), append(statuses, st)
	}
	for _, st := range statuses {
		waitSeeding(t, st, 2*time.Minute)
	}
	for _, dir := range dirs {
		sameFile(t, content, filepath.Join(dir, "data.bin"))
	}
	var up int64
	testwait.Until(t, 5*time.Second, "the seeder's status", func() bool {
		s, ok := getStatus(seedStatus)
		up = s.Uploaded
		return ok
	})
	t.Logf("measured: the seeder sent the file %.2f times to %d leechers", float64(up)/size, leechers)
	// Without super-seeding it sends it 1.5-2.5 times (scripts/bench-slow-seeder.sh).
	if up > size*135/100 {
		t.Fatalf("the seeder sent %d bytes, %.2f times the file; want at most 1.35", up, float64(up)/size)
	}
}
