package dht

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"net/netip"
	"time"
)

// tokens issues and checks get_peers tokens (BEP 5): a hash of the
// querier's IP, the info hash and a secret that rotates every interval. A
// token from the current or the previous secret is accepted, so one lives
// between one and two intervals (5-10 min by default).
type tokens struct {
	interval time.Duration
	cur      [16]byte
	prev     [16]byte
	rotated  time.Time
}

const tokenLen = 8

func newTokens(interval time.Duration, now time.Time) *tokens {
	t := &tokens{interval: interval, rotated: now}
	rand.Read(t.cur[:])
	rand.Read(t.prev[:])
	return t
}

func (t *tokens) rotate(now time.Time) {
	for now.Sub(t.rotated) >= t.interval {
		t.prev = t.cur
		rand.Read(t.cur[:])
		t.rotated = t.rotated.Add(t.interval)
		if now.Sub(t.rotated) >= t.interval {
			// Asleep for more than two intervals: start over.
			rand.Read(t.prev[:])
			t.rotated = now
		}
	}
}

func (t *tokens) make(secret [16]byte, ip netip.Addr, ih ID) string {
	h := sha1.New()
	h.Write(secret[:])
	b := ip.Unmap().As16()
	h.Write(b[:])
	h.Write(ih[:])
	return string(h.Sum(nil)[:tokenLen])
}

// issue returns the token for ip asking about ih.
func (t *tokens) issue(ip netip.Addr, ih ID, now time.Time) string {
	t.rotate(now)
	return t.make(t.cur, ip, ih)
}

// valid reports whether tok was issued to ip for ih within the last two
// intervals.
func (t *tokens) valid(tok string, ip netip.Addr, ih ID, now time.Time) bool {
	t.rotate(now)
	if len(tok) != tokenLen {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(tok), []byte(t.make(t.cur, ip, ih))) == 1 ||
		subtle.ConstantTimeCompare([]byte(tok), []byte(t.make(t.prev, ip, ih))) == 1
}
