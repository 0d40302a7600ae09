package dht

import (
	"math/rand/v2"
	"net/netip"
	"time"
)

// peerStore keeps the peers announced to this node: per info hash, peer
// address → expiry. It is bounded three ways: info hashes (the one whose
// latest announce is oldest makes room), peers per hash (the entry closest
// to expiry makes room) and entries one source may hold per hash. It does
// no I/O and is guarded by the node's mutex.
type peerStore struct {
	ttl        time.Duration
	maxHashes  int
	maxPerHash int
	maxPerIP   int

	swarms map[ID]*swarm
	peers  int
}

type swarm struct {
	peers  map[netip.AddrPort]time.Time // expiry
	perIP  map[netip.AddrPort]int       // sourceKey → entries
	latest time.Time                    // latest announce
}

func newPeerStore(c *Config) *peerStore {
	return &peerStore{
		ttl:        c.PeerTTL,
		maxHashes:  c.MaxInfoHashes,
		maxPerHash: c.MaxPeersPerHash,
		maxPerIP:   c.MaxPeersPerIPPerHash,
		swarms:     make(map[ID]*swarm),
	}
}

// add records that peer announced ih; it reports false when the source's
// share of the swarm is full.
func (s *peerStore) add(ih ID, peer netip.AddrPort, now time.Time) bool {
	sw := s.swarms[ih]
	if sw == nil {
		if len(s.swarms) >= s.maxHashes {
			s.sweep(now)
		}
		if len(s.swarms) >= s.maxHashes {
			s.evictSwarm()
		}
		sw = &swarm{peers: make(map[netip.AddrPort]time.Time), perIP: make(map[netip.AddrPort]int)}
		s.swarms[ih] = sw
	}
	sw.latest = now
	if _, ok := sw.peers[peer]; ok {
		sw.peers[peer] = now.Add(s.ttl)
		return true
	}
	key := sourceKey(peer)
	if sw.perIP[key] >= s.maxPerIP {
		return false
	}
	if len(sw.peers) >= s.maxPerHash {
		s.sweepSwarm(sw, now)
	}
	if len(sw.peers) >= s.maxPerHash {
		var oldest netip.AddrPort
		var oldestExp time.Time
		for p, exp := range sw.peers {
			if oldestExp.IsZero() || exp.Before(oldestExp) {
				oldest, oldestExp = p, exp
			}
		}
		s.drop(sw, oldest)
	}
	sw.peers[peer] = now.Add(s.ttl)
	sw.perIP[key]++
	s.peers++
	return true
}

// get returns up to max live peers of ih, a random sample when there are more.
func (s *peerStore) get(ih ID, max int, now time.Time) []netip.AddrPort {
	sw := s.swarms[ih]
	if sw == nil {
		return nil
	}
	out := make([]netip.AddrPort, 0, min(max, len(sw.peers)))
	for p, exp := range sw.peers {
		if exp.After(now) {
			out = append(out, p)
		}
	}
	if len(out) > max {
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		out = out[:max]
	}
	return out
}

func (s *peerStore) drop(sw *swarm, p netip.AddrPort) {
	delete(sw.peers, p)
	k := sourceKey(p)
	if sw.perIP[k]--; sw.perIP[k] <= 0 {
		delete(sw.perIP, k)
	}
	s.peers--
}

func (s *peerStore) sweepSwarm(sw *swarm, now time.Time) {
	for p, exp := range sw.peers {
		if !exp.After(now) {
			s.drop(sw, p)
		}
	}
}

// sweep drops expired peers and empty swarms.
func (s *peerStore) sweep(now time.Time) {
	for ih, sw := range s.swarms {
		s.sweepSwarm(sw, now)
		if len(sw.peers) == 0 {
			delete(s.swarms, ih)
		}
	}
}

// evictSwarm drops the swarm whose latest announce is oldest.
func (s *peerStore) evictSwarm() {
	var victim ID
	var oldest time.Time
	first := true
	for ih, sw := range s.swarms {
		if first || sw.latest.Before(oldest) {
			victim, oldest, first = ih, sw.latest, false
		}
	}
	if sw := s.swarms[victim]; sw != nil {
		s.peers -= len(sw.peers)
		delete(s.swarms, victim)
	}
}
