package dnsd

import (
	"net/netip"
	"testing"
	"time"
)

// fakeClock is a settable time source for the store.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestStore(t *testing.T) (*store, *fakeClock) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	return newStore(testConfig(t), clock.now), clock
}

func TestCanonicalName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"tracker.example", "tracker.example", true},
		{"Tracker.Example.", "tracker.example", true},
		{"tasks.leecher", "tasks.leecher", true},
		{"1node.example", "1node.example", true},
		{"a-b.c-d", "a-b.c-d", true},
		{"localhost", "localhost", true},
		{"", "", false},
		{".", "", false},
		{"a..b", "", false},
		{"a.b..", "", false},
		{"-a.example", "", false},
		{"a-.example", "", false},
		{"under_score.example", "", false},
		{"spa ce.example", "", false},
		{"ünicode.example", "", false},
		{"a\\.b.example", "", false},
		{string(make([]byte, 64)), "", false},
	}
	for _, tt := range tests {
		got, err := CanonicalName(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CanonicalName(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestStoreMergeIsLastWriterWins(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	// state is an entry with its expiry in seconds from the clock's now.
	type state struct {
		version int64
		expires int64
		deleted bool
	}
	tests := []struct {
		name        string
		have, in    state
		changed     bool
		liveAfter   bool
		versionKept int64
	}{
		{"a newer record replaces an older one", state{10, 60, false}, state{20, 30, false}, true, true, 20},
		{"an older record is ignored", state{20, 60, false}, state{10, 90, false}, false, true, 20},
		{"the same record again changes nothing", state{20, 60, false}, state{20, 60, false}, false, true, 20},
		{"a newer deletion removes a record", state{10, 60, false}, state{20, 300, true}, true, false, 20},
		{"an older deletion is ignored", state{20, 60, false}, state{10, 300, true}, false, true, 20},
		{"a deletion wins a tie", state{20, 60, false}, state{20, 300, true}, true, false, 20},
		{"a newer record brings a deleted address back", state{10, 300, true}, state{20, 60, false}, true, true, 20},
		{"an older record does not undo a deletion", state{20, 300, true}, state{10, 60, false}, false, false, 20},
		{"an expired record is ignored even if newer", state{10, 60, false}, state{20, -1, false}, false, true, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newTestStore(t)
			at := func(sec int64) time.Time { return clock.t.Add(time.Duration(sec) * time.Second) }
			s.set("node.example", ip, entry{version: tt.have.version, expires: at(tt.have.expires), deleted: tt.have.deleted}, false)
			r := Record{Name: "node.example", IP: ip, Version: tt.in.version, Expires: at(tt.in.expires), Deleted: tt.in.deleted}
			if got := s.merge([]Record{r}) > 0; got != tt.changed {
				t.Errorf("changed = %v, want %v", got, tt.changed)
			}
			v4, _, _ := s.lookup("node.example")
			if live := len(v4) == 1; live != tt.liveAfter {
				t.Errorf("live = %v, want %v", live, tt.liveAfter)
			}
			if v := s.names["node.example"][ip].version; v != tt.versionKept {
				t.Errorf("version %d, want %d", v, tt.versionKept)
			}
		})
	}
}

func TestStoreLocalWritesOutrankWhatWasSeen(t *testing.T) {
	s, clock := newTestStore(t)
	ip := netip.MustParseAddr("10.0.0.1")
	// A peer whose clock runs an hour ahead deleted the address.
	future := clock.t.Add(time.Hour).UnixNano()
	s.merge([]Record{{Name: "node.example", IP: ip, Version: future, Expires: clock.t.Add(5 * time.Minute), Deleted: true}})
	if _, err := s.put("node.example", ip, time.Minute); err != nil {
		t.Fatal(err)
	}
	if v4, _, _ := s.lookup("node.example"); len(v4) != 1 {
		t.Fatalf("a registration after a (skewed) deletion does not answer")
	}
	if v := s.names["node.example"][ip].version; v <= future {
		t.Errorf("local version %d is not after the seen version %d", v, future)
	}
}

func TestStoreTombstonesOutliveTheRecordTheyDelete(t *testing.T) {
	s, clock := newTestStore(t)
	ip := netip.MustParseAddr("10.0.0.1")
	if _, err := s.put("long.example", ip, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.put("short.example", ip, time.Second); err != nil {
		t.Fatal(err)
	}
	s.remove("long.example", netip.Addr{})
	s.remove("short.example", ip)
	if got := s.names["long.example"][ip].expires.Sub(clock.t); got != 2*time.Hour {
		t.Errorf("tombstone of a 2h record kept for %v, want 2h", got)
	}
	if got := s.names["short.example"][ip].expires.Sub(clock.t); got != s.tombstoneTTL {
		t.Errorf("tombstone of a 1s record kept for %v, want the tombstone TTL %v", got, s.tombstoneTTL)
	}
	clock.advance(s.tombstoneTTL)
	s.sweep()
	if _, ok := s.names["short.example"]; ok {
		t.Errorf("a tombstone outlived the tombstone TTL")
	}
	if len(s.snapshot()) != 1 {
		t.Errorf("snapshot %v, want only the long tombstone", s.snapshot())
	}
}

func TestStoreMergeBoundsWhatPeersSend(t *testing.T) {
	s, clock := newTestStore(t)
	s.maxRecords, s.maxPerName = 3, 2
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) }
	recs := []Record{
		{Name: "bad_name", IP: ip(1), Version: 1, Expires: clock.t.Add(time.Minute)},
		{Name: "ok.example", IP: netip.IPv4Unspecified(), Version: 1, Expires: clock.t.Add(time.Minute)},
		{Name: "ok.example", Version: 1, Expires: clock.t.Add(time.Minute)}, // no ip
		{Name: "forever.example", IP: ip(2), Version: 1, Expires: clock.t.Add(100 * 365 * 24 * time.Hour)},
		{Name: "many.example", IP: ip(3), Version: 1, Expires: clock.t.Add(time.Minute)},
		{Name: "many.example", IP: ip(4), Version: 1, Expires: clock.t.Add(time.Minute)},
		{Name: "many.example", IP: ip(5), Version: 1, Expires: clock.t.Add(time.Minute)},
		{Name: "more.example", IP: ip(6), Version: 1, Expires: clock.t.Add(time.Minute)},
	}
	if n := s.merge(recs); n != 3 {
		t.Errorf("merged %d records, want 3 (forever and two of many)", n)
	}
	if s.count != 3 {
		t.Errorf("store holds %d entries, want its cap 3", s.count)
	}
	if got := s.names["forever.example"][ip(2)].expires.Sub(clock.t); got != s.maxTTL {
		t.Errorf("a peer's record lives %v, want it capped at MaxTTL %v", got, s.maxTTL)
	}
}
