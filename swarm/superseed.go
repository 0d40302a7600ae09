package swarm

import (
	"fmt"
	"time"

	"btclient/peerwire"
)

// SuperSeedMode says when a seeder super-seeds (BEP 16): rather than its
// bitfield, a leecher is shown a few pieces nobody else has or is being
// sent, and more as it announces (HAVE) those it completed. Every piece then
// leaves the seeder about once and the leechers trade the rest among
// themselves, which is what counts when the seeder's upload is the
// bottleneck: each byte it sends twice is a byte of delay for everyone.
type SuperSeedMode string

// The modes: SuperSeedAuto super-seeds while an upload cap applies (the
// torrent's or the session's) and no other seeder is connected.
const (
	SuperSeedAuto SuperSeedMode = "auto"
	SuperSeedOn   SuperSeedMode = "on"
	SuperSeedOff  SuperSeedMode = "off"
)

// ParseSuperSeedMode reads "auto", "on" or "off".
func ParseSuperSeedMode(s string) (SuperSeedMode, error) {
	switch m := SuperSeedMode(s); m {
	case SuperSeedAuto, SuperSeedOn, SuperSeedOff:
		return m, nil
	}
	return "", fmt.Errorf("super-seed mode %q: want auto, on or off", s)
}

// superSeedFor decides whether p, starting now, is super-seeded: only a
// complete torrent super-seeds, and in auto mode only while its upload is
// capped and it is the one seeder among its peers.
func (l *loop) superSeedFor(p *peer) bool {
	t := l.t
	if !t.isComplete() {
		return false
	}
	switch t.cfg.SuperSeed {
	case SuperSeedOn:
		return true
	case SuperSeedOff:
		return false
	}
	if !(limits{t.up, t.opt.SessionUpload}).active() {
		return false
	}
	n := t.meta.NumPieces()
	for q := range t.peers {
		if q != p && q.numHave == n {
			return false
		}
	}
	return true
}

// superSaw is called when a super-seeded p announced pieces: those it was
// offered and now has are done, and it is offered more.
func (l *loop) superSaw(p *peer, now time.Time) {
	t := l.t
	k := 0
	for _, i := range p.offered {
		if p.bf.Has(int(i)) {
			t.offeredTo[i]--
			continue
		}
		p.offered[k] = i
		k++
	}
	p.offered = p.offered[:k]
	p.lastHave = now
	l.superOffer(p, now)
}

// superOffer tops up what super-seeded p is offered: pieces it lacks that
// no peer has and none is being offered, fewest first; as many as cover
// SuperSeedWindow of its rate, at least two. A peer that has announced
// nothing for SuperSeedIdle while offered nothing gets pieces others have
// too, the rarest: it may have no one else to get them from.
func (l *loop) superOffer(p *peer, now time.Time) {
	t := l.t
	if p.closed || !p.super {
		return
	}
	if t.offeredTo == nil {
		t.offeredTo = make([]int32, t.meta.NumPieces())
	}
	want := max(2, int(p.upRate*t.cfg.SuperSeedWindow.Seconds()/float64(t.meta.PieceLength))+1)
	starving := len(p.offered) == 0 && now.Sub(p.lastHave) >= t.cfg.SuperSeedIdle
	for len(p.offered) < want {
		best, bestScore := -1, int(^uint(0)>>1)
		from := 0
		if !starving {
			for t.superFrom < len(t.offeredTo) && t.avail[t.superFrom]+int(t.offeredTo[t.superFrom]) > 0 {
				t.superFrom++
			}
			from = t.superFrom
		}
		for i := from; i < len(t.offeredTo); i++ {
			if p.bf.Has(i) || l.offeredTo(p, i) {
				continue
			}
			score := t.avail[i] + int(t.offeredTo[i])
			if score > 0 && !starving {
				continue
			}
			if score < bestScore {
				best, bestScore = i, score
				if score == 0 {
					break
				}
			}
		}
		if best < 0 {
			return
		}
		t.offeredTo[best]++
		p.offered = append(p.offered, int32(best))
		p.out.send(peerwire.Message{ID: peerwire.Have, Index: uint32(best)})
		if starving {
			p.lastHave = now // one piece per SuperSeedIdle
			return
		}
	}
}

// offeredTo reports whether p has been offered piece i and not yet taken it.
func (l *loop) offeredTo(p *peer, i int) bool {
	for _, j := range p.offered {
		if int(j) == i {
			return true
		}
	}
	return false
}

// superWithdraw takes back what p was offered, for others: p left, or has
// taken nothing of it for SuperSeedIdle. p itself may still ask for it.
func (t *Torrent) superWithdraw(p *peer) {
	for _, i := range p.offered {
		t.offeredTo[i]--
	}
	p.offered = p.offered[:0]
	t.superFrom = 0 // they are on offer again
}

// superTick offers more to every super-seeded peer (its rate may have grown)
// and takes back the offers of those that do not take them.
func (l *loop) superTick(now time.Time) {
	for p := range l.t.peers {
		if !p.super {
			continue
		}
		if len(p.offered) > 0 && p.upRate == 0 && now.Sub(p.lastHave) >= 2*l.t.cfg.SuperSeedIdle {
			l.t.superWithdraw(p)
			p.lastHave = now
		}
		l.superOffer(p, now)
	}
}
