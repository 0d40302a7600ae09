package overlay

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// StoreLimits are the Store's rules: lifetime, clock skew and caps. Caps are
// in bytes (a record costs its kind, id and value plus a fixed overhead) so
// they follow what the node can hold, not a count of torrents; none of them
// ever evicts a record to make room, so no origin can push out another's.
type StoreLimits struct {
	TTL             time.Duration // a record lives at most this long past its last renewal
	MaxClockSkew    time.Duration // Seen later than now+skew becomes now
	MaxBytes        int64         // all records
	MaxOriginBytes  int64         // one origin's records
	MaxValueBytes   int           // one record's value
	MaxPerKey       int           // records under one (kind, key), all origins
	MaxPerOriginKey int           // records one origin may hold under one (kind, key)
}

// limitsFrom takes the Store's rules from a node Config.
func limitsFrom(c Config) StoreLimits {
	return StoreLimits{
		TTL:             c.ProviderTTL,
		MaxClockSkew:    c.MaxClockSkew,
		MaxBytes:        c.MaxStoreBytes,
		MaxOriginBytes:  c.MaxOriginBytes,
		MaxValueBytes:   c.MaxValueBytes,
		MaxPerKey:       c.MaxRecordsPerKey,
		MaxPerOriginKey: c.MaxRecordsPerOriginKey,
	}
}

// Store keeps the records this node holds as an owner, per origin: the
// overlay node that published them (the empty origin is this node's own
// local use, which no per-origin cap limits). Within an origin the newest
// write of an ID wins; readers merge the origins by last-writer-wins. It
// knows nothing of the network.
type Store struct {
	lim StoreLimits
	now func() time.Time

	mu      sync.RWMutex
	recs    map[storeKey]*stored
	byKey   map[kindKey][]*stored // every origin's records of a key
	origins map[string]*originSet
	bytes   int64
}

type kindKey struct {
	kind string
	key  [20]byte
}

type storeKey struct {
	origin, kind, id string
	key              [20]byte
}

type originSet struct {
	list  []*stored // the origin's records, each knowing its index here
	bytes int64
	gen   uint64 // sync generation (see BeginSync)
	full  bool   // a record was refused for this origin's caps since the last BeginSync
}

type stored struct {
	r      Record
	origin string
	gen    uint64
	at     int // index in its origin's list
}

// NewStore returns an empty store with the given rules.
func NewStore(lim StoreLimits) *Store {
	return &Store{
		lim:     lim,
		now:     time.Now,
		recs:    make(map[storeKey]*stored),
		byKey:   make(map[kindKey][]*stored),
		origins: make(map[string]*originSet),
	}
}

// normalize clamps a Seen from the future to now, cuts it to the wire's
// millisecond precision and bounds Expires to now+TTL (a zero Expires means
// Seen+TTL).
func (s *Store) normalize(r Record, now time.Time) Record {
	if r.Seen.After(now.Add(s.lim.MaxClockSkew)) {
		r.Seen = now
	}
	r.Seen = time.UnixMilli(r.Seen.UnixMilli())
	if r.Expires.IsZero() {
		r.Expires = r.Seen.Add(s.lim.TTL)
	}
	if limit := now.Add(s.lim.TTL); r.Expires.After(limit) {
		r.Expires = limit
	}
	r.Expires = time.UnixMilli(r.Expires.UnixMilli())
	return r
}

func expired(r Record, now time.Time) bool { return !now.Before(r.Expires) }

// Put applies records received from origin and returns those that changed
// the store. Invalid and expired records, and new records beyond a cap, are
// ignored.
func (s *Store) Put(origin string, rs []Record) []Record {
	now := s.now()
	var changed []Record
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		if r.validate(s.lim.MaxValueBytes) != nil {
			continue
		}
		r = s.normalize(r, now)
		r.Origin = "" // what a sender claims; the holder knows the origin
		if expired(r, now) {
			continue
		}
		if s.put(origin, r, now) {
			changed = append(changed, r)
		}
	}
	return changed
}

// originCount returns how many records origin holds under kk; s.mu is held.
func (s *Store) originCount(origin string, kk kindKey) int {
	n := 0
	for _, e := range s.byKey[kk] {
		if e.origin == origin {
			n++
		}
	}
	return n
}

// put stores one normalized record; s.mu is held.
func (s *Store) put(origin string, r Record, now time.Time) bool {
	kk := kindKey{r.Kind, r.Key}
	sk := storeKey{origin, r.Kind, r.ID, r.Key}
	os := s.origins[origin]
	if old := s.recs[sk]; old != nil {
		old.gen = os.gen
		switch {
		case !expired(old.r, now) && sameContent(old.r, r) && old.r.Seen.Equal(r.Seen):
			if r.Expires.After(old.r.Expires) {
				old.r.Expires = r.Expires
			}
			return false
		case !expired(old.r, now) && !recordWins(r, old.r):
			return false
		}
		grow := r.size() - old.r.size()
		if origin != "" && os.bytes+grow > s.lim.MaxOriginBytes || s.bytes+grow > s.lim.MaxBytes {
			return false
		}
		os.bytes += grow
		s.bytes += grow
		old.r = r
		return true
	}
	size := r.size()
	refuse := s.bytes+size > s.lim.MaxBytes || len(s.byKey[kk]) >= s.lim.MaxPerKey
	if origin != "" {
		refuse = refuse || size > s.lim.MaxOriginBytes ||
			os != nil && (os.bytes+size > s.lim.MaxOriginBytes || s.originCount(origin, kk) >= s.lim.MaxPerOriginKey)
	}
	if refuse && origin == "" {
		return false
	}
	if os == nil {
		os = &originSet{}
		s.origins[origin] = os
	}
	if refuse {
		os.full = true
		return false
	}
	e := &stored{r: r, origin: origin, gen: os.gen, at: len(os.list)}
	s.recs[sk] = e
	s.byKey[kk] = append(s.byKey[kk], e)
	os.list = append(os.list, e)
	os.bytes += size
	s.bytes += size
	return true
}

// remove deletes one record; s.mu is held.
func (s *Store) remove(e *stored) {
	r := e.r
	delete(s.recs, storeKey{e.origin, r.Kind, r.ID, r.Key})
	kk := kindKey{r.Kind, r.Key}
	l := s.byKey[kk]
	if i := slices.Index(l, e); i >= 0 {
		l[i] = l[len(l)-1]
		l[len(l)-1] = nil
		l = l[:len(l)-1]
	}
	if len(l) == 0 {
		delete(s.byKey, kk)
	} else {
		s.byKey[kk] = l
	}
	os := s.origins[e.origin]
	last := os.list[len(os.list)-1]
	os.list[e.at] = last
	last.at = e.at
	os.list[len(os.list)-1] = nil
	os.list = os.list[:len(os.list)-1]
	os.bytes -= r.size()
	s.bytes -= r.size()
	if len(os.list) == 0 && os.gen == 0 && !os.full {
		delete(s.origins, e.origin)
	}
}

// Query returns up to limit live records of (kind, key), each with the
// origin it came from: per ID the newest of every origin's, tombstones and
// expired records left out, the origins taking turns (see mergeRecords).
// limit <= 0 means all.
func (s *Store) Query(kind string, key [20]byte, limit int) []Record {
	return mergeRecords(limit, s.records(kind, key))
}

// records returns every unexpired record of (kind, key), all origins.
func (s *Store) records(kind string, key [20]byte) []Record {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Record
	for _, e := range s.byKey[kindKey{kind, key}] {
		if !expired(e.r, now) {
			r := e.r
			r.Origin = e.origin
			out = append(out, r)
		}
	}
	return out
}

// mergeRecords merges record lists by ID (last-writer-wins), drops
// tombstones and returns up to limit: the origins take turns, each its most
// recently seen first, so that no origin's records crowd out the others'
// in a bounded answer, however many or fresh they are.
func mergeRecords(limit int, lists ...[]Record) []Record {
	best := make(map[string]Record)
	for _, l := range lists {
		for _, r := range l {
			if old, ok := best[r.ID]; !ok || recordWins(r, old) {
				best[r.ID] = r
			}
		}
	}
	byOrigin := map[string][]Record{}
	for _, r := range best {
		if !r.Stopped {
			byOrigin[r.Origin] = append(byOrigin[r.Origin], r)
		}
	}
	newestFirst := func(a, b Record) int {
		if c := b.Seen.Compare(a.Seen); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	}
	origins := make([]string, 0, len(byOrigin))
	for o, rs := range byOrigin {
		slices.SortFunc(rs, newestFirst)
		origins = append(origins, o)
	}
	// Origins in the order of their newest record: the freshest first.
	slices.SortFunc(origins, func(a, b string) int {
		if c := newestFirst(byOrigin[a][0], byOrigin[b][0]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	out := make([]Record, 0, len(best))
	for round := 0; len(origins) > 0; round++ {
		kept := origins[:0]
		for _, o := range origins {
			if round < len(byOrigin[o]) {
				out = append(out, byOrigin[o][round])
				kept = append(kept, o)
			}
		}
		origins = kept
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Digest summarises origin's unexpired records: what an origin's ping
// compares with what it holds for this node.
func (s *Store) Digest(origin string) digest {
	now := s.now()
	var d digest
	s.mu.RLock()
	defer s.mu.RUnlock()
	if os := s.origins[origin]; os != nil {
		for _, e := range os.list {
			if !expired(e.r, now) {
				d.add(e.r)
			}
		}
	}
	return d
}

// Renew extends origin's unexpired records, but those named in except, to
// live until exp (at most now+TTL): the lease its ping grants when the
// digests agree. The records in except are the origin's dying ones, which
// keep their own expiry.
func (s *Store) Renew(origin string, exp time.Time, except []Record) {
	now := s.now()
	if limit := now.Add(s.lim.TTL); exp.After(limit) {
		exp = limit
	}
	skip := make(map[recKey]bool, len(except))
	for _, r := range except {
		skip[recKey{r.Kind, r.Key, r.ID}] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if os := s.origins[origin]; os != nil {
		for _, e := range os.list {
			if !expired(e.r, now) && exp.After(e.r.Expires) && !skip[recKey{e.r.Kind, e.r.Key, e.r.ID}] {
				e.r.Expires = exp
			}
		}
	}
}

// BeginSync starts replacing origin's records: records Put from now on are
// marked, and EndSync removes the unmarked ones.
func (s *Store) BeginSync(origin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	os := s.origins[origin]
	if os == nil {
		os = &originSet{}
		s.origins[origin] = os
	}
	os.gen++
	os.full = false
}

// OriginFull reports whether origin sent more than its caps let this store
// hold since its last sync began: its digest cannot match, and syncing it
// again would only resend what is refused.
func (s *Store) OriginFull(origin string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	os := s.origins[origin]
	return os != nil && os.full
}

// EndSync removes origin's records not Put since BeginSync.
func (s *Store) EndSync(origin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	os := s.origins[origin]
	if os == nil {
		return
	}
	gen := os.gen
	os.gen = 0
	for _, e := range slices.Clone(os.list) {
		if e.gen != gen {
			s.remove(e)
		}
	}
	for _, e := range os.list {
		e.gen = 0
	}
	if len(os.list) == 0 && !os.full {
		delete(s.origins, origin)
	}
}

// ExpireOrigin makes origin's records (a node found dead) expire by the
// given time at the latest and returns how many it holds. They are not
// dropped at once: a node declared dead by mistake (a busy box that missed
// its pings) renews them with its next ping, as the digest still agrees,
// and loses nothing; a dead one's go by then.
func (s *Store) ExpireOrigin(origin string, by time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	os := s.origins[origin]
	if os == nil {
		return 0
	}
	for _, e := range os.list {
		if e.r.Expires.After(by) {
			e.r.Expires = by
		}
	}
	return len(os.list)
}

// OriginLen returns how many records origin holds here, expired ones not
// yet swept included.
func (s *Store) OriginLen(origin string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if os := s.origins[origin]; os != nil {
		return len(os.list)
	}
	return 0
}

// Sweep removes expired records and returns how many went.
func (s *Store) Sweep() int {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.recs {
		if expired(e.r, now) {
			s.remove(e)
			n++
		}
	}
	return n
}

// Len returns the number of records held, expired ones not yet swept
// included.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.recs)
}

// Bytes returns what the held records cost in the byte caps.
func (s *Store) Bytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bytes
}

// Merge stores providers of infoHash as records of origin and returns the
// providers that changed the store (the provider kind of Put).
func (s *Store) Merge(infoHash [20]byte, ps []Provider, origin string) []Provider {
	rs := make([]Record, 0, len(ps))
	for _, p := range ps {
		if p.validate() == nil {
			rs = append(rs, providerRecord(infoHash, p))
		}
	}
	var out []Provider
	for _, r := range s.Put(origin, rs) {
		if p, ok := recordProvider(r); ok {
			out = append(out, p)
		}
	}
	return out
}

// Lookup returns up to limit live providers of infoHash (never stopped or
// expired ones), most recently seen first. limit <= 0 means all.
func (s *Store) Lookup(infoHash [20]byte, limit int) []Provider {
	return providersOf(s.Query(KindProvider, infoHash, limit))
}

// Entries returns every unexpired provider of infoHash, tombstones
// included (the newest per address), the most recent first.
func (s *Store) Entries(infoHash [20]byte) []Provider {
	best := make(map[string]Record)
	for _, r := range s.records(KindProvider, infoHash) {
		if old, ok := best[r.ID]; !ok || recordWins(r, old) {
			best[r.ID] = r
		}
	}
	var out []Provider
	for _, r := range best {
		if p, ok := recordProvider(r); ok {
			out = append(out, p)
		}
	}
	sortByLastSeen(out)
	return out
}

// providersOf turns provider records into Providers, skipping others.
func providersOf(rs []Record) []Provider {
	out := make([]Provider, 0, len(rs))
	for _, r := range rs {
		if p, ok := recordProvider(r); ok {
			out = append(out, p)
		}
	}
	return out
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
