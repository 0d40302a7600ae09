package swarm

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"btclient/internal/peerwiretest"
	"btclient/internal/testwait"
	"btclient/peerwire"
	"btclient/torrent"
)

// memStorage is a Storage in memory; have reports which bytes were written.
type memStorage struct {
	mu      sync.Mutex
	data    []byte
	written []bool
}

func newMemStorage(size int, full []byte) *memStorage {
	s := &memStorage{data: make([]byte, size), written: make([]bool, size)}
	if full != nil {
		copy(s.data, full)
		for i := range s.written {
			s.written[i] = true
		}
	}
	return s
}

func (s *memStorage) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range p {
		if !s.written[int(off)+i] {
			return 0, io.ErrUnexpectedEOF
		}
	}
	return copy(p, s.data[off:]), nil
}

func (s *memStorage) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range p {
		s.written[int(off)+i] = true
	}
	return copy(s.data[off:], p), nil
}

// testTorrent returns random content and its metainfo.
func testTorrent(t testing.TB, size, pieceLen int) ([]byte, *torrent.MetaInfo) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	m := &torrent.MetaInfo{Name: "data", PieceLength: int64(pieceLen), TotalLength: int64(size),
		Files: []torrent.File{{Path: []string{"data"}, Length: int64(size)}}}
	for off := 0; off < size; off += pieceLen {
		m.Pieces = append(m.Pieces, sha1.Sum(data[off:min(off+pieceLen, size)]))
	}
	rand.Read(m.InfoHash[:])
	return data, m
}

// session starts a Torrent on a loopback listener; it stops with the test.
func session(t *testing.T, cfg Config, m *torrent.MetaInfo, store Storage, peers ...string) (*Torrent, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peerwire.NewPeerID()
	tr, err := New(cfg, Options{Meta: m, Storage: store, PeerID: id, Listener: ln, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	testwait.Run(t, "Run", tr.Run)
	return tr, ln.Addr().String()
}

func waitDone(t *testing.T, tr *Torrent, d time.Duration) {
	t.Helper()
	select {
	case <-tr.Done():
	case <-time.After(d):
		t.Fatalf("not complete after %v: %+v", d, tr.Stats())
	}
}

func TestLeecherGetsEveryPieceFromSeeders(t *testing.T) {
	tests := []struct {
		name           string
		size, pieceLen int
		seeders        int
	}{
		{"one seeder, short last piece", 3<<20 + 12345, 64 << 10, 1},
		{"three seeders", 4 << 20, 256 << 10, 3},
		{"piece smaller than a block", 100 << 10, 8 << 10, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, m := testTorrent(t, tt.size, tt.pieceLen)
			var addrs []string
			for range tt.seeders {
				_, a := session(t, DefaultConfig(), m, newMemStorage(tt.size, data))
				addrs = append(addrs, a)
			}
			store := newMemStorage(tt.size, nil)
			leech, _ := session(t, DefaultConfig(), m, store, addrs...)
			waitDone(t, leech, 30*time.Second)
			if !bytes.Equal(store.data, data) {
				t.Fatal("downloaded data differs")
			}
			if s := leech.Stats(); s.Done != int64(tt.size) || s.State != StateSeeding {
				t.Fatalf("stats after completion: %+v", s)
			}
		})
	}
}

func TestResumesFromWhatStorageHolds(t *testing.T) {
	data, m := testTorrent(t, 1<<20, 64<<10)
	store := newMemStorage(len(data), nil)
	store.WriteAt(data[:512<<10], 0)             // the first half is there
	store.WriteAt(make([]byte, 64<<10), 512<<10) // and one piece of zeros
	_, seed := session(t, DefaultConfig(), m, newMemStorage(len(data), data))
	leech, _ := session(t, DefaultConfig(), m, store, seed)
	waitDone(t, leech, 30*time.Second)
	if got := leech.Stats().Downloaded; got != 512<<10 {
		t.Fatalf("downloaded %d bytes, want only the missing %d", got, 512<<10)
	}
	if !bytes.Equal(store.data, data) {
		t.Fatal("data differs")
	}
}

// blackHole is a peer that has everything, unchokes, and never answers.
func blackHole(t *testing.T, m *torrent.MetaInfo) string {
	t.Helper()
	all := peerwire.NewBitfield(m.NumPieces())
	for i := range m.NumPieces() {
		all.Set(i)
	}
	return peerwiretest.Listen(t, peerwiretest.Peer{InfoHash: m.InfoHash, Bitfield: all, Unchoke: true})
}

func TestStalledPeerGivesItsBlocksBack(t *testing.T) {
	data, m := testTorrent(t, 2<<20, 64<<10)
	hole := blackHole(t, m)
	cfg := DefaultConfig()
	cfg.UploadRate = 512 << 10 // slow enough that the hole gets requests first
	_, seed := session(t, cfg, m, newMemStorage(len(data), data))
	store := newMemStorage(len(data), nil)
	lcfg := DefaultConfig()
	start := time.Now()
	leech, _ := session(t, lcfg, m, store, hole, seed)
	waitDone(t, leech, 30*time.Second)
	if !bytes.Equal(store.data, data) {
		t.Fatal("data differs")
	}
	t.Logf("measured: complete in %v with a peer that never answers (stall timeout %v)", time.Since(start), lcfg.StallTimeout)
}

func TestCorruptPeerIsBannedAndPieceRefetched(t *testing.T) {
	data, m := testTorrent(t, 1<<20, 64<<10)
	bad := append([]byte(nil), data...)
	for i := 0; i < len(bad); i += 16 << 10 {
		bad[i+7] ^= 0x55 // every block is wrong
	}
	// The liar's storage claims every piece; the session checks on start, so
	// give it the good data to pass the check and swap in the bad afterwards.
	liarStore := newMemStorage(len(data), data)
	liar, liarAddr := session(t, DefaultConfig(), m, liarStore)
	waitDone(t, liar, 10*time.Second)
	liarStore.mu.Lock()
	copy(liarStore.data, bad)
	liarStore.mu.Unlock()

	cfg := DefaultConfig()
	cfg.UploadRate = 256 << 10
	_, honest := session(t, cfg, m, newMemStorage(len(data), data))
	store := newMemStorage(len(data), nil)
	leech, _ := session(t, DefaultConfig(), m, store, liarAddr, honest)
	waitDone(t, leech, 30*time.Second)
	if !bytes.Equal(store.data, data) {
		t.Fatal("data differs")
	}
	s := leech.Stats()
	if s.BadPeers < 1 || s.Wasted == 0 {
		t.Fatalf("liar not caught: %+v", s)
	}
}

func TestRejectsPeerForAnotherTorrent(t *testing.T) {
	data, m := testTorrent(t, 256<<10, 64<<10)
	seed, addr := session(t, DefaultConfig(), m, newMemStorage(len(data), data))
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peerwire.WriteHandshake(nc, peerwire.Handshake{InfoHash: [20]byte{1}})
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := peerwire.ReadHandshake(nc); err == nil {
		t.Fatal("seeder answered a handshake for another torrent")
	}
	if seed.Stats().Peers != 0 {
		t.Fatal("the stranger was counted as a peer")
	}
}

func TestDialsMoreThanMaxDialsPeers(t *testing.T) {
	data, m := testTorrent(t, 512<<10, 64<<10)
	cfg := DefaultConfig()
	cfg.MaxDials = 2
	cfg.UploadRate = 64 << 10 // keep the leecher downloading while it dials
	var addrs []string
	for range 5 {
		_, a := session(t, cfg, m, newMemStorage(len(data), data))
		addrs = append(addrs, a)
	}
	lcfg := DefaultConfig()
	lcfg.MaxDials = 2
	leech, _ := session(t, lcfg, m, newMemStorage(len(data), nil))
	deadline := time.Now().Add(10 * time.Second)
	leech.AddPeers("test", addrs[:2])
	for leech.Stats().Peers < 2 {
		if time.Now().After(deadline) {
			t.Fatal("first peers never connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	leech.AddPeers("test", addrs[2:])
	for leech.Stats().Peers < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("connected to %d of 5 peers: finished dials were never counted out", leech.Stats().Peers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
