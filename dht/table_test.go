package dht

import (
	"net/netip"
	"testing"
	"time"
)

// idWithPrefix returns an id sharing exactly prefix leading bits with self.
func idWithPrefix(self ID, prefix int) ID { return randomIDWithPrefix(self, prefix) }

func publicAddr(a, b, c, d byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{a, b, c, d}), 6881)
}

func newTestTable(self ID) *table {
	c := DefaultConfig()
	return newTable(self, &c)
}

func TestTable(t *testing.T) {
	now := time.Now()
	self := randomID()
	tests := []struct {
		name  string
		check func(t *testing.T, tb *table)
	}{
		{"splits only the bucket holding our own id", func(t *testing.T, tb *table) {
			// 8 far nodes (first bit differs) fill bucket 0; a ninth far
			// node must not split it but wait as a replacement.
			for i := range 8 {
				if res, _ := tb.verified(nodeInfo{idWithPrefix(self, 0), publicAddr(1, byte(i), 0, 1)}, now); res != inserted {
					t.Fatalf("far node %d: %v", i, res)
				}
			}
			near := nodeInfo{idWithPrefix(self, 5), publicAddr(2, 0, 0, 1)}
			if res, _ := tb.verified(near, now); res != inserted {
				t.Fatalf("a near node is inserted after a split, got %v", res)
			}
			if len(tb.buckets) < 2 {
				t.Fatalf("%d buckets, want a split", len(tb.buckets))
			}
			res, ping := tb.verified(nodeInfo{idWithPrefix(self, 0), publicAddr(3, 0, 0, 1)}, now)
			if res != cached || ping != nil {
				t.Fatalf("ninth far node: %v (ping %v), want cached with nothing to ping (all good)", res, ping)
			}
			if got := len(tb.buckets[0].nodes); got != 8 {
				t.Fatalf("bucket 0 holds %d", got)
			}
		}},
		{"replaces a bad node with a verified one", func(t *testing.T, tb *table) {
			var first nodeInfo
			for i := range 8 {
				ni := nodeInfo{idWithPrefix(self, 0), publicAddr(1, byte(i), 0, 1)}
				if i == 0 {
					first = ni
				}
				tb.verified(ni, now)
			}
			tb.verified(nodeInfo{idWithPrefix(self, 3), publicAddr(9, 0, 0, 1)}, now) // splits
			tb.failed(first.Addr, now)
			tb.failed(first.Addr, now)
			newcomer := nodeInfo{idWithPrefix(self, 0), publicAddr(5, 0, 0, 1)}
			if res, _ := tb.verified(newcomer, now); res != inserted {
				t.Fatalf("newcomer: %v, want inserted in place of the bad node", res)
			}
			if tb.byAddr[first.Addr] != nil {
				t.Fatal("the bad node is still there")
			}
		}},
		{"names a questionable node to ping when its bucket is full", func(t *testing.T, tb *table) {
			old := now.Add(-time.Hour)
			for i := range 8 {
				tb.verified(nodeInfo{idWithPrefix(self, 0), publicAddr(1, byte(i), 0, 1)}, old)
			}
			tb.verified(nodeInfo{idWithPrefix(self, 3), publicAddr(9, 0, 0, 1)}, now)
			res, ping := tb.verified(nodeInfo{idWithPrefix(self, 0), publicAddr(5, 0, 0, 1)}, now)
			if res != cached || ping == nil {
				t.Fatalf("got %v, ping %v; want cached and a stale node to ping", res, ping)
			}
			// The stale node does not answer twice: the replacement takes its place.
			tb.failed(ping.Addr, now)
			tb.failed(ping.Addr, now)
			if tb.byAddr[ping.Addr] != nil {
				t.Fatal("the silent node was kept")
			}
			if e := tb.byAddr[publicAddr(5, 0, 0, 1)]; e == nil || len(tb.buckets[0].nodes) != 8 {
				t.Fatal("the replacement was not promoted")
			}
		}},
		{"caps nodes per IP", func(t *testing.T, tb *table) {
			a := netip.AddrPortFrom(netip.MustParseAddr("8.8.8.8"), 1000)
			b := netip.AddrPortFrom(netip.MustParseAddr("8.8.8.8"), 1001)
			tb.verified(nodeInfo{randomID(), a}, now)
			if res, _ := tb.verified(nodeInfo{randomID(), b}, now); res != refused {
				t.Fatalf("second node on one IP: %v, want refused", res)
			}
		}},
		{"caps nodes per /24", func(t *testing.T, tb *table) {
			added := 0
			for i := range 50 {
				if res, _ := tb.verified(nodeInfo{randomID(), publicAddr(8, 8, 8, byte(i+1))}, now); res == inserted {
					added++
				}
			}
			if added != tb.maxPerSubnet {
				t.Fatalf("%d nodes of one /24 inserted, want %d", added, tb.maxPerSubnet)
			}
		}},
		{"counts loopback nodes per address and port", func(t *testing.T, tb *table) {
			for i := range 20 {
				a := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(2000+i))
				if res, _ := tb.verified(nodeInfo{randomID(), a}, now); res != inserted && res != cached {
					t.Fatalf("loopback node %d: %v", i, res)
				}
			}
		}},
		{"never holds our own id", func(t *testing.T, tb *table) {
			if res, _ := tb.verified(nodeInfo{self, publicAddr(1, 1, 1, 1)}, now); res != refused {
				t.Fatalf("our own id: %v", res)
			}
		}},
		{"keeps a known id when another address claims it", func(t *testing.T, tb *table) {
			id := randomID()
			tb.verified(nodeInfo{id, publicAddr(1, 1, 1, 1)}, now)
			if res, _ := tb.verified(nodeInfo{id, publicAddr(2, 2, 2, 2)}, now); res != refused {
				t.Fatalf("a second address for a known id: %v, want refused", res)
			}
		}},
		{"a restored node is questionable and never displaces one", func(t *testing.T, tb *table) {
			ni := nodeInfo{randomID(), publicAddr(1, 1, 1, 1)}
			tb.restore(ni, now)
			if s := tb.state(tb.byAddr[ni.Addr], now); s != stateQuestionable {
				t.Fatalf("restored node state %v", s)
			}
			tb.failed(ni.Addr, now)
			tb.failed(ni.Addr, now)
			if tb.byAddr[ni.Addr] != nil {
				t.Fatal("a restored node that never answered stays after failing")
			}
		}},
		{"closest returns nodes by distance", func(t *testing.T, tb *table) {
			for i := range 200 {
				tb.verified(nodeInfo{randomID(), publicAddr(1, byte(i), 1, 1)}, now)
			}
			target := randomID()
			got := tb.closest(target, 8, now)
			if len(got) != 8 {
				t.Fatalf("%d nodes", len(got))
			}
			for i := 1; i < len(got); i++ {
				if closer(target, got[i].ID, got[i-1].ID) {
					t.Fatal("not sorted by distance")
				}
			}
			for _, b := range tb.buckets {
				for _, e := range b.nodes {
					if closer(target, e.ID, got[7].ID) && !containsID(got, e.ID) {
						t.Fatal("a closer node was left out")
					}
				}
			}
		}},
		{"stays bounded whatever it is offered", func(t *testing.T, tb *table) {
			for i := range 100000 {
				tb.verified(nodeInfo{randomID(), publicAddr(byte(1+i%200), byte(i>>8), byte(i), 1)}, now)
			}
			total := 0
			for _, b := range tb.buckets {
				total += len(b.nodes) + len(b.repl)
			}
			if total > 160*2*tb.k || total != len(tb.byAddr) {
				t.Fatalf("%d entries (%d by address)", total, len(tb.byAddr))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, newTestTable(self)) })
	}
}

func containsID(ns []nodeInfo, id ID) bool {
	for _, n := range ns {
		if n.ID == id {
			return true
		}
	}
	return false
}

func TestRandomIDWithPrefixSharesExactlyThatPrefix(t *testing.T) {
	self := randomID()
	for p := range 160 {
		if got := commonPrefixLen(self, randomIDWithPrefix(self, p)); got != p {
			t.Fatalf("prefix %d: shares %d bits", p, got)
		}
	}
}
