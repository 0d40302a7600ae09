package swarm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

const (
	blockPending uint8 = iota
	blockRequested
	blockReceived
)

// pieceDL is a piece being assembled in memory. Its blocks are the buffers
// they were read into from the network: never copied until the kernel
// copies them to disk.
type pieceDL struct {
	index, size, nblocks, blockSize int
	blocks                          [][]byte // nil until received
	state                           []uint8
	reqs                            []uint8 // peers the block is requested from
	owners                          []*peer // who sent each received block
	pending, received               int
	cursor                          int // no pending block before it
	hashing                         bool
}

func newPieceDL(index, size, blockSize int) *pieceDL {
	n := (size + blockSize - 1) / blockSize
	pd := &pieceDL{index: index, size: size, nblocks: n, blockSize: blockSize, blocks: make([][]byte, n),
		state: make([]uint8, n), reqs: make([]uint8, n), owners: make([]*peer, n)}
	pd.reset()
	return pd
}

// releaseBlocks hands every received block to put.
func (pd *pieceDL) releaseBlocks(put func([]byte)) {
	for b, data := range pd.blocks {
		if data != nil {
			put(data)
			pd.blocks[b] = nil
		}
	}
}

// reset forgets every block; their buffers must be released first.
func (pd *pieceDL) reset() {
	clear(pd.blocks)
	clear(pd.state)
	clear(pd.reqs)
	clear(pd.owners)
	pd.pending, pd.received, pd.cursor, pd.hashing = pd.nblocks, 0, 0, false
}

func (pd *pieceDL) blockLen(b int) int {
	return min(pd.blockSize, pd.size-b*pd.blockSize)
}

// nextPending returns the first pending block; the caller knows there is one.
func (pd *pieceDL) nextPending() int {
	for pd.state[pd.cursor] != blockPending {
		pd.cursor++
	}
	return pd.cursor
}

func (pd *pieceDL) markRequested(b int) {
	if pd.state[b] == blockPending {
		pd.state[b] = blockRequested
		pd.pending--
	}
	pd.reqs[b]++
}

// unrequest takes back one request of block b; with none left it is pending again.
func (pd *pieceDL) unrequest(b int) {
	if pd.reqs[b] > 0 {
		pd.reqs[b]--
	}
	if pd.reqs[b] == 0 && pd.state[b] == blockRequested {
		pd.state[b] = blockPending
		pd.pending++
		pd.cursor = min(pd.cursor, b)
	}
}

// receive keeps data, which the piece now owns, as block b.
func (pd *pieceDL) receive(b int, data []byte, from *peer) {
	if pd.state[b] == blockPending {
		pd.pending--
	}
	pd.state[b] = blockReceived
	pd.received++
	pd.owners[b] = from
	pd.blocks[b] = data
}

// failedPiece keeps a piece that failed its hash check and who sent each
// block, so that once the piece verifies the liars can be told apart.
type failedPiece struct {
	buf    []byte
	owners []*peer
}

// maxFailedKept bounds the failed pieces kept for comparison.
const maxFailedKept = 8

// blame counts a failed piece against every peer that sent part of it. A
// single sender is proven guilty at once; the first copy is kept so a later
// good copy can prove which of several senders lied.
func (l *loop) blame(pd *pieceDL) {
	t := l.t
	senders := map[*peer]bool{}
	for _, p := range pd.owners {
		if p != nil {
			senders[p] = true
		}
	}
	if len(senders) == 1 {
		for p := range senders {
			l.ban(p, fmt.Sprintf("sent piece %d that failed its hash check", pd.index))
		}
	} else {
		for p := range senders {
			if p.badPieces++; p.badPieces >= t.cfg.MaxBadPieces {
				l.ban(p, "took part in too many pieces that failed their hash check")
			}
		}
		if _, ok := t.failed[pd.index]; !ok && len(t.failed) < maxFailedKept {
			buf := make([]byte, 0, pd.size)
			for _, data := range pd.blocks {
				buf = append(buf, data...)
			}
			t.failed[pd.index] = &failedPiece{buf: buf, owners: append([]*peer(nil), pd.owners...)}
		}
	}
}

// smartBan compares a failed copy of a piece with the good one and bans
// whoever sent a block that differs.
func (l *loop) smartBan(f *failedPiece, good *pieceDL) {
	delete(l.t.failed, good.index)
	for b, p := range f.owners {
		lo, hi := b*good.blockSize, b*good.blockSize+good.blockLen(b)
		if p != nil && !bytes.Equal(f.buf[lo:hi], good.blocks[b]) {
			l.ban(p, fmt.Sprintf("sent a corrupt block of piece %d", good.index))
		}
	}
}

// rechoke unchokes the UploadSlots interested peers with the best rate (what
// they give us while downloading, what they take while seeding) plus one
// optimistic unchoke, rotated every OptimisticInterval.
func (l *loop) rechoke(now time.Time) {
	t := l.t
	t.lastChoke = now
	var interested []*peer
	for p := range t.peers {
		if p.super && p.peerInterested {
			if p.amChoking { // super-seeded peers need no slot
				l.unchoke(p)
			}
			continue
		}
		if p.peerInterested {
			interested = append(interested, p)
		} else if !p.amChoking {
			l.choke(p)
		}
	}
	seeding := t.isComplete()
	sort.Slice(interested, func(i, j int) bool {
		a, b := interested[i], interested[j]
		if seeding {
			return a.upRate > b.upRate
		}
		return a.downRate > b.downRate
	})
	rotate := now.Sub(t.lastOpt) >= t.cfg.OptimisticInterval
	var rest []*peer
	for i, p := range interested {
		switch {
		case i < t.cfg.UploadSlots:
			p.optimistic = false
			if p.amChoking {
				l.unchoke(p)
			}
		case p.optimistic && !rotate:
			// keeps its optimistic slot until the next rotation
		default:
			rest = append(rest, p)
		}
	}
	keep := false
	for _, p := range interested[min(len(interested), t.cfg.UploadSlots):] {
		keep = keep || (p.optimistic && !rotate)
	}
	if !keep && len(rest) > 0 {
		t.lastOpt = now
		lucky := rest[rand.IntN(len(rest))]
		lucky.optimistic = true
		if lucky.amChoking {
			l.unchoke(lucky)
		}
	}
	for _, p := range rest {
		if !p.optimistic && !p.amChoking {
			l.choke(p)
		}
	}
}
