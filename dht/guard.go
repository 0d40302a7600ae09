package dht

import (
	"net/netip"
	"sync"
	"time"
)

// guard holds what the node remembers per source (see sourceKey): a token
// bucket of queries, a token bucket of junk (malformed packets, responses
// to nothing we asked, forged tokens) whose exhaustion blocks the source
// for a while, and an amplification budget: every packet received from a
// source earns Factor times its size in credit (capped at Burst), every
// packet sent to it because of what it sent (a reply, a verifying ping)
// spends its size, and nothing is sent without the credit. So over any
// interval the bytes sent to an address are at most Factor times the bytes
// received from it, plus Burst.
type guard struct {
	queryRate, queryBurst float64
	junkRate, junkBurst   float64
	blockFor              time.Duration
	factor, burst         float64
	maxSources            int

	mu      sync.Mutex
	global  tokenBucket
	grate   float64
	gburst  float64
	sources map[netip.AddrPort]*source
}

type source struct {
	queries tokenBucket
	junk    tokenBucket
	credit  float64
	blocked time.Time // until
	seen    time.Time
}

// tokenBucket holds tokens refilled at a rate up to a burst.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

func (b *tokenBucket) take(rate, burst float64, now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func newGuard(c *Config) *guard {
	return &guard{
		queryRate: c.QueryRate, queryBurst: float64(c.QueryBurst),
		junkRate: c.JunkRate, junkBurst: float64(c.JunkBurst),
		blockFor: c.BlockDuration,
		factor:   c.AmplificationFactor, burst: float64(c.AmplificationBurst),
		maxSources: c.MaxSources,
		grate:      c.GlobalQueryRate, gburst: float64(c.GlobalQueryBurst),
		sources: make(map[netip.AddrPort]*source),
	}
}

// get returns from's state, making room when the map is full; g.mu is held.
func (g *guard) get(from netip.AddrPort, now time.Time) *source {
	k := sourceKey(from)
	s := g.sources[k]
	if s == nil {
		if len(g.sources) >= g.maxSources {
			g.forget(now)
		}
		s = &source{}
		g.sources[k] = s
	}
	s.seen = now
	return s
}

// forget drops sources idle for a while and not blocked, then, if the map
// is still full, half of it (spoofed sources churn it; per-source state is
// then lost, which the global query limit backs up).
func (g *guard) forget(now time.Time) {
	for k, s := range g.sources {
		if now.Sub(s.seen) > 10*time.Second && now.After(s.blocked) {
			delete(g.sources, k)
		}
	}
	for k := range g.sources {
		if len(g.sources) < g.maxSources/2 {
			break
		}
		delete(g.sources, k)
	}
}

// received accounts a packet of n bytes from from and reports whether the
// source is blocked (then the packet is dropped unread).
func (g *guard) received(from netip.AddrPort, n int, now time.Time) (blocked bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.get(from, now)
	if now.Before(s.blocked) {
		return true
	}
	s.credit = min(g.burst, s.credit+g.factor*float64(n))
	return false
}

// allowQuery takes a query token from the source and from the global bucket.
func (g *guard) allowQuery(from netip.AddrPort, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.get(from, now).queries.take(g.queryRate, g.queryBurst, now) {
		return false
	}
	return g.global.take(g.grate, g.gburst, now)
}

// junk counts one junk packet from the source and reports whether that
// got it blocked.
func (g *guard) junk(from netip.AddrPort, now time.Time) (blocked bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.get(from, now)
	if s.junk.take(g.junkRate, g.junkBurst, now) {
		return false
	}
	s.blocked = now.Add(g.blockFor)
	return true
}

// budget returns the bytes that may still be sent to the address.
func (g *guard) budget(to netip.AddrPort, now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return int(g.get(to, now).credit)
}

// spend takes n bytes of credit for a packet to the address; false means
// it must not be sent.
func (g *guard) spend(to netip.AddrPort, n int, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.get(to, now)
	if s.credit < float64(n) {
		return false
	}
	s.credit -= float64(n)
	return true
}

// size returns how many sources are remembered.
func (g *guard) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sources)
}
