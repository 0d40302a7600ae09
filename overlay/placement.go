package overlay

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"sort"
)

// Placement: every live node (and this one) sits on a ring of 64-bit
// positions, the first 8 bytes of SHA-1 of its overlay address; a key sits
// at its own first 8 bytes. A key's owners are the Replicas nodes at or
// after it, going round: consistent hashing, so a node joining or leaving
// moves only the keys next to it.

type ring struct {
	pos   []uint64
	addrs []string
	view  string // a hash of addrs: equal views, equal rings
}

func nodePos(addr string) uint64 {
	h := sha1.Sum([]byte(addr))
	return binary.BigEndian.Uint64(h[:8])
}

func keyPos(key [20]byte) uint64 { return binary.BigEndian.Uint64(key[:8]) }

// newRing places addrs (duplicates ignored) on a ring.
func newRing(addrs []string) *ring {
	addrs = slices.Clone(addrs)
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	r := &ring{pos: make([]uint64, len(addrs)), addrs: addrs}
	for i, a := range addrs {
		r.pos[i] = nodePos(a)
	}
	sort.Sort(byPos{r})
	h := sha1.New()
	for _, a := range addrs {
		h.Write([]byte(a))
		h.Write([]byte{'\n'})
	}
	r.view = hex.EncodeToString(h.Sum(nil)[:8])
	return r
}

type byPos struct{ r *ring }

func (b byPos) Len() int { return len(b.r.pos) }
func (b byPos) Less(i, j int) bool {
	if b.r.pos[i] != b.r.pos[j] {
		return b.r.pos[i] < b.r.pos[j]
	}
	return b.r.addrs[i] < b.r.addrs[j]
}
func (b byPos) Swap(i, j int) {
	b.r.pos[i], b.r.pos[j] = b.r.pos[j], b.r.pos[i]
	b.r.addrs[i], b.r.addrs[j] = b.r.addrs[j], b.r.addrs[i]
}

// first is the index of key's first owner.
func (r *ring) first(key [20]byte) int {
	p := keyPos(key)
	return sort.Search(len(r.pos), func(i int) bool { return r.pos[i] >= p })
}

// owners returns the k nodes that own key (all of them when there are fewer).
func (r *ring) owners(key [20]byte, k int) []string {
	out := make([]string, 0, min(k, len(r.addrs)))
	r.eachOwner(key, k, func(addr string) { out = append(out, addr) })
	return out
}

// eachOwner calls f with each of key's k owners, without allocating.
func (r *ring) eachOwner(key [20]byte, k int, f func(addr string)) {
	n := len(r.addrs)
	i := r.first(key)
	for j := range min(k, n) {
		f(r.addrs[(i+j)%n])
	}
}

// owns reports whether addr is among key's k owners, without allocating:
// a sync asks it of every record the node publishes.
func (r *ring) owns(addr string, key [20]byte, k int) bool {
	n := len(r.addrs)
	i := r.first(key)
	for j := range min(k, n) {
		if r.addrs[(i+j)%n] == addr {
			return true
		}
	}
	return false
}
