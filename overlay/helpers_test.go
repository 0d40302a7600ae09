package overlay

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"
)

// fastConfig is DefaultConfig with every timer divided by div, on loopback.
func fastConfig(div time.Duration) Config {
	c := DefaultConfig()
	c.ListenAddr = "127.0.0.1:0"
	for _, d := range []*time.Duration{
		&c.GossipTimeout, &c.HealthInterval, &c.HealthTimeout,
		&c.ProbeInterval, &c.SuspectRetry, &c.DeadQuarantine, &c.LookupTimeout,
		&c.ProviderTTL, &c.SweepInterval,
	} {
		*d /= div
	}
	if os.Getenv("OVERLAY_TEST_LOG") != "" {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return c
}

// startNode creates and runs a node; it is stopped when the test ends.
func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := runNode(t, n)
	t.Cleanup(stop)
	return n
}

// runNode runs n and returns a func that stops it and waits for Run.
func runNode(t testing.TB, n *Node) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stopped := false
	return func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run of %s did not return within 10 s of cancel", n.Addr())
		}
	}
}

// eventually polls cond every 10 ms until it holds or d passes, and returns
// how long it took.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// holds reports whether n's store holds addr as a provider of h.
func holds(n *Node, h [20]byte, addr string) bool {
	return slices.ContainsFunc(n.store.Lookup(h, 0), func(p Provider) bool { return p.Addr == addr })
}

// knows reports whether a lookup from n returns addr as a provider of h:
// with records placed on their owners, what every node knows is what it
// finds by asking them.
func knows(n *Node, h [20]byte, addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ps, err := n.Lookup(ctx, h, 0)
	return err == nil && slices.ContainsFunc(ps, func(p Provider) bool { return p.Addr == addr })
}

// allKnow reports whether a lookup from every node returns addr as a
// provider of h.
func allKnow(nodes []*Node, h [20]byte, addr string) bool {
	for _, n := range nodes {
		if !knows(n, h, addr) {
			return false
		}
	}
	return true
}

func liveContains(n *Node, addr string) bool { return slices.Contains(n.LiveNodes(), addr) }

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
