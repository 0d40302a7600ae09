package peerwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"btclient/bencode"
)

// Message types beyond BEP 3.
const (
	// Port carries the sender's DHT UDP port (BEP 5).
	Port ID = 9
	// Extended carries an extension message (BEP 10): one byte of extended
	// id, then a bencoded payload.
	Extended ID = 20
)

// Reserved bits of the handshake.
const (
	reservedExtByte, reservedExtBit = 5, 0x10 // BEP 10 extension protocol
	reservedDHTByte, reservedDHTBit = 7, 0x01 // BEP 5 DHT
)

// SetExtensions marks the extension protocol as supported.
func (h *Handshake) SetExtensions() { h.Reserved[reservedExtByte] |= reservedExtBit }

// SupportsExtensions reports the extension protocol bit.
func (h Handshake) SupportsExtensions() bool {
	return h.Reserved[reservedExtByte]&reservedExtBit != 0
}

// SetDHT marks a DHT node as running beside this peer.
func (h *Handshake) SetDHT() { h.Reserved[reservedDHTByte] |= reservedDHTBit }

// SupportsDHT reports the DHT bit.
func (h Handshake) SupportsDHT() bool { return h.Reserved[reservedDHTByte]&reservedDHTBit != 0 }

// PortMessage returns a port message for a DHT node on udpPort.
func PortMessage(udpPort uint16) Message {
	return Message{ID: Port, Payload: binary.BigEndian.AppendUint16(nil, udpPort)}
}

// ParsePort returns the UDP port of a port message's payload.
func ParsePort(payload []byte) (uint16, error) {
	if len(payload) != 2 {
		return 0, fmt.Errorf("%w: port of %d bytes", ErrMessage, len(payload))
	}
	return binary.BigEndian.Uint16(payload), nil
}

// ExtendedMessage returns an extended message with the given extended id
// (0 for the handshake, else the id the receiver assigned) and payload.
func ExtendedMessage(extID byte, payload []byte) Message {
	return Message{ID: Extended, Payload: append([]byte{extID}, payload...)}
}

// SplitExtended returns an extended message's extended id and payload.
func SplitExtended(payload []byte) (extID byte, body []byte, err error) {
	if len(payload) == 0 {
		return 0, nil, fmt.Errorf("%w: empty extended message", ErrMessage)
	}
	return payload[0], payload[1:], nil
}

// Extension names as they appear in the handshake's m dictionary.
const (
	ExtMetadata = "ut_metadata"
	ExtPEX      = "ut_pex"
)

// Bounds on what a peer's extension handshake may claim.
const (
	maxExtensions = 64  // entries of m
	maxClientName = 128 // bytes of v kept
)

// ExtHandshake is the BEP 10 handshake, extended message 0.
type ExtHandshake struct {
	// M maps extension names to the ids the sender wants to receive them
	// under; 0 means disabled.
	M map[string]int
	// V names the client ("btclient 0.2").
	V string
	// Port is the sender's listening TCP port (p), 0 if not given.
	Port int
	// ReqQ is how many requests the sender queues (reqq), 0 if not given.
	ReqQ int
	// MetadataSize is the size of the info dictionary (BEP 9), 0 if unknown.
	MetadataSize int64
	// YourIP is the address the sender sees for the receiver, if given.
	YourIP netip.Addr
}

type extHandshakeWire struct {
	M            map[string]int `bencode:"m"`
	V            string         `bencode:"v,omitempty"`
	P            int64          `bencode:"p,omitempty"`
	ReqQ         int64          `bencode:"reqq,omitempty"`
	MetadataSize int64          `bencode:"metadata_size,omitempty"`
	YourIP       string         `bencode:"yourip,omitempty"`
}

// Marshal returns the bencoded handshake.
func (h ExtHandshake) Marshal() []byte {
	w := extHandshakeWire{M: h.M, V: h.V, P: int64(h.Port), ReqQ: int64(h.ReqQ), MetadataSize: h.MetadataSize}
	if w.M == nil {
		w.M = map[string]int{}
	}
	if h.YourIP.IsValid() {
		w.YourIP = string(h.YourIP.Unmap().AsSlice())
	}
	b, err := bencode.Marshal(w)
	if err != nil {
		panic(fmt.Sprintf("peerwire: encode extension handshake: %v", err)) // only our own types
	}
	return b
}

// ErrExtension reports an extension message that does not fit its type.
var ErrExtension = errors.New("peerwire: malformed extension message")

// ParseExtHandshake decodes a peer's extension handshake. Out-of-range
// values are dropped rather than trusted: a negative port or queue, an
// id beyond 255, an over-long client name.
func ParseExtHandshake(b []byte) (ExtHandshake, error) {
	var w extHandshakeWire
	if err := bencode.Unmarshal(b, &w); err != nil {
		return ExtHandshake{}, fmt.Errorf("%w: handshake: %v", ErrExtension, err)
	}
	if len(w.M) > maxExtensions {
		return ExtHandshake{}, fmt.Errorf("%w: handshake names %d extensions", ErrExtension, len(w.M))
	}
	h := ExtHandshake{M: make(map[string]int, len(w.M))}
	for name, id := range w.M {
		if id > 0 && id <= 255 {
			h.M[name] = id
		}
	}
	if len(w.V) > maxClientName {
		w.V = w.V[:maxClientName]
	}
	h.V = w.V
	if w.P > 0 && w.P <= 65535 {
		h.Port = int(w.P)
	}
	if w.ReqQ > 0 {
		h.ReqQ = int(min(w.ReqQ, 1<<20))
	}
	if w.MetadataSize > 0 {
		h.MetadataSize = w.MetadataSize
	}
	if ip, ok := netip.AddrFromSlice([]byte(w.YourIP)); ok {
		h.YourIP = ip.Unmap()
	}
	return h, nil
}
