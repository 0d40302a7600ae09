package e2e

import (
	"btclient/internal/testwait"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"btclient/internal/tooltest"
	"btclient/torrent"
)

// magnetOf is the magnet link of a torrent, as `btclient info` prints it.
func magnetOf(t *testing.T, torrentPath string, peers ...string) string {
	t.Helper()
	m, err := torrent.Load(torrentPath)
	if err != nil {
		t.Fatal(err)
	}
	mg := m.Magnet()
	mg.Peers = peers
	return mg.String()
}

// nestedContent writes a folder with nested subfolders under dir and returns
// the folder's path and its files relative to dir.
func nestedContent(t *testing.T, dir string) (string, []string) {
	t.Helper()
	root := filepath.Join(dir, "album")
	files := []string{"album/cover.jpg", "album/cd 1/01 intro.flac", "album/cd 1/deeper/notes.txt", "album/cd 2/02 outro.flac"}
	for i, f := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		randomFile(t, filepath.Dir(filepath.Join(dir, f)), filepath.Base(f), int64(3<<20+i*77777))
	}
	return root, files
}

// magnetContent is the content of a magnet interop case: one file, or a
// folder with nested folders.
func magnetContent(t *testing.T, multi bool) (src, tor string, files []string) {
	t.Helper()
	src = t.TempDir()
	if multi {
		root, fs := nestedContent(t, src)
		return src, makeTorrent(t, root, "--piece-length", "64KiB"), fs
	}
	content := randomFile(t, src, "data.bin", 24<<20)
	return src, makeTorrent(t, content, "--piece-length", "256KiB"), []string{"data.bin"}
}

func sameFiles(t *testing.T, a, b string, files []string) {
	t.Helper()
	for _, f := range files {
		sameFile(t, filepath.Join(a, f), filepath.Join(b, f))
	}
}

// magnetLeecher runs btclient on a magnet link until it has the whole
// torrent (--seed=false).
func magnetLeecher(t *testing.T, label, dst, magnet, statusAddr string, extra ...string) *proc {
	t.Helper()
	args := []string{"-o", dst, "-p", "0", "--quiet", "--seed=false", "--discovery-mode", "tracker"}
	if statusAddr != "" {
		args = append(args, "--status", statusAddr)
	}
	return btclient(t, label, append(append(args, extra...), magnet)...)
}

// Done means 1: libtorrent seeds and btclient has only the magnet with the
// seeder's address; btclient seeds and libtorrent has only the magnet and
// btclient's address. One file, and a folder with nested folders.
func TestMagnetInteropWithLibtorrent(t *testing.T) {
	needLibtorrent(t)
	for _, multi := range []bool{false, true} {
		name := map[bool]string{false: "one file", true: "nested folders"}[multi]
		t.Run("btclient fetches from libtorrent, "+name, func(t *testing.T) {
			src, tor, files := magnetContent(t, multi)
			ltAddr := hostPort("127.0.0.2", freePort(t, "127.0.0.2"))
			lt := libtorrent(t, "libtorrent seeder", "seed", tor, src, ltAddr)
			lt.waitOutput(time.Minute, "seeding")
			dst := t.TempDir()
			status := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
			l := magnetLeecher(t, "btclient leecher", dst, magnetOf(t, tor, ltAddr), status)
			if code := l.wait(2 * time.Minute); code != 0 {
				t.Fatalf("btclient exit status %d", code)
			}
			sameFiles(t, src, dst, files)
		})
		t.Run("libtorrent fetches from btclient, "+name, func(t *testing.T) {
			src, tor, files := magnetContent(t, multi)
			peer, _, _ := seeder(t, "btclient seeder", src, tor)
			dst := t.TempDir()
			lt := libtorrent(t, "libtorrent leecher", "leech", magnetOf(t, tor, peer), dst, hostPort("127.0.0.3", freePort(t, "127.0.0.3")), peer)
			if code := lt.wait(2 * time.Minute); code != 0 {
				t.Fatalf("libtorrent exit status %d", code)
			}
			sameFiles(t, src, dst, files)
		})
	}
}

// Done means 2: btclient dials Transmission with only a magnet link.
func TestMagnetFromTransmission(t *testing.T) {
	needBinary(t, "transmission-cli")
	needBinary(t, "stdbuf")
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 16<<20)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	cfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, "settings.json"), []byte(tiTransmissionSettings), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, "127.0.0.1")
	tr := start(t, "transmission seeder", "stdbuf", "-o0", "transmission-cli",
		"-g", cfg, "-w", src, "-p", strconv.Itoa(port), "-M", "-U", "-D", tor)
	tr.waitOutput(30*time.Second, "Seeding")
	dst := t.TempDir()
	l := magnetLeecher(t, "btclient leecher", dst, magnetOf(t, tor), "", "--peer", hostPort("127.0.0.1", port))
	if code := l.wait(time.Minute); code != 0 {
		t.Fatalf("btclient exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
}

// Done means 2: aria2c, given only a magnet link (naming opentracker),
// fetches the metadata and the file from a btclient seeder. aria2 announces
// left=0 while it has no metadata, and our tracker gives no seeders to a
// seeder (a choice its own tests hold it to); opentracker does.
func TestAria2cFetchesAMagnetFromBtclient(t *testing.T) {
	needBinary(t, "aria2c")
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 16<<20)
	ot := tooltest.StartOpentracker(t, "127.0.0.7", tiTorrentInfoHash(t, makeTorrent(t, content, "--piece-length", "256KiB")))
	tor := makeTorrent(t, content, "--piece-length", "256KiB", "--announce", ot.HTTP)
	seeder(t, "btclient seeder", src, tor)
	dst := t.TempDir()
	a := start(t, "aria2c leecher", "aria2c", "--no-conf",
		"--dir="+dst, "--seed-time=0", "--bt-save-metadata=false",
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
		"--enable-peer-exchange=false", "--file-allocation=none", "--interface=127.0.0.1",
		"--listen-port="+strconv.Itoa(freePort(t, "127.0.0.1")),
		"--summary-interval=0", "--console-log-level=notice",
		magnetOf(t, tor))
	if code := a.wait(time.Minute); code != 0 {
		t.Fatalf("aria2c exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
}

// metadataStatus is what /status says about where the metadata came from.
type metadataStatus struct {
	State   string         `json:"state"`
	Learned map[string]int `json:"peers_learned"`
	From    []string       `json:"metadata_from"`
}

func getMetadataStatus(addr string) (metadataStatus, bool) {
	var st metadataStatus
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st) == nil && st.State != ""
}

// Done means 3: one seeder has the .torrent, five btclients only the magnet
// (no x.pe, no tracker): they find each other through the overlay, all
// finish byte-identical, and the metadata comes from leechers too.
func TestMagnetsFindEachOtherThroughTheOverlay(t *testing.T) {
	src := t.TempDir()
	// Small pieces make a metadata of several BEP 9 pieces.
	content := randomFile(t, src, "data.bin", 48<<20)
	tor := makeTorrent(t, content, "--piece-length", "16KiB")
	seedOverlay := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	seedPort := freePort(t, "127.0.0.1")
	seedStatus := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	btclient(t, "seeder", "-o", src, "-p", strconv.Itoa(seedPort), "--bind", "127.0.0.1",
		"--overlay-port", strings.Split(seedOverlay, ":")[1], "--status", seedStatus, "--quiet",
		"--discovery-mode", "overlay", tor)
	waitSeeding(t, seedStatus, time.Minute)
	magnet := magnetOf(t, tor)
	var statuses []string
	var dsts []string
	for i := range 5 {
		dst := t.TempDir()
		status := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
		btclient(t, "magnet leecher "+strconv.Itoa(i), "-o", dst, "-p", strconv.Itoa(freePort(t, "127.0.0.1")),
			"--bind", "127.0.0.1", "--overlay-port", "0", "--bootstrap", seedOverlay,
			"--status", status, "--quiet", "--discovery-mode", "overlay", magnet)
		statuses, dsts = append(statuses, status), append(dsts, dst)
		time.Sleep(700 * time.Millisecond) // later ones find earlier ones holding the metadata
	}
	for i, s := range statuses {
		waitSeeding(t, s, 2*time.Minute)
		sameFile(t, content, filepath.Join(dsts[i], "data.bin"))
	}
	others := 0
	for _, s := range statuses {
		st, _ := getMetadataStatus(s)
		for _, from := range st.From {
			if !strings.HasSuffix(from, ":"+strconv.Itoa(seedPort)) {
				others++
			}
		}
	}
	if others == 0 {
		t.Fatal("every metadata piece came from the seeder; want some from the other leechers")
	}
	t.Logf("measured: %d metadata pieces came from leechers rather than the seeder", others)
}

// Done means 4: btclient C knows only peer B; B is connected to the seeder
// A and tells C about it through PEX; C downloads from A. B is a btclient,
// then a libtorrent peer, and can hardly download, so C's bytes come from A.
func TestPeerExchangeLeadsToTheSeeder(t *testing.T) {
	for _, b := range []string{"btclient", "libtorrent"} {
		t.Run("B is "+b, func(t *testing.T) {
			if b == "libtorrent" {
				needLibtorrent(t)
			}
			src := t.TempDir()
			const size = 16 << 20
			content := randomFile(t, src, "data.bin", size)
			tor := makeTorrent(t, content, "--piece-length", "256KiB")
			aPeer, aStatus, _ := seeder(t, "seeder A", src, tor)
			var bAddr string
			if b == "btclient" {
				bPort := freePort(t, "127.0.0.1")
				bAddr = hostPort("127.0.0.1", bPort)
				btclient(t, "peer B", "-o", t.TempDir(), "-p", strconv.Itoa(bPort), "--quiet",
					"--discovery-mode", "tracker", "--max-download-rate", "64KiB", "--peer", aPeer, tor)
			} else {
				bAddr = hostPort("127.0.0.4", freePort(t, "127.0.0.4"))
				start(t, "libtorrent B", debianPython, ltScript(t), "leech", tor, t.TempDir(),
					"--listen", bAddr, "--peer", aPeer, "--download-rate", "65536", "--timeout", "600", "--stay")
			}
			time.Sleep(time.Second) // B connects to A first
			dst := t.TempDir()
			cStatus := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
			c := leecher(t, "btclient C", dst, tor, cStatus, bAddr)
			if code := c.wait(2 * time.Minute); code != 0 {
				t.Fatalf("C exit status %d", code)
			}
			sameFile(t, content, filepath.Join(dst, "data.bin"))
			// /status is refreshed every tick: poll it.
			testwait.Until(t, 5*time.Second, "A to have uploaded most of the file to C", func() bool {
				st, ok := getStatus(aStatus)
				return ok && st.Uploaded >= size*3/4
			})
		})
	}
}

func ltScript(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("testdata/lt.py")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Done means 5: a magnet naming only opentracker's UDP address downloads
// from a libtorrent seeder that announced there.
func TestMagnetThroughAUDPTracker(t *testing.T) {
	needLibtorrent(t)
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 16<<20)
	// The info hash does not depend on the announce URL: opentracker's
	// whitelist takes it first, then the torrent names the tracker.
	ot := tooltest.StartOpentracker(t, "127.0.0.6", tiTorrentInfoHash(t, makeTorrent(t, content, "--piece-length", "256KiB")))
	tor := makeTorrent(t, content, "--piece-length", "256KiB", "--announce", ot.UDP)
	lt := libtorrent(t, "libtorrent seeder", "seed", tor, src, hostPort("127.0.0.5", freePort(t, "127.0.0.5")))
	lt.waitOutput(time.Minute, "seeding")
	magnet := magnetOf(t, tor)
	if !strings.Contains(magnet, "tr=udp") {
		t.Fatalf("magnet %s names no UDP tracker", magnet)
	}
	dst := t.TempDir()
	l := btclient(t, "btclient leecher", "-o", dst, "-p", "0", "--quiet", "--seed=false", "--discovery-mode", "tracker", magnet)
	if code := l.wait(2 * time.Minute); code != 0 {
		t.Fatalf("btclient exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
}

// Done means 8: with no reachable peer a magnet waits and says it is
// fetching metadata, and SIGINT ends it with status 0; once it has fetched
// the metadata, a second run of the same magnet does not fetch it again.
func TestMagnetWithoutPeersWaitsAndItsMetadataIsKept(t *testing.T) {
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 4<<20)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	dst := t.TempDir()
	status := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	lonely := magnetLeecher(t, "lonely", dst, magnetOf(t, tor, "127.0.0.1:1"), status)
	testwait.Until(t, 10*time.Second, "fetching metadata in /status", func() bool {
		st, ok := getStatus(status)
		return ok && st.State == "fetching metadata"
	})
	time.Sleep(2 * time.Second)
	if st, _ := getStatus(status); st.State != "fetching metadata" || st.Size != 0 {
		t.Fatalf("without peers: %+v", st)
	}
	lonely.signal(syscall.SIGINT)
	if code := lonely.wait(15 * time.Second); code != 0 {
		t.Fatalf("SIGINT: exit status %d", code)
	}

	peer, _, seed := seeder(t, "seeder", src, tor)
	first := magnetLeecher(t, "first run", dst, magnetOf(t, tor, peer), "")
	if code := first.wait(time.Minute); code != 0 {
		t.Fatalf("first run: exit status %d", code)
	}
	if !strings.Contains(first.out.String(), "metadata received") {
		t.Fatal("the first run did not fetch the metadata")
	}
	seed.kill()
	status2 := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	second := magnetLeecher(t, "second run", dst, magnetOf(t, tor), status2)
	if code := second.wait(30 * time.Second); code != 0 {
		t.Fatalf("second run: exit status %d", code)
	}
	if out := second.out.String(); strings.Contains(out, "fetching metadata") || strings.Contains(out, "metadata received") {
		t.Fatalf("the second run fetched the metadata again:\n%s", tail(out, 2000))
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
}
