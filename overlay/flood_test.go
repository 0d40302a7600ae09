package overlay

import (
	"crypto/sha1"
	"fmt"
	"testing"
	"time"
)

// TestOneNodeAnnouncing100000TorrentsCannotPushOutTheOthers: four honest
// nodes announce 100 torrents each, then a fifth publishes 100,000 made-up
// ones. With five nodes every node owns every key, so every store sees the
// whole flood. Within bounded time every honest entry is still held
// everywhere and found by lookups, and no store holds more of the flooder's
// records than its per-origin cap.
func TestOneNodeAnnouncing100000TorrentsCannotPushOutTheOthers(t *testing.T) {
	const honest, each, flood = 4, 100, 100_000
	mn := NewMemNetwork()
	cfg := fastConfig(20)
	cfg.ProviderTTL = 30 * time.Second // the test is longer than 4.5 s: no expiry here
	var nodes []*Node
	for i := range honest + 1 {
		c := cfg
		tr, err := mn.Listen(fmt.Sprintf("10.0.0.%d:6000", i+1))
		if err != nil {
			t.Fatal(err)
		}
		c.Transport = tr
		if i > 0 {
			c.Bootstrap = []string{nodes[0].Addr()}
		}
		nodes = append(nodes, startNode(t, c))
	}
	eventually(t, 10*time.Second, "the overlay to form", func() bool {
		for _, n := range nodes {
			if len(n.LiveNodes()) != honest {
				return false
			}
		}
		return true
	})
	key := func(who, j int) [20]byte { return sha1.Sum(fmt.Appendf(nil, "%d/%d", who, j)) }
	for i, n := range nodes[:honest] {
		var rs []Record
		for j := range each {
			rs = append(rs, providerRecord(key(i, j), Provider{Addr: fmt.Sprintf("10.0.0.%d:%d", i+1, 7000+j), LastSeen: time.Now()}))
		}
		if err := n.PublishBatch(testCtx(t, 10*time.Second), rs); err != nil {
			t.Fatal(err)
		}
	}
	flooder := nodes[honest]
	var rs []Record
	for j := range flood {
		rs = append(rs, providerRecord(key(99, j), Provider{Addr: fmt.Sprintf("10.0.0.%d:%d", honest+1, 1+j%60000), LastSeen: time.Now()}))
	}
	start := time.Now()
	err := flooder.PublishBatch(testCtx(t, 60*time.Second), rs)
	t.Logf("flood of %d records published in %v (%v); the flooder's own table took %d", flood, time.Since(start).Round(time.Millisecond), err, flooder.origin.len())
	// Two health rounds: syncs and leases run with the flood in place.
	time.Sleep(2 * cfg.HealthInterval)
	perOrigin := int(flooder.cfg.MaxOriginBytes / providerRecord(key(99, 0), Provider{Addr: "10.0.0.5:1"}).size()) // the smallest record
	for _, n := range nodes[:honest] {
		held := 0
		for i := range honest {
			for j := range each {
				if holds(n, key(i, j), fmt.Sprintf("10.0.0.%d:%d", i+1, 7000+j)) {
					held++
				}
			}
		}
		if got := n.store.OriginLen(flooder.Addr()); held != honest*each || got > perOrigin {
			t.Fatalf("%s holds %d/%d honest entries and %d of the flooder's (cap %d)", n.Addr(), held, honest*each, got, perOrigin)
		}
		t.Logf("%s holds all %d honest entries and %d of the flooder's %d (cap %d; %d KiB in its store)",
			n.Addr(), held, n.store.OriginLen(flooder.Addr()), flood, perOrigin, n.store.Bytes()>>10)
	}
	// And a torrent announced after the flood still finds room everywhere.
	late := key(1, 9999)
	if err := nodes[1].Announce(testCtx(t, 5*time.Second), late, Provider{Addr: "10.0.0.2:9999"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if !holds(n, late, "10.0.0.2:9999") {
			t.Fatalf("%s refused an honest entry announced after the flood", n.Addr())
		}
	}
	for i := range honest {
		if !knows(nodes[(i+1)%honest], key(i, 42), fmt.Sprintf("10.0.0.%d:%d", i+1, 7042)) {
			t.Fatalf("a lookup lost node %d's torrent after the flood", i)
		}
	}
	if took := time.Since(start); took > 60*time.Second {
		t.Fatalf("the flood took %v to absorb", took)
	}
}
