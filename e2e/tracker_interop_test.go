package e2e

// Process-level proof of issue 4 ("done means" 1–3): real clients use our
// tracker, we use a real tracker (opentracker), and the discovery modes do
// what they promise. Everything runs on loopback.

import (
	"btclient/internal/testwait"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"btclient/internal/tooltest"
	"btclient/torrent"
)

// tiOurTracker starts `btclient tracker` on loopback and returns its announce URL.
func tiOurTracker(t *testing.T) string {
	t.Helper()
	addr := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	p := btclient(t, "btclient tracker", "tracker", "--listen", addr, "--interval", "5s")
	p.waitOutput(10*time.Second, "tracker listening on "+addr)
	return "http://" + addr + "/announce"
}

// tiTorrentInfoHash returns the info hash of the torrent at path.
func tiTorrentInfoHash(t *testing.T, path string) [20]byte {
	t.Helper()
	m, err := torrent.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m.InfoHash
}

var tiScrapeComplete = regexp.MustCompile(`8:completei(\d+)e`)

// tiSeedersAt scrapes the tracker behind announceURL (BEP 48 convention:
// /announce → /scrape) and returns its seeder count for ih, or -1 when the
// tracker does not answer or does not know the torrent yet.
func tiSeedersAt(announceURL string, ih [20]byte) int {
	u := strings.TrimSuffix(announceURL, "announce") + "scrape?info_hash=" + tooltest.EscapeHash(ih)
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	m := tiScrapeComplete.FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// tiWaitSeederRegistered waits until the tracker counts at least one seeder of ih.
func tiWaitSeederRegistered(t *testing.T, announceURL string, ih [20]byte, d time.Duration) {
	t.Helper()
	testwait.Until(t, d, "a seeder registered at "+announceURL, func() bool {
		return tiSeedersAt(announceURL, ih) >= 1
	})
}

// tiCountingTracker is an HTTP "tracker" that answers every announce with an
// empty peer list and counts the connections and requests it receives.
type tiCountingTracker struct {
	url            string // announce URL
	conns, queries atomic.Int64
}

func tiNewCountingTracker(t *testing.T) *tiCountingTracker {
	t.Helper()
	ct := &tiCountingTracker{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct.queries.Add(1)
		io.WriteString(w, "d8:intervali60e5:peers0:e")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ct.conns.Add(1)
		}
	}
	srv.Start() // httptest listens on 127.0.0.1
	t.Cleanup(srv.Close)
	ct.url = srv.URL + "/announce"
	return ct
}

// tiFirstByteOrPeer reports whether the client at statusAddr has a peer or payload.
func tiFirstByteOrPeer(statusAddr string) bool {
	st, ok := getStatus(statusAddr)
	return ok && (st.Peers > 0 || st.Downloaded > 0)
}

// tiRefused reports whether a TCP dial to addr is actively refused (nothing listens).
func tiRefused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// --- done means 1: real clients use our tracker ---------------------------

// tiRealClientLeechesThroughOurTracker runs `btclient tracker` and a btclient
// seeder announcing to it, then lets leech (a third-party client that knows
// only the torrent, hence only the tracker) download into a fresh directory.
func tiRealClientLeechesThroughOurTracker(t *testing.T, leech func(t *testing.T, tor, dst string) *proc) {
	const size = 24 << 20
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", size)
	announce := tiOurTracker(t)
	tor := makeTorrent(t, content, "--piece-length", "256KiB", "--announce", announce)
	_, seedStatus, _ := seeder(t, "btclient seeder", src, tor)
	tiWaitSeederRegistered(t, announce, tiTorrentInfoHash(t, tor), 15*time.Second)

	dst := t.TempDir()
	began := time.Now()
	l := leech(t, tor, dst)
	if code := l.wait(50 * time.Second); code != 0 {
		t.Fatalf("%s exit status %d\n%s", l.name, code, tail(l.out.String(), 4000))
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
	// /status is a snapshot refreshed every tick: poll it.
	testwait.Until(t, 5*time.Second, "the btclient seeder to have uploaded the whole file", func() bool {
		st, ok := getStatus(seedStatus)
		return ok && st.Uploaded >= size
	})
	t.Logf("measured: %s downloaded %d MiB through our tracker in %v", l.name, size>>20, time.Since(began).Round(time.Millisecond))
}

func TestTrackerInteropAria2cLeechesFromBtclient(t *testing.T) {
	needBinary(t, "aria2c")
	tiRealClientLeechesThroughOurTracker(t, func(t *testing.T, tor, dst string) *proc {
		return start(t, "aria2c leecher", "aria2c", "--no-conf",
			"--dir="+dst, "--seed-time=0",
			"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
			"--enable-peer-exchange=false", "--file-allocation=none", "--interface=127.0.0.1",
			"--listen-port="+strconv.Itoa(freePort(t, "127.0.0.1")),
			"--summary-interval=0", "--console-log-level=notice",
			tor)
	})
}

func TestTrackerInteropLibtorrentLeechesFromBtclient(t *testing.T) {
	needLibtorrent(t)
	tiRealClientLeechesThroughOurTracker(t, func(t *testing.T, tor, dst string) *proc {
		// Its own 127.0.0.x, and no --peer: the seeder comes from the tracker.
		return libtorrent(t, "libtorrent leecher", "leech", tor, dst, hostPort("127.0.0.3", freePort(t, "127.0.0.3")))
	})
}

// tiTransmissionSettings keeps Transmission on loopback and away from every
// discovery channel but the ones the test gives it.
const tiTransmissionSettings = `{
  "dht-enabled": false,
  "lpd-enabled": false,
  "pex-enabled": false,
  "utp-enabled": false,
  "port-forwarding-enabled": false,
  "rpc-enabled": false,
  "bind-address-ipv4": "127.0.0.1",
  "bind-address-ipv6": "::1",
  "speed-limit-up-enabled": false,
  "speed-limit-down-enabled": false,
  "ratio-limit-enabled": false,
  "idle-seeding-limit-enabled": false
}
`

// Transmission never dials loopback peers it learns from a tracker, so the
// other direction is shown: it announces to our tracker as a seeder and
// btclient dials it with --peer.
func TestTrackerInteropBtclientLeechesFromTransmission(t *testing.T) {
	needBinary(t, "transmission-cli")
	needBinary(t, "stdbuf")
	const size = 16 << 20
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", size)
	announce := tiOurTracker(t)
	tor := makeTorrent(t, content, "--piece-length", "256KiB", "--announce", announce)

	// A private, fresh config dir: a stale resume file there makes
	// Transmission "seed" a torrent it believes it has none of.
	cfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, "settings.json"), []byte(tiTransmissionSettings), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, "127.0.0.1")
	// stdbuf: transmission-cli prints its status line to a buffered stdout.
	tr := start(t, "transmission seeder", "stdbuf", "-o0", "transmission-cli",
		"-g", cfg, "-w", src, "-p", strconv.Itoa(port), "-M", "-U", "-D", tor)
	tr.waitOutput(30*time.Second, "Seeding")
	// Transmission uses our tracker too: it is counted as the seeder.
	tiWaitSeederRegistered(t, announce, tiTorrentInfoHash(t, tor), 15*time.Second)

	dst := t.TempDir()
	began := time.Now()
	l := leecher(t, "btclient leecher", dst, tor, "", hostPort("127.0.0.1", port))
	if code := l.wait(50 * time.Second); code != 0 {
		t.Fatalf("btclient exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
	t.Logf("measured: btclient downloaded %d MiB from Transmission in %v", size>>20, time.Since(began).Round(time.Millisecond))
}

// --- done means 2: we use a real tracker ------------------------------------

func TestTrackerInteropBtclientUsesOpentracker(t *testing.T) {
	tiBtclientUsesOpentracker(t, func(ot *tooltest.Opentracker) string { return ot.HTTP })
}

// TestTrackerInteropBtclientUsesOpentrackerOverUDP: the same through
// opentracker's UDP side (BEP 15), which libtorrent announces to as well.
func TestTrackerInteropBtclientUsesOpentrackerOverUDP(t *testing.T) {
	tiBtclientUsesOpentracker(t, func(ot *tooltest.Opentracker) string { return ot.UDP })
}

// tiBtclientUsesOpentracker: a libtorrent seeder and a btclient leecher
// whose torrent names only the announce URL of opentracker that pick
// returns; the leecher finds the seeder there and downloads.
func tiBtclientUsesOpentracker(t *testing.T, pick func(*tooltest.Opentracker) string) {
	needLibtorrent(t)
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 24<<20)
	// The announce URL is only known once opentracker runs, and the info hash
	// (the whitelist entry) does not depend on it: make the torrent twice.
	ih := tiTorrentInfoHash(t, makeTorrent(t, content, "--piece-length", "256KiB"))
	ot := tooltest.StartOpentracker(t, "127.0.0.1", ih)
	announce := pick(ot)
	tor := makeTorrent(t, content, "--piece-length", "256KiB", "--announce", announce)
	if got := tiTorrentInfoHash(t, tor); got != ih {
		t.Fatalf("info hash changed with the announce URL: %x != %x", got, ih)
	}

	// A hash opentracker does not list is refused: the whitelist is in force.
	other := ih
	other[0] ^= 0xff
	if body := trackerGet(t, ot.HTTP+"?info_hash="+tooltest.EscapeHash(other)+"&peer_id=-PROBE0-000000000001&port=1&left=1"); !strings.Contains(body, "failure reason") {
		t.Fatalf("opentracker accepted an info hash missing from its whitelist: %q", body)
	}

	lt := libtorrent(t, "libtorrent seeder", "seed", tor, src, hostPort("127.0.0.2", freePort(t, "127.0.0.2")))
	lt.waitOutput(30*time.Second, "seeding")
	tiWaitSeederRegistered(t, ot.HTTP, ih, 20*time.Second)

	dst := t.TempDir()
	// Tracker mode, no --peer: the only way to the seeder is opentracker.
	l := btclient(t, "btclient leecher", "-o", dst, "-p", "0", "--quiet", "--seed=false", "--discovery-mode", "tracker", tor)
	if code := l.wait(50 * time.Second); code != 0 {
		t.Fatalf("btclient exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
}

// --- done means 3: discovery modes -------------------------------------------

func TestAutoModeFallsBackToTracker(t *testing.T) {
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 16<<20)
	announce := tiOurTracker(t)
	tor := makeTorrent(t, content, "--piece-length", "256KiB", "--announce", announce)
	seeder(t, "btclient seeder (tracker mode)", src, tor)
	tiWaitSeederRegistered(t, announce, tiTorrentInfoHash(t, tor), 15*time.Second)

	deadBootstrap := hostPort("127.0.0.1", freePort(t, "127.0.0.1")) // nobody listens there
	dst := t.TempDir()
	status := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	begin := time.Now()
	// Default discovery mode (auto): no --discovery-mode flag.
	l := btclient(t, "btclient leecher (auto mode)", "-o", dst, "-p", "0", "--quiet", "--seed=false",
		"--status", status, "--bootstrap", deadBootstrap, "--overlay-port", "0", "--advertise", "127.0.0.1", tor)
	// Within 10 s of starting: the overlay yields nobody, the tracker does.
	testwait.Until(t, 10*time.Second, "the auto-mode leecher to reach the seeder", func() bool {
		return tiFirstByteOrPeer(status) || l.exited()
	})
	d := time.Since(begin)
	t.Logf("measured: auto fallback to tracker after %v", d.Round(time.Millisecond))
	if code := l.wait(40 * time.Second); code != 0 {
		t.Fatalf("leecher exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
	if !strings.Contains(l.out.String(), "falling back to the tracker") {
		t.Errorf("leecher completed but never logged the fallback to the tracker")
	}
}

// tiOverlayOnly starts a btclient in overlay mode on loopback with a status
// server and returns the overlay address it listens on (read from its log:
// --overlay-port 0 leaves no window for another process to take the port).
func tiOverlayOnly(t *testing.T, label, dir, tor string, bootstrap string, extra ...string) (overlayAddr, statusAddr string, p *proc) {
	t.Helper()
	statusAddr = hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	args := []string{"-o", dir, "-p", "0", "--quiet", "--status", statusAddr,
		"--discovery-mode", "overlay", "--overlay-port", "0", "--advertise", "127.0.0.1"}
	if bootstrap != "" {
		args = append(args, "--bootstrap", bootstrap)
	}
	p = btclient(t, label, append(append(args, extra...), tor)...)
	p.waitOutput(20*time.Second, `msg="overlay listening"`)
	m := tiOverlayListening.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("%s: no overlay address in its log:\n%s", label, p.out.String())
	}
	return m[1], statusAddr, p
}

var tiOverlayListening = regexp.MustCompile(`msg="overlay listening" addr=(\S+)`)

func TestDiscoveryModeOverlayNeverContactsTracker(t *testing.T) {
	ct := tiNewCountingTracker(t)
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 8<<20)
	tor := makeTorrent(t, content, "--piece-length", "256KiB", "--announce", ct.url)

	seedOverlay, seedStatus, s := tiOverlayOnly(t, "overlay seeder", src, tor, "")
	waitSeeding(t, seedStatus, 30*time.Second)
	dst := t.TempDir()
	_, leechStatus, l := tiOverlayOnly(t, "overlay leecher", dst, tor, seedOverlay)
	waitSeeding(t, leechStatus, 40*time.Second)
	sameFile(t, content, filepath.Join(dst, "data.bin"))

	// Shut both down cleanly, so the `completed` and `stopped` announces
	// have gone out too, before looking at the counter.
	for _, p := range []*proc{l, s} {
		p.signal(syscall.SIGTERM)
		if code := p.wait(15 * time.Second); code != 0 {
			t.Fatalf("%s exited %d after SIGTERM, want 0", p.name, code)
		}
	}
	if n, q := ct.conns.Load(), ct.queries.Load(); n+q != 0 {
		t.Fatalf("overlay mode contacted the torrent's tracker: %d connections, %d requests", n, q)
	}

	// Control: the same torrent in tracker mode does reach the counter, so a
	// zero above means "not contacted", not "unreachable URL".
	btclient(t, "tracker-mode control", "-o", src, "-p", "0", "--quiet", "--discovery-mode", "tracker", tor)
	testwait.Until(t, 10*time.Second, "the tracker-mode control to announce", func() bool { return ct.queries.Load() > 0 })
}

// tiListeningPorts returns the TCP ports pid listens on, from /proc: the
// sockets among its file descriptors that /proc/net/tcp{,6} list in state
// LISTEN. Unlike a dial, this cannot be fooled by another process.
func tiListeningPorts(t *testing.T, pid int) map[int]bool {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if n, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports[int(n)] = true
			}
		}
	}
	return ports
}

func TestDiscoveryModeTrackerNeverOpensOverlayPort(t *testing.T) {
	ct := tiNewCountingTracker(t)
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 1<<20)
	tor := makeTorrent(t, content, "--announce", ct.url)

	// run starts a seeder in mode with --overlay-port P (P free a moment
	// ago) and waits until it seeds; it returns the process, P and its
	// status address. Should another process grab P first (the overlay then
	// fails to bind and btclient exits), it tries again with another port.
	run := func(t *testing.T, mode string) (p *proc, port int, status string) {
		t.Helper()
		for attempt := 1; ; attempt++ {
			port = freePort(t, "127.0.0.1")
			status = hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
			p = btclient(t, "btclient "+mode, "-o", src, "-p", "0", "--quiet", "--status", status,
				"--discovery-mode", mode, "--overlay-port", strconv.Itoa(port), "--advertise", "127.0.0.1", tor)
			testwait.Until(t, 20*time.Second, "btclient seeding", func() bool {
				st, ok := getStatus(status)
				return p.exited() || ok && st.State == "seeding"
			})
			if !p.exited() {
				return p, port, status
			}
			if attempt == 3 || !strings.Contains(p.out.String(), "address already in use") {
				t.Fatalf("btclient exited:\n%s", p.out.String())
			}
		}
	}

	t.Run("tracker mode leaves the overlay port closed", func(t *testing.T) {
		p, port, status := run(t, "tracker")
		overlay := hostPort("127.0.0.1", port)
		// It must stay closed for as long as we watch, while the session runs.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if tiListeningPorts(t, p.cmd.Process.Pid)[port] {
				t.Fatalf("btclient listens on the overlay port %d in tracker mode", port)
			}
			if !tiRefused(overlay) {
				t.Logf("%s accepts connections, but not btclient's (another process took the port)", overlay)
			}
			if _, ok := getStatus(status); !ok || p.exited() {
				t.Fatal("btclient stopped answering /status")
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Peer wire and /status, nothing else: no overlay on any port.
		if ports := tiListeningPorts(t, p.cmd.Process.Pid); len(ports) != 2 {
			t.Errorf("btclient listens on %d TCP ports %v, want 2 (peer wire and /status)", len(ports), ports)
		}
		if strings.Contains(p.out.String(), "overlay listening") {
			t.Errorf("tracker mode started the overlay:\n%s", p.out.String())
		}
		if ct.queries.Load() == 0 {
			t.Error("tracker mode never announced to the torrent's tracker")
		}
	})

	// Control: the same checks see the overlay port when the overlay runs.
	t.Run("auto mode opens the overlay port", func(t *testing.T) {
		p, port, _ := run(t, "auto")
		testwait.Until(t, 5*time.Second, "the overlay port to accept", func() bool { return !tiRefused(hostPort("127.0.0.1", port)) })
		if ports := tiListeningPorts(t, p.cmd.Process.Pid); !ports[port] || len(ports) != 3 {
			t.Fatalf("btclient listens on %v, want the overlay port %d, peer wire and /status", ports, port)
		}
	})
}
