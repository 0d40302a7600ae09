package peerwire

import (
	"errors"
	"math/bits"
)

// ErrBitfield reports a bitfield of the wrong length or with spare bits set.
var ErrBitfield = errors.New("peerwire: malformed bitfield")

// Bitfield is one bit per piece, the high bit of the first byte being piece 0.
type Bitfield []byte

// NewBitfield returns an empty bitfield for n pieces.
func NewBitfield(n int) Bitfield { return make(Bitfield, (n+7)/8) }

// ParseBitfield checks that b is a bitfield for n pieces: the right length and
// no spare bits set. It returns a copy.
func ParseBitfield(b []byte, n int) (Bitfield, error) {
	if len(b) != (n+7)/8 {
		return nil, ErrBitfield
	}
	if n%8 != 0 && b[len(b)-1]&(0xff>>(n%8)) != 0 {
		return nil, ErrBitfield
	}
	return append(Bitfield(nil), b...), nil
}

// Has reports whether piece i is set; out-of-range pieces are not.
func (b Bitfield) Has(i int) bool {
	if i < 0 || i/8 >= len(b) {
		return false
	}
	return b[i/8]&(0x80>>(i%8)) != 0
}

// Set marks piece i.
func (b Bitfield) Set(i int) { b[i/8] |= 0x80 >> (i % 8) }

// Clear unmarks piece i.
func (b Bitfield) Clear(i int) { b[i/8] &^= 0x80 >> (i % 8) }

// Count returns how many pieces are set.
func (b Bitfield) Count() int {
	n := 0
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return n
}
