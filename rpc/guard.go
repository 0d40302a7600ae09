package rpc

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// hostAllowed reports whether a Host header names this server: localhost,
// an IP literal, the listen host or one of the allowed names. Anything else
// is a name some other site may have rebound to this address.
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if host == "" {
		return false
	}
	if host == "localhost" || host == "localhost." {
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.TrimSuffix(host, ".")
	if host == strings.ToLower(strings.TrimSuffix(s.cfg.ListenHost, ".")) {
		return true
	}
	for _, h := range s.cfg.AllowedHosts {
		if host == strings.ToLower(strings.TrimSuffix(h, ".")) {
			return true
		}
	}
	return false
}

// originAllowed reports whether a request's Origin, when a browser sent
// one, is the page this server serves: same scheme-less host and port as
// the Host header. A cross-site page cannot make a browser lie about it.
func originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false // "null" (a sandboxed or file: page) included
	}
	return strings.EqualFold(u.Host, r.Host)
}

// authResult is what checkAuth decided.
type authResult int

const (
	authOK authResult = iota
	authMissing
	authWrong
	authLimited
)

// checkAuth checks the Basic credentials of r. Wrong ones count against the
// client's address; once it has used up its allowance nothing is checked
// for it until the allowance refills, so guessing is slowed to the refill
// rate while other addresses, honest users among them, are served as usual.
func (s *Server) checkAuth(r *http.Request) authResult {
	if s.cfg.User == "" {
		return authOK
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return authMissing // curl asks without credentials first: no failure
	}
	ip := clientIP(r)
	if !s.fails.allowed(ip) {
		return authLimited
	}
	got := sha256.Sum256([]byte(user + "\x00" + pass))
	if subtle.ConstantTimeCompare(got[:], s.credHash[:]) == 1 {
		return authOK
	}
	s.fails.fail(ip)
	return authWrong
}

// clientIP is the address wrong passwords count against: the IPv4
// address, or the IPv6 /64 (one host's share of a network).
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a
}

// failLimiter is a token bucket of wrong passwords per client address. Its
// table is bounded: when full, the entries that have refilled completely
// are dropped, then (a flood from many addresses) the one nearest to full.
type failLimiter struct {
	burst  float64
	refill time.Duration
	max    int
	now    func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newFailLimiter(burst int, refill time.Duration) *failLimiter {
	return &failLimiter{burst: float64(burst), refill: refill, max: 4096, now: time.Now, buckets: map[netip.Addr]*bucket{}}
}

// level refills b to now and returns its tokens.
func (l *failLimiter) level(b *bucket, now time.Time) float64 {
	b.tokens = min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.refill))
	b.at = now
	return b.tokens
}

// allowed reports whether ip may have a password checked now.
func (l *failLimiter) allowed(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[ip]
	return b == nil || l.level(b, l.now()) >= 1
}

// fail counts a wrong password from ip.
func (l *failLimiter) fail(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[ip]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[ip] = b
	}
	l.level(b, now)
	b.tokens = max(0, b.tokens-1)
}

func (l *failLimiter) evict(now time.Time) {
	var fullest netip.Addr
	most := -1.0
	for ip, b := range l.buckets {
		tokens := l.level(b, now)
		if tokens >= l.burst {
			delete(l.buckets, ip)
		} else if tokens > most {
			fullest, most = ip, tokens
		}
	}
	if len(l.buckets) >= l.max {
		delete(l.buckets, fullest)
	}
}
