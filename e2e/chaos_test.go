package e2e

import (
	"btclient/internal/testwait"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"btclient/overlay"
)

// The chaos tests prove the seed's reliability promises (seed 002, section
// 7.5) on real processes. `make test` runs a short variant; scripts/chaos.sh
// sets the environment for the full run:
//
//	CHAOS_SIZE_MIB   size of the shared file (32; the full run uses 128)
//	CHAOS_ROUNDS     kill-and-restart rounds of the churn loop (6; full 20)
//	CHAOS_DURATION   seconds a leecher's capped download would take with no
//	                 churn (40): the rate cap is size/duration, so the kills
//	                 land mid-download whatever the size
//	CHAOS_LOOKUPS    fresh nodes that try discovery with 3 of 5 bootstrap
//	                 nodes dead (30)
//	CHAOS_SEED       random seed, to replay a run
//
// Every number the seed promises is logged on a line starting with
// "measured: promise", which chaos.sh turns into a table.

func chaosEnv(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

// chaosPromise logs one promise in the format chaos.sh tabulates and fails
// the test when it is not met.
func chaosPromise(t *testing.T, id, what, got, target string, ok bool) {
	t.Helper()
	verdict := "met"
	if !ok {
		verdict = "NOT MET"
	}
	t.Logf("measured: promise %s | %s | %s | %s | %s", id, what, got, target, verdict)
	if !ok {
		t.Errorf("promise %s (%s) not met: %s, want %s", id, what, got, target)
	}
}

// chaosDialer dials from a loopback source address of its own, so the
// test's requests do not spend the per-IP rate limits of the swarm's nodes
// (which all dial from 127.0.0.1), as a separate host would not.
func chaosDialer(ip string) func(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	return func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
}

// chaosPort returns a port that stays free for a process that is down
// between a kill and its restart: freePort's ports lie below the ephemeral
// range, where no outbound connection can take them.
func chaosPort(t *testing.T) int {
	t.Helper()
	return freePort(t, "")
}

// chaosAddr is 127.0.0.1 with a chaosPort.
func chaosAddr(t *testing.T) string { return hostPort("127.0.0.1", chaosPort(t)) }

// chaosSeeder is core_test's seeder on chaosPort ports: a btclient seeding from
// dir in tracker mode (so only --peer peers), with a status server.
func chaosSeeder(t *testing.T, label, dir, tor string, extra ...string) (peerAddr, statusAddr string, p *proc) {
	t.Helper()
	port := chaosPort(t)
	statusAddr = chaosAddr(t)
	args := append([]string{"-o", dir, "-p", strconv.Itoa(port), "--status", statusAddr, "--quiet", "--discovery-mode", "tracker"}, extra...)
	p = btclient(t, label, append(args, tor)...)
	waitSeeding(t, statusAddr, 2*time.Minute)
	return hostPort("127.0.0.1", port), statusAddr, p
}

func chaosClient(ip string) *overlay.Client {
	return &overlay.Client{Timeout: 2 * time.Second, Dial: chaosDialer(ip)}
}

// chaosTransport is an overlay transport that listens and dials on one
// loopback address, like a node on a host of its own.
type chaosTransport struct {
	net.Listener
	dial func(ctx context.Context, addr string) (net.Conn, error)
}

func (c *chaosTransport) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	return c.dial(ctx, addr)
}

// chaosNode is one btclient of the swarm, with fixed ports so that it can
// be killed and restarted in place.
type chaosNode struct {
	label    string
	dir      string
	peer     string // peer-wire address
	overlay  string // overlay address
	status   string
	args     []string
	p        *proc
	runs     []*proc // every run of this node, for the log checks
	leecher  bool
	gone     bool // killed for good
	restarts int
}

func (n *chaosNode) start(t *testing.T) {
	t.Helper()
	label := n.label
	if n.restarts > 0 {
		label = fmt.Sprintf("%s (restart %d)", n.label, n.restarts)
	}
	n.p = btclient(t, label, n.args...)
	n.runs = append(n.runs, n.p)
}

func newChaosNode(t *testing.T, label, dir, tor string, bootstrap []string, extra ...string) *chaosNode {
	t.Helper()
	pp, op := chaosPort(t), chaosPort(t)
	n := &chaosNode{
		label: label, dir: dir,
		peer:    hostPort("127.0.0.1", pp),
		overlay: hostPort("127.0.0.1", op),
		status:  chaosAddr(t),
	}
	n.args = append([]string{"-o", dir, "-p", strconv.Itoa(pp), "--overlay-port", strconv.Itoa(op),
		"--advertise", "127.0.0.1", "--discovery-mode", "overlay", "--status", n.status, "--quiet",
		"--bootstrap", joinArgs(bootstrap...)}, extra...)
	n.args = append(n.args, tor)
	n.start(t)
	return n
}

// stop ends n with sig (SIGKILL or SIGTERM); a SIGTERM must end in a clean
// exit 0 within 10 s.
func (n *chaosNode) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	n.p.signal(sig)
	code := n.p.wait(15 * time.Second)
	if sig == syscall.SIGTERM && code != 0 {
		t.Errorf("%s exited %d after SIGTERM, want 0:\n%s", n.label, code, tail(n.p.out.String(), 2000))
	}
}

// TestChaosSwarm runs a 12-node swarm (2 seeders, 10 leechers) that finds
// peers only through an overlay of 5 bootstrap nodes, and measures four of
// the seed's promises while it kills and restarts leechers, kills one seeder
// for good, then 70 % of the leechers, then 3 of the 5 bootstrap nodes.
func TestChaosSwarm(t *testing.T) {
	sizeMiB := chaosEnv(t, "CHAOS_SIZE_MIB", 32)
	rounds := chaosEnv(t, "CHAOS_ROUNDS", 6)
	duration := chaosEnv(t, "CHAOS_DURATION", 40)
	lookups := chaosEnv(t, "CHAOS_LOOKUPS", 30)
	rng := rand.New(rand.NewPCG(crashSeed(t, "CHAOS_SEED"), 2))
	size := int64(sizeMiB) << 20
	rate := size / int64(duration)
	const nBoot, nSeed, nLeech = 5, 2, 10
	t.Logf("chaos: %d MiB, %d churn rounds, leecher download cap %d KiB/s", sizeMiB, rounds, rate>>10)

	// Five overlay-only bootstrap nodes, each joined to the earlier ones.
	boots := make([]string, nBoot)
	bootProcs := make([]*proc, nBoot)
	for i := range nBoot {
		var args []string
		if i > 0 {
			args = append(args, "--bootstrap", joinArgs(boots[:i]...))
		}
		bootProcs[i], boots[i] = startOverlayNode(t, fmt.Sprintf("bootstrap %d", i), args...)
	}
	twoBoots := func() []string {
		i := rng.IntN(nBoot)
		j := (i + 1 + rng.IntN(nBoot-1)) % nBoot
		return []string{boots[i], boots[j]}
	}

	src := t.TempDir()
	content, tor, meta := randomTorrent(t, src, size)
	var seeds, leechers []*chaosNode
	for i := range nSeed {
		seeds = append(seeds, newChaosNode(t, fmt.Sprintf("seeder %d", i+1), src, tor, twoBoots()))
	}
	for _, s := range seeds {
		waitSeeding(t, s.status, time.Minute)
	}
	for i := range nLeech {
		n := newChaosNode(t, fmt.Sprintf("leecher %d", i+1), t.TempDir(), tor, twoBoots(),
			"--max-download-rate", strconv.FormatInt(rate, 10))
		n.leecher = true
		leechers = append(leechers, n)
	}
	all := append(slices.Clone(seeds), leechers...)
	swarmStart := time.Now()

	// (e) Gossip convergence: a provider announced at one leecher reaches
	// the lookup of every live node, the bootstrap nodes included.
	cl := chaosClient("127.0.0.201")
	ctx := context.Background()
	overlays := slices.Clone(boots)
	for _, n := range all {
		overlays = append(overlays, n.overlay)
	}
	testwait.Until(t, 30*time.Second, "every node to answer a ping", func() bool {
		return everyNode(overlays, func(a string) bool { _, err := cl.Ping(ctx, a); return err == nil })
	})
	fakeHash, _ := overlay.ParseInfoHash("cafe0000cafe0000cafe0000cafe0000cafe0000")
	fake := overlay.Provider{Addr: "127.0.0.1:9", PeerID: "-JC0001-c4a05c4a05c4"}
	start := time.Now()
	if err := cl.Announce(ctx, leechers[nLeech-1].overlay, fakeHash, fake); err != nil {
		t.Fatal(err)
	}
	converged := make(map[string]time.Duration)
	for time.Since(start) < 60*time.Second && len(converged) < len(overlays) {
		var mu sync.Mutex
		everyNode(overlays, func(a string) bool {
			mu.Lock()
			_, done := converged[a]
			mu.Unlock()
			if done {
				return true
			}
			ps, _, err := cl.Lookup(ctx, a, fakeHash, 100)
			if err == nil && slices.ContainsFunc(ps, func(p overlay.Provider) bool { return p.Addr == fake.Addr }) {
				mu.Lock()
				converged[a] = time.Since(start)
				mu.Unlock()
			}
			return true
		})
		time.Sleep(200 * time.Millisecond)
	}
	var conv time.Duration
	for _, d := range converged {
		conv = max(conv, d)
	}
	if len(converged) < len(overlays) {
		chaosPromise(t, "e", fmt.Sprintf("gossip convergence (%d live nodes)", len(overlays)),
			fmt.Sprintf("only %d of %d after 60s", len(converged), len(overlays)), "< 30s", false)
	} else {
		chaosPromise(t, "e", fmt.Sprintf("gossip convergence (%d live nodes)", len(overlays)),
			conv.Round(time.Millisecond).String(), "< 30s", conv < 30*time.Second)
	}

	// Churn: kill random leechers (SIGKILL or SIGTERM) and restart them in
	// place; halfway, seeder 1 dies for good.
	progress := func(n *chaosNode) string {
		if st, ok := getStatus(n.status); ok {
			return fmt.Sprintf("%.0f%%", 100*float64(st.Done)/float64(size))
		}
		return "?"
	}
	for r := 1; r <= rounds; r++ {
		if r == (rounds+1)/2 {
			t.Logf("churn: seeder 1 dies for good (SIGKILL) at %v", time.Since(swarmStart).Round(time.Millisecond))
			seeds[0].stop(t, syscall.SIGKILL)
			seeds[0].gone = true
		}
		n := leechers[rng.IntN(nLeech)]
		sig := syscall.SIGKILL
		if rng.IntN(3) == 0 {
			sig = syscall.SIGTERM
		}
		at := progress(n)
		n.stop(t, sig)
		down := time.Duration(300+rng.IntN(1200)) * time.Millisecond
		time.Sleep(down)
		n.restarts++
		n.start(t)
		t.Logf("churn round %d: %s (%s done) got %v, restarted %v later", r, n.label, at, sig, down)
		time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
	}

	// (d) 70 % of the leechers die for good; the rest must still finish.
	order := rng.Perm(nLeech)
	victims := order[:7]
	var survivors []*chaosNode
	for _, i := range order[7:] {
		survivors = append(survivors, leechers[i])
	}
	incomplete := 0
	for _, s := range survivors {
		if st, ok := getStatus(s.status); ok && st.Done < size {
			incomplete++
		}
		t.Logf("survivor %s at %s when 70%% of the leechers die", s.label, progress(s))
	}
	killedAt := time.Now()
	for k, i := range victims {
		sig := syscall.SIGKILL
		if k%2 == 1 {
			sig = syscall.SIGTERM
		}
		leechers[i].p.signal(sig)
	}
	for k, i := range victims {
		n := leechers[i]
		code := n.p.wait(15 * time.Second)
		if k%2 == 1 && code != 0 {
			t.Errorf("%s exited %d after SIGTERM, want 0:\n%s", n.label, code, tail(n.p.out.String(), 2000))
		}
		n.gone = true
	}
	t.Logf("killed 7 of 10 leechers (4 SIGKILL, 3 SIGTERM) at %v; %d of 3 survivors still downloading",
		killedAt.Sub(swarmStart).Round(time.Millisecond), incomplete)
	if incomplete == 0 {
		t.Errorf("every survivor had finished before the 70%% kill: the run proves nothing; lower CHAOS_DURATION's rate or the churn")
	}

	// (a) Dead-peer detection: every killed node leaves the live view of
	// every node still alive.
	var liveOverlays []string
	liveOverlays = append(liveOverlays, boots...)
	for _, n := range all {
		if !n.gone {
			liveOverlays = append(liveOverlays, n.overlay)
		}
	}
	gone := make(map[string]time.Duration)
	for time.Since(killedAt) < 45*time.Second && len(gone) < len(victims) {
		views := make([][]string, len(liveOverlays))
		everyNode(liveOverlays, func(a string) bool {
			live, err := cl.Ping(ctx, a)
			if err == nil {
				views[slices.Index(liveOverlays, a)] = live
			} else {
				views[slices.Index(liveOverlays, a)] = nil
			}
			return true
		})
		for _, i := range victims {
			v := leechers[i].overlay
			if _, ok := gone[v]; ok {
				continue
			}
			if !slices.ContainsFunc(views, func(live []string) bool { return slices.Contains(live, v) }) {
				gone[v] = time.Since(killedAt)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	var slowest, fastest time.Duration
	for _, d := range gone {
		slowest = max(slowest, d)
		if fastest == 0 || d < fastest {
			fastest = d
		}
	}
	if len(gone) < len(victims) {
		chaosPromise(t, "a", "dead peer leaves every live view (7 killed nodes)",
			fmt.Sprintf("%d of 7 after 45s", len(gone)), "< 20s", false)
	} else {
		chaosPromise(t, "a", fmt.Sprintf("dead peer leaves every live view (7 killed nodes, %d observers)", len(liveOverlays)),
			fmt.Sprintf("%v (first %v)", slowest.Round(time.Millisecond), fastest.Round(time.Millisecond)), "< 20s", slowest < 20*time.Second)
	}

	// (d) continued: every survivor finishes byte-identical.
	for _, s := range survivors {
		waitSeeding(t, s.status, time.Duration(3*duration)*time.Second+2*time.Minute)
		sameFile(t, content, filepath.Join(s.dir, "data.bin"))
	}
	// Every peer in this swarm is an honest btclient: no run of any node
	// may have dropped another as a bad peer.
	for _, n := range all {
		var why []string
		for _, run := range n.runs {
			for l := range strings.Lines(run.out.String()) {
				if strings.Contains(l, "dropping peer") {
					why = append(why, strings.TrimSpace(l))
				}
			}
		}
		if len(why) > 0 {
			t.Errorf("%s dropped honest peers as bad %d times: %s", n.label, len(why), strings.Join(why, "; "))
		}
	}
	chaosPromise(t, "d", "operation with 30% of leechers left (7 of 10 killed, 1 of 2 seeders dead)",
		fmt.Sprintf("3 of 3 survivors complete, byte-identical, %v after the kill", time.Since(killedAt).Round(time.Millisecond)),
		"all survivors complete", true)

	// (c) Discovery with only 2 of the 5 bootstrap nodes alive. The three
	// that sort first die: a new node tries its bootstrap list in sorted
	// order, so this is the worst case.
	sorted := slices.Clone(boots)
	slices.Sort(sorted)
	for _, b := range sorted[:3] {
		bootProcs[slices.Index(boots, b)].kill()
	}
	seedPeer := seeds[1].peer
	firstOK, laterOK := 0, 0
	var firstTook []time.Duration
	for i := range lookups {
		ip := fmt.Sprintf("127.0.0.%d", 20+i%200)
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		boot := slices.Clone(boots)
		rng.Shuffle(len(boot), func(a, b int) { boot[a], boot[b] = boot[b], boot[a] })
		cfg := overlay.DefaultConfig()
		cfg.Bootstrap = boot
		cfg.Transport = &chaosTransport{Listener: ln, dial: chaosDialer(ip)}
		node, err := overlay.NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nctx, cancel := context.WithCancel(ctx)
		ran := make(chan struct{})
		go func() { node.Run(nctx); close(ran) }()
		// What btclient does on its first announce: a lookup, and a
		// breadth-first discover when it yields at most one provider.
		discover := func() bool {
			actx, acancel := context.WithTimeout(nctx, 5*time.Second)
			defer acancel()
			ps, err := node.Lookup(actx, meta.InfoHash, 50)
			if err == nil && len(ps) <= 1 {
				ps, err = node.Discover(actx, meta.InfoHash, 3, 50)
			}
			return err == nil && slices.ContainsFunc(ps, func(p overlay.Provider) bool { return p.Addr == seedPeer })
		}
		began := time.Now()
		ok := discover()
		firstTook = append(firstTook, time.Since(began))
		if ok {
			firstOK++
		}
		for !ok && time.Since(began) < 5*time.Second {
			time.Sleep(time.Second)
			ok = discover()
		}
		if ok {
			laterOK++
		}
		cancel()
		<-ran
	}
	slices.Sort(firstTook)
	t.Logf("discovery: %d of %d fresh nodes found the seeder at once (median %v), %d of %d within 5 s",
		firstOK, lookups, firstTook[len(firstTook)/2].Round(time.Millisecond), laterOK, lookups)
	rate1 := 100 * float64(firstOK) / float64(lookups)
	chaosPromise(t, "c", fmt.Sprintf("discovery with 2 of 5 bootstrap nodes alive (%d fresh nodes, first attempt)", lookups),
		fmt.Sprintf("%.1f%% (%d/%d; %d/%d within 5 s)", rate1, firstOK, lookups, laterOK, lookups), "> 95%", rate1 > 95)
	t.Logf("chaos swarm done in %v", time.Since(swarmStart).Round(time.Millisecond))
}

// TestChaosReassign measures how fast a leecher gets going again when a
// seeder it is downloading from dies (SIGKILL: the connection drops) and
// when another hangs (SIGSTOP: it stays connected and goes silent), while a
// third seeder is still there.
func TestChaosReassign(t *testing.T) {
	sizeMiB := chaosEnv(t, "CHAOS_SIZE_MIB", 32)
	size := int64(sizeMiB) << 20
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", size)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	// Each seeder serves a third of the time the download would take, so
	// every one of them holds blocks in flight when it dies.
	perSeed := strconv.FormatInt(max(size/24, 1<<20), 10)
	a, _, pa := chaosSeeder(t, "seeder A", src, tor, "--max-upload-rate", perSeed)
	b, _, pb := chaosSeeder(t, "seeder B", src, tor, "--max-upload-rate", perSeed)
	c, _, _ := chaosSeeder(t, "seeder C", src, tor, "--max-upload-rate", perSeed)
	dst := t.TempDir()
	status := chaosAddr(t)
	l := leecher(t, "leecher", dst, tor, status, a, b, c)

	// watch polls done every 50 ms from the event on and returns when it
	// first advanced, and the longest time it stood still in the 8 s after.
	watch := func(what string, event func()) (first, longest time.Duration) {
		st, ok := getStatus(status)
		if !ok {
			t.Fatalf("%s: no status", what)
		}
		at := time.Now()
		event()
		base := st.Done
		lastChange := at
		first = -1
		for time.Since(at) < 8*time.Second {
			time.Sleep(50 * time.Millisecond)
			cur, ok := getStatus(status)
			if !ok {
				continue
			}
			if cur.Done > base {
				now := time.Now()
				if first < 0 {
					first = now.Sub(at)
				}
				longest = max(longest, now.Sub(lastChange))
				base, lastChange = cur.Done, now
			}
			if cur.Done == size {
				break
			}
		}
		if cur, ok := getStatus(status); ok && cur.Done < size {
			longest = max(longest, time.Since(lastChange))
		}
		return first, longest
	}
	testwait.Until(t, 2*time.Minute, "a fifth of the download", func() bool {
		st, ok := getStatus(status)
		return ok && st.Done >= size/5
	})
	st, _ := getStatus(status)
	t.Logf("SIGKILL seeder A at %.0f%% with %d peers", 100*float64(st.Done)/float64(size), st.Peers)
	kFirst, kLongest := watch("kill", func() { pa.signal(syscall.SIGKILL) })

	testwait.Until(t, 2*time.Minute, "half the download", func() bool {
		st, ok := getStatus(status)
		return ok && st.Done >= size/2
	})
	st, _ = getStatus(status)
	t.Logf("SIGSTOP seeder B at %.0f%% with %d peers", 100*float64(st.Done)/float64(size), st.Peers)
	sFirst, sLongest := watch("stop", func() { pb.signal(syscall.SIGSTOP) })

	if code := l.wait(3 * time.Minute); code != 0 {
		t.Fatalf("leecher exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
	show := func(d time.Duration) string {
		if d < 0 {
			return "never (8 s)"
		}
		return d.Round(time.Millisecond).String()
	}
	chaosPromise(t, "b", "blocks reassigned after a seeder is killed (SIGKILL: done advances again)",
		fmt.Sprintf("%s (longest stall after: %s)", show(kFirst), show(kLongest)), "< 5s",
		kFirst >= 0 && kFirst < 5*time.Second && kLongest < 5*time.Second)
	chaosPromise(t, "b2", "blocks reassigned after a seeder hangs (SIGSTOP: done advances again)",
		fmt.Sprintf("%s (longest stall after: %s)", show(sFirst), show(sLongest)), "< 5s",
		sFirst >= 0 && sFirst < 5*time.Second && sLongest < 5*time.Second)
}
