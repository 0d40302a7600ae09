package dht

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// liar answers every query at its address on mn with made-up nodes: count
// of them, with ids next to whatever the query looks for, at addresses
// where nobody listens. It stops with the test.
func liar(t *testing.T, mn *MemNetwork, addr netip.AddrPort, count int) ID {
	tr, err := mn.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	id := randomID()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := tr.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := decodeMessage(buf[:n])
			if err != nil || m.Y != kindQuery {
				continue
			}
			target, ok := idFrom(m.A.Target + m.A.InfoHash)
			if !ok {
				target = randomID()
			}
			nodes := make([]byte, 0, count*compactNodeLen)
			for range count {
				fake := target
				fake[19], fake[18] = byte(rand.IntN(256)), byte(rand.IntN(256))
				ip := netip.AddrFrom4([4]byte{13, byte(rand.IntN(256)), byte(rand.IntN(256)), 1})
				nodes = appendCompactNode(nodes, nodeInfo{fake, netip.AddrPortFrom(ip, 6881)})
			}
			b, _ := encodeReply(m.T, map[string]any{"id": string(id[:]), "nodes": string(nodes), "token": "liar"})
			tr.WriteTo(b, from)
		}
	}()
	return id
}

func TestNodesAnsweringWithMadeUpNodes(t *testing.T) {
	mn := NewMemNetwork()
	cfg := testConfig()
	var honest []*Node
	for i := range 20 {
		var boot []netip.AddrPort
		if i > 0 {
			boot = []netip.AddrPort{memAddr(0)}
		}
		honest = append(honest, memNode(t, mn, memAddr(i), cfg, boot...))
	}
	for _, h := range honest {
		waitJoined(t, h)
	}
	// One liar names 1,000 nodes an answer (26 KB: over the packet bound),
	// the other as many as fit in 2 KiB (75), each next to the target.
	big := netip.MustParseAddrPort("12.0.0.1:6881")
	fit := netip.MustParseAddrPort("12.0.1.1:6881")
	liar(t, mn, big, 1000)
	liar(t, mn, fit, 75)

	ih := randomID()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := honest[7].Announce(ctx, ih, 7007, false); err != nil {
		t.Fatal(err)
	}
	heap0 := heapInuse()
	victim := memNode(t, mn, memAddr(100), cfg, big, fit, memAddr(0))
	waitJoined(t, victim)
	began := time.Now()
	res, err := victim.lookup(ctx, ih, true)
	if err != nil {
		t.Fatal(err)
	}
	want := netip.AddrPortFrom(honest[7].Addr().Addr(), 7007)
	if !slices.Contains(res.peers, want) {
		t.Fatalf("the lookup beside two liars found %v, want %v", res.peers, want)
	}
	st := victim.Stats()
	t.Logf("measured: lookup beside liars: %d queries, %v; victim table %d nodes, %d oversized answers dropped; heap grew %d KiB",
		res.queries, time.Since(began).Round(time.Millisecond), st.Nodes, st.Oversized, (int64(heapInuse())-int64(heap0))>>10)
	if st.Oversized == 0 {
		t.Error("the 1,000-node answers were not dropped as oversized")
	}
	if res.queries > cfg.MaxLookupQueries {
		t.Errorf("%d queries in one lookup", res.queries)
	}
	for _, nd := range append(honest, victim) {
		locked(nd, func() bool {
			for a := range nd.table.byAddr {
				if a.Addr().As4()[0] == 13 {
					t.Errorf("%v holds made-up node %v", nd.Addr(), a)
				}
			}
			return true
		})
	}
}
