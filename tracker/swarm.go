package tracker

import (
	"container/list"
	"net/netip"
	"time"
)

// swarm is the server's record of one torrent: its peers in the order they
// last announced, so expiry only ever looks at the front.
type swarm struct {
	peers      map[[20]byte]*list.Element // peer id → element of order
	order      list.List                  // of *swarmPeer, least recently announced first
	seeders    int
	downloaded int // completed events seen
}

type swarmPeer struct {
	id        [20]byte
	addr      netip.AddrPort
	seeder    bool
	completed bool // already counted in downloaded
	lastSeen  time.Time
}

func newSwarm() *swarm {
	return &swarm{peers: make(map[[20]byte]*list.Element)}
}

func (sw *swarm) len() int      { return len(sw.peers) }
func (sw *swarm) leechers() int { return len(sw.peers) - sw.seeders }

// expire removes the peers last seen before cutoff and returns how many.
func (sw *swarm) expire(cutoff time.Time) int {
	n := 0
	for el := sw.order.Front(); el != nil; el = sw.order.Front() {
		p := el.Value.(*swarmPeer)
		if !p.lastSeen.Before(cutoff) {
			break
		}
		sw.removeElement(el)
		n++
	}
	return n
}

// remove drops the peer with id and reports whether it was there.
func (sw *swarm) remove(id [20]byte) bool {
	el, ok := sw.peers[id]
	if ok {
		sw.removeElement(el)
	}
	return ok
}

func (sw *swarm) removeElement(el *list.Element) {
	p := sw.order.Remove(el).(*swarmPeer)
	delete(sw.peers, p.id)
	if p.seeder {
		sw.seeders--
	}
}

// owner reports whether a peer with id is known, and if so whether it was
// announced from ip.
func (sw *swarm) owner(id [20]byte, ip netip.Addr) (known, sameHost bool) {
	el, ok := sw.peers[id]
	if !ok {
		return false, false
	}
	return true, el.Value.(*swarmPeer).addr.Addr() == ip
}

// update refreshes a known peer and reports whether it was known.
func (sw *swarm) update(id [20]byte, addr netip.AddrPort, seeder, completed bool, now time.Time) bool {
	el, ok := sw.peers[id]
	if !ok {
		return false
	}
	p := el.Value.(*swarmPeer)
	p.addr = addr
	p.lastSeen = now
	sw.setSeeder(p, seeder)
	if completed && !p.completed {
		p.completed = true
		sw.downloaded++
	}
	sw.order.MoveToBack(el)
	return true
}

// add records a peer the swarm does not know yet.
func (sw *swarm) add(id [20]byte, addr netip.AddrPort, seeder, completed bool, now time.Time) {
	p := &swarmPeer{id: id, addr: addr, lastSeen: now}
	sw.peers[id] = sw.order.PushBack(p)
	sw.setSeeder(p, seeder)
	if completed {
		p.completed = true
		sw.downloaded++
	}
}

func (sw *swarm) setSeeder(p *swarmPeer, seeder bool) {
	switch {
	case seeder && !p.seeder:
		sw.seeders++
	case !seeder && p.seeder:
		sw.seeders--
	}
	p.seeder = seeder
}

// pick returns up to n peers for the peer with id at addr. It never returns
// the asker itself, and gives seeders only leechers, who are all a seeder can
// use. Map iteration order spreads the choice across the swarm.
func (sw *swarm) pick(id [20]byte, addr netip.AddrPort, forSeeder bool, n int) []swarmPeer {
	if n <= 0 {
		return nil
	}
	out := make([]swarmPeer, 0, min(n, len(sw.peers)))
	for _, el := range sw.peers {
		p := el.Value.(*swarmPeer)
		if p.id == id || p.addr == addr || (forSeeder && p.seeder) {
			continue
		}
		out = append(out, *p)
		if len(out) == n {
			break
		}
	}
	return out
}
