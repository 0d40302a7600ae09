package dht

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/bits"
)

// ID is a 160-bit node id or info hash; the DHT's distance is their XOR.
type ID [20]byte

// String returns the id in hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID reads 40 hex characters.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 40 {
		return id, fmt.Errorf("dht: id %q: want 40 hex characters", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("dht: id %q: %w", s, err)
	}
	return id, nil
}

// idFrom copies a 20-byte string into an ID; ok is false for any other length.
func idFrom(s string) (ID, bool) {
	var id ID
	if len(s) != len(id) {
		return id, false
	}
	copy(id[:], s)
	return id, true
}

// randomID returns an id from crypto/rand.
func randomID() ID {
	var id ID
	rand.Read(id[:])
	return id
}

// commonPrefixLen is the number of leading bits a and b share (160 when equal).
func commonPrefixLen(a, b ID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return len(a) * 8
}

// closer reports whether a is closer to target than b.
func closer(target, a, b ID) bool {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			return da < db
		}
	}
	return false
}

// randomIDWithPrefix returns a random id that shares exactly its first
// prefix bits with self (all 160 when prefix is 160); bucket refreshes look
// one up.
func randomIDWithPrefix(self ID, prefix int) ID {
	id := randomID()
	for i := 0; i < prefix && i < 160; i++ {
		setBit(&id, i, bit(self, i))
	}
	if prefix < 160 {
		setBit(&id, prefix, !bit(self, prefix))
	}
	return id
}

func bit(id ID, i int) bool { return id[i/8]&(0x80>>(i%8)) != 0 }

func setBit(id *ID, i int, v bool) {
	if v {
		id[i/8] |= 0x80 >> (i % 8)
	} else {
		id[i/8] &^= 0x80 >> (i % 8)
	}
}
