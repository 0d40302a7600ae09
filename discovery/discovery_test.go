package discovery

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"btclient/bencode"
	"btclient/overlay"
	"btclient/peerwire"
	"btclient/swarm"
	"btclient/torrent"
	"btclient/tracker"
)

// memStore is swarm storage in memory.
type memStore struct {
	mu   sync.Mutex
	data []byte
	have []bool
}

func (s *memStore) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range p {
		if !s.have[int(off)+i] {
			return 0, net.ErrClosed // anything: not written yet
		}
	}
	return copy(p, s.data[off:]), nil
}

func (s *memStore) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range p {
		s.have[int(off)+i] = true
	}
	return copy(s.data[off:], p), nil
}

// engineView is what the session gives the announcers of a swarm torrent.
type engineView struct{ sw *swarm.Torrent }

func (v engineView) State() State {
	s := v.sw.Stats()
	return State{Uploaded: s.Uploaded, Downloaded: s.Downloaded, Left: s.Size - s.Done, Peers: s.Peers, Complete: s.State == swarm.StateSeeding}
}
func (v engineView) Completed() <-chan struct{} { return v.sw.Done() }
func (v engineView) AddPeers(o Origin, addrs []string) {
	v.sw.AddPeers(string(o), addrs)
}

// A seeder and a leecher find each other through their announcers and a
// real tracker, the announcers reading the engines' state beside the
// engines' own goroutines (under -race); the tracker counts the leecher a
// seeder after its completed announce, and forgets it after its stopped.
func TestAnnouncersFindPeersThroughATracker(t *testing.T) {
	data := make([]byte, 1<<20)
	rand.Read(data)
	var hashes []byte
	for off := 0; off < len(data); off += 64 << 10 {
		h := sha1.Sum(data[off : off+64<<10])
		hashes = append(hashes, h[:]...)
	}
	raw, _ := bencode.Marshal(map[string]any{"name": "d", "length": int64(len(data)), "piece length": int64(64 << 10), "pieces": string(hashes)})
	m, err := torrent.ParseInfo(raw, sha1.Sum(raw))
	if err != nil {
		t.Fatal(err)
	}
	srvCfg := tracker.DefaultServerConfig()
	srvCfg.Interval = 10 * time.Second // peers live 20 s; announces come every 5 s at most
	rt := tracker.NewServer(srvCfg)
	hs := httptest.NewServer(rt)
	defer hs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rt.Run(ctx)

	cfg := DefaultConfig()
	cfg.Mode = ModeTracker
	cfg.PeerRetryInterval = 100 * time.Millisecond
	cfg.StopTimeout = time.Second
	params := func() Params {
		var p Params
		p.InfoHash = m.InfoHash
		p.PeerID, _ = peerwire.NewPeerID()
		p.Trackers = [][]string{{hs.URL + "/announce"}}
		return p
	}
	start := func(full bool) (*swarm.Torrent, func()) {
		st := &memStore{data: make([]byte, len(data)), have: make([]bool, len(data))}
		if full {
			st.WriteAt(data, 0)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.PeerPort = ln.Addr().(*net.TCPAddr).Port
		svc, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		p := params()
		sw, err := swarm.New(swarm.DefaultConfig(), swarm.Options{Meta: m, Storage: st, PeerID: p.PeerID, Listener: ln})
		if err != nil {
			t.Fatal(err)
		}
		tctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { sw.Run(tctx) })
		wg.Go(func() { svc.Announce(tctx, p, engineView{sw}) })
		return sw, func() { stop(); wg.Wait() }
	}
	_, stopSeed := start(true)
	defer stopSeed()
	// The tracker's min interval is a minute: the leecher's first announce
	// must find the seeder there already.
	waitCount(t, hs.URL, m.InfoHash, 1)
	leech, stopLeech := start(false)
	select {
	case <-leech.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("the leecher found no one: %+v", leech.Stats())
	}
	if got := leech.Stats().Learned[string(FromTracker)]; got < 1 {
		t.Fatalf("learned %d peers from the tracker", got)
	}
	// The tracker counts the leecher as a seeder once it says completed.
	waitCount(t, hs.URL, m.InfoHash, 2)
	stopLeech() // announces stopped
	if n := complete(t, hs.URL, m.InfoHash); n != 1 {
		t.Fatalf("after stopped the tracker counts %d seeders, want 1", n)
	}
}

// waitCount waits until the tracker counts n seeders of ih.
func waitCount(t *testing.T, base string, ih [20]byte, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for complete(t, base, ih) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the tracker counts %d seeders, want %d", complete(t, base, ih), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// complete scrapes the tracker for the seeders of ih.
func complete(t *testing.T, base string, ih [20]byte) int {
	c := &tracker.Client{}
	st, err := c.Scrape(context.Background(), base+"/announce", ih)
	if err != nil {
		return -1
	}
	return int(st[ih].Complete)
}

func TestConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"unknown mode":             func(c *Config) { c.Mode = "carrier pigeon" },
		"register without the API": func(c *Config) { c.RegisterName = "node" },
		"port out of range":        func(c *Config) { c.PeerPort = 70000 },
		"a zero announce interval": func(c *Config) { c.AnnounceInterval = 0 },
		"a zero stop timeout":      func(c *Config) { c.StopTimeout = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mut(&c)
			if c.Validate() == nil {
				t.Fatal("accepted")
			}
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// fakeTorrent is a torrent whose state the test sets.
type fakeTorrent struct {
	st   State
	done chan struct{}
}

func (f *fakeTorrent) State() State               { return f.st }
func (f *fakeTorrent) Completed() <-chan struct{} { return f.done }
func (f *fakeTorrent) AddPeers(Origin, []string)  {}
func newFakeTorrent(complete bool) *fakeTorrent {
	f := &fakeTorrent{st: State{Complete: complete}, done: make(chan struct{})}
	if complete {
		close(f.done)
	}
	return f
}

// A download looks its torrent up in the overlay every round; a seeder
// every SeedLookupInterval; a torrent checking its data not at all: a daemon
// seeding thousands of torrents must not query the overlay for each of
// them every AnnounceInterval.
func TestOverlayLookupsFollowTheTorrentsState(t *testing.T) {
	for _, tc := range []struct {
		name               string
		complete, checking bool
		atLeast, atMost    int64
	}{
		{"downloading", false, false, 30, 1 << 30},
		{"seeding", true, false, 0, 0},  // leechers find a seeder
		{"checking", false, true, 0, 0}, // announced once checked, like other clients
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			oc := overlay.DefaultConfig()
			oc.ListenAddr = "127.0.0.1:0"
			other, err := overlay.NewNode(oc)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { other.Run(ctx) })

			cfg := DefaultConfig()
			cfg.Mode = ModeOverlay
			cfg.Overlay.ListenAddr = "127.0.0.1:0"
			cfg.Overlay.Bootstrap = []string{other.Addr()}
			cfg.AnnounceInterval = 20 * time.Millisecond
			cfg.PeerRetryInterval = 20 * time.Millisecond
			cfg.FallbackAfter = 100 * time.Millisecond
			cfg.SeedLookupInterval = time.Hour
			svc, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { svc.Run(ctx) })
			var p Params
			p.InfoHash = sha1.Sum([]byte(tc.name))
			actx, stop := context.WithTimeout(ctx, 1500*time.Millisecond)
			defer stop()
			tr := newFakeTorrent(tc.complete)
			tr.st.Checking = tc.checking
			svc.Announce(actx, p, tr)
			traffic := svc.Overlay().Traffic()
			got := traffic["query"].Requests
			if tc.checking && traffic["put"].Requests > 0 {
				t.Errorf("announced while checking: %+v", traffic)
			}
			t.Logf("%d overlay queries", got)
			if got < tc.atLeast || got > tc.atMost {
				t.Errorf("%d overlay queries in 1.5 s of 20 ms rounds, want %d to %d", got, tc.atLeast, tc.atMost)
			}
		})
	}
}
