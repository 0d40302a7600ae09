package dht

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzHandlePacket: whatever arrives, decoding either fails or yields a
// message with a transaction id and a known kind, and the node's handlers
// (queries answered over an in-memory transport) never panic; the panic
// counter stands in for the recover that would hide one.
func FuzzHandlePacket(f *testing.F) {
	id := strings.Repeat("a", 20)
	for _, s := range []string{
		"d1:ad2:id20:" + id + "e1:q4:ping1:t2:aa1:y1:qe",
		"d1:ad2:id20:" + id + "6:target20:" + id + "e1:q9:find_node1:t2:aa1:y1:qe",
		"d1:ad2:id20:" + id + "9:info_hash20:" + id + "e1:q9:get_peers1:t2:aa1:y1:qe",
		"d1:ad2:id20:" + id + "12:implied_porti1e9:info_hash20:" + id + "4:porti6881e5:token8:abcdefghe1:q13:announce_peer1:t2:aa1:y1:qe",
		"d1:rd2:id20:" + id + "5:nodes26:" + id + "\x7f\x00\x00\x01\x1a\xe1e1:t4:\x00\x00\x00\x011:y1:re",
		"d1:eli201e7:A Errore1:t2:aa1:y1:ee",
		"d1:ad2:id20:" + id + "e1:q3:put1:t2:aa1:y1:q2:roi1ee",
	} {
		f.Add([]byte(s))
	}
	mn := NewMemNetwork()
	tr, err := mn.Listen(netip.MustParseAddrPort("10.0.0.1:6881"))
	if err != nil {
		f.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Transport = tr
	cfg.QueryRate, cfg.QueryBurst = 1e9, 1e9 // every input reaches the handlers
	cfg.JunkRate, cfg.JunkBurst = 1e9, 1e9
	n, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	from := netip.MustParseAddrPort("10.0.0.2:6881")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(data)
		if err == nil && (m.T == "" || (m.Y != kindQuery && m.Y != kindResponse && m.Y != kindError)) {
			t.Fatalf("accepted %q as %+v", data, m)
		}
		n.handlePacket(data, from)
		if p := n.stats.panics.Load(); p != 0 {
			t.Fatalf("a handler panicked on %q", data)
		}
	})
}
