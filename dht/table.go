package dht

import (
	"net/netip"
	"slices"
	"time"
)

// table is the routing table of BEP 5: k-buckets by how many leading bits a
// node's id shares with ours. Bucket i holds ids that share exactly i bits;
// the last bucket holds every id sharing at least that many, and only it is
// split, so the table is detailed near our own id and coarse far from it. It
// does no I/O: the node tells it what happened and pings whom it names.
type table struct {
	self         ID
	k            int
	maxFails     int
	staleAfter   time.Duration
	maxPerIP     int
	maxPerSubnet int

	buckets   []*bucket
	byAddr    map[netip.AddrPort]*entry // nodes and replacements
	perIP     map[netip.AddrPort]int    // sourceKey → entries
	perSubnet map[[3]byte]int           // public /24 → entries
}

type bucket struct {
	nodes   []*entry // at most k
	repl    []*entry // replacement cache: verified nodes waiting for a slot, at most k
	changed time.Time
}

// entry is one node the table knows. A node is good while it has answered
// a query of ours within staleAfter, bad after maxFails unanswered queries
// in a row, and questionable otherwise.
type entry struct {
	nodeInfo
	lastReply time.Time // zero: never answered us (loaded from a saved table)
	lastQuery time.Time // last query it sent us
	fails     int
}

type nodeState int

const (
	stateGood nodeState = iota
	stateQuestionable
	stateBad
)

func newTable(self ID, c *Config) *table {
	return &table{
		self:         self,
		k:            c.K,
		maxFails:     c.MaxFails,
		staleAfter:   c.RefreshInterval,
		maxPerIP:     c.MaxNodesPerIP,
		maxPerSubnet: c.MaxNodesPerSubnet,
		buckets:      []*bucket{{}},
		byAddr:       make(map[netip.AddrPort]*entry),
		perIP:        make(map[netip.AddrPort]int),
		perSubnet:    make(map[[3]byte]int),
	}
}

func (t *table) state(e *entry, now time.Time) nodeState {
	switch {
	case e.fails >= t.maxFails:
		return stateBad
	case e.fails == 0 && !e.lastReply.IsZero() &&
		(now.Sub(e.lastReply) < t.staleAfter || now.Sub(e.lastQuery) < t.staleAfter):
		return stateGood
	default:
		return stateQuestionable
	}
}

func (t *table) bucketIndex(id ID) int {
	return min(commonPrefixLen(t.self, id), len(t.buckets)-1)
}

// insertResult says what became of a node offered to the table.
type insertResult int

const (
	inserted insertResult = iota
	updated
	cached  // full bucket: kept as a replacement
	refused // our own id, a claimed id, a cap, or nothing to replace
)

// verified records that n answered a query of ours from n.Addr. When it
// lands in the replacement cache of a full bucket, ping names the stalest
// questionable node of that bucket, whose failure to answer would free a
// slot.
func (t *table) verified(n nodeInfo, now time.Time) (res insertResult, ping *nodeInfo) {
	return t.add(n, now, true)
}

// restore adds a node from a saved table as questionable: it answered in a
// previous run, so it is worth a query, not yet trust. It never displaces a
// node.
func (t *table) restore(n nodeInfo, now time.Time) insertResult {
	res, _ := t.add(n, now, false)
	return res
}

func (t *table) add(n nodeInfo, now time.Time, answered bool) (insertResult, *nodeInfo) {
	if n.ID == t.self {
		return refused, nil
	}
	if e := t.byAddr[n.Addr]; e != nil {
		if e.ID != n.ID {
			if !answered {
				return refused, nil
			}
			// The node at this address answered with a new id (it
			// restarted): the address is proven, the old id is gone.
			t.remove(e)
			return t.add(n, now, answered)
		}
		if answered {
			e.lastReply, e.fails = now, 0
			b := t.buckets[t.bucketIndex(e.ID)]
			b.changed = now
			if i := slices.Index(b.repl, e); i >= 0 && t.hasSlot(b, now) {
				b.repl = slices.Delete(b.repl, i, i+1)
				t.place(b, e, now)
			}
		}
		return updated, nil
	}
	for {
		b := t.buckets[t.bucketIndex(n.ID)]
		if slices.ContainsFunc(b.nodes, func(e *entry) bool { return e.ID == n.ID }) ||
			slices.ContainsFunc(b.repl, func(e *entry) bool { return e.ID == n.ID }) {
			return refused, nil // another address claims a known id: keep the one we know
		}
		if !t.withinCaps(n.Addr) {
			return refused, nil
		}
		e := &entry{nodeInfo: n}
		if answered {
			e.lastReply = now
		}
		if t.hasSlot(b, now) {
			t.track(e)
			t.place(b, e, now)
			return inserted, nil
		}
		if b == t.buckets[len(t.buckets)-1] && len(t.buckets) < 160 {
			t.split()
			continue
		}
		if !answered {
			return refused, nil
		}
		// Full of good and questionable nodes: cache the newcomer and ask
		// the stalest questionable one whether it is still there.
		if len(b.repl) >= t.k {
			oldest := slices.MinFunc(b.repl, func(a, c *entry) int { return a.lastReply.Compare(c.lastReply) })
			t.untrack(oldest)
			b.repl = slices.DeleteFunc(b.repl, func(x *entry) bool { return x == oldest })
		}
		t.track(e)
		b.repl = append(b.repl, e)
		var stalest *entry
		for _, x := range b.nodes {
			if t.state(x, now) == stateQuestionable && (stalest == nil || x.lastReply.Before(stalest.lastReply)) {
				stalest = x
			}
		}
		if stalest == nil {
			return cached, nil
		}
		ni := stalest.nodeInfo
		return cached, &ni
	}
}

// hasSlot reports whether b has room, or a bad node to give up.
func (t *table) hasSlot(b *bucket, now time.Time) bool {
	return len(b.nodes) < t.k || slices.ContainsFunc(b.nodes, func(e *entry) bool { return t.state(e, now) == stateBad })
}

// place puts e (already tracked) into b's nodes, evicting a bad node when
// the bucket is full.
func (t *table) place(b *bucket, e *entry, now time.Time) {
	if len(b.nodes) >= t.k {
		i := slices.IndexFunc(b.nodes, func(x *entry) bool { return t.state(x, now) == stateBad })
		t.untrack(b.nodes[i])
		b.nodes = slices.Delete(b.nodes, i, i+1)
	}
	b.nodes = append(b.nodes, e)
	b.changed = now
}

// split divides the last bucket: ids sharing one more bit with ours move to
// a new last bucket.
func (t *table) split() {
	last := t.buckets[len(t.buckets)-1]
	depth := len(t.buckets) - 1
	next := &bucket{changed: last.changed}
	keep := func(list []*entry, moved *[]*entry) []*entry {
		var stay []*entry
		for _, e := range list {
			if commonPrefixLen(t.self, e.ID) > depth {
				*moved = append(*moved, e)
			} else {
				stay = append(stay, e)
			}
		}
		return stay
	}
	last.nodes = keep(last.nodes, &next.nodes)
	last.repl = keep(last.repl, &next.repl)
	t.buckets = append(t.buckets, next)
}

func (t *table) withinCaps(a netip.AddrPort) bool {
	if t.perIP[sourceKey(a)] >= t.maxPerIP {
		return false
	}
	if s, ok := subnetKey(a); ok && t.perSubnet[s] >= t.maxPerSubnet {
		return false
	}
	return true
}

func (t *table) track(e *entry) {
	t.byAddr[e.Addr] = e
	t.perIP[sourceKey(e.Addr)]++
	if s, ok := subnetKey(e.Addr); ok {
		t.perSubnet[s]++
	}
}

func (t *table) untrack(e *entry) {
	delete(t.byAddr, e.Addr)
	k := sourceKey(e.Addr)
	if t.perIP[k]--; t.perIP[k] <= 0 {
		delete(t.perIP, k)
	}
	if s, ok := subnetKey(e.Addr); ok {
		if t.perSubnet[s]--; t.perSubnet[s] <= 0 {
			delete(t.perSubnet, s)
		}
	}
}

// remove drops e from its bucket, promoting the freshest replacement.
func (t *table) remove(e *entry) {
	b := t.buckets[t.bucketIndex(e.ID)]
	t.untrack(e)
	if i := slices.Index(b.repl, e); i >= 0 {
		b.repl = slices.Delete(b.repl, i, i+1)
		return
	}
	b.nodes = slices.DeleteFunc(b.nodes, func(x *entry) bool { return x == e })
	if len(b.repl) > 0 {
		best := slices.MaxFunc(b.repl, func(a, c *entry) int { return a.lastReply.Compare(c.lastReply) })
		b.repl = slices.DeleteFunc(b.repl, func(x *entry) bool { return x == best })
		b.nodes = append(b.nodes, best)
	}
}

// failed records that the node at addr did not answer a query. A bad node
// stays until a verified node needs its slot, except a replacement or a
// node that never answered us, which goes at once.
func (t *table) failed(addr netip.AddrPort, now time.Time) {
	e := t.byAddr[addr]
	if e == nil {
		return
	}
	e.fails++
	if e.fails < t.maxFails {
		return
	}
	b := t.buckets[t.bucketIndex(e.ID)]
	if e.lastReply.IsZero() || slices.Contains(b.repl, e) || len(b.repl) > 0 {
		t.remove(e)
	}
}

// queried records a query from n. It reports whether n is worth a ping to
// verify it: it is unknown, and its bucket has room (or could split).
func (t *table) queried(n nodeInfo, now time.Time) (verify bool) {
	if e := t.byAddr[n.Addr]; e != nil {
		if e.ID == n.ID {
			e.lastQuery = now
		}
		return false
	}
	if n.ID == t.self || !t.withinCaps(n.Addr) {
		return false
	}
	i := t.bucketIndex(n.ID)
	return t.hasSlot(t.buckets[i], now) || i == len(t.buckets)-1 && len(t.buckets) < 160
}

// closest returns up to n nodes that are not bad, closest to target first.
func (t *table) closest(target ID, n int, now time.Time) []nodeInfo {
	var all []nodeInfo
	for _, b := range t.buckets {
		for _, e := range b.nodes {
			if t.state(e, now) != stateBad {
				all = append(all, e.nodeInfo)
			}
		}
	}
	slices.SortFunc(all, func(a, b nodeInfo) int {
		if closer(target, a.ID, b.ID) {
			return -1
		}
		if closer(target, b.ID, a.ID) {
			return 1
		}
		return 0
	})
	return all[:min(n, len(all))]
}

// staleBuckets returns a random id inside every bucket that has not
// changed for interval, and marks those buckets changed: a lookup of each
// refreshes it.
func (t *table) staleBuckets(now time.Time, interval time.Duration) []ID {
	var ids []ID
	for i, b := range t.buckets {
		if now.Sub(b.changed) >= interval {
			ids = append(ids, randomIDWithPrefix(t.self, i))
			b.changed = now
		}
	}
	return ids
}

// nodes returns every node that is not bad, bucket by bucket.
func (t *table) nodes(now time.Time) []nodeInfo {
	var out []nodeInfo
	for _, b := range t.buckets {
		for _, e := range b.nodes {
			if t.state(e, now) != stateBad {
				out = append(out, e.nodeInfo)
			}
		}
	}
	return out
}

// counts returns the number of nodes, of good ones, and of replacements.
func (t *table) counts(now time.Time) (nodes, good, repl int) {
	for _, b := range t.buckets {
		nodes += len(b.nodes)
		repl += len(b.repl)
		for _, e := range b.nodes {
			if t.state(e, now) == stateGood {
				good++
			}
		}
	}
	return nodes, good, repl
}
