package overlay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Gossip has two halves. Rumors: an entry that is new or changed here is
// pushed at once to RumorFanout random live nodes, which do the same when it
// changes their store, so news spreads in a few hops. Anti-entropy: every
// GossipInterval the whole store is pushed to the bootstrap nodes and
// GossipFanout random live nodes, and each answers with the entries it holds
// newer (push-pull), then names the info hashes it holds that the pusher did
// not mention, whose entries the pusher then asks for (pull). Together they
// repair what rumors missed, partitions included, and refill a restarted node.

// rumor is a batch of changed entries waiting to be pushed.
type rumor struct {
	ih      [20]byte
	ps      []Provider
	exclude string // the node it came from
}

// queueRumor queues r without blocking; when the queue is full the entries
// wait for the next anti-entropy round.
func (n *Node) queueRumor(r rumor) {
	select {
	case n.rumors <- r:
	default:
	}
}

// rumorLoop pushes queued rumors until ctx is done.
func (n *Node) rumorLoop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-n.rumors:
			select {
			case n.outbound <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				defer func() { <-n.outbound }()
				n.spreadRumor(ctx, r)
			})
		}
	}
}

// takeRumors empties the rumor queue without blocking (for simulations).
func (n *Node) takeRumors() []rumor {
	var out []rumor
	for {
		select {
		case r := <-n.rumors:
			out = append(out, r)
		default:
			return out
		}
	}
}

// spreadRumor pushes one rumor to RumorFanout random live nodes in parallel.
func (n *Node) spreadRumor(ctx context.Context, r rumor) {
	targets := n.members.sample(n.cfg.RumorFanout, r.exclude)
	n.pushAll(ctx, targets, false, func(string) []message {
		return gossipMessages(r.ih, r.ps, n.cfg.MaxProvidersPerReply, n.addr, nil)
	})
}

// Announce records p as a provider of infoHash here and pushes it at once to
// the bootstrap nodes and RumorFanout random live nodes. A zero LastSeen
// means now. Pushes that fail are repaired by anti-entropy; the error is for
// an invalid provider or a cancelled ctx.
func (n *Node) Announce(ctx context.Context, infoHash [20]byte, p Provider) error {
	if p.LastSeen.IsZero() {
		p.LastSeen = time.Now()
	}
	if err := p.validate(); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	p = n.store.normalize(p, time.Now())
	n.store.Merge(infoHash, []Provider{p}, "")
	targets := n.members.bootstraps()
	targets = append(targets, n.members.sample(n.cfg.RumorFanout, targets...)...)
	n.pushAll(ctx, targets, false, func(string) []message {
		return gossipMessages(infoHash, []Provider{p}, n.cfg.MaxProvidersPerReply, n.addr, nil)
	})
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	return nil
}

// gossipLoop runs an anti-entropy round every GossipInterval, with jitter so
// nodes started together do not gossip in lockstep.
func (n *Node) gossipLoop(ctx context.Context) {
	for {
		d := n.cfg.GossipInterval
		d += time.Duration(rand.Int64N(int64(d)/10+1)) - d/20
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		n.gossipRound(ctx)
	}
}

// gossipRound pushes the whole store to the bootstrap nodes and GossipFanout
// random live nodes, merges their answers and pulls what they hold that this
// node lacks.
func (n *Node) gossipRound(ctx context.Context) {
	hashes := n.store.InfoHashes()
	targets := n.members.bootstraps()
	targets = append(targets, n.members.sample(n.cfg.GossipFanout, targets...)...)
	n.pushAll(ctx, targets, true, func(target string) []message {
		// A random start, so a store too big for one exchange is covered over
		// several rounds.
		order := slices.Clone(hashes)
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var msgs []message
		for i, ih := range order {
			var nodes []string
			if i == 0 {
				nodes = n.members.sample(n.cfg.NodesSample, target)
			}
			msgs = append(msgs, gossipMessages(ih, n.store.Entries(ih), n.cfg.MaxProvidersPerReply, n.addr, nodes)...)
		}
		return msgs
	})
}

// gossipMessages splits entries into gossip lines of at most max providers.
func gossipMessages(ih [20]byte, ps []Provider, max int, from string, nodes []string) []message {
	var out []message
	for len(ps) > 0 {
		chunk := capped(ps, max)
		ps = ps[len(chunk):]
		out = append(out, message{Type: typeGossip, InfoHash: hexHash(ih), Providers: chunk, From: from, Nodes: nodes})
		nodes = nil
	}
	return out
}

// pushAll runs a gossip exchange with every target in parallel and waits.
func (n *Node) pushAll(ctx context.Context, targets []string, pull bool, build func(target string) []message) {
	var wg sync.WaitGroup
	for _, t := range targets {
		msgs := build(t)
		if len(msgs) == 0 && !pull {
			continue
		}
		wg.Go(func() { n.push(ctx, t, msgs, pull) })
	}
	wg.Wait()
}

// push sends gossip lines to target and merges what it answers with; with
// pull it then asks for the info hashes target holds and msgs did not name.
func (n *Node) push(ctx context.Context, target string, msgs []message, pull bool) {
	replies, err := n.pushPull(ctx, target, msgs, pull)
	if len(replies) == 0 && err != nil {
		if ctx.Err() == nil && n.members.fail(target) {
			n.log.Info("overlay node dead", "node", target, "err", err)
		}
		return
	}
	if n.members.ok(target) {
		n.log.Debug("overlay node alive", "node", target)
	}
	n.absorb(target, replies)
}

// absorb merges the providers and nodes of answers from target.
func (n *Node) absorb(target string, replies []message) {
	source := hostOf(target)
	for _, r := range replies {
		n.members.learn(capped(r.Nodes, n.cfg.MaxNodesPerMessage)...)
		if len(r.Providers) == 0 {
			continue
		}
		ih, err := ParseInfoHash(r.InfoHash)
		if err != nil {
			continue
		}
		if changed := n.store.Merge(ih, capped(r.Providers, n.cfg.MaxProvidersPerReply), source); len(changed) > 0 {
			n.queueRumor(rumor{ih: ih, ps: changed, exclude: target})
		}
	}
}

// pushPull is push's conversation with target on one connection; it returns
// the answers read before any error.
func (n *Node) pushPull(ctx context.Context, target string, msgs []message, pull bool) ([]message, error) {
	s, err := openSession(ctx, n.tr.DialContext, n.codec, n.cfg.MaxLineBytes, target, n.cfg.GossipTimeout)
	if err != nil {
		return nil, err
	}
	defer s.close()
	var replies []message
	var named []string
	for _, m := range msgs {
		r, err := s.roundTrip(m)
		if err != nil {
			return replies, err
		}
		replies = append(replies, *r)
		if len(named) == 0 || named[len(named)-1] != m.InfoHash {
			named = append(named, m.InfoHash)
		}
	}
	if !pull {
		return replies, nil
	}
	r, err := s.roundTrip(message{Type: typePull, Hashes: named, From: n.addr})
	if err != nil {
		return replies, err
	}
	replies = append(replies, *r)
	for _, h := range capped(r.Hashes, maxPullHashes) {
		if _, err := ParseInfoHash(h); err != nil || slices.Contains(named, h) {
			continue
		}
		g, err := s.roundTrip(message{Type: typeGossip, InfoHash: h, From: n.addr})
		if err != nil {
			return replies, err
		}
		replies = append(replies, *g)
	}
	return replies, nil
}
