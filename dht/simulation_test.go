package dht

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// simConfig is the configuration of every simulated node: DefaultConfig,
// with the maintenance that rejoins a node with a small table every 2 s
// instead of 10 s, so the early joiners fill up while the rest join.
func simConfig() Config {
	c := DefaultConfig()
	c.MaintenanceInterval = 2 * time.Second
	return c
}

// simPhase is what one round of lookups measured.
type simPhase struct {
	lookups, found int
	hops, queries  []int
	elapsed        time.Duration
	// timeouts and dropped count query timeouts (all nodes) and datagrams
	// lost to full queues during the phase.
	timeouts, dropped int64
}

func (p simPhase) successRate() float64 { return float64(p.found) / float64(p.lookups) }

func (p simPhase) String() string {
	return fmt.Sprintf("%d lookups: %.2f%% found the peer; hops median %d p90 %d max %d; queries per lookup median %d mean %.1f p90 %d; %v; %d query timeouts, %d datagrams dropped",
		p.lookups, 100*p.successRate(), pct(p.hops, 50), pct(p.hops, 90), pct(p.hops, 100),
		pct(p.queries, 50), mean(p.queries), pct(p.queries, 90), p.elapsed.Round(time.Millisecond), p.timeouts, p.dropped)
}

func pct(v []int, p int) int {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i]
}

func mean(v []int) float64 {
	sum := 0
	for _, x := range v {
		sum += x
	}
	return float64(sum) / float64(max(1, len(v)))
}

// simulation is N nodes on one MemNetwork.
type simulation struct {
	t     testing.TB
	mn    *MemNetwork
	nodes []*Node
	stops []func()
	alive []bool
}

// newSimulation starts n nodes that join through node 0, conc at a time.
func newSimulation(t testing.TB, n, conc int) *simulation {
	s := &simulation{t: t, mn: NewMemNetwork()}
	s.mn.QueueLen = 64
	cfg := simConfig()
	start := func(i int) {
		tr, err := s.mn.Listen(memAddr(i))
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.Transport = tr
		if i > 0 {
			c.Bootstrap = []string{memAddr(0).String()}
		}
		nd, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		s.nodes[i] = nd
		s.stops[i] = runNode(t, nd)
		s.alive[i] = true
	}
	s.nodes, s.stops, s.alive = make([]*Node, n), make([]func(), n), make([]bool, n)
	start(0)
	waitJoined(t, s.nodes[0])
	// Batches of conc nodes join at once.
	for b := 1; b < n; b += conc {
		end := min(n, b+conc)
		for i := b; i < end; i++ {
			start(i)
		}
		for i := b; i < end; i++ {
			waitJoined(t, s.nodes[i])
		}
	}
	return s
}

// fail stops a random fraction of the nodes at once, except keep.
func (s *simulation) fail(frac float64, keep map[int]bool) int {
	idx := rand.Perm(len(s.nodes))
	want := int(math.Round(frac * float64(len(s.nodes))))
	var wg sync.WaitGroup
	failed := 0
	for _, i := range idx {
		if failed == want {
			break
		}
		if keep[i] || !s.alive[i] {
			continue
		}
		s.alive[i] = false
		failed++
		wg.Go(s.stops[i])
	}
	wg.Wait()
	return failed
}

func (s *simulation) timeouts() int64 {
	var n int64
	for _, nd := range s.nodes {
		n += nd.stats.timeouts.Load()
	}
	return n
}

// randomAlive returns a live node other than not.
func (s *simulation) randomAlive(not int) int {
	for {
		if i := rand.IntN(len(s.nodes)); s.alive[i] && i != not {
			return i
		}
	}
}

// announce has a random node announce each of hashes; it returns the
// announcer of each and the peer address announced.
func (s *simulation) announce(hashes []ID, conc int) ([]int, []netip.AddrPort) {
	who := make([]int, len(hashes))
	peers := make([]netip.AddrPort, len(hashes))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, ih := range hashes {
		who[i] = s.randomAlive(-1)
		nd := s.nodes[who[i]]
		peers[i] = netip.AddrPortFrom(nd.Addr().Addr(), uint16(10000+i))
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := nd.Announce(context.Background(), ih, 10000+i, false); err != nil {
				s.t.Errorf("announce %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	return who, peers
}

// lookups has a random live node (not the announcer) look up every hash.
func (s *simulation) lookups(hashes []ID, who []int, peers []netip.AddrPort, conc int) simPhase {
	var mu sync.Mutex
	p := simPhase{lookups: len(hashes)}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var found atomic.Int64
	start := time.Now()
	timeouts0, dropped0 := s.timeouts(), s.mn.Dropped.Load()
	for i, ih := range hashes {
		nd := s.nodes[s.randomAlive(who[i])]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			res, err := nd.lookup(context.Background(), ih, true)
			mu.Lock()
			defer mu.Unlock()
			p.queries = append(p.queries, res.queries)
			if err == nil && slices.Contains(res.peers, peers[i]) {
				found.Add(1)
				p.hops = append(p.hops, res.hops)
			}
		})
	}
	wg.Wait()
	p.found = int(found.Load())
	p.elapsed = time.Since(start)
	p.timeouts, p.dropped = s.timeouts()-timeouts0, s.mn.Dropped.Load()-dropped0
	return p
}

// runSimulation builds an n-node DHT, announces `lookups` info hashes,
// looks each up from another node, fails 20 % of the nodes at once, and
// looks every hash up again.
func runSimulation(t *testing.T, n, lookups int) (before, after simPhase) {
	began := time.Now()
	heap0 := heapInuse()
	s := newSimulation(t, n, 64)
	joined := time.Since(began)
	var tableSizes []int
	var sent int64
	var sum Stats
	for _, nd := range s.nodes {
		st := nd.Stats()
		tableSizes = append(tableSizes, st.Nodes)
		sent += st.PacketsOut
		sum.Timeouts += st.Timeouts
		sum.RateLimited += st.RateLimited
		sum.Blocked += st.Blocked
		sum.AmplificationLimited += st.AmplificationLimited
		sum.Unsolicited += st.Unsolicited
		sum.Malformed += st.Malformed
	}
	t.Logf("during the join: %d datagrams dropped, %d timeouts, %d rate limited, %d blocked, %d not sent for the budget, %d unsolicited, %d malformed",
		s.mn.Dropped.Load(), sum.Timeouts, sum.RateLimited, sum.Blocked, sum.AmplificationLimited, sum.Unsolicited, sum.Malformed)
	t.Logf("%d nodes joined in %v (%.0f packets sent per node); table size median %d min %d max %d; heap %s",
		n, joined.Round(time.Millisecond), float64(sent)/float64(n), pct(tableSizes, 50), pct(tableSizes, 0), pct(tableSizes, 100), mib(heapInuse()-heap0))

	hashes := make([]ID, lookups)
	for i := range hashes {
		hashes[i] = randomID()
	}
	timeouts0, dropped0 := s.timeouts(), s.mn.Dropped.Load()
	who, peers := s.announce(hashes, 64)
	t.Logf("announces: %d query timeouts, %d datagrams dropped", s.timeouts()-timeouts0, s.mn.Dropped.Load()-dropped0)
	before = s.lookups(hashes, who, peers, 64)
	t.Logf("before the failure: %v", before)

	failed := s.fail(0.2, nil)
	after = s.lookups(hashes, who, peers, 64)
	t.Logf("after %d of %d nodes (20%%) failed at once: %v", failed, n, after)
	return before, after
}

func checkTargets(t *testing.T, n int, before, after simPhase) {
	bound := math.Log2(float64(n))/2 + 2
	if r := after.successRate(); r < 0.99 {
		t.Errorf("success after the failure %.2f%%, want at least 99%%", 100*r)
	}
	if r := before.successRate(); r < 0.99 {
		t.Errorf("success before the failure %.2f%%, want at least 99%%", 100*r)
	}
	for _, p := range []simPhase{before, after} {
		if h := pct(p.hops, 50); float64(h) > bound {
			t.Errorf("median hops %d, want at most log2(%d)/2+2 = %.1f", h, n, bound)
		}
	}
}

func TestSimulationOf500NodesSurvivesA20PercentFailure(t *testing.T) {
	const n = 500
	before, after := runSimulation(t, n, 200)
	checkTargets(t, n, before, after)
}

// TestSimulationLarge is done-means 3: DHT_SIM_NODES=10000 (scripts/dht-sim.sh)
// runs it; make test does not.
func TestSimulationLarge(t *testing.T) {
	v := os.Getenv("DHT_SIM_NODES")
	if v == "" {
		t.Skip("set DHT_SIM_NODES (scripts/dht-sim.sh runs 10000) to run the large simulation")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 10 {
		t.Fatalf("DHT_SIM_NODES=%q: want a number of at least 10", v)
	}
	lookups := 1000
	if v := os.Getenv("DHT_SIM_LOOKUPS"); v != "" {
		lookups, _ = strconv.Atoi(v)
	}
	before, after := runSimulation(t, n, lookups)
	checkTargets(t, n, before, after)
}
