package overlay

import (
	"slices"
	"sync"
	"time"
)

// StoreLimits are the Store's rules: entry lifetime, clock skew and caps.
type StoreLimits struct {
	TTL                 time.Duration // entries older than this are gone
	MaxClockSkew        time.Duration // LastSeen later than now+skew becomes now
	MaxPerHash          int           // entries per info hash
	MaxHashes           int           // info hashes
	MaxPerSource        int           // entries one source may hold
	MaxPerSourcePerHash int           // entries one source may hold for one info hash
}

// limitsFrom takes the Store's rules from a node Config.
func limitsFrom(c Config) StoreLimits {
	return StoreLimits{
		TTL:                 c.ProviderTTL,
		MaxClockSkew:        c.MaxClockSkew,
		MaxPerHash:          c.MaxProvidersPerHash,
		MaxHashes:           c.MaxInfoHashes,
		MaxPerSource:        c.MaxEntriesPerSource,
		MaxPerSourcePerHash: c.MaxEntriesPerSourcePerHash,
	}
}

// Store keeps, per info hash, one Provider entry per address. It merges by
// last-writer-wins on LastSeen, forgets entries a TTL after their LastSeen, and
// bounds its size. It knows nothing of the network; sources are opaque strings
// (the node passes the sender's IP; "" is the local node, which no per-source
// cap limits).
type Store struct {
	lim StoreLimits
	now func() time.Time

	mu        sync.RWMutex
	hashes    map[[20]byte]map[string]entry
	bySource  map[string]int
	bySrcHash map[srcHash]int
}

type entry struct {
	p      Provider
	source string // who first inserted it; caps count against this source
}

type srcHash struct {
	source string
	ih     [20]byte
}

// NewStore returns an empty store with the given rules.
func NewStore(lim StoreLimits) *Store {
	return &Store{
		lim:       lim,
		now:       time.Now,
		hashes:    make(map[[20]byte]map[string]entry),
		bySource:  make(map[string]int),
		bySrcHash: make(map[srcHash]int),
	}
}

func (s *Store) expired(p Provider, now time.Time) bool {
	return now.Sub(p.LastSeen) > s.lim.TTL
}

// wins reports whether a replaces b under last-writer-wins; ties break towards
// a tombstone, then fewer bytes left, then the greater peer id, so every node
// picks the same entry.
func wins(a, b Provider) bool {
	if !a.LastSeen.Equal(b.LastSeen) {
		return a.LastSeen.After(b.LastSeen)
	}
	if a.Stopped != b.Stopped {
		return a.Stopped
	}
	if a.Left != b.Left {
		return a.Left < b.Left
	}
	return a.PeerID > b.PeerID
}

// normalize clamps a LastSeen from the future to now and cuts it to the wire's
// millisecond precision so local and gossiped copies compare equal.
func (s *Store) normalize(p Provider, now time.Time) Provider {
	if p.LastSeen.After(now.Add(s.lim.MaxClockSkew)) {
		p.LastSeen = now
	}
	p.LastSeen = time.UnixMilli(p.LastSeen.UnixMilli())
	return p
}

// Merge applies ps to the entries of infoHash, as received from source, and
// returns the entries that changed the store (new, or newer than what it held).
// Invalid and expired entries, and entries beyond a cap, are ignored.
func (s *Store) Merge(infoHash [20]byte, ps []Provider, source string) []Provider {
	now := s.now()
	var changed []Provider
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		if p.validate() != nil {
			continue
		}
		p = s.normalize(p, now)
		if s.expired(p, now) {
			continue
		}
		if s.put(infoHash, p, source, now) {
			changed = append(changed, p)
		}
	}
	return changed
}

// put stores one normalized entry; s.mu is held.
func (s *Store) put(ih [20]byte, p Provider, source string, now time.Time) bool {
	m := s.hashes[ih]
	if old, ok := m[p.Addr]; ok {
		if !s.expired(old.p, now) && !wins(p, old.p) {
			return false
		}
		m[p.Addr] = entry{p: p, source: old.source}
		return true
	}
	if m == nil {
		if len(s.hashes) >= s.lim.MaxHashes {
			return false
		}
	}
	if source != "" {
		if s.bySource[source] >= s.lim.MaxPerSource ||
			s.bySrcHash[srcHash{source, ih}] >= s.lim.MaxPerSourcePerHash {
			return false
		}
	}
	if len(m) >= s.lim.MaxPerHash {
		// Full: the new entry may only push out the stalest one.
		var oldest string
		for addr, e := range m {
			if oldest == "" || e.p.LastSeen.Before(m[oldest].p.LastSeen) {
				oldest = addr
			}
		}
		if !p.LastSeen.After(m[oldest].p.LastSeen) {
			return false
		}
		s.remove(ih, m, oldest)
	}
	if m == nil {
		m = make(map[string]entry)
		s.hashes[ih] = m
	}
	m[p.Addr] = entry{p: p, source: source}
	if source != "" {
		s.bySource[source]++
		s.bySrcHash[srcHash{source, ih}]++
	}
	return true
}

// remove deletes one entry and its counts; s.mu is held.
func (s *Store) remove(ih [20]byte, m map[string]entry, addr string) {
	e := m[addr]
	delete(m, addr)
	if e.source != "" {
		if s.bySource[e.source]--; s.bySource[e.source] <= 0 {
			delete(s.bySource, e.source)
		}
		k := srcHash{e.source, ih}
		if s.bySrcHash[k]--; s.bySrcHash[k] <= 0 {
			delete(s.bySrcHash, k)
		}
	}
	if len(m) == 0 {
		delete(s.hashes, ih)
	}
}

// Lookup returns up to limit live providers of infoHash (never stopped or
// expired ones), most recently seen first. limit <= 0 means all.
func (s *Store) Lookup(infoHash [20]byte, limit int) []Provider {
	now := s.now()
	s.mu.RLock()
	var out []Provider
	for _, e := range s.hashes[infoHash] {
		if !e.p.Stopped && !s.expired(e.p, now) {
			out = append(out, e.p)
		}
	}
	s.mu.RUnlock()
	sortByLastSeen(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Entries returns every unexpired entry of infoHash, tombstones included, the
// most recent first: what gossip carries.
func (s *Store) Entries(infoHash [20]byte) []Provider {
	now := s.now()
	s.mu.RLock()
	out := make([]Provider, 0, len(s.hashes[infoHash]))
	for _, e := range s.hashes[infoHash] {
		if !s.expired(e.p, now) {
			out = append(out, e.p)
		}
	}
	s.mu.RUnlock()
	sortByLastSeen(out)
	return out
}

// Newer returns up to limit unexpired entries of infoHash that theirs lacks or
// holds an older version of: what a push-pull reply sends back.
func (s *Store) Newer(infoHash [20]byte, theirs []Provider, limit int) []Provider {
	have := make(map[string]Provider, len(theirs))
	for _, p := range theirs {
		have[p.Addr] = s.normalize(p, s.now())
	}
	var out []Provider
	for _, p := range s.Entries(infoHash) {
		if q, ok := have[p.Addr]; !ok || wins(p, q) {
			out = append(out, p)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// InfoHashes returns the info hashes the store holds entries for.
func (s *Store) InfoHashes() [][20]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([][20]byte, 0, len(s.hashes))
	for ih := range s.hashes {
		out = append(out, ih)
	}
	return out
}

// Sweep removes expired entries and returns how many went.
func (s *Store) Sweep() int {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for ih, m := range s.hashes {
		for addr, e := range m {
			if s.expired(e.p, now) {
				s.remove(ih, m, addr)
				n++
			}
		}
	}
	return n
}

// Len returns the number of entries held, expired ones not yet swept included.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, m := range s.hashes {
		n += len(m)
	}
	return n
}

func sortByLastSeen(ps []Provider) {
	slices.SortFunc(ps, func(a, b Provider) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		if a.Addr < b.Addr {
			return -1
		}
		if a.Addr > b.Addr {
			return 1
		}
		return 0
	})
}
