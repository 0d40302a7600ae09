package overlay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestOverlaySimulation spreads one new provider over 1,000 nodes on the
// in-memory transport and measures how many gossip rounds, and how much
// simulated time, it takes until 99 % and 100 % of the nodes know it.
//
// The nodes run (they serve requests) but their timers are off; the test
// drives them. Rumors move in hops: every hop, each node pushes what it queued
// in the previous one; a hop is costed at simHop. An anti-entropy round is
// every node running one push-pull round, followed by the rumors it set off,
// and is costed at the default GossipInterval. Membership is taken as
// settled: each node has its bootstrap nodes (one or two earlier nodes, a
// tree) and a live view of simView random nodes.
func TestOverlaySimulation(t *testing.T) {
	const (
		nodes   = 1000
		simView = 32
		simHop  = 100 * time.Millisecond
	)
	interval := DefaultConfig().GossipInterval
	mn := NewMemNetwork()
	addr := func(i int) string { return fmt.Sprintf("10.%d.%d.1:6000", i/250, i%250) }
	all := make([]*Node, nodes)
	var stops []func()
	for i := range nodes {
		cfg := DefaultConfig()
		tr, err := mn.Listen(addr(i))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Transport = tr
		cfg.GossipInterval, cfg.HealthInterval, cfg.ProbeInterval, cfg.SweepInterval = time.Hour, time.Hour, time.Hour, time.Hour
		cfg.GossipTimeout = 5 * time.Second // scheduling on a busy 2-core box, not the network
		n, err := NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		n.manualRumors = true
		all[i] = n
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, n := range all {
		n.members.mu.Lock()
		if i > 0 {
			for range 1 + rng.IntN(2) {
				n.members.m[addr(rng.IntN(i))] = &member{state: alive, bootstrap: true}
			}
		}
		for len(n.members.m) < simView+2 {
			if j := rng.IntN(nodes); j != i {
				if _, ok := n.members.m[addr(j)]; !ok {
					n.members.m[addr(j)] = &member{state: alive}
				}
			}
		}
		n.members.mu.Unlock()
		stops = append(stops, runNode(t, n))
	}
	defer func() {
		var wg sync.WaitGroup
		for _, s := range stops {
			wg.Go(s)
		}
		wg.Wait()
	}()
	ctx := context.Background()
	h := ih(0x42)
	p := Provider{Addr: "10.0.0.1:6881", PeerID: "-JC0001-simsimsimsim"}

	informed := func() int {
		k := 0
		for _, n := range all {
			if knows(n, h, p.Addr) {
				k++
			}
		}
		return k
	}
	// parallel runs f on every node, 64 at a time.
	parallel := func(f func(n *Node)) {
		sem := make(chan struct{}, 64)
		var wg sync.WaitGroup
		for _, n := range all {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				f(n)
			})
		}
		wg.Wait()
	}
	// hops pushes queued rumors hop by hop until none is left.
	hops := func() int {
		k := 0
		for {
			queued := make([][]rumor, len(all))
			any := false
			for i, n := range all {
				queued[i] = n.takeRumors()
				any = any || len(queued[i]) > 0
			}
			if !any {
				return k
			}
			k++
			var wg sync.WaitGroup
			sem := make(chan struct{}, 64)
			for i, rs := range queued {
				for _, r := range rs {
					sem <- struct{}{}
					wg.Go(func() {
						defer func() { <-sem }()
						all[i].spreadRumor(ctx, r)
					})
				}
			}
			wg.Wait()
		}
	}

	start := time.Now()
	var at99, at100 time.Duration
	rounds99, rounds100 := -1, -1
	record := func(round int, sim time.Duration) {
		k := informed()
		t.Logf("round %d: %d/%d nodes know the provider (simulated %v)", round, k, nodes, sim)
		if rounds99 < 0 && k*100 >= nodes*99 {
			rounds99, at99 = round, sim
		}
		if rounds100 < 0 && k == nodes {
			rounds100, at100 = round, sim
		}
	}
	if err := all[0].Announce(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	hopCount := 1 + hops()
	sim := time.Duration(hopCount) * simHop
	t.Logf("rumor phase: %d hops", hopCount)
	record(0, sim)
	for round := 1; rounds100 < 0 && round <= 10; round++ {
		parallel(func(n *Node) { n.gossipRound(ctx) })
		k := hops()
		sim = time.Duration(round)*interval + time.Duration(hopCount+k)*simHop
		record(round, sim)
	}
	t.Logf("simulation: %d nodes: 99%% after %d rounds (%v simulated), 100%% after %d rounds (%v simulated); %v real",
		nodes, rounds99, at99, rounds100, at100, time.Since(start).Round(time.Millisecond))
	if rounds100 < 0 || at100 > 30*time.Second {
		t.Fatalf("not every node knew the provider within 30 s simulated (99%%: %v, 100%%: %v)", at99, at100)
	}
}
