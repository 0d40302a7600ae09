package overlay

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Failure detection: every HealthInterval each known node is pinged
// (HealthTimeout); every ProbeInterval newly learned nodes and nodes that
// missed one check are pinged again. A node is dead after DeadAfter failures
// in a row, so with the defaults a node that stops answering leaves the live
// view at most HealthInterval + SuspectRetry + ProbeInterval + 2×HealthTimeout
// (≈ 14.6 s) after its last answer. Bootstrap nodes are retried every round.

// localHealth is Lifeguard's local health multiplier, in small: when many
// nodes time out in one round, the slow one is more likely this node
// (starved of CPU, or of the network) than all of them, and declaring them
// dead would drop their records and resync them a moment later, which
// starves it further. So each such round raises the score (at most
// maxHealthScore) and a round without timeouts lowers it; probes and syncs
// wait (1+score) times their timeouts. Nodes that really are gone still
// fail every probe, and die as before, only later.
type localHealth struct{ score atomic.Int32 }

const maxHealthScore = 3

func (h *localHealth) scale(d time.Duration) time.Duration {
	return d * time.Duration(1+h.score.Load())
}

// round takes one full round's tally and returns the new score and whether
// it changed.
func (h *localHealth) round(timeouts, probed int) (int, bool) {
	old := h.score.Load()
	s := old
	switch {
	case timeouts >= 3 && timeouts*4 >= probed:
		s = min(old+1, maxHealthScore)
	case timeouts == 0:
		s = max(old-1, 0)
	}
	h.score.Store(s)
	return int(s), s != old
}

// isTimeout reports whether err is a request running out of time (its own
// deadline, or the connection closed by it) rather than a refusal.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, net.ErrClosed)
}

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
			n.origin.sweep(time.Now())
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
// and waits for them. Every ping carries the lease of the records the pinged
// node should hold from this one; this node's own share is checked locally.
func (n *Node) probeRound(ctx context.Context, full bool) {
	targets := n.members.toProbe(full)
	if !full && len(targets) == 0 {
		return
	}
	now := time.Now()
	rg := n.ring()
	leases := n.origin.leases(ctx, rg, n.cfg.Replicas, n.cfg.MaxRecordsPerMessage, 2*n.cfg.HealthInterval, now)
	if ctx.Err() != nil {
		return
	}
	if self := leases[n.addr]; full || self != nil {
		if self == nil {
			self = &lease{}
		}
		// As for a remote origin (the ping handler): a share beyond this
		// store's caps cannot match, and syncing it every round would
		// re-put the whole share under the store's lock.
		if d := n.store.Digest(n.addr); d != self.d && !n.store.OriginFull(n.addr) {
			n.syncTo(ctx, n.addr)
		} else if !self.exp.IsZero() {
			n.store.Renew(n.addr, self.exp, self.dying)
		}
	}
	var wg sync.WaitGroup
	var timeouts atomic.Int32
	for _, addr := range targets {
		select {
		case n.outbound <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		l := leases[addr]
		if l == nil {
			l = &lease{}
		}
		wg.Go(func() {
			defer func() { <-n.outbound }()
			if err := n.probe(ctx, addr, l, rg.view); err != nil && isTimeout(err) {
				timeouts.Add(1)
			}
		})
	}
	wg.Wait()
	if full && ctx.Err() == nil {
		if score, changed := n.health.round(int(timeouts.Load()), len(targets)); changed {
			n.log.Info("overlay local health", "score", score, "timeouts", timeouts.Load(), "probed", len(targets),
				"probe_timeout", n.health.scale(n.cfg.HealthTimeout))
		}
	}
}

// probe pings addr once, records the outcome and syncs addr's share of this
// node's records when its digest disagrees. The error is the ping's.
func (n *Node) probe(ctx context.Context, addr string, l *lease, view string) error {
	ping := message{Type: typePing, From: n.addr, View: view, Sum: l.d.hex(), Count: l.d.count, Records: l.dying}
	if !l.exp.IsZero() {
		ping.Exp = l.exp.UnixMilli()
	}
	replies, err := n.exchange(ctx, addr, n.health.scale(n.cfg.HealthTimeout), ping)
	n.probeOutcome(ctx, addr, err)
	if err != nil {
		return err
	}
	n.members.learn(capped(replies[0].Nodes, n.cfg.MaxNodesPerMessage)...)
	if replies[0].Sync && n.syncNow(addr, view, replies[0].View) {
		if err := n.syncTo(ctx, addr); err != nil {
			n.log.Debug("overlay sync failed", "node", addr, "err", err)
		}
	}
	return nil
}

// maxSyncSkips bounds how many pings in a row a sync waits for views to
// agree.
const maxSyncSkips = 3

// syncNow decides whether to sync addr, whose digest disagrees, now: while
// its view of the overlay differs from ours (nodes are joining or leaving)
// the set it should hold is still moving, so the sync waits for views to
// agree, for at most maxSyncSkips pings. Without that, every node joining a
// big overlay would make every origin resend its share to every owner.
func (n *Node) syncNow(addr, ours, theirs string) bool {
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	if n.syncSkips == nil {
		n.syncSkips = make(map[string]int)
	}
	if theirs == "" || theirs == ours || n.syncSkips[addr] >= maxSyncSkips {
		delete(n.syncSkips, addr)
		return true
	}
	n.syncSkips[addr]++
	return false
}
