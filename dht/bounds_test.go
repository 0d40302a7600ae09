package dht

import (
	"net/netip"
	"testing"
	"time"
)

// TestWorstCaseMemory fills every table of a node to its cap, as a
// patient attacker could, and states what that costs: the bound on the
// node's memory whatever it is sent.
func TestWorstCaseMemory(t *testing.T) {
	c := DefaultConfig()
	now := time.Now()
	heap0 := heapInuse()

	s := newPeerStore(&c)
	for h := range c.MaxInfoHashes {
		ih := randomID()
		for p := range c.MaxPeersPerHash {
			s.add(ih, netip.AddrPortFrom(netip.AddrFrom4([4]byte{1, byte(h >> 8), byte(h), byte(p)}), uint16(1+p)), now)
		}
	}
	heapStore := heapInuse()
	if s.peers != c.MaxInfoHashes*c.MaxPeersPerHash {
		t.Fatalf("%d peers stored", s.peers)
	}

	g := newGuard(&c)
	for i := range 4 * c.MaxSources {
		g.received(netip.AddrPortFrom(netip.AddrFrom4([4]byte{2, byte(i >> 16), byte(i >> 8), byte(i)}), 1), 100, now)
	}
	heapGuard := heapInuse()

	// Ids chosen to fill every one of the 160 buckets and its replacements,
	// each from its own /24.
	self := randomID()
	tb := newTable(self, &c)
	i := 0
	for p := range 160 {
		for range 4 * c.K {
			i++
			tb.verified(nodeInfo{randomIDWithPrefix(self, p), netip.AddrPortFrom(netip.AddrFrom4([4]byte{3, byte(i >> 8), byte(i), 1}), 1)}, now)
		}
	}
	heapTable := heapInuse()
	entries := len(tb.byAddr)

	store, guard, table := heapStore-heap0, heapGuard-heapStore, heapTable-heapGuard
	t.Logf("measured: worst case: peer store %d peers in %d hashes %s; limits %d sources %s; table %d entries %s; total %s",
		s.peers, len(s.swarms), mib(store), g.size(), mib(guard), entries, mib(table), mib(store+guard+table))
	if total := store + guard + table; total > 24<<20 {
		t.Errorf("worst case %s, over the 24 MiB this test states", mib(total))
	}
}
