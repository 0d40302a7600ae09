package overlay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
)

// maxDiscoverQueries bounds the nodes one Discover asks, whatever the TTL.
const maxDiscoverQueries = 64

// Lookup returns up to limit providers of infoHash, most recently seen first,
// never stopped or expired ones. It answers from the local store when that
// has enough; otherwise it asks up to LookupFanout nodes in parallel (live
// ones first, then bootstrap nodes), merges their answers into the store by
// last-writer-wins and answers from the store. limit <= 0 means up to
// MaxProvidersPerReply.
func (n *Node) Lookup(ctx context.Context, infoHash [20]byte, limit int) ([]Provider, error) {
	if limit <= 0 {
		limit = n.cfg.MaxProvidersPerReply
	}
	if local := n.store.Lookup(infoHash, limit); len(local) >= limit {
		return local, nil
	}
	n.queryUntil(ctx, n.candidates(), infoHash, limit, n.cfg.LookupFanout)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lookup: %w", err)
	}
	return n.store.Lookup(infoHash, limit), nil
}

// Discover searches the overlay breadth-first for providers of infoHash: it
// asks LookupFanout nodes, then up to LookupFanout not yet seen nodes named
// in each answer, level by level, for at most ttl levels (and at most 64
// nodes), stopping early once limit providers are known. Every level's
// queries run in parallel. limit <= 0 means up to MaxProvidersPerReply.
func (n *Node) Discover(ctx context.Context, infoHash [20]byte, ttl int, limit int) ([]Provider, error) {
	if limit <= 0 {
		limit = n.cfg.MaxProvidersPerReply
	}
	ttl = max(1, min(ttl, 16))
	seen := map[string]bool{n.addr: true}
	frontier := n.candidates()
	asked := 0
	for level := 0; level < ttl && len(frontier) > 0; level++ {
		frontier = capped(frontier, maxDiscoverQueries-asked)
		var named [][]string
		if level == 0 {
			// The first level keeps going past dead entries until
			// LookupFanout nodes have answered.
			var tried []string
			named, tried = n.queryUntil(ctx, frontier, infoHash, limit, n.cfg.LookupFanout)
			frontier = tried
		} else {
			named = n.queryAll(ctx, frontier, infoHash, limit)
		}
		asked += len(frontier)
		for _, a := range frontier {
			seen[a] = true
		}
		if ctx.Err() != nil || len(n.store.Lookup(infoHash, limit)) >= limit {
			break
		}
		var next []string
		for _, nodes := range named {
			rand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
			k := 0
			for _, a := range nodes {
				if k == n.cfg.LookupFanout {
					break
				}
				if !seen[a] && validNodeAddr(a) {
					seen[a] = true
					next = append(next, a)
					k++
				}
			}
		}
		frontier = next
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	return n.store.Lookup(infoHash, limit), nil
}

// candidates lists the nodes worth asking, best first: live nodes, then
// bootstrap nodes, each in random order so that dead entries are not always
// the ones tried.
func (n *Node) candidates() []string {
	out := n.members.sample(n.cfg.MaxNodes)
	boot := n.members.bootstraps()
	rand.Shuffle(len(boot), func(i, j int) { boot[i], boot[j] = boot[j], boot[i] })
	for _, b := range boot {
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// queryUntil asks candidates in waves, in order, until want of them have
// answered or none are left; it returns the nodes the answers named and the
// candidates it tried.
func (n *Node) queryUntil(ctx context.Context, candidates []string, infoHash [20]byte, limit, want int) ([][]string, []string) {
	var named [][]string
	answered, next := 0, 0
	for answered < want && next < len(candidates) && ctx.Err() == nil {
		k := min(want-answered, len(candidates)-next)
		wave := n.queryAll(ctx, candidates[next:next+k], infoHash, limit)
		next += k
		for _, nodes := range wave {
			if nodes != nil {
				answered++
			}
		}
		named = append(named, wave...)
	}
	return named, candidates[:next]
}

// queryAll asks every target for providers of infoHash in parallel, merges
// the answers into the store and returns the nodes each answer named.
func (n *Node) queryAll(ctx context.Context, targets []string, infoHash [20]byte, limit int) [][]string {
	named := make([][]string, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			req := message{Type: typeLookup, InfoHash: hexHash(infoHash), Limit: limit, From: n.addr}
			replies, err := n.exchange(ctx, t, n.cfg.LookupTimeout, req)
			if err != nil {
				if ctx.Err() == nil && n.members.fail(t) {
					n.log.Info("overlay node dead", "node", t, "err", err)
				}
				return
			}
			n.members.ok(t)
			n.absorb(t, replies)
			named[i] = capped(replies[0].Nodes, n.cfg.MaxNodesPerMessage)
			if named[i] == nil {
				named[i] = []string{} // answered, naming nobody
			}
		})
	}
	wg.Wait()
	return named
}
