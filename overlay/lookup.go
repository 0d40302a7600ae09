package overlay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// maxDiscoverQueries bounds the nodes one Discover asks, whatever the TTL.
const maxDiscoverQueries = 64

// ownerQuorum is how many owners' answers a query waits for in full: two,
// so that one owner missing a record (a put it did not get yet, a sync under
// way) does not hide it.
const ownerQuorum = 2

// Query returns up to limit live records of (kind, key), per ID the newest,
// the most recently seen first, never tombstones or expired ones. It asks the
// key's owners as this node sees them, in parallel (itself from its store),
// and waits for the slower ones only as long as ownerQuorum answers took;
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
	enough := ownerQuorum - len(lists) // this node's own store answered already
	answers := n.queryAll(ctx, remote, kind, key, limit, max(1, min(enough, len(remote))))
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
			answers = n.queryAll(ctx, frontier, KindProvider, infoHash, limit, len(frontier))
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
		wave := n.queryAll(ctx, candidates[next:next+k], kind, key, limit, k)
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
// It returns once every target has answered or failed, or once enough have
// answered and the others have had as long again as that took: owners hold
// the same records, so a query need not wait for a busy one's timeout (the
// tail of a search is its slowest owner). The late ones are cancelled, and
// a cancelled query counts against no one.
func (n *Node) queryAll(ctx context.Context, targets []string, kind string, key [20]byte, limit, enough int) []answer {
	start := time.Now()
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: the late ones end at once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i int
		a answer
	}
	results := make(chan result, len(targets))
	for i, t := range targets {
		wg.Go(func() { results <- result{i, n.ask(ctx, t, kind, key, limit)} })
	}
	out := make([]answer, len(targets))
	var late <-chan time.Time
	answered := 0
	for range targets {
		select {
		case r := <-results:
			out[r.i] = r.a
			if r.a.ok {
				if answered++; answered == enough && late == nil {
					t := time.NewTimer(time.Since(start))
					defer t.Stop()
					late = t.C
				}
			}
		case <-late:
			return out
		}
	}
	return out
}

// ask queries one node; the answer is not ok when it failed.
func (n *Node) ask(ctx context.Context, addr string, kind string, key [20]byte, limit int) answer {
	req := message{Type: typeQuery, Kind: kind, Key: hexHash(key), Limit: min(limit, n.cfg.MaxRecordsPerMessage), From: n.addr}
	replies, err := n.exchange(ctx, addr, n.cfg.LookupTimeout, req)
	n.outcome(ctx, addr, err)
	if err != nil {
		return answer{}
	}
	r := replies[0]
	n.members.learn(capped(r.Nodes, n.cfg.MaxNodesPerMessage)...)
	var rs []Record
	for _, rec := range capped(r.Records, n.cfg.MaxRecordsPerMessage) {
		if rec.Kind == kind && rec.Key == key && rec.validate(n.cfg.MaxValueBytes) == nil {
			rs = append(rs, rec)
		}
	}
	return answer{ok: true, records: rs, nodes: capped(r.Nodes, n.cfg.MaxNodesPerMessage)}
}
