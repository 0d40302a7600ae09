package e2e

import (
	"bufio"
	"context"
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"btclient/internal/testwait"
	"btclient/overlay"
)

// scaleNet is a set of `btclient node` processes, node i on its own
// 127.0.0.(10+i), each announcing made-up providers of its own torrents.
type scaleNet struct {
	procs    []*proc
	addrs    []string
	hashes   [][][20]byte
	torrents int
}

// fakeProvider is the peer-wire address node i announces for its torrent j.
func fakeProvider(i, j int) string { return fmt.Sprintf("127.0.0.%d:%d", 10+i, 20000+j) }

func fakeHash(i, j int) [20]byte { return sha1.Sum([]byte(fmt.Sprintf("overlay scale %d %d", i, j))) }

// startScaleNet starts n nodes announcing torrents entries each; every node
// bootstraps through node 0 and one random earlier node, and the overlay has
// formed (every node sees every other live) when it returns.
func startScaleNet(t *testing.T, n, torrents int) *scaleNet {
	t.Helper()
	rng := rand.New(rand.NewPCG(19, 19))
	s := &scaleNet{torrents: torrents}
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", 10+i)
		args := []string{"node", "--overlay-port", "0", "--bind", ip, "--advertise", ip}
		if i > 0 {
			boot := []string{s.addrs[0]}
			if j := rng.IntN(i); j != 0 {
				boot = append(boot, s.addrs[j])
			}
			args = append(args, "--bootstrap", joinArgs(boot...))
		}
		var hs [][20]byte
		for j := range torrents {
			h := fakeHash(i, j)
			hs = append(hs, h)
			args = append(args, "--announce", fmt.Sprintf("%x=%s", h, fakeProvider(i, j)))
		}
		p := btclient(t, fmt.Sprintf("node%d", i), args...)
		var addr string
		testwait.Until(t, 10*time.Second, fmt.Sprintf("node%d to listen", i), func() bool {
			if m := overlayListening.FindStringSubmatch(p.out.String()); m != nil {
				addr = m[1]
			}
			return addr != "" || p.exited()
		})
		if addr == "" {
			t.Fatalf("node%d exited before listening:\n%s", i, tail(p.out.String(), 2000))
		}
		s.procs, s.addrs, s.hashes = append(s.procs, p), append(s.addrs, addr), append(s.hashes, hs)
	}
	cl := overlay.Client{Timeout: 2 * time.Second}
	testwait.Until(t, 60*time.Second, "every node to see every other live", func() bool {
		return everyNode(s.addrs, func(a string) bool {
			live, err := cl.Ping(context.Background(), a)
			return err == nil && len(live) == n-1
		})
	})
	return s
}

// lookup asks node at addr (as a client: the node asks the owners) for the
// providers of h and returns their addresses.
func scaleLookup(addr string, h [20]byte) ([]string, error) {
	cl := overlay.Client{Timeout: 3 * time.Second}
	ps, _, err := cl.Lookup(context.Background(), addr, h, 100)
	var out []string
	for _, p := range ps {
		out = append(out, p.Addr)
	}
	return out, err
}

// TestOverlayLeecherFindsTheOneSeederAmongManyProviders: 10 nodes announce
// 1,000 made-up torrents each; a seeder and a leecher of a real torrent,
// each knowing one bootstrap node, find each other and the leecher
// downloads. scripts/overlay-scale.sh runs the 50 × 1,000 case
// (OVERLAY_SCALE_NODES, OVERLAY_SCALE_TORRENTS).
func TestOverlayLeecherFindsTheOneSeederAmongManyProviders(t *testing.T) {
	n := envInt("OVERLAY_SCALE_NODES", 10)
	torrents := envInt("OVERLAY_SCALE_TORRENTS", 1000)
	s := startScaleNet(t, n, torrents)
	src := t.TempDir()
	content, tor, meta := randomTorrent(t, src, 2<<20)
	_, seedStatus, _ := overlayNode(t, "seeder", src, tor, []string{s.addrs[0]})
	waitSeeding(t, seedStatus, time.Minute)
	start := time.Now()
	dir := t.TempDir()
	_, leechStatus, _ := overlayNode(t, "leecher", dir, tor, []string{s.addrs[n-1]})
	waitSeeding(t, leechStatus, 2*time.Minute)
	took := time.Since(start)
	sameFile(t, content, filepath.Join(dir, "data.bin"))
	st, _ := getStatus(leechStatus)
	ps, err := scaleLookup(s.addrs[n/2], meta.InfoHash)
	t.Logf("measured: among %d × %d made-up providers a leecher knowing one bootstrap node found the one seeder and downloaded %d bytes (%d from peers) in %v from its start; a lookup from another node returns %v (%v)",
		n, torrents, st.Size, st.Downloaded, took.Round(time.Millisecond), ps, err)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// loBytes returns the bytes sent on lo so far (in a private network
// namespace, all the overlay's traffic) and whether lo is the only
// interface (that is, whether we run in such a namespace).
func loBytes(t *testing.T) (int64, bool) {
	f, err := os.Open("/proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lo int64 = -1
	ifaces := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		ifaces++
		if strings.TrimSpace(name) == "lo" {
			fields := strings.Fields(rest)
			lo, _ = strconv.ParseInt(fields[8], 10, 64) // transmit bytes
		}
	}
	return lo, ifaces == 1
}

// peakRSS returns the peak resident set of pid in KiB (VmHWM).
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return -1
}

// lastLine returns the last line of out that contains what.
func lastLine(out, what string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], what) {
			return lines[i]
		}
	}
	return ""
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestOverlayScale measures the overlay at 50 nodes × 1,000 torrents (run by
// scripts/overlay-scale.sh, in a private network namespace; skipped unless
// OVERLAY_SCALE_NODES is set).
func TestOverlayScale(t *testing.T) {
	if os.Getenv("OVERLAY_SCALE_NODES") == "" {
		t.Skip("set OVERLAY_SCALE_NODES (scripts/overlay-scale.sh)")
	}
	n := envInt("OVERLAY_SCALE_NODES", 50)
	torrents := envInt("OVERLAY_SCALE_TORRENTS", 1000)
	lookups := envInt("OVERLAY_SCALE_LOOKUPS", 200)
	warm := time.Duration(envInt("OVERLAY_SCALE_WARMUP_S", 40)) * time.Second
	window := time.Duration(envInt("OVERLAY_SCALE_WINDOW_S", 60)) * time.Second
	start := time.Now()
	s := startScaleNet(t, n, torrents)
	t.Logf("scale: %d nodes × %d torrents (%d providers) formed in %v", n, torrents, n*torrents, time.Since(start).Round(time.Millisecond))
	time.Sleep(warm)

	// Steady state: bytes on lo over the window, nothing else running.
	b0, private := loBytes(t)
	time.Sleep(window)
	b1, _ := loBytes(t)
	perNode := float64(b1-b0) / window.Seconds() / float64(n)
	where := "in a private network namespace"
	if !private {
		where = "on the host's lo (not private: other traffic included)"
	}
	t.Logf("scale: steady-state traffic %.0f bytes/s per node (%d bytes on lo %s over %v)", perNode, b1-b0, where, window)
	deaths := 0
	for _, p := range s.procs {
		deaths += strings.Count(p.out.String(), "overlay node dead")
	}
	if os.Getenv("OVERLAY_SCALE_DEBUG") != "" {
		for _, l := range strings.Split(s.procs[1].out.String(), "\n") {
			if strings.Contains(l, "traffic") || strings.Contains(l, "dead") {
				t.Log(l)
			}
		}
	}
	t.Logf("scale: %d times a node was found dead by another (none was killed yet); node 1's last traffic line: %s", deaths,
		lastLine(s.procs[1].out.String(), "overlay traffic"))

	// Lookups of random torrents from random nodes.
	rng := rand.New(rand.NewPCG(1, 9))
	var lat []time.Duration
	right := 0
	for range lookups {
		o, j, from := rng.IntN(n), rng.IntN(torrents), rng.IntN(n)
		t0 := time.Now()
		ps, err := scaleLookup(s.addrs[from], s.hashes[o][j])
		lat = append(lat, time.Since(t0))
		if err == nil && len(ps) == 1 && ps[0] == fakeProvider(o, j) {
			right++
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("scale: %d/%d lookups (%.1f %%) returned exactly the right provider; latency p50 %v, p99 %v",
		right, lookups, 100*float64(right)/float64(lookups), pct(lat, 0.5).Round(10*time.Microsecond), pct(lat, 0.99).Round(10*time.Microsecond))

	var rss []int64
	for _, p := range s.procs {
		rss = append(rss, peakRSS(p.cmd.Process.Pid))
	}
	slices.Sort(rss)
	t.Logf("scale: peak RSS per node: median %.1f MiB, max %.1f MiB", float64(rss[len(rss)/2])/1024, float64(rss[len(rss)-1])/1024)

	// A new provider, announced at one node, found from every node.
	var newHash [20]byte
	copy(newHash[:], "a brand new torrent!")
	newProv := "127.0.0.10:29999"
	cl := overlay.Client{Timeout: 2 * time.Second}
	t0 := time.Now()
	if err := cl.Announce(context.Background(), s.addrs[rng.IntN(n)], newHash, overlay.Provider{Addr: newProv}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, "every node to find the new provider", func() bool {
		return everyNode(s.addrs, func(a string) bool {
			ps, err := scaleLookup(a, newHash)
			return err == nil && slices.Contains(ps, newProv)
		})
	})
	t.Logf("scale: a new provider was found from every node after %v", time.Since(t0).Round(time.Millisecond))

	// A node killed: its providers vanish from every lookup.
	k := n - 1
	s.procs[k].kill()
	t0 = time.Now()
	others := s.addrs[:k]
	var mu sync.Mutex
	testwait.Until(t, 60*time.Second, "the killed node's providers to vanish", func() bool {
		found := 0
		everyNode(others, func(a string) bool {
			j := rand.IntN(torrents)
			ps, err := scaleLookup(a, s.hashes[k][j])
			if err != nil || len(ps) > 0 {
				mu.Lock()
				found++
				mu.Unlock()
			}
			return true
		})
		time.Sleep(200 * time.Millisecond)
		return found == 0
	})
	t.Logf("scale: a killed node's providers were gone from every node's lookups after %v", time.Since(t0).Round(time.Millisecond))
	for i, p := range s.procs[:k] {
		if p.exited() {
			t.Errorf("node%d exited:\n%s", i, tail(p.out.String(), 2000))
		}
	}
}
