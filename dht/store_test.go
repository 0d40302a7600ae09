package dht

import (
	"net/netip"
	"testing"
	"time"
)

func TestPeerStore(t *testing.T) {
	now := time.Now()
	c := DefaultConfig()
	tests := []struct {
		name  string
		check func(t *testing.T, s *peerStore)
	}{
		{"expires entries after the TTL", func(t *testing.T, s *peerStore) {
			ih := randomID()
			s.add(ih, publicAddr(1, 2, 3, 4), now)
			if got := s.get(ih, 10, now.Add(c.PeerTTL-time.Second)); len(got) != 1 {
				t.Fatalf("before the TTL: %v", got)
			}
			if got := s.get(ih, 10, now.Add(c.PeerTTL+time.Second)); len(got) != 0 {
				t.Fatalf("after the TTL: %v", got)
			}
		}},
		{"caps peers per hash", func(t *testing.T, s *peerStore) {
			ih := randomID()
			for i := range 1000 {
				s.add(ih, publicAddr(1, byte(i>>8), byte(i), 1), now)
			}
			if got := len(s.swarms[ih].peers); got != c.MaxPeersPerHash || s.peers != got {
				t.Fatalf("%d peers kept (count %d), want %d", got, s.peers, c.MaxPeersPerHash)
			}
		}},
		{"caps entries of one IP per hash", func(t *testing.T, s *peerStore) {
			ih := randomID()
			for p := range 100 {
				s.add(ih, netip.AddrPortFrom(netip.MustParseAddr("8.8.8.8"), uint16(1000+p)), now)
			}
			if got := len(s.swarms[ih].peers); got != c.MaxPeersPerIPPerHash {
				t.Fatalf("%d entries of one IP, want %d", got, c.MaxPeersPerIPPerHash)
			}
		}},
		{"caps info hashes, evicting the stalest", func(t *testing.T, s *peerStore) {
			first := randomID()
			s.add(first, publicAddr(1, 1, 1, 1), now)
			for i := range 5000 {
				s.add(randomID(), publicAddr(2, byte(i>>8), byte(i), 1), now.Add(time.Second))
			}
			if len(s.swarms) != c.MaxInfoHashes {
				t.Fatalf("%d hashes kept, want %d", len(s.swarms), c.MaxInfoHashes)
			}
			if s.swarms[first] != nil {
				t.Fatal("the stalest hash was kept")
			}
			if s.peers != c.MaxInfoHashes {
				t.Fatalf("peer count %d", s.peers)
			}
		}},
		{"samples at most max peers", func(t *testing.T, s *peerStore) {
			ih := randomID()
			for i := range 100 {
				s.add(ih, publicAddr(1, 1, byte(i), 1), now)
			}
			if got := s.get(ih, 32, now); len(got) != 32 {
				t.Fatalf("%d peers returned", len(got))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, newPeerStore(&c)) })
	}
}

func TestTokens(t *testing.T) {
	now := time.Now()
	tk := newTokens(5*time.Minute, now)
	ip := netip.MustParseAddr("8.8.8.8")
	ih := randomID()
	tok := tk.issue(ip, ih, now)
	tests := []struct {
		name string
		tok  string
		ip   netip.Addr
		ih   ID
		at   time.Duration
		ok   bool
	}{
		{"accepts a fresh token", tok, ip, ih, time.Minute, true},
		{"accepts a token across one rotation", tok, ip, ih, 9 * time.Minute, true},
		{"refuses a token older than two rotations", tok, ip, ih, 11 * time.Minute, false},
		{"refuses a token from another IP", tok, netip.MustParseAddr("8.8.4.4"), ih, 0, false},
		{"refuses a token for another info hash", tok, ip, randomID(), 0, false},
		{"refuses a forged token", "12345678", ip, ih, 0, false},
		{"refuses an empty token", "", ip, ih, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := *tk // each case from the same start
			if got := tk.valid(tt.tok, tt.ip, tt.ih, now.Add(tt.at)); got != tt.ok {
				t.Fatalf("valid = %v, want %v", got, tt.ok)
			}
		})
	}
}

func TestGuard(t *testing.T) {
	now := time.Now()
	c := DefaultConfig()
	a := publicAddr(8, 8, 8, 8)
	t.Run("rate limits queries per source", func(t *testing.T) {
		g := newGuard(&c)
		ok := 0
		for range 1000 {
			if g.allowQuery(a, now) {
				ok++
			}
		}
		if ok != c.QueryBurst {
			t.Fatalf("%d queries allowed at once, want the burst %d", ok, c.QueryBurst)
		}
		if !g.allowQuery(publicAddr(8, 8, 4, 4), now) {
			t.Fatal("another source is limited too")
		}
	})
	t.Run("blocks a source of junk", func(t *testing.T) {
		g := newGuard(&c)
		blocked := false
		for range c.JunkBurst + 1 {
			blocked = g.junk(a, now)
		}
		if !blocked || !g.received(a, 100, now.Add(time.Second)) {
			t.Fatal("not blocked after the junk burst")
		}
		if g.received(a, 100, now.Add(c.BlockDuration+time.Second)) {
			t.Fatal("still blocked after BlockDuration")
		}
	})
	t.Run("spends no more than factor times what was received plus the burst", func(t *testing.T) {
		g := newGuard(&c)
		if g.spend(a, 1, now) {
			t.Fatal("sent to an address that sent nothing")
		}
		g.received(a, 100, now)
		if !g.spend(a, 400, now) || g.spend(a, 1, now) {
			t.Fatal("credit is not exactly 4 × 100 bytes")
		}
		for range 1000 {
			g.received(a, 1000, now)
		}
		if g.budget(a, now) != c.AmplificationBurst {
			t.Fatalf("credit %d, want capped at %d", g.budget(a, now), c.AmplificationBurst)
		}
	})
	t.Run("remembers a bounded number of sources", func(t *testing.T) {
		g := newGuard(&c)
		for i := range 100000 {
			g.received(publicAddr(byte(1+i>>16), byte(i>>8), byte(i), 1), 10, now)
		}
		if g.size() > c.MaxSources {
			t.Fatalf("%d sources remembered, cap %d", g.size(), c.MaxSources)
		}
	})
}
