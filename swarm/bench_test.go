package swarm

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"

	"btclient/peerwire"
	"btclient/torrent"
)

// pickerFixture builds a loop with 10,000 pieces and 1,000 unchoking peers,
// each holding a random half of the pieces, and nothing downloaded.
func pickerFixture(b *testing.B) (*loop, []*peer) {
	const pieces, peers = 10000, 1000
	m := &torrent.MetaInfo{Name: "bench", PieceLength: 256 << 10, TotalLength: pieces * 256 << 10,
		Pieces: make([][20]byte, pieces)}
	tr, err := New(DefaultConfig(), Options{Meta: m, Storage: newMemStorage(0, nil)})
	if err != nil {
		b.Fatal(err)
	}
	tr.cfg.MaxPieceMemory = 1 << 40    // measure the picker, not the memory cap
	tr.havePieces = tr.cfg.RandomFirst // rarest-first from the start
	l := &loop{t: tr}
	l.initPicker()
	ps := make([]*peer, peers)
	for i := range ps {
		p := &peer{bf: peerwire.NewBitfield(pieces), out: newOutbox(), outstanding: map[blockKey]struct{}{}, amInterested: true}
		for j := range pieces {
			if rand.IntN(2) == 0 {
				p.bf.Set(j)
				p.numHave++
				tr.avail[j]++
			}
		}
		tr.peers[p] = struct{}{}
		ps[i] = p
	}
	return l, ps
}

// BenchmarkPickerRequest measures one request decision: which block to ask a
// peer for, starting new pieces rarest-first as needed.
func BenchmarkPickerRequest(b *testing.B) {
	l, ps := pickerFixture(b)
	i := 0
	for b.Loop() {
		p := ps[i%len(ps)]
		i++
		if !l.requestOne(p) {
			b.StopTimer()
			l, ps = pickerFixture(b)
			b.StartTimer()
		}
		if len(p.outstanding) > 64 { // keep maps and outboxes small
			clear(p.outstanding)
			p.out.msgs = p.out.msgs[:0]
		}
	}
}

// BenchmarkStartPieceRarestFirst measures choosing a new piece by rarity
// over 10,000 pieces for a peer with half of them.
func BenchmarkStartPieceRarestFirst(b *testing.B) {
	l, ps := pickerFixture(b)
	for b.Loop() {
		pd := l.startPiece(ps[0])
		if pd == nil {
			b.Fatal("no piece")
		}
		delete(l.t.active, pd.index) // undo, so every pick scans afresh
		l.t.started.Clear(pd.index)
		l.t.order = l.t.order[:0]
		l.t.freePiece(pd)
	}
}

func BenchmarkPieceVerify(b *testing.B) {
	buf := make([]byte, 256<<10)
	want := sha1.Sum(buf)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if sha1.Sum(buf) != want {
			b.Fatal("mismatch")
		}
	}
}

// BenchmarkLoopbackTransfer moves a 256 MiB torrent between two sessions in
// this process over loopback TCP, with storage in memory: the engine and the
// wire, without the disk. One sub-benchmark per piece size.
func BenchmarkLoopbackTransfer(b *testing.B) {
	const size = 256 << 20
	for _, piece := range []int{16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("piece=%dKiB", piece>>10), func(b *testing.B) {
			data, m := testTorrent(b, size, piece)
			b.SetBytes(size)
			for b.Loop() {
				b.StopTimer()
				seedStore := &benchStore{data: data, full: true}
				leechStore := &benchStore{data: make([]byte, size)}
				b.StartTimer()
				transfer(b, m, seedStore, leechStore)
			}
		})
	}
}

// transfer runs a seeder and a leecher until the leecher completes.
func transfer(b *testing.B, m *torrent.MetaInfo, seedStore, leechStore Storage) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	id1, _ := peerwire.NewPeerID()
	id2, _ := peerwire.NewPeerID()
	seed, _ := New(DefaultConfig(), Options{Meta: m, Storage: seedStore, PeerID: id1, Listener: ln})
	leech, _ := New(DefaultConfig(), Options{Meta: m, Storage: leechStore, PeerID: id2, Peers: []string{ln.Addr().String()}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { seed.Run(ctx) })
	wg.Go(func() { leech.Run(ctx) })
	<-leech.Done()
	cancel()
	wg.Wait()
}

// benchStore is a Storage in memory that costs nothing but the copy: a
// leecher's store reads as empty, a seeder's as full.
type benchStore struct {
	data []byte
	full bool
}

func (s *benchStore) ReadAt(p []byte, off int64) (int, error) {
	if !s.full {
		return 0, io.ErrUnexpectedEOF
	}
	return copy(p, s.data[off:]), nil
}

func (s *benchStore) WriteAt(p []byte, off int64) (int, error) { return copy(s.data[off:], p), nil }
