package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestAnnounceOnOneNodeIsFoundByLookupOnAnother(t *testing.T) {
	cfg := fastConfig(20)
	a := startNode(t, cfg)
	cfg.Bootstrap = []string{a.Addr()}
	b := startNode(t, cfg)
	c := startNode(t, cfg)

	h := ih(7)
	p := Provider{Addr: "127.0.0.1:6881", PeerID: "-JC0001-aaaaaaaaaaaa", Left: 0}
	if err := b.Announce(testCtx(t, 5*time.Second), h, p); err != nil {
		t.Fatal(err)
	}
	if !knows(a, h, p.Addr) {
		t.Fatalf("bootstrap node did not get the announce at once")
	}
	got, err := c.Lookup(testCtx(t, 5*time.Second), h, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Addr != p.Addr || got[0].PeerID != p.PeerID || got[0].Left != 0 {
		t.Fatalf("lookup from a third node = %+v", got)
	}
	var cl Client
	ps, nodes, err := cl.Lookup(testCtx(t, 5*time.Second), a.Addr(), h, 10)
	if err != nil || len(ps) != 1 {
		t.Fatalf("client lookup = %v, %v", ps, err)
	}
	t.Logf("lookup reply named nodes %v", nodes)
}

func TestNewNodeKnowingOneBootstrapLearnsTheNetwork(t *testing.T) {
	cfg := fastConfig(20)
	a := startNode(t, cfg)
	cfg.Bootstrap = []string{a.Addr()}
	var rest []*Node
	for range 4 {
		rest = append(rest, startNode(t, cfg))
	}
	cfg.Bootstrap = []string{rest[3].Addr()}
	late := startNode(t, cfg)
	all := append([]*Node{a, late}, rest...)
	eventually(t, 10*time.Second, "every node to know every other", func() bool {
		for _, n := range all {
			if len(n.LiveNodes()) != len(all)-1 {
				return false
			}
		}
		return true
	})
	if got := late.LiveNodes(); !liveContains(late, a.Addr()) {
		t.Fatalf("late node's live view %v lacks the first node", got)
	}
}

// chain wires nodes so each knows only the next one: a BFS must walk it.
func chain(nodes []*Node) {
	for i := 0; i+1 < len(nodes); i++ {
		nodes[i].members.ok(nodes[i+1].Addr())
	}
}

func TestDiscoverWalksTheOverlayBreadthFirst(t *testing.T) {
	cfg := fastConfig(1)
	cfg.HealthInterval, cfg.ProbeInterval = time.Hour, time.Hour
	h := ih(9)
	far := Provider{Addr: "127.0.0.1:7000", LastSeen: time.Now()}
	// newChain returns five nodes, each knowing only the next; the last one
	// alone holds the provider.
	newChain := func(t *testing.T) []*Node {
		var nodes []*Node
		for range 5 {
			nodes = append(nodes, startNode(t, cfg))
		}
		chain(nodes)
		nodes[4].store.Merge(h, []Provider{far}, "")
		return nodes
	}
	tests := []struct {
		ttl   int
		found bool
	}{{1, false}, {2, false}, {3, false}, {4, true}, {8, true}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("ttl %d", tt.ttl), func(t *testing.T) {
			nodes := newChain(t)
			got, err := nodes[0].Discover(testCtx(t, 5*time.Second), h, tt.ttl, 10)
			if err != nil {
				t.Fatal(err)
			}
			if found := len(got) == 1 && got[0].Addr == far.Addr; found != tt.found {
				t.Fatalf("ttl %d: found=%v, want %v (%v)", tt.ttl, found, tt.found, got)
			}
		})
	}
	t.Run("lookup asks only the nodes it knows", func(t *testing.T) {
		nodes := newChain(t)
		if got, _ := nodes[2].Lookup(testCtx(t, 5*time.Second), h, 10); len(got) != 0 {
			t.Fatalf("lookup two hops away found %v", got)
		}
		if got, _ := nodes[3].Lookup(testCtx(t, 5*time.Second), h, 10); len(got) != 1 {
			t.Fatalf("lookup one hop away found %v", got)
		}
	})
}

func TestDirectAnnounceTakesTheIPFromTheConnection(t *testing.T) {
	mn := NewMemNetwork()
	cfg := fastConfig(1)
	tr, _ := mn.Listen("10.0.0.1:6000")
	cfg.Transport = tr
	n := startNode(t, cfg)
	ctr, _ := mn.Listen("10.0.0.66:6000")
	cl := Client{Dial: ctr.DialContext}
	h := ih(3)
	if err := cl.Announce(testCtx(t, 5*time.Second), n.Addr(), h, Provider{Addr: "10.0.0.99:6881"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the announce to land", func() bool { return knows(n, h, "10.0.0.66:6881") })
	if knows(n, h, "10.0.0.99:6881") {
		t.Fatalf("claimed IP was trusted")
	}
}

func TestAdvertiseAddr(t *testing.T) {
	bound := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 6000}
	tests := []struct{ adv, want string }{
		{"", "127.0.0.1:6000"},
		{"10.1.2.3", "10.1.2.3:6000"},
		{"10.1.2.3:7000", "10.1.2.3:7000"},
		{"node.example", "node.example:6000"},
		{"::1", "[::1]:6000"},
	}
	for _, tt := range tests {
		if got, err := advertiseAddr(tt.adv, bound); err != nil || got != tt.want {
			t.Errorf("advertiseAddr(%q) = %q, %v; want %q", tt.adv, got, err, tt.want)
		}
	}
}

func TestANewOwnerIsSyncedWhatItNowOwns(t *testing.T) {
	cfg := fastConfig(1)
	cfg.HealthInterval, cfg.ProbeInterval = time.Hour, time.Hour
	a := startNode(t, cfg)
	h := ih(4)
	if err := a.Announce(testCtx(t, 5*time.Second), h, Provider{Addr: "127.0.0.1:7003"}); err != nil {
		t.Fatal(err)
	}
	cfg.Bootstrap = []string{a.Addr()}
	b := startNode(t, cfg)
	if holds(b, h, "127.0.0.1:7003") {
		t.Fatal("b held the provider before a synced it")
	}
	// b's first health round makes a learn of it; a's first round finds b
	// alive, its next pings b with the digest of what b now owns, which is
	// wrong until a syncs it.
	eventually(t, 5*time.Second, "a to hear of b", func() bool {
		a.members.mu.Lock()
		defer a.members.mu.Unlock()
		return a.members.m[b.Addr()] != nil
	})
	a.probeRound(testCtx(t, 5*time.Second), true)
	if !liveContains(a, b.Addr()) {
		t.Fatal("a's health round did not find b alive")
	}
	a.probeRound(testCtx(t, 5*time.Second), true)
	if !holds(b, h, "127.0.0.1:7003") {
		t.Fatal("one health round did not sync the new owner")
	}
	// In step now: the next ping only renews.
	a.probeRound(testCtx(t, 5*time.Second), true)
	if got := b.store.Digest(a.Addr()); got.count != 1 {
		t.Fatalf("b holds %d records of a, want 1", got.count)
	}
}

func TestResolvedBootstrapNodesJoinLater(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ProbeInterval = 20 * time.Millisecond
	cfg.ResolveInterval = 20 * time.Millisecond
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Advertise = "127.0.0.1"
	// The name resolves to nothing at first, as tasks.<service> does before
	// any other task is up; a node that appears later must still be joined.
	var mu sync.Mutex
	var names []string
	cfg.ResolveBootstrap = func(context.Context) []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), names...)
	}
	a, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { a.Run(ctx) })

	bcfg := cfg
	bcfg.ResolveBootstrap = nil
	b, err := NewNode(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { b.Run(ctx) })
	time.Sleep(100 * time.Millisecond) // a is isolated for a while
	mu.Lock()
	names = []string{b.Addr()}
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(a.LiveNodes(), b.Addr()) {
		if time.Now().After(deadline) {
			t.Fatalf("a never joined b; live view %v", a.LiveNodes())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFirstLookupSucceedsWithOnlyTwoOfFiveBootstrapNodesAlive(t *testing.T) {
	cfg := fastConfig(1) // real-time timers: the lookup must not wait for health checks
	a := startNode(t, cfg)
	b := startNode(t, cfg)
	h := ih(9)
	p := Provider{Addr: "127.0.0.1:6881", PeerID: "-JC0001-bbbbbbbbbbbb"}
	if err := a.Announce(context.Background(), h, p); err != nil {
		t.Fatal(err)
	}
	if err := b.Announce(context.Background(), h, p); err != nil {
		t.Fatal(err)
	}
	var dead []string
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead = append(dead, l.Addr().String())
		l.Close()
	}
	for range 20 {
		c := cfg
		c.Bootstrap = append(append([]string(nil), dead...), a.Addr(), b.Addr())
		n, err := NewNode(c)
		if err != nil {
			t.Fatal(err)
		}
		// Not running: no health check has told it which bootstrap nodes live.
		got, err := n.Lookup(context.Background(), h, 10)
		n.tr.Close()
		if err != nil || len(got) != 1 {
			t.Fatalf("first lookup = %v, %v; want the provider", got, err)
		}
	}
}

// TestALookupDoesNotWaitForASlowOwner: with four nodes every node owns every
// key; one of them answers late. A lookup returns once two owners (itself
// and one more) have answered and the others had as long again, far sooner
// than the slow one answers, and the slow owner is not suspected for a
// query the asker cancelled.
func TestALookupDoesNotWaitForASlowOwner(t *testing.T) {
	mn := NewMemNetwork()
	cfg := fastConfig(5)
	cfg.LookupTimeout = 5 * time.Second
	var nodes []*Node
	for i := range 4 {
		c := cfg
		tr, err := mn.Listen(fmt.Sprintf("10.0.1.%d:6000", i+1))
		if err != nil {
			t.Fatal(err)
		}
		c.Transport = tr
		if i > 0 {
			c.Bootstrap = []string{nodes[0].Addr()}
		}
		nodes = append(nodes, startNode(t, c))
	}
	eventually(t, 20*time.Second, "the overlay to form", func() bool {
		for _, n := range nodes {
			if len(n.LiveNodes()) != 3 {
				return false
			}
		}
		return true
	})
	h := ih(9)
	if err := nodes[1].Announce(testCtx(t, 5*time.Second), h, Provider{Addr: "10.0.1.2:6881"}); err != nil {
		t.Fatal(err)
	}
	slow := nodes[3].Addr()
	mn.Slow(slow, 3*time.Second)
	start := time.Now()
	if !knows(nodes[0], h, "10.0.1.2:6881") {
		t.Fatal("the lookup missed the provider")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the lookup took %v: it waited for the slow owner (3 s)", took)
	}
	nodes[0].members.mu.Lock()
	st := nodes[0].members.m[slow]
	nodes[0].members.mu.Unlock()
	if st == nil || st.state != alive || st.suspect {
		t.Fatalf("the slow owner is suspected (or forgotten) after a query that did not wait for it: %+v", st)
	}
}

// TestANodeDeclaredDeadByMistakeKeepsItsRecords: a busy node that missed
// its pings is declared dead, but it is alive and its next ping renews what
// it published, so its records are never missing; a node that is really gone loses its
// records once the grace has passed.
func TestANodeDeclaredDeadByMistakeKeepsItsRecords(t *testing.T) {
	cfg := fastConfig(10)
	a := startNode(t, cfg)
	cfg.Bootstrap = []string{a.Addr()}
	b := startNode(t, cfg)
	c, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopC := runNode(t, c) // a stop says goodbye to no one: a crash to the others
	t.Cleanup(stopC)
	eventually(t, 10*time.Second, "the overlay to form", func() bool {
		return len(a.LiveNodes()) == 2 && len(b.LiveNodes()) == 2 && len(c.LiveNodes()) == 2
	})
	hb, hc := ih(21), ih(22)
	for n, h := range map[*Node][20]byte{b: hb, c: hc} {
		if err := n.Announce(testCtx(t, 5*time.Second), h, Provider{Addr: n.Addr()}); err != nil {
			t.Fatal(err)
		}
	}
	if !holds(a, hb, b.Addr()) || !holds(a, hc, c.Addr()) {
		t.Fatal("the announces did not reach a")
	}
	a.nodeDied(b.Addr(), errors.New("missed its pings"))
	stopC()
	a.nodeDied(c.Addr(), errors.New("gone"))
	// Not for a moment (a resync would leave a gap of a round or more).
	for end := time.Now().Add(3 * cfg.HealthInterval); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if !holds(a, hb, b.Addr()) {
			t.Fatal("a node declared dead by mistake lost its records")
		}
	}
	if holds(a, hc, c.Addr()) {
		t.Fatal("a stopped node's records outlived the grace")
	}
}
