package dht

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// maxPeersPerLookup bounds the peers one get_peers lookup collects.
const maxPeersPerLookup = 1000

var errNoNodes = errors.New("dht: no node answered (the table is empty and no bootstrap node answers)")

// candidate is a node a lookup knows of.
type candidate struct {
	nodeInfo
	known bool // false: a bootstrap address whose id we learn from its answer
	depth int  // 1 for nodes we started from, +1 per referral
	state candState
	token string
}

type candState int

const (
	fresh candState = iota
	inFlight
	slow // in flight past SlowQuery: no longer counted against Alpha
	answered
	failed
)

// lookupResult is what an iterative lookup found.
type lookupResult struct {
	closest   []*candidate // up to K nodes that answered, closest first
	peers     []netip.AddrPort
	queries   int // queries sent
	responded int // nodes that answered
	// hops is the depth of the first node that gave peers (get_peers), or
	// of the closest node that answered.
	hops int
}

type lookupEvent struct {
	c    *candidate
	slow bool
	res  result
	err  error
}

// lookup runs BEP 5's iterative lookup of target: Alpha queries in
// flight to the closest nodes not yet asked, until the K closest known
// nodes have all answered (or failed). With getPeers it asks get_peers
// and collects peers and tokens; otherwise find_node.
func (n *Node) lookup(ctx context.Context, target ID, getPeers bool) (*lookupResult, error) {
	k, alpha := n.cfg.K, n.cfg.Alpha
	now := n.now()
	seeds := locked(n, func() []nodeInfo { return n.table.closest(target, k, now) })

	res := &lookupResult{}
	var list []*candidate
	byAddr := make(map[netip.AddrPort]bool)
	byID := make(map[ID]bool)
	for _, s := range seeds {
		list = append(list, &candidate{nodeInfo: s, known: true, depth: 1})
		byAddr[s.Addr], byID[s.ID] = true, true
	}
	if len(seeds) < k {
		for _, a := range n.bootstrapAddrs(ctx) {
			if !byAddr[a] && a != n.addr {
				list = append(list, &candidate{nodeInfo: nodeInfo{Addr: a}, depth: 1})
				byAddr[a] = true
			}
		}
	}
	sortCandidates(target, list)

	peerSet := make(map[netip.AddrPort]bool)
	addPeers := func(ps []netip.AddrPort) {
		for _, p := range ps {
			if !peerSet[p] && len(res.peers) < maxPeersPerLookup {
				peerSet[p] = true
				res.peers = append(res.peers, p)
			}
		}
	}
	if getPeers {
		addPeers(locked(n, func() []netip.AddrPort { return n.store.get(target, n.cfg.MaxValues, now) }))
	}

	// Queries run on goroutines Run owns and end on their own timeout: a
	// lookup that has converged does not abandon them, so their answers
	// still reach the table and are not taken for unsolicited ones.
	events := make(chan lookupEvent, 2*n.cfg.MaxLookupQueries)
	method := methodFindNode
	if getPeers {
		method = methodGetPeers
	}
	active, inflight := 0, 0
	for {
		for active < alpha && res.queries < n.cfg.MaxLookupQueries {
			c := nextCandidate(list, k)
			if c == nil {
				break
			}
			c.state = inFlight
			active++
			inflight++
			res.queries++
			args := map[string]any{"target": string(target[:])}
			if getPeers {
				args = map[string]any{"info_hash": string(target[:])}
			}
			if !n.spawn(func() {
				r, err := n.query(n.bg, c.Addr, method, args, false, func() { events <- lookupEvent{c: c, slow: true} })
				events <- lookupEvent{c: c, res: r, err: err}
			}) {
				return res, errStopped
			}
		}
		// Done when nothing is in flight, or when the K closest nodes have
		// answered and only slow queries to farther nodes remain.
		if inflight == 0 || active == 0 && converged(list, k) {
			break
		}
		var ev lookupEvent
		select {
		case ev = <-events:
		case <-ctx.Done():
			return res, ctx.Err()
		}
		c := ev.c
		if ev.slow {
			if c.state == inFlight {
				c.state = slow
				active--
			}
			continue
		}
		if c.state == inFlight {
			active--
		}
		inflight--
		if ev.err != nil {
			c.state = failed
			continue
		}
		if !c.known || c.ID != ev.res.id {
			if byID[ev.res.id] {
				c.state = failed // another candidate already has this id
				continue
			}
			c.ID, c.known = ev.res.id, true
			byID[c.ID] = true
		}
		c.state = answered
		res.responded++
		r := ev.res.r
		c.token = r.Token
		if getPeers {
			if ps := parsePeers(r.Values, maxPeersPerLookup); len(ps) > 0 {
				if res.hops == 0 {
					res.hops = c.depth
				}
				addPeers(ps)
			}
		}
		nodes, _ := parseCompactNodes(r.Nodes) // checked in handleResponse
		accepted := 0
		for _, nd := range nodes {
			if accepted >= 2*k {
				break // a node naming a thousand others gets a hearing for 2K of them
			}
			if nd.ID == n.id || nd.Addr == n.addr || byAddr[nd.Addr] || byID[nd.ID] || !acceptReferral(c.Addr, nd.Addr) {
				continue
			}
			accepted++
			byAddr[nd.Addr], byID[nd.ID] = true, true
			list = append(list, &candidate{nodeInfo: nd, known: true, depth: c.depth + 1})
		}
		sortCandidates(target, list)
	}
	for _, c := range list {
		if c.state == answered && len(res.closest) < k {
			res.closest = append(res.closest, c)
		}
	}
	if res.hops == 0 && len(res.closest) > 0 {
		res.hops = res.closest[0].depth
	}
	if res.responded == 0 {
		return res, errNoNodes
	}
	return res, nil
}

// sortCandidates orders unknown-id candidates first (they must be asked to
// learn anything), then by distance to target.
func sortCandidates(target ID, list []*candidate) {
	slices.SortStableFunc(list, func(a, b *candidate) int {
		switch {
		case a.known != b.known:
			if !a.known {
				return -1
			}
			return 1
		case closer(target, a.ID, b.ID):
			return -1
		case closer(target, b.ID, a.ID):
			return 1
		}
		return 0
	})
}

// window calls f on the K closest candidates that have neither failed nor
// gone slow: the nodes a lookup must hear from.
func window(list []*candidate, k int, f func(*candidate) bool) {
	seen := 0
	for _, c := range list {
		if c.state == failed || c.state == slow {
			continue
		}
		if seen >= k || !f(c) {
			return
		}
		seen++
	}
}

// nextCandidate returns the closest candidate of the window not yet asked.
func nextCandidate(list []*candidate, k int) *candidate {
	var next *candidate
	window(list, k, func(c *candidate) bool {
		if c.state == fresh {
			next = c
			return false
		}
		return true
	})
	return next
}

// converged reports whether the K closest candidates that have not failed
// have all answered: a slow query among them is waited for (to its answer
// or its timeout), since the closest nodes are the ones that hold the
// peers and take the announces.
func converged(list []*candidate, k int) bool {
	seen := 0
	for _, c := range list {
		if c.state == failed {
			continue
		}
		if seen == k {
			break
		}
		if c.state != answered {
			return false
		}
		seen++
	}
	return true
}

// GetPeers runs an iterative get_peers lookup of infoHash and returns the
// peers the nodes on the way (and this node's own store) know.
func (n *Node) GetPeers(ctx context.Context, infoHash [20]byte) ([]netip.AddrPort, error) {
	res, err := n.lookup(ctx, ID(infoHash), true)
	n.countLookup(err)
	if err != nil {
		return res.peers, fmt.Errorf("dht: get_peers %x: %w", infoHash, err)
	}
	return res.peers, nil
}

// Announce looks infoHash up, then announces this host as a peer on port
// (with impliedPort, on the port the DHT's packets come from, as for uTP)
// to the K closest nodes that gave a token. It returns the peers found on
// the way, and an error when no node took the announce.
func (n *Node) Announce(ctx context.Context, infoHash [20]byte, port int, impliedPort bool) ([]netip.AddrPort, error) {
	if port < 0 || port > 65535 || (port == 0 && !impliedPort) {
		return nil, fmt.Errorf("dht: announce port %d: want 1-65535", port)
	}
	res, err := n.lookup(ctx, ID(infoHash), true)
	n.countLookup(err)
	if err != nil {
		return res.peers, fmt.Errorf("dht: announce %x: %w", infoHash, err)
	}
	implied := 0
	if impliedPort {
		implied = 1
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	var lastErr error
	for _, c := range res.closest {
		if c.token == "" {
			continue
		}
		args := map[string]any{"info_hash": string(infoHash[:]), "port": port, "token": c.token, "implied_port": implied}
		wg.Go(func() {
			_, err := n.query(ctx, c.Addr, methodAnnouncePeer, args, false, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = err
				return
			}
			accepted++
		})
	}
	wg.Wait()
	n.stats.announces.Add(int64(accepted))
	if accepted == 0 {
		if lastErr == nil {
			lastErr = errors.New("no node gave a token")
		}
		return res.peers, fmt.Errorf("dht: announce %x: no node took it: %w", infoHash, lastErr)
	}
	return res.peers, nil
}

func (n *Node) countLookup(err error) {
	n.stats.lookups.Add(1)
	if err != nil {
		n.stats.lookupsFailed.Add(1)
	}
}
