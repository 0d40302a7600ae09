package dht

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// peerStore keeps the peers announced to this node: per info hash, a short
// list of compact peer addresses with their expiry. It is bounded three
// ways: info hashes (the one whose latest announce is oldest makes room),
// peers per hash (the entry closest to expiry makes room) and entries one
// source may hold per hash. A peer costs 16 bytes. It does no I/O and is
// guarded by the node's mutex.
type peerStore struct {
	ttl        time.Duration
	maxHashes  int
	maxPerHash int
	maxPerIP   int

	swarms map[ID]*swarm
	peers  int
}

type swarm struct {
	peers  []storedPeer
	latest time.Time // latest announce
}

// storedPeer is an IPv4 address and port, and when the entry expires.
type storedPeer struct {
	addr    [6]byte
	expires int64 // unix nanoseconds
}

func compactKey(a netip.AddrPort) [6]byte {
	ip := a.Addr().Unmap().As4()
	return [6]byte{ip[0], ip[1], ip[2], ip[3], byte(a.Port() >> 8), byte(a.Port())}
}

func (p storedPeer) addrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(p.addr[:4])), uint16(p.addr[4])<<8|uint16(p.addr[5]))
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
		sw = &swarm{}
		s.swarms[ih] = sw
	}
	sw.latest = now
	key, exp := compactKey(peer), now.Add(s.ttl).UnixNano()
	// The source's entries: same IP, or same IP and port for local ones
	// (see sourceKey).
	local := isLocal(peer.Addr())
	same := 0
	for i := range sw.peers {
		a := sw.peers[i].addr
		if a == key {
			sw.peers[i].expires = exp
			return true
		}
		if [4]byte(a[:4]) == [4]byte(key[:4]) && !local {
			same++
		}
	}
	if same >= s.maxPerIP {
		return false
	}
	if len(sw.peers) >= s.maxPerHash {
		s.sweepSwarm(sw, now)
	}
	if len(sw.peers) >= s.maxPerHash {
		oldest := 0
		for i, p := range sw.peers {
			if p.expires < sw.peers[oldest].expires {
				oldest = i
			}
		}
		sw.peers[oldest] = storedPeer{key, exp}
		return true
	}
	sw.peers = append(sw.peers, storedPeer{key, exp})
	s.peers++
	return true
}

// get returns up to max live peers of ih, a random sample when there are more.
func (s *peerStore) get(ih ID, max int, now time.Time) []netip.AddrPort {
	sw := s.swarms[ih]
	if sw == nil {
		return nil
	}
	t := now.UnixNano()
	out := make([]netip.AddrPort, 0, min(max, len(sw.peers)))
	for _, p := range sw.peers {
		if p.expires > t {
			out = append(out, p.addrPort())
		}
	}
	if len(out) > max {
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		out = out[:max]
	}
	return out
}

func (s *peerStore) sweepSwarm(sw *swarm, now time.Time) {
	t := now.UnixNano()
	before := len(sw.peers)
	sw.peers = slices.DeleteFunc(sw.peers, func(p storedPeer) bool { return p.expires <= t })
	s.peers -= before - len(sw.peers)
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
	var victim *ID
	var oldest time.Time
	for ih, sw := range s.swarms {
		if victim == nil || sw.latest.Before(oldest) {
			v := ih
			victim, oldest = &v, sw.latest
		}
	}
	if victim != nil {
		s.peers -= len(s.swarms[*victim].peers)
		delete(s.swarms, *victim)
	}
}
