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

// Query returns up to limit live records of (kind, key), per ID the newest,
// the most recently seen first, never tombstones or expired ones. It asks the
// key's owners as this node sees them, in parallel (itself from its store);
// when none of them answers (a node that knows no one yet), it asks up to
// LookupFanout other nodes, live ones first, then bootstrap nodes. limit <= 0
// means up to MaxRecordsPerMessage.
func (n *Node) Query(ctx context.Context, kind string, key [20]byte, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = n.cfg.MaxRecordsPerMessage
	}
	var lists [][]Record
	var remote []string
	for _, o := range n.ring().owners(key, n.cfg.Replicas) {
		if o == n.addr {
			lists = append(lists, n.store.Query(kind, key, 0))
		} else {
			remote = append(remote, o)
		}
	}
	answers := n.queryAll(ctx, remote, kind, key, limit)
	answered := false
	for _, a := range answers {
		if a.ok {
			answered = true
			lists = append(lists, a.records)
		}
	}
	if !answered {
		cands := slices.DeleteFunc(n.candidates(), func(a string) bool { return slices.Contains(remote, a) })
		for _, a := range n.queryUntil(ctx, cands, kind, key, limit, n.cfg.LookupFanout) {
			lists = append(lists, a.records)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("query %s: %w", kind, err)
	}
	return mergeRecords(limit, lists...), nil
}

// Lookup returns up to limit providers of infoHash, most recently seen first,
// never stopped or expired ones: Query of the provider records. limit <= 0
// means up to MaxProvidersPerReply.
func (n *Node) Lookup(ctx context.Context, infoHash [20]byte, limit int) ([]Provider, error) {
	if limit <= 0 {
		limit = n.cfg.MaxProvidersPerReply
	}
	rs, err := n.Query(ctx, KindProvider, infoHash, limit)
	if err != nil {
		return nil, fmt.Errorf("lookup: %w", err)
	}
	return providersOf(rs), nil
}

// Discover searches the overlay breadth-first for providers of infoHash: it
// asks LookupFanout nodes (the owners first), then up to LookupFanout not
// yet seen nodes named in each answer (each answer names the owners as the
// answering node sees them first), level by level, for at most ttl levels
// (and at most 64 nodes), stopping early once limit providers are known.
// Every level's queries run in parallel. limit <= 0 means up to
// MaxProvidersPerReply.
func (n *Node) Discover(ctx context.Context, infoHash [20]byte, ttl int, limit int) ([]Provider, error) {
	if limit <= 0 {
		limit = n.cfg.MaxProvidersPerReply
	}
	ttl = max(1, min(ttl, 16))
	seen := map[string]bool{n.addr: true}
	lists := [][]Record{n.store.Query(KindProvider, infoHash, 0)}
	found := func() int { return len(mergeRecords(limit, lists...)) }
	var frontier []string
	for _, o := range n.ring().owners(infoHash, n.cfg.Replicas) {
		if o != n.addr {
			frontier = append(frontier, o)
		}
	}
	for _, c := range n.candidates() {
		if !slices.Contains(frontier, c) {
			frontier = append(frontier, c)
		}
	}
	asked := 0
	for level := 0; level < ttl && len(frontier) > 0; level++ {
		frontier = capped(frontier, maxDiscoverQueries-asked)
		var answers []answer
		if level == 0 {
			// The first level keeps going past dead entries until
			// LookupFanout nodes have answered.
			answers = n.queryUntil(ctx, frontier, KindProvider, infoHash, limit, n.cfg.LookupFanout)
			frontier = frontier[:len(answers)]
		} else {
			answers = n.queryAll(ctx, frontier, KindProvider, infoHash, limit)
		}
		asked += len(frontier)
		for _, a := range frontier {
			seen[a] = true
		}
		for _, a := range answers {
			lists = append(lists, a.records)
		}
		if ctx.Err() != nil || found() >= limit {
			break
		}
		var next []string
		for _, a := range answers {
			nodes := a.nodes
			if len(nodes) > n.cfg.Replicas {
				tail := nodes[n.cfg.Replicas:]
				rand.Shuffle(len(tail), func(i, j int) { tail[i], tail[j] = tail[j], tail[i] })
			}
			k := 0
			for _, addr := range nodes {
				if k == n.cfg.LookupFanout {
					break
				}
				if !seen[addr] && validNodeAddr(addr) {
					seen[addr] = true
					next = append(next, addr)
					k++
				}
			}
		}
		frontier = next
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	return providersOf(mergeRecords(limit, lists...)), nil
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

// answer is one node's answer to a query: ok is false when it did not
// answer.
type answer struct {
	ok      bool
	records []Record
	nodes   []string
}

// queryUntil asks candidates in waves, in order, until want of them have
// answered or none are left; it returns one answer per candidate tried.
func (n *Node) queryUntil(ctx context.Context, candidates []string, kind string, key [20]byte, limit, want int) []answer {
	var out []answer
	answered, next := 0, 0
	for answered < want && next < len(candidates) && ctx.Err() == nil {
		k := min(want-answered, len(candidates)-next)
		wave := n.queryAll(ctx, candidates[next:next+k], kind, key, limit)
		next += k
		for _, a := range wave {
			if a.ok {
				answered++
			}
		}
		out = append(out, wave...)
	}
	return out
}

// queryAll asks every target for the records of (kind, key) in parallel.
func (n *Node) queryAll(ctx context.Context, targets []string, kind string, key [20]byte, limit int) []answer {
	out := make([]answer, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			req := message{Type: typeQuery, Kind: kind, Key: hexHash(key), Limit: min(limit, n.cfg.MaxRecordsPerMessage), From: n.addr}
			replies, err := n.exchange(ctx, t, n.cfg.LookupTimeout, req)
			n.outcome(ctx, t, err)
			if err != nil {
				return
			}
			r := replies[0]
			n.members.learn(capped(r.Nodes, n.cfg.MaxNodesPerMessage)...)
			var rs []Record
			for _, rec := range capped(r.Records, n.cfg.MaxRecordsPerMessage) {
				if rec.Kind == kind && rec.Key == key && rec.validate(n.cfg.MaxValueBytes) == nil {
					rs = append(rs, rec)
				}
			}
			out[i] = answer{ok: true, records: rs, nodes: capped(r.Nodes, n.cfg.MaxNodesPerMessage)}
		})
	}
	wg.Wait()
	return out
}
