package overlay

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func testLimits() StoreLimits {
	one := providerRecord(ih(1), prov("10.0.0.1:1", t0)).size()
	return StoreLimits{TTL: 90 * time.Second, MaxClockSkew: 2 * time.Second, MaxValueBytes: 1024,
		MaxPerKey: 8, MaxBytes: 24 * one, MaxOriginBytes: 10 * one, MaxPerOriginKey: 5}
}

func newTestStore(now *time.Time) *Store {
	s := NewStore(testLimits())
	s.now = func() time.Time { return *now }
	return s
}

func ih(b byte) [20]byte { return [20]byte{b} }

func prov(addr string, at time.Time) Provider {
	return Provider{Addr: addr, PeerID: "-JC0001-000000000000", Left: 10, LastSeen: at}
}

func TestStoreMerge(t *testing.T) {
	tests := []struct {
		name    string
		first   []Provider
		then    []Provider
		changed int
		want    []Provider // Lookup afterwards
	}{
		{
			name:    "keeps one entry per address",
			first:   []Provider{prov("10.0.0.1:6881", t0)},
			then:    []Provider{prov("10.0.0.1:6881", t0.Add(time.Second)), prov("10.0.0.2:6881", t0)},
			changed: 2,
			want:    []Provider{prov("10.0.0.1:6881", t0.Add(time.Second)), prov("10.0.0.2:6881", t0)},
		},
		{
			name:    "an older write loses",
			first:   []Provider{prov("10.0.0.1:6881", t0)},
			then:    []Provider{{Addr: "10.0.0.1:6881", Left: 0, LastSeen: t0.Add(-time.Second)}},
			changed: 0,
			want:    []Provider{prov("10.0.0.1:6881", t0)},
		},
		{
			name:    "the same write twice changes nothing",
			first:   []Provider{prov("10.0.0.1:6881", t0)},
			then:    []Provider{prov("10.0.0.1:6881", t0)},
			changed: 0,
			want:    []Provider{prov("10.0.0.1:6881", t0)},
		},
		{
			name:    "a newer tombstone hides the provider",
			first:   []Provider{prov("10.0.0.1:6881", t0)},
			then:    []Provider{{Addr: "10.0.0.1:6881", LastSeen: t0.Add(time.Second), Stopped: true}},
			changed: 1,
			want:    nil,
		},
		{
			name:    "an older tombstone does not",
			first:   []Provider{prov("10.0.0.1:6881", t0)},
			then:    []Provider{{Addr: "10.0.0.1:6881", LastSeen: t0.Add(-time.Second), Stopped: true}},
			changed: 0,
			want:    []Provider{prov("10.0.0.1:6881", t0)},
		},
		{
			name:    "a newer announce revives a tombstone",
			first:   []Provider{{Addr: "10.0.0.1:6881", LastSeen: t0, Stopped: true}},
			then:    []Provider{prov("10.0.0.1:6881", t0.Add(time.Second))},
			changed: 1,
			want:    []Provider{prov("10.0.0.1:6881", t0.Add(time.Second))},
		},
		{
			name:    "invalid entries are ignored",
			then:    []Provider{{Addr: "nonsense", LastSeen: t0}, {Addr: "10.0.0.1:0", LastSeen: t0}, {Addr: "10.0.0.1:1"}, {Addr: "10.0.0.1:2", Left: -1, LastSeen: t0}},
			changed: 0,
		},
		{
			name:    "expired entries are not stored",
			then:    []Provider{prov("10.0.0.1:6881", t0.Add(-91*time.Second))},
			changed: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			s := newTestStore(&now)
			s.Merge(ih(1), tt.first, "10.9.9.9:6000")
			if got := s.Merge(ih(1), tt.then, "10.9.9.9:6000"); len(got) != tt.changed {
				t.Errorf("changed %d entries, want %d: %v", len(got), tt.changed, got)
			}
			assertProviders(t, s.Lookup(ih(1), 0), tt.want)
		})
	}
}

func assertProviders(t *testing.T, got, want []Provider) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d providers %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i].Addr != want[i].Addr || !got[i].LastSeen.Equal(want[i].LastSeen) || got[i].Stopped != want[i].Stopped || got[i].Left != want[i].Left {
			t.Errorf("provider %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestStoreDropsExpiredOnReadAndSweep(t *testing.T) {
	now := t0
	s := newTestStore(&now)
	s.Merge(ih(1), []Provider{prov("10.0.0.1:1", t0)}, "")
	now = t0.Add(30 * time.Second)
	s.Merge(ih(1), []Provider{prov("10.0.0.2:1", now)}, "")
	now = t0.Add(91 * time.Second)
	assertProviders(t, s.Lookup(ih(1), 0), []Provider{prov("10.0.0.2:1", t0.Add(30*time.Second))})
	if len(s.Entries(ih(1))) != 1 {
		t.Errorf("gossip would carry an expired entry")
	}
	if s.Len() != 2 {
		t.Fatalf("Len before sweep = %d, want 2", s.Len())
	}
	if n := s.Sweep(); n != 1 || s.Len() != 1 {
		t.Fatalf("Sweep removed %d, left %d; want 1 and 1", n, s.Len())
	}
	now = t0.Add(200 * time.Second)
	s.Sweep()
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("store not empty after everything expired: %d entries, %d bytes", s.Len(), s.Bytes())
	}
}

func TestStoreClampsLastSeenFromTheFuture(t *testing.T) {
	now := t0
	s := newTestStore(&now)
	s.Merge(ih(1), []Provider{prov("10.0.0.1:1", t0.Add(24*time.Hour)), prov("10.0.0.2:1", t0.Add(time.Second))}, "x")
	got := s.Entries(ih(1))
	want := map[string]time.Time{"10.0.0.1:1": t0, "10.0.0.2:1": t0.Add(time.Second)}
	for _, p := range got {
		if !p.LastSeen.Equal(want[p.Addr]) {
			t.Errorf("%s LastSeen = %v, want %v", p.Addr, p.LastSeen, want[p.Addr])
		}
	}
	// The forged entry can neither live forever nor beat an honest update.
	now = t0.Add(time.Second)
	if c := s.Merge(ih(1), []Provider{prov("10.0.0.1:1", now)}, "y"); len(c) != 1 {
		t.Errorf("honest newer entry did not replace a clamped forged one")
	}
	now = t0.Add(92 * time.Second)
	if got := s.Lookup(ih(1), 0); len(got) != 0 {
		t.Errorf("entries outlived the TTL: %v", got)
	}
}

func TestStoreCaps(t *testing.T) {
	t.Run("one source holds at most MaxPerSourcePerHash of a hash", func(t *testing.T) {
		now := t0
		s := newTestStore(&now)
		for i := range 20 {
			s.Merge(ih(1), []Provider{prov(fmt.Sprintf("10.0.0.%d:1", i+1), t0)}, "evil")
		}
		if got := len(s.Lookup(ih(1), 0)); got != 5 {
			t.Fatalf("evil source holds %d entries, want 5", got)
		}
		s.Merge(ih(1), []Provider{prov("10.1.0.1:1", t0)}, "honest")
		if got := len(s.Lookup(ih(1), 0)); got != 6 {
			t.Fatalf("honest entry refused: %d entries", got)
		}
	})
	t.Run("one source holds at most MaxPerSource overall", func(t *testing.T) {
		now := t0
		s := newTestStore(&now)
		for h := range 4 {
			for i := range 5 {
				s.Merge(ih(byte(h)), []Provider{prov(fmt.Sprintf("10.0.%d.%d:1", h, i+1), t0)}, "evil")
			}
		}
		if s.Len() != 10 {
			t.Fatalf("evil source holds %d entries, want 10", s.Len())
		}
	})
	t.Run("the store's bytes are capped and nothing is evicted", func(t *testing.T) {
		now := t0
		s := newTestStore(&now)
		for o := range 4 {
			for h := range 2 {
				for i := range 5 {
					s.Merge(ih(byte(2*o+h)), []Provider{prov(fmt.Sprintf("10.%d.%d.%d:1", o, h, i+1), t0)}, fmt.Sprint("origin", o))
				}
			}
		}
		if s.Len() != 24 {
			t.Fatalf("store holds %d records, want 24 (its byte cap)", s.Len())
		}
		if c := s.Merge(ih(1), []Provider{prov("10.9.9.9:1", t0.Add(time.Second))}, "late"); len(c) != 0 || s.OriginLen("origin0") != 10 {
			t.Fatalf("a full store took a newer record (%v) or dropped an old one", c)
		}
	})
	t.Run("a full key refuses new records instead of evicting", func(t *testing.T) {
		now := t0
		s := newTestStore(&now)
		for i := range 8 {
			s.Merge(ih(1), []Provider{prov(fmt.Sprintf("10.0.0.%d:1", i+1), t0.Add(time.Duration(i-10)*time.Second))}, fmt.Sprint("o", i))
		}
		if c := s.Merge(ih(1), []Provider{prov("10.0.1.2:1", t0)}, "other"); len(c) != 0 {
			t.Errorf("a full key took a new record")
		}
		if ps := s.Lookup(ih(1), 0); len(ps) != 8 || ps[len(ps)-1].Addr != "10.0.0.1:1" {
			t.Errorf("a full key lost a record: %v", ps)
		}
	})
	t.Run("expiry gives a source its quota back", func(t *testing.T) {
		now := t0
		s := newTestStore(&now)
		for i := range 5 {
			s.Merge(ih(1), []Provider{prov(fmt.Sprintf("10.0.0.%d:1", i+1), t0)}, "src")
		}
		now = t0.Add(100 * time.Second)
		s.Sweep()
		if c := s.Merge(ih(1), []Provider{prov("10.0.9.9:1", now)}, "src"); len(c) != 1 {
			t.Errorf("source still capped after its entries expired")
		}
	})
}

func TestStoreLookupOrderAndLimit(t *testing.T) {
	now := t0
	s := newTestStore(&now)
	s.Merge(ih(1), []Provider{prov("10.0.0.1:1", t0.Add(-3*time.Second)), prov("10.0.0.2:1", t0), prov("10.0.0.3:1", t0.Add(-time.Second))}, "")
	got := s.Lookup(ih(1), 2)
	assertProviders(t, got, []Provider{prov("10.0.0.2:1", t0), prov("10.0.0.3:1", t0.Add(-time.Second))})
}

func TestStoreOriginsMergeByLastWriterWins(t *testing.T) {
	now := t0
	s := newTestStore(&now)
	s.Merge(ih(1), []Provider{prov("10.0.0.1:1", t0)}, "a:1")
	s.Merge(ih(1), []Provider{{Addr: "10.0.0.1:1", LastSeen: t0.Add(time.Second), Stopped: true}}, "b:1")
	if got := s.Lookup(ih(1), 0); len(got) != 0 {
		t.Fatalf("a newer tombstone of another origin did not hide the provider: %v", got)
	}
	s.Merge(ih(1), []Provider{prov("10.0.0.1:1", t0.Add(2*time.Second))}, "a:1")
	assertProviders(t, s.Lookup(ih(1), 0), []Provider{prov("10.0.0.1:1", t0.Add(2*time.Second))})
}

func TestStoreSyncRenewAndDrop(t *testing.T) {
	now := t0
	s := newTestStore(&now)
	r1, r2, r3 := providerRecord(ih(1), prov("10.0.0.1:1", t0)), providerRecord(ih(1), prov("10.0.0.2:1", t0)), providerRecord(ih(2), prov("10.0.0.3:1", t0))
	s.Put("o:1", []Record{r1, r2})
	var want digest
	want.add(s.normalize(r1, now))
	want.add(s.normalize(r2, now))
	if got := s.Digest("o:1"); got != want {
		t.Fatalf("digest %+v, want %+v", got, want)
	}
	// A sync replaces the origin's set: r1 stays, r2 goes, r3 comes.
	s.BeginSync("o:1")
	s.Put("o:1", []Record{r1, r3})
	s.EndSync("o:1")
	if got := s.Lookup(ih(1), 0); len(got) != 1 || got[0].Addr != "10.0.0.1:1" {
		t.Fatalf("after sync: %v", got)
	}
	if s.OriginLen("o:1") != 2 {
		t.Fatalf("after sync the origin holds %d records, want 2", s.OriginLen("o:1"))
	}
	// A lease keeps them past their own expiry, but not the dying one.
	now = t0.Add(60 * time.Second)
	s.Renew("o:1", t0.Add(150*time.Second), []Record{r3})
	now = t0.Add(120 * time.Second)
	if len(s.Lookup(ih(1), 0)) != 1 || len(s.Lookup(ih(2), 0)) != 0 {
		t.Fatalf("renewed %v, dying %v", s.Lookup(ih(1), 0), s.Lookup(ih(2), 0))
	}
	// A dead origin's records go by the time given; a later lease does not
	// bring back what expired.
	if s.ExpireOrigin("o:1", now.Add(5*time.Second)) != 2 || len(s.Lookup(ih(1), 0)) != 1 {
		t.Fatalf("ExpireOrigin dropped records before their time: %v", s.Lookup(ih(1), 0))
	}
	now = now.Add(5 * time.Second)
	s.Renew("o:1", now.Add(60*time.Second), nil)
	if got := s.Lookup(ih(1), 0); len(got) != 0 || s.Sweep() != 2 || s.Len() != 0 {
		t.Fatalf("after ExpireOrigin's time: %v, %d records left", got, s.Len())
	}
}
