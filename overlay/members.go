package overlay

import (
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// memberState is what this node believes about another overlay node.
type memberState int

const (
	// unverified: learned from a message, not yet answered a probe of ours.
	unverified memberState = iota
	// alive: answered our last request (at most DeadAfter-1 failures since).
	alive
	// dead: failed DeadAfter requests in a row. Kept for a quarantine so other
	// nodes' stale lists do not bring it back; bootstrap nodes stay and are
	// retried.
	dead
)

type member struct {
	state     memberState
	bootstrap bool
	fails     int
	nextProbe time.Time // for unverified and suspect nodes
	probing   bool
	suspect   bool // alive, but a request of ours timed out: probe it soon
	deadAt    time.Time
	recheck   bool // dead, but heard of again: probe it once more
}

// members is the set of overlay nodes this node knows, bounded in size.
// Only nodes that answered a request of ours are live.
type members struct {
	self       string
	max        int
	deadAfter  int
	retry      time.Duration
	quarantine time.Duration
	now        func() time.Time

	mu  sync.Mutex
	m   map[string]*member
	ver uint64 // changes whenever the live set does
}

func newMembers(self string, c Config) *members {
	ms := &members{
		self: self, max: c.MaxNodes, deadAfter: c.DeadAfter, retry: c.SuspectRetry,
		quarantine: c.DeadQuarantine, now: time.Now, m: make(map[string]*member),
	}
	for _, b := range c.Bootstrap {
		if b != self && validNodeAddr(b) {
			ms.m[b] = &member{bootstrap: true}
		}
	}
	return ms
}

// addBootstrap marks addrs as bootstrap nodes, adding those not yet known
// (they are probed at once). It returns how many were new.
func (ms *members) addBootstrap(addrs ...string) int {
	now := ms.now()
	ms.mu.Lock()
	defer ms.mu.Unlock()
	n := 0
	for _, a := range addrs {
		if a == ms.self || !validNodeAddr(a) {
			continue
		}
		if m := ms.m[a]; m != nil {
			m.bootstrap = true
			continue
		}
		if len(ms.m) >= ms.max && !ms.evictLocked(now) {
			break
		}
		ms.m[a] = &member{bootstrap: true, nextProbe: now}
		n++
	}
	return n
}

// validNodeAddr accepts host:port with a non-empty host and a real port.
func validNodeAddr(a string) bool {
	if len(a) > 300 {
		return false
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return false
	}
	p, err := strconv.Atoi(port)
	return err == nil && p > 0 && p <= 65535
}

// learn records addresses heard of in a message; new ones start unverified
// and are probed soon, dead ones are probed once more (at most every
// SuspectRetry; they stay dead unless they answer). It returns how many were
// new.
func (ms *members) learn(addrs ...string) int {
	now := ms.now()
	ms.mu.Lock()
	defer ms.mu.Unlock()
	n := 0
	for _, a := range addrs {
		if m := ms.m[a]; m != nil {
			if m.state == dead && !m.probing && !now.Before(m.nextProbe) {
				m.recheck = true // probed once more; only an answer revives it
			}
			continue
		}
		if a == "" || a == ms.self || !validNodeAddr(a) {
			continue
		}
		if len(ms.m) >= ms.max && !ms.evictLocked(now) {
			break
		}
		ms.m[a] = &member{nextProbe: now}
		n++
	}
	return n
}

// evictLocked makes room by dropping a dead node that is not a bootstrap one.
func (ms *members) evictLocked(now time.Time) bool {
	for a, m := range ms.m {
		if m.state == dead && !m.bootstrap {
			delete(ms.m, a)
			return true
		}
	}
	return false
}

// ok records that addr answered a request of ours: it is alive. It returns
// true when that is news (it was not alive before).
func (ms *members) ok(addr string) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.m[addr]
	if m == nil {
		if addr == ms.self || len(ms.m) >= ms.max || !validNodeAddr(addr) {
			return false
		}
		m = &member{}
		ms.m[addr] = m
	}
	news := m.state != alive
	m.state, m.fails, m.probing, m.recheck, m.suspect = alive, 0, false, false, false
	if news {
		ms.ver++
	}
	return news
}

// fail records that a request to addr failed. It returns true when addr just
// died.
func (ms *members) fail(addr string) bool {
	now := ms.now()
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.m[addr]
	if m == nil {
		return false
	}
	m.probing, m.suspect = false, false
	if m.state == dead {
		m.deadAt, m.recheck = now, false
		m.nextProbe = now.Add(ms.retry)
		return false
	}
	m.fails++
	m.nextProbe = now.Add(ms.retry)
	if m.fails < ms.deadAfter {
		return false
	}
	wasAlive := m.state == alive
	m.state, m.deadAt = dead, now
	if wasAlive {
		ms.ver++
	}
	return wasAlive
}

// suspect has addr probed soon (at the next fast round), without counting
// a failure: a request of ours to it timed out.
func (ms *members) suspect(addr string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if m := ms.m[addr]; m != nil && m.state == alive && !m.suspect {
		m.suspect, m.nextProbe = true, ms.now()
	}
}

// toProbe returns the nodes to ping now and marks them in flight. A full
// round takes every live and unverified node and the dead bootstrap nodes;
// between rounds only new and suspect nodes whose time has come.
func (ms *members) toProbe(full bool) []string {
	now := ms.now()
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var out []string
	for a, m := range ms.m {
		if m.probing {
			continue
		}
		var due bool
		switch m.state {
		case dead:
			due = full && m.bootstrap || m.recheck && !now.Before(m.nextProbe)
			if !m.bootstrap && now.Sub(m.deadAt) > ms.quarantine {
				delete(ms.m, a)
			}
		case unverified:
			due = full || !now.Before(m.nextProbe)
		case alive:
			due = full || ((m.fails > 0 || m.suspect) && !now.Before(m.nextProbe))
		}
		if due {
			m.probing = true
			out = append(out, a)
		}
	}
	return out
}

// isLive reports whether addr is alive in this node's view.
func (ms *members) isLive(addr string) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.m[addr]
	return m != nil && m.state == alive
}

// version changes whenever the live set does.
func (ms *members) version() uint64 {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.ver
}

// live returns the nodes currently believed alive, sorted.
func (ms *members) live() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var out []string
	for a, m := range ms.m {
		if m.state == alive {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// sample returns up to k random live nodes not in exclude.
func (ms *members) sample(k int, exclude ...string) []string {
	all := ms.live()
	all = slices.DeleteFunc(all, func(a string) bool { return slices.Contains(exclude, a) })
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	if len(all) > k {
		all = all[:k]
	}
	return all
}

// bootstraps returns the bootstrap nodes that are not dead.
func (ms *members) bootstraps() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var out []string
	for a, m := range ms.m {
		if m.bootstrap && m.state != dead {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}
