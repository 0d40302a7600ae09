package dht

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestDecodeMessage(t *testing.T) {
	id := strings.Repeat("a", 20)
	tests := []struct {
		name string
		in   string
		ok   bool
		want func(*message) bool
	}{
		{"reads a ping", "d1:ad2:id20:" + id + "e1:q4:ping1:t2:aa1:y1:qe", true,
			func(m *message) bool { return m.Q == "ping" && m.A.ID == id && m.T == "aa" }},
		{"tolerates v, ro, want and unknown keys", "d1:ad2:id20:" + id + "6:target20:" + id + "4:wantl2:n42:n6e5:extrai1ee1:q9:find_node2:roi1e1:t1:x1:v4:LT\x01\x021:y1:qe", true,
			func(m *message) bool { return m.RO == 1 && len(m.A.Want) == 2 && m.V == "LT\x01\x02" }},
		{"reads a reply with nodes6 and values", "d1:rd2:id20:" + id + "5:nodes0:6:nodes638:" + strings.Repeat("x", 38) + "5:token4:abcd6:valuesl6:" + "\x7f\x00\x00\x01\x1a\xe1" + "ee1:t2:aa1:y1:re", true,
			func(m *message) bool { return len(m.R.Values) == 1 && len(m.R.Nodes6) == 38 && m.R.Token == "abcd" }},
		{"reads an error", "d1:eli201e7:A Errore1:t2:aa1:y1:ee", true,
			func(m *message) bool { c, s := m.errorReply(); return c == 201 && s == "A Error" }},
		{"rejects a list", "l1:ae", false, nil},
		{"rejects junk", "\x00\xffjunk", false, nil},
		{"rejects trailing bytes", "d1:t2:aa1:y1:rexx", false, nil},
		{"rejects a missing transaction id", "d1:y1:re", false, nil},
		{"rejects an unknown kind", "d1:t2:aa1:y1:ze", false, nil},
		{"rejects a query without a method", "d1:t2:aa1:y1:qe", false, nil},
		{"rejects an id of the wrong type", "d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe", false, nil},
		{"rejects values that are not strings", "d1:rd2:id20:" + id + "6:valuesli1eee1:t2:aa1:y1:re", false, nil},
		{"rejects a duplicate key", "d1:t2:aa1:t2:bb1:y1:re", false, nil},
		{"rejects deep nesting", "d1:t2:aa1:y1:r1:x" + strings.Repeat("l", 100) + strings.Repeat("e", 100) + "e", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := decodeMessage([]byte(tt.in))
			if !tt.ok {
				if err == nil || !errors.Is(err, errMalformed) {
					t.Fatalf("got %+v, %v; want errMalformed", m, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(m) {
				t.Fatalf("decoded %+v", m)
			}
		})
	}
}

func TestEncodedQueryDecodes(t *testing.T) {
	id := randomID()
	pkt, err := encodeQuery("tx", methodGetPeers, map[string]any{"id": string(id[:]), "info_hash": string(id[:])})
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeMessage(pkt)
	if err != nil || m.Q != methodGetPeers || m.A.InfoHash != string(id[:]) || m.V != version {
		t.Fatalf("%q decoded to %+v, %v", pkt, m, err)
	}
}

func TestCompactForms(t *testing.T) {
	n := nodeInfo{randomID(), netip.MustParseAddrPort("1.2.3.4:6881")}
	b := appendCompactNode(nil, n)
	got, err := parseCompactNodes(string(b) + string(b))
	if err != nil || len(got) != 2 || got[0] != n {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, l := range []int{1, 25, 27, 51} {
		if _, err := parseCompactNodes(strings.Repeat("x", l)); err == nil {
			t.Errorf("nodes of %d bytes accepted", l)
		}
	}
	values := []string{
		"\x01\x02\x03\x04\x1a\xe1",     // good
		"\x01\x02\x03\x04\x00\x00",     // port 0
		"\x00\x00\x00\x00\x1a\xe1",     // unspecified
		"\xe0\x00\x00\x01\x1a\xe1",     // multicast
		"\x01\x02\x03\x04\x1a",         // short
		strings.Repeat("\x01", 18),     // IPv6 (BEP 32): skipped
		"\x05\x06\x07\x08\x00\x50\xff", // long
	}
	peers := parsePeers(values, 100)
	if len(peers) != 1 || peers[0] != netip.MustParseAddrPort("1.2.3.4:6881") {
		t.Fatalf("parsePeers = %v", peers)
	}
}

func TestAcceptReferral(t *testing.T) {
	pub := netip.MustParseAddrPort("8.8.8.8:1")
	lo := netip.MustParseAddrPort("127.0.0.1:1")
	lan := netip.MustParseAddrPort("192.168.1.1:1")
	tests := []struct {
		name     string
		from, to netip.AddrPort
		ok       bool
	}{
		{"a public node may name a public one", pub, netip.MustParseAddrPort("9.9.9.9:6881"), true},
		{"a public node may not name a loopback one", pub, netip.MustParseAddrPort("127.0.0.1:6881"), false},
		{"a public node may not name a private one", pub, netip.MustParseAddrPort("10.0.0.1:6881"), false},
		{"a loopback node may name a loopback one", lo, netip.MustParseAddrPort("127.0.0.2:6881"), true},
		{"a private node may name a private one", lan, netip.MustParseAddrPort("10.0.0.1:6881"), true},
		{"a private node may not name a loopback one", lan, netip.MustParseAddrPort("127.0.0.1:6881"), false},
		{"nobody may name port 0", lo, netip.MustParseAddrPort("127.0.0.2:0"), false},
		{"nobody may name a broadcast address", lo, netip.MustParseAddrPort("255.255.255.255:6881"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := acceptReferral(tt.from, tt.to); got != tt.ok {
				t.Fatalf("acceptReferral(%v, %v) = %v", tt.from, tt.to, got)
			}
		})
	}
}
