package e2e

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// dhtOnly are the flags of a btclient that finds peers through the DHT
// alone: no overlay, no tracker.
func dhtOnly(bootstrap string) []string {
	return []string{"--discovery-mode", "tracker", "--dht-bootstrap", bootstrap}
}

// Done means 1: no tracker, no x.pe. A libtorrent seeder announces in a
// DHT; btclient, given the magnet and one DHT node, finds it and downloads.
// And the other way: a btclient seeder announces, and libtorrent, given
// only the magnet, finds it through the DHT.
func TestMagnetThroughTheDHT(t *testing.T) {
	needLibtorrent(t)
	t.Run("btclient finds a libtorrent seeder", func(t *testing.T) {
		boot := hostPort("127.0.0.2", freePort(t, "127.0.0.2"))
		btclientDHT(t, "btclient dht", boot)
		ltNode := hostPort("127.0.0.3", freePort(t, "127.0.0.3"))
		ltDHT(t, "libtorrent node", ltNode, "--node", boot)
		src := t.TempDir()
		content := randomFile(t, src, "data.bin", 16<<20)
		tor := makeTorrent(t, content, "--piece-length", "256KiB")
		start(t, "libtorrent seeder (DHT)", debianPython, ltScript(t), "seed", tor, src,
			"--listen", hostPort("127.0.0.5", freePort(t, "127.0.0.5")), "--dht-node", boot, "--dht-node", ltNode).waitOutput(time.Minute, "seeding")
		dst := t.TempDir()
		status := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
		l := btclient(t, "btclient leecher", append([]string{"-o", dst, "-p", strconv.Itoa(freePort(t, "127.0.0.1")),
			"--quiet", "--seed=false", "--status", status}, append(dhtOnly(ltNode), magnetOf(t, tor))...)...)
		if code := l.wait(2 * time.Minute); code != 0 {
			t.Fatalf("btclient exit status %d", code)
		}
		sameFile(t, content, filepath.Join(dst, "data.bin"))
	})
	t.Run("libtorrent finds a btclient seeder", func(t *testing.T) {
		boot := hostPort("127.0.0.6", freePort(t, "127.0.0.6"))
		btclientDHT(t, "btclient dht", boot)
		src := t.TempDir()
		content := randomFile(t, src, "data.bin", 16<<20)
		tor := makeTorrent(t, content, "--piece-length", "256KiB")
		port := freePort(t, "127.0.0.1")
		status := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
		btclient(t, "btclient seeder", append([]string{"-o", src, "-p", strconv.Itoa(port), "--quiet", "--status", status},
			append(dhtOnly(boot), tor)...)...)
		waitSeeding(t, status, time.Minute)
		dst := t.TempDir()
		lt := start(t, "libtorrent leecher", debianPython, ltScript(t), "leech", magnetOf(t, tor), dst,
			"--listen", hostPort("127.0.0.7", freePort(t, "127.0.0.7")), "--dht-node", boot)
		if code := lt.wait(2 * time.Minute); code != 0 {
			t.Fatalf("libtorrent exit status %d", code)
		}
		sameFile(t, content, filepath.Join(dst, "data.bin"))
	})
}

// Done means 2: 31 btclient processes with only the DHT (no overlay, no
// tracker, one bootstrap node) share a file; all finish byte-identical.
func TestThirtyBtclientsShareAFileThroughTheDHT(t *testing.T) {
	boot := hostPort("127.0.0.8", freePort(t, "127.0.0.8"))
	btclientDHT(t, "btclient dht", boot)
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 4<<20)
	tor := makeTorrent(t, content, "--piece-length", "64KiB")
	seedStatus := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	btclient(t, "seeder", append([]string{"-o", src, "-p", strconv.Itoa(freePort(t, "127.0.0.1")), "--quiet", "--status", seedStatus},
		append(dhtOnly(boot), tor)...)...)
	waitSeeding(t, seedStatus, time.Minute)
	magnet := magnetOf(t, tor)
	began := time.Now()
	var leechers []*proc
	var dsts []string
	for i := range 29 {
		dst := t.TempDir()
		leechers = append(leechers, btclient(t, "leecher "+strconv.Itoa(i), append([]string{"-o", dst,
			"-p", strconv.Itoa(freePort(t, "127.0.0.1")), "--quiet", "--seed=false"}, append(dhtOnly(boot), magnet)...)...))
		dsts = append(dsts, dst)
	}
	// One more stays to show where its peers came from.
	watched := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	btclient(t, "watched leecher", append([]string{"-o", t.TempDir(), "-p", strconv.Itoa(freePort(t, "127.0.0.1")),
		"--quiet", "--status", watched}, append(dhtOnly(boot), magnet)...)...)
	for i, l := range leechers {
		if code := l.wait(3 * time.Minute); code != 0 {
			t.Fatalf("leecher %d exit status %d", i, code)
		}
		sameFile(t, content, filepath.Join(dsts[i], "data.bin"))
	}
	waitSeeding(t, watched, time.Minute)
	if st, _ := getMetadataStatus(watched); st.Learned["dht"] < 1 {
		t.Fatalf("the watched leecher learned peers %v: none from the DHT", st.Learned)
	}
	t.Logf("measured: 30 leechers found the seeder and each other through the DHT alone and finished in %v", time.Since(began).Round(time.Millisecond))
}
