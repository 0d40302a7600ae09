package swarm

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"btclient/peerwire"
)

// recordingSource is a PeerSource that hands out fixed peers and records
// every announce.
type recordingSource struct {
	mu        sync.Mutex
	peers     []string
	announces []Announce
}

func (s *recordingSource) Announce(ctx context.Context, a Announce) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.announces = append(s.announces, a)
	return s.peers, nil
}

func (s *recordingSource) events() []Announce {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Announce(nil), s.announces...)
}

// The announce loop runs beside the torrent's own goroutine, under -race:
// it finds the seeder through the source, and reports started, completed
// and stopped with what is left.
func TestAnnounceLoopFindsPeersAndReportsTheLifecycle(t *testing.T) {
	data, m := testTorrent(t, 1<<20, 64<<10)
	_, seed := session(t, DefaultConfig(), m, newMemStorage(len(data), data))
	src := &recordingSource{peers: []string{seed}}
	cfg := DefaultConfig()
	cfg.PeerRetryInterval = 50 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peerwire.NewPeerID()
	tr, err := New(cfg, Options{Meta: m, Storage: newMemStorage(len(data), nil), PeerID: id, Listener: ln, Source: src, Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	waitDone(t, tr, 20*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for !hasEvent(src.events(), EventCompleted) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ev := src.events()
	if len(ev) < 3 || ev[0].Event != EventStarted || ev[0].Left != m.TotalLength || ev[0].Port != 7 || ev[0].InfoHash != m.InfoHash {
		t.Fatalf("first announce = %+v, want started with everything left", ev[0])
	}
	if !hasEvent(ev, EventCompleted) {
		t.Fatal("no completed announce")
	}
	last := ev[len(ev)-1]
	if last.Event != EventStopped || last.Left != 0 {
		t.Fatalf("last announce = %+v, want stopped with nothing left", last)
	}
}

func hasEvent(as []Announce, e Event) bool {
	for _, a := range as {
		if a.Event == e && a.Left == 0 {
			return true
		}
	}
	return false
}
