package overlay

import (
	"context"
	"sync"
	"time"
)

// Failure detection: every HealthInterval each known node is pinged
// (HealthTimeout); every ProbeInterval newly learned nodes and nodes that
// missed one check are pinged again. A node is dead after DeadAfter failures
// in a row, so with the defaults a node that stops answering leaves the live
// view at most HealthInterval + SuspectRetry + ProbeInterval + 2×HealthTimeout
// (≈ 14.6 s) after its last answer. Bootstrap nodes are retried every round.

// healthLoop probes and sweeps until ctx is done. The first full round runs
// at once, which is how a node joins through its bootstrap nodes.
func (n *Node) healthLoop(ctx context.Context) {
	full := time.NewTicker(n.cfg.HealthInterval)
	defer full.Stop()
	fast := time.NewTicker(n.cfg.ProbeInterval)
	defer fast.Stop()
	sweep := time.NewTicker(n.cfg.SweepInterval)
	defer sweep.Stop()
	var resolved time.Time
	n.resolveBootstrap(ctx)
	n.probeRound(ctx, true)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-full.C:
			resolved = now
			n.resolveBootstrap(ctx)
			n.probeRound(ctx, true)
		case now := <-fast.C:
			if len(n.members.live()) == 0 && now.Sub(resolved) >= n.cfg.ResolveInterval {
				resolved = now
				n.resolveBootstrap(ctx)
			}
			n.probeRound(ctx, false)
		case <-sweep.C:
			if k := n.store.Sweep(); k > 0 {
				n.log.Debug("overlay swept expired providers", "count", k)
			}
		}
	}
}

// resolveBootstrap asks Config.ResolveBootstrap for bootstrap addresses and
// adds the new ones; they are probed in the round that follows.
func (n *Node) resolveBootstrap(ctx context.Context) {
	if n.cfg.ResolveBootstrap == nil {
		return
	}
	addrs := n.cfg.ResolveBootstrap(ctx)
	if k := n.members.addBootstrap(addrs...); k > 0 {
		n.log.Info("overlay bootstrap nodes resolved", "new", k, "addrs", addrs)
	}
}

// probeRound pings the nodes due for a check, OutboundConcurrency at a time,
// and waits for them.
func (n *Node) probeRound(ctx context.Context, full bool) {
	var wg sync.WaitGroup
	for _, addr := range n.members.toProbe(full) {
		select {
		case n.outbound <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-n.outbound }()
			n.probe(ctx, addr)
		})
	}
	wg.Wait()
}

// probe pings addr once and records the outcome.
func (n *Node) probe(ctx context.Context, addr string) {
	replies, err := n.exchange(ctx, addr, n.cfg.HealthTimeout, message{Type: typePing, From: n.addr})
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if n.members.fail(addr) {
			n.log.Info("overlay node dead", "node", addr, "err", err)
		}
		return
	}
	if n.members.ok(addr) {
		n.log.Debug("overlay node alive", "node", addr)
	}
	n.absorb(addr, replies)
}
