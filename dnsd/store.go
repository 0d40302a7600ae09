package dnsd

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Record is one address of a name, as the HTTP API shows it and as servers
// replicate it. A name has one Record per address.
type Record struct {
	Name string     `json:"name"`
	IP   netip.Addr `json:"ip"`
	// TTL is the number of seconds the record has left to live.
	TTL int64 `json:"ttl"`
	// Version orders writes of the same name and address (last writer
	// wins): Unix nanoseconds of the write at the server that took it.
	Version int64 `json:"version"`
	// Expires is when the record stops being served or, for a deletion,
	// when the deletion is forgotten.
	Expires time.Time `json:"expires"`
	// Deleted marks a tombstone: the name no longer has this address.
	Deleted bool `json:"deleted,omitempty"`
}

// errFull reports that the store holds as many records as it may.
var errFull = errors.New("record store is full")

// entry is the state of one (name, address) pair.
type entry struct {
	version int64
	expires time.Time
	deleted bool
}

// live reports whether e answers queries at now.
func (e entry) live(now time.Time) bool { return !e.deleted && now.Before(e.expires) }

// newer reports whether a should replace b: the later version wins; on a tie
// a deletion wins, then the later expiry, so every server picks the same one.
func newer(a, b entry) bool {
	if a.version != b.version {
		return a.version > b.version
	}
	if a.deleted != b.deleted {
		return a.deleted
	}
	return a.expires.After(b.expires)
}

// answer is one address with the seconds it has left.
type answer struct {
	ip  netip.Addr
	ttl uint32
}

// store holds the records and tombstones of one server. It knows nothing of
// the network; every method is safe for concurrent use and holds its lock
// only for map work.
type store struct {
	maxRecords, maxPerName int
	maxTTL, tombstoneTTL   time.Duration
	now                    func() time.Time

	mu    sync.RWMutex
	names map[string]map[netip.Addr]entry // canonical name → address → state
	count int                             // entries over all names
	clock int64                           // the highest version issued or seen
}

func newStore(cfg Config, now func() time.Time) *store {
	return &store{
		maxRecords:   cfg.MaxRecords,
		maxPerName:   cfg.MaxRecordsPerName,
		maxTTL:       cfg.MaxTTL,
		tombstoneTTL: cfg.TombstoneTTL,
		now:          now,
		names:        make(map[string]map[netip.Addr]entry),
	}
}

// nextVersion returns a version later than any issued or seen, and later
// than after. Callers hold mu.
func (s *store) nextVersion(now time.Time, after int64) int64 {
	v := max(now.UnixNano(), s.clock+1, after+1)
	s.clock = v
	return v
}

// put registers ip under name (both already validated) for ttl.
func (s *store) put(name string, ip netip.Addr, ttl time.Duration) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	old, exists := s.names[name][ip]
	if !exists {
		if err := s.makeRoom(name, now); err != nil {
			return Record{}, err
		}
	}
	e := entry{version: s.nextVersion(now, old.version), expires: now.Add(ttl)}
	s.set(name, ip, e, exists)
	return e.record(name, ip, now), nil
}

// makeRoom makes sure one more entry fits under name, sweeping expired
// entries if that helps. Callers hold mu.
func (s *store) makeRoom(name string, now time.Time) error {
	if s.count < s.maxRecords && len(s.names[name]) < s.maxPerName {
		return nil
	}
	s.sweepLocked(now)
	switch {
	case s.count >= s.maxRecords:
		return fmt.Errorf("%w (%d records)", errFull, s.maxRecords)
	case len(s.names[name]) >= s.maxPerName:
		return fmt.Errorf("%w: %s has %d addresses already", errFull, name, s.maxPerName)
	}
	return nil
}

// set stores e; exists says whether the pair was there already. Callers hold mu.
func (s *store) set(name string, ip netip.Addr, e entry, exists bool) {
	byIP := s.names[name]
	if byIP == nil {
		byIP = make(map[netip.Addr]entry)
		s.names[name] = byIP
	}
	byIP[ip] = e
	if !exists {
		s.count++
	}
}

// tombstone is the deletion of e at now with version v.
func (s *store) tombstone(e entry, v int64, now time.Time) entry {
	// Keep the deletion at least until the record would have expired, so
	// a peer that still holds the record cannot bring it back.
	return entry{version: v, deleted: true, expires: latest(e.expires, now.Add(s.tombstoneTTL))}
}

// remove deletes ip from name, or every address of name when ip is the zero
// Addr, and reports how many live records went. A deletion of one address
// that is not known here is still remembered, so the record cannot arrive
// later from a peer that has not heard of the deletion.
func (s *store) remove(name string, ip netip.Addr) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if ip.IsValid() {
		old, exists := s.names[name][ip]
		if !exists && s.makeRoom(name, now) != nil {
			return 0
		}
		if exists && old.deleted {
			return 0
		}
		s.set(name, ip, s.tombstone(old, s.nextVersion(now, old.version), now), exists)
		if old.live(now) {
			return 1
		}
		return 0
	}
	n := 0
	for ip, old := range s.names[name] {
		if old.deleted {
			continue
		}
		if old.live(now) {
			n++
		}
		s.set(name, ip, s.tombstone(old, s.nextVersion(now, old.version), now), true)
	}
	return n
}

// lookup returns the live addresses of name (canonical) and whether the name
// exists: it has a live record of any type, or a name below it does (an empty
// non-terminal, which is NODATA and not NXDOMAIN).
func (s *store) lookup(name string) (v4, v6 []answer, exists bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	for ip, e := range s.names[name] {
		if !e.live(now) {
			continue
		}
		a := answer{ip: ip, ttl: remaining(e.expires, now)}
		if ip.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	if len(v4)+len(v6) > 0 {
		return v4, v6, true
	}
	suffix := "." + name
	for n, byIP := range s.names {
		if !strings.HasSuffix(n, suffix) {
			continue
		}
		for _, e := range byIP {
			if e.live(now) {
				return nil, nil, true
			}
		}
	}
	return nil, nil, false
}

// remaining is the TTL to send for a record expiring at expires: whole
// seconds rounded up, so a fresh record with TTL 60 answers 60.
func remaining(expires, now time.Time) uint32 {
	d := expires.Sub(now)
	if d <= 0 {
		return 0
	}
	return uint32((d + time.Second - 1) / time.Second)
}

// list returns the live records, or only those of name when it is not "",
// sorted by name and address.
func (s *store) list(name string) []Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	var out []Record
	for n, byIP := range s.names {
		if name != "" && n != name {
			continue
		}
		for ip, e := range byIP {
			if e.live(now) {
				out = append(out, e.record(n, ip, now))
			}
		}
	}
	sortRecords(out)
	return out
}

// snapshot returns every record and tombstone that has not expired, for
// replication.
func (s *store) snapshot() []Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	out := make([]Record, 0, s.count)
	for n, byIP := range s.names {
		for ip, e := range byIP {
			if now.Before(e.expires) {
				out = append(out, e.record(n, ip, now))
			}
		}
	}
	return out
}

// merge folds records from a peer into the store, last writer wins, and
// reports how many changed something here. Records that are malformed,
// expired, or do not fit are skipped: a peer cannot make the store grow past
// its caps or hold a record longer than MaxTTL.
func (s *store) merge(recs []Record) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	changed := 0
	for _, r := range recs {
		name, err := CanonicalName(r.Name)
		if err != nil {
			continue
		}
		ip, err := checkRecordIP(r.IP)
		if err != nil {
			continue
		}
		limit := now.Add(s.maxTTL)
		if r.Deleted {
			limit = limit.Add(s.tombstoneTTL)
		}
		in := entry{version: r.Version, expires: earliest(r.Expires, limit), deleted: r.Deleted}
		if !now.Before(in.expires) {
			continue
		}
		old, exists := s.names[name][ip]
		if exists && !newer(in, old) {
			continue
		}
		if !exists && s.makeRoom(name, now) != nil {
			continue
		}
		s.set(name, ip, in, exists)
		s.clock = max(s.clock, in.version)
		changed++
	}
	return changed
}

// sweep forgets expired records and tombstones.
func (s *store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
}

func (s *store) sweepLocked(now time.Time) {
	for n, byIP := range s.names {
		for ip, e := range byIP {
			if !now.Before(e.expires) {
				delete(byIP, ip)
				s.count--
			}
		}
		if len(byIP) == 0 {
			delete(s.names, n)
		}
	}
}

func (e entry) record(name string, ip netip.Addr, now time.Time) Record {
	return Record{
		Name:    name,
		IP:      ip,
		TTL:     int64(remaining(e.expires, now)),
		Version: e.version,
		Expires: e.expires.UTC(),
		Deleted: e.deleted,
	}
}

func sortRecords(rs []Record) {
	slices.SortFunc(rs, func(a, b Record) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), a.IP.Compare(b.IP))
	})
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
