package dht

import "sync/atomic"

// counters are the node's running totals.
type counters struct {
	packetsIn, packetsOut, bytesIn, bytesOut atomic.Int64
	queriesIn                                atomic.Int64
	lookups, lookupsFailed, announces        atomic.Int64
	timeouts                                 atomic.Int64

	rateLimited, blocked, malformed, oversized, unsolicited atomic.Int64
	badTokens, amplification, protocolErrors, panics        atomic.Int64
	verifySkipped, readErrors, writeErrors                  atomic.Int64
}

// Stats is a snapshot of the node for /status and /metrics.
type Stats struct {
	// The routing table: nodes in buckets, of which good (answered within
	// RefreshInterval), replacements waiting for a slot, and buckets.
	Nodes, GoodNodes, Replacements, Buckets int
	// The peer store.
	InfoHashes, Peers int
	// Lookups run (GetPeers and Announce), those that reached no node, and
	// announce_peer queries that nodes accepted.
	Lookups, LookupsFailed, Announces int64
	// Traffic.
	PacketsIn, PacketsOut, BytesIn, BytesOut int64
	QueriesIn, Timeouts                      int64
	// What the defences dropped: queries over a rate limit, packets from a
	// blocked source, malformed and oversized packets, responses to no
	// query of ours, announces with a bad token, packets not sent for the
	// amplification budget, and handler panics recovered.
	RateLimited, Blocked, Malformed, Oversized, Unsolicited int64
	BadTokens, AmplificationLimited, Panics                 int64
	// Sources is how many source addresses the limits remember.
	Sources int
}

// Stats returns a snapshot of the node's counters and tables.
func (n *Node) Stats() Stats {
	now := n.now()
	s := locked(n, func() Stats {
		nodes, good, repl := n.table.counts(now)
		return Stats{
			Nodes: nodes, GoodNodes: good, Replacements: repl, Buckets: len(n.table.buckets),
			InfoHashes: len(n.store.swarms), Peers: n.store.peers,
		}
	})
	c := &n.stats
	s.Lookups, s.LookupsFailed, s.Announces = c.lookups.Load(), c.lookupsFailed.Load(), c.announces.Load()
	s.PacketsIn, s.PacketsOut = c.packetsIn.Load(), c.packetsOut.Load()
	s.BytesIn, s.BytesOut = c.bytesIn.Load(), c.bytesOut.Load()
	s.QueriesIn, s.Timeouts = c.queriesIn.Load(), c.timeouts.Load()
	s.RateLimited, s.Blocked, s.Malformed = c.rateLimited.Load(), c.blocked.Load(), c.malformed.Load()
	s.Oversized, s.Unsolicited, s.BadTokens = c.oversized.Load(), c.unsolicited.Load(), c.badTokens.Load()
	s.AmplificationLimited, s.Panics = c.amplification.Load(), c.panics.Load()
	s.Sources = n.guard.size()
	return s
}
