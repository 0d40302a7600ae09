package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// detectionBound is the longest a node that stops answering can stay in a
// checker's live view: a full round just missed it, the check fails, the
// suspect retry waits for the next fast tick and fails too.
func detectionBound(c Config) time.Duration {
	return c.HealthInterval + c.HealthTimeout + c.SuspectRetry + c.ProbeInterval + c.HealthTimeout
}

func TestDefaultTimingsDetectADeadNodeWithin20s(t *testing.T) {
	if b := detectionBound(DefaultConfig()); b >= 20*time.Second {
		t.Fatalf("worst-case detection with default timings is %v, want < 20 s", b)
	}
}

// cluster starts n nodes on loopback, all bootstrapping through the first.
func cluster(t *testing.T, cfg Config, n int) []*Node {
	t.Helper()
	first := startNode(t, cfg)
	cfg.Bootstrap = []string{first.Addr()}
	nodes := []*Node{first}
	for range n - 1 {
		nodes = append(nodes, startNode(t, cfg))
	}
	eventually(t, 10*time.Second, "the cluster to form", func() bool {
		for _, nd := range nodes {
			if len(nd.LiveNodes()) != n-1 {
				return false
			}
		}
		return true
	})
	return nodes
}

func TestHardStoppedNodeLeavesEveryLiveView(t *testing.T) {
	const div = 20 // HealthInterval 500 ms
	cfg := fastConfig(div)
	nodes := cluster(t, cfg, 4)
	victim, err := NewNode(func() Config { c := cfg; c.Bootstrap = []string{nodes[0].Addr()}; return c }())
	if err != nil {
		t.Fatal(err)
	}
	stop := runNode(t, victim)
	eventually(t, 10*time.Second, "the victim to join every live view", func() bool {
		for _, n := range nodes {
			if !liveContains(n, victim.Addr()) {
				return false
			}
		}
		return true
	})
	stop() // listener and connections closed: it answers nothing any more
	start := time.Now()
	took := eventually(t, 2*detectionBound(cfg), "the victim to leave every live view", func() bool {
		for _, n := range nodes {
			if liveContains(n, victim.Addr()) {
				return false
			}
		}
		return true
	})
	t.Logf("dead node left every live view after %v (%v at default timings; bound %v)", took, took*div, detectionBound(DefaultConfig()))
	if took > detectionBound(cfg)+200*time.Millisecond {
		t.Fatalf("detection took %v, bound %v", took, detectionBound(cfg))
	}
	// It stays out: other nodes' stale lists do not bring it back.
	time.Sleep(cfg.HealthInterval * 2)
	for _, n := range nodes {
		if liveContains(n, victim.Addr()) {
			t.Fatalf("%s re-added the dead node %v after %v", n.Addr(), victim.Addr(), time.Since(start))
		}
	}
}

func TestOneMissedCheckIsNotDeath(t *testing.T) {
	cfg := fastConfig(1)
	cfg.HealthInterval, cfg.ProbeInterval = time.Hour, time.Hour
	n := startNode(t, cfg)
	n.members.ok("127.0.0.1:1")
	n.members.fail("127.0.0.1:1")
	if !liveContains(n, "127.0.0.1:1") {
		t.Fatalf("one failure killed the node")
	}
	n.members.fail("127.0.0.1:1")
	if liveContains(n, "127.0.0.1:1") {
		t.Fatalf("two failures in a row did not")
	}
}

func TestEntriesOfAVanishedProviderExpireEverywhere(t *testing.T) {
	cfg := fastConfig(20)
	cfg.ProviderTTL = 600 * time.Millisecond
	nodes := cluster(t, cfg, 4)
	h := ih(5)
	p := Provider{Addr: "127.0.0.1:7001"}
	if err := nodes[1].Announce(testCtx(t, 5*time.Second), h, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "every node to know the provider", func() bool { return allKnow(nodes, h, p.Addr) })
	// No re-announce: after the TTL nobody returns it, even though gossip
	// kept pushing it until then.
	time.Sleep(cfg.ProviderTTL + 50*time.Millisecond)
	for _, n := range nodes {
		if got, err := n.Lookup(testCtx(t, 5*time.Second), h, 10); err != nil || len(got) != 0 {
			t.Fatalf("%s still returns %v (%v) after the TTL", n.Addr(), got, err)
		}
	}
	eventually(t, 5*cfg.SweepInterval, "the sweep to free the entries", func() bool {
		for _, n := range nodes {
			if n.store.Len() != 0 {
				return false
			}
		}
		return true
	})
}

func TestStoppedTombstoneSpreadsAndHidesTheProvider(t *testing.T) {
	cfg := fastConfig(20)
	nodes := cluster(t, cfg, 5)
	h := ih(6)
	p := Provider{Addr: "127.0.0.1:7002", PeerID: "-JC0001-bbbbbbbbbbbb"}
	if err := nodes[2].Announce(testCtx(t, 5*time.Second), h, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "every node to know the provider", func() bool { return allKnow(nodes, h, p.Addr) })
	time.Sleep(5 * time.Millisecond) // the tombstone must be a newer write
	p.Stopped = true
	if err := nodes[2].Announce(testCtx(t, 5*time.Second), h, p); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 5*time.Second, "no node to return the stopped provider", func() bool {
		for _, n := range nodes {
			if knows(n, h, p.Addr) {
				return false
			}
		}
		return true
	})
	t.Logf("tombstone hid the provider everywhere after %v", took)
	if took > 10*time.Second/20 {
		t.Fatalf("took %v, more than 10 s at default timings", took)
	}
	for _, n := range nodes {
		if got, _ := n.Lookup(testCtx(t, 5*time.Second), h, 10); len(got) != 0 {
			t.Fatalf("%s lookup returns the stopped provider: %v", n.Addr(), got)
		}
	}
}

func TestPartitionHealsWithin30s(t *testing.T) {
	const div = 20
	mn := NewMemNetwork()
	cfg := fastConfig(div)
	addr := func(i int) string { return fmt.Sprintf("10.0.%d.1:6000", i) }
	const n = 20
	var nodes []*Node
	var left, right []string
	for i := range n {
		c := cfg
		tr, err := mn.Listen(addr(i))
		if err != nil {
			t.Fatal(err)
		}
		c.Transport = tr
		// Each half has its own bootstrap node; everyone knows both.
		c.Bootstrap = []string{addr(0), addr(n / 2)}
		nodes = append(nodes, startNode(t, c))
		if i < n/2 {
			left = append(left, addr(i))
		} else {
			right = append(right, addr(i))
		}
	}
	eventually(t, 10*time.Second, "the overlay to form", func() bool {
		for _, nd := range nodes {
			if len(nd.LiveNodes()) < n/2 {
				return false
			}
		}
		return true
	})
	mn.Partition(left, right)
	h := ih(8)
	p := Provider{Addr: "10.0.3.1:6881"}
	if err := nodes[3].Announce(testCtx(t, 5*time.Second), h, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the left half to know the provider", func() bool {
		for _, nd := range nodes[:n/2] {
			if !knows(nd, h, p.Addr) {
				return false
			}
		}
		return true
	})
	// Long enough for the halves to declare each other dead.
	time.Sleep(detectionBound(cfg))
	for _, nd := range nodes[n/2:] {
		if knows(nd, h, p.Addr) {
			t.Fatalf("%s learned the provider across the partition", nd.Addr())
		}
	}
	mn.Heal()
	took := eventually(t, 2*time.Second, "the right half to know the provider after the heal", func() bool {
		for _, nd := range nodes[n/2:] {
			if !knows(nd, h, p.Addr) {
				return false
			}
		}
		return true
	})
	t.Logf("after the heal the other half knew the provider in %v (%v at default timings)", took, took*div)
	if took*div > 30*time.Second {
		t.Fatalf("heal took %v at default timings, want < 30 s", took*div)
	}
}

// A request that times out makes its node suspect (probed soon), not dead:
// on a starved machine puts and queries run late without anyone having
// died. A refused connection still counts, and two in a row kill.
func TestTimeoutsOutsideProbesOnlyMakeSuspects(t *testing.T) {
	cfg := fastConfig(1)
	cfg.HealthInterval, cfg.ProbeInterval = time.Hour, time.Hour
	n := startNode(t, cfg)
	const addr = "127.0.0.1:1"
	n.members.ok(addr)
	ctx := context.Background()
	for _, err := range []error{
		fmt.Errorf("read pong: %w", os.ErrDeadlineExceeded),
		fmt.Errorf("dial: %w", context.DeadlineExceeded),
		fmt.Errorf("read: %w", net.ErrClosed),
	} {
		n.outcome(ctx, addr, err)
	}
	if !liveContains(n, addr) {
		t.Fatal("timeouts killed the node")
	}
	if due := n.members.toProbe(false); !slices.Contains(due, addr) {
		t.Fatalf("the suspect is not due for a probe: %v", due)
	}
	n.members.ok(addr)
	refused := fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
	n.outcome(ctx, addr, refused)
	n.outcome(ctx, addr, refused)
	if liveContains(n, addr) {
		t.Fatal("two refusals in a row did not kill the node")
	}
}

// Lifeguard's local health, in small: a round where many nodes time out
// lengthens the timeouts, a clean one shortens them again.
func TestLocalHealthScalesTimeouts(t *testing.T) {
	var h localHealth
	for _, step := range []struct {
		timeouts, probed, score int
	}{
		{0, 50, 0},
		{2, 50, 0},  // one or two slow nodes: theirs
		{13, 50, 1}, // a quarter at once: ours
		{3, 3, 2},
		{40, 50, 3},
		{50, 50, 3}, // at most 4× the timeouts
		{5, 50, 3},  // some: no change
		{0, 50, 2},
		{0, 50, 1},
		{0, 50, 0},
		{0, 50, 0},
	} {
		if got, _ := h.round(step.timeouts, step.probed); got != step.score {
			t.Fatalf("after %d of %d timed out: score %d, want %d", step.timeouts, step.probed, got, step.score)
		}
		if got, want := h.scale(time.Second), time.Duration(1+step.score)*time.Second; got != want {
			t.Fatalf("score %d scales 1 s to %v, want %v", step.score, got, want)
		}
	}
}

// A node whose connection slots are all taken answers "busy" before it
// closes, so the asker learns it is alive rather than counting a failure.
func TestBusyNodeSaysSo(t *testing.T) {
	cfg := fastConfig(1)
	cfg.MaxConns = 1
	n := startNode(t, cfg)
	hold, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	// The first connection has the only slot once the node serves it.
	eventually(t, 5*time.Second, "the slot taken", func() bool { return len(n.slots) == 1 })
	asker := startNode(t, fastConfig(1))
	_, err = asker.exchange(context.Background(), n.Addr(), time.Second, message{Type: typePing, From: asker.Addr()})
	var busy *remoteError
	if !errors.As(err, &busy) || !strings.Contains(busy.text, "busy") {
		t.Fatalf("ping of a full node: %v, want a busy answer", err)
	}
	asker.members.ok(n.Addr())
	asker.outcome(context.Background(), n.Addr(), err)
	asker.outcome(context.Background(), n.Addr(), err)
	if !liveContains(asker, n.Addr()) {
		t.Fatal("a busy answer counted as a failure")
	}
}
