package peerwire

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Protocol is the protocol string of a BEP 3 handshake.
const Protocol = "BitTorrent protocol"

// HandshakeLen is the size of a handshake on the wire.
const HandshakeLen = 1 + len(Protocol) + 8 + 20 + 20

// PeerIDPrefix starts every peer id btclient generates (Azureus style).
const PeerIDPrefix = "-JC0001-"

// ErrProtocol reports a handshake that does not speak BitTorrent.
var ErrProtocol = errors.New("peerwire: not a BitTorrent handshake")

// Handshake is the first message each side sends.
type Handshake struct {
	Reserved [8]byte
	InfoHash [20]byte
	PeerID   [20]byte
}

// MarshalBinary returns the 68 bytes of h.
func (h Handshake) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, HandshakeLen)
	b = append(b, byte(len(Protocol)))
	b = append(b, Protocol...)
	b = append(b, h.Reserved[:]...)
	b = append(b, h.InfoHash[:]...)
	b = append(b, h.PeerID[:]...)
	return b, nil
}

// WriteHandshake writes h to w.
func WriteHandshake(w io.Writer, h Handshake) error {
	b, _ := h.MarshalBinary()
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("peerwire: write handshake: %w", err)
	}
	return nil
}

// ReadHandshake reads a handshake from r and rejects any other protocol.
func ReadHandshake(r io.Reader) (Handshake, error) {
	var h Handshake
	var b [HandshakeLen]byte
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return h, fmt.Errorf("peerwire: read handshake: %w", err)
	}
	if int(b[0]) != len(Protocol) {
		return h, ErrProtocol
	}
	if _, err := io.ReadFull(r, b[1:]); err != nil {
		return h, fmt.Errorf("peerwire: read handshake: %w", err)
	}
	if string(b[1:1+len(Protocol)]) != Protocol {
		return h, ErrProtocol
	}
	rest := b[1+len(Protocol):]
	copy(h.Reserved[:], rest[:8])
	copy(h.InfoHash[:], rest[8:28])
	copy(h.PeerID[:], rest[28:48])
	return h, nil
}

// NewPeerID returns PeerIDPrefix followed by 12 random hex characters.
func NewPeerID() ([20]byte, error) {
	var id [20]byte
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		return id, fmt.Errorf("peerwire: peer id: %w", err)
	}
	copy(id[:], PeerIDPrefix)
	hex.Encode(id[len(PeerIDPrefix):], r[:])
	return id, nil
}
