package peerwire

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"btclient/bencode"
)

// PEX flags of an added peer (BEP 11 added.f).
const (
	PEXEncryption = 0x01
	PEXSeed       = 0x02
	PEXUTP        = 0x04
	PEXHolepunch  = 0x08
	PEXReachable  = 0x10
)

// PEXPeer is one peer of a PEX message.
type PEXPeer struct {
	Addr  netip.AddrPort
	Flags byte
}

// PEX is a ut_pex message (BEP 11): peers connected since the last message
// and peers dropped since.
type PEX struct {
	Added   []PEXPeer
	Dropped []netip.AddrPort
}

type pexWire struct {
	Added    string `bencode:"added,omitempty"`
	AddedF   string `bencode:"added.f,omitempty"`
	Added6   string `bencode:"added6,omitempty"`
	Added6F  string `bencode:"added6.f,omitempty"`
	Dropped  string `bencode:"dropped,omitempty"`
	Dropped6 string `bencode:"dropped6,omitempty"`
}

// Marshal returns the bencoded message, IPv4 and IPv6 peers in their own keys.
func (p PEX) Marshal() []byte {
	var w pexWire
	var a4, f4, a6, f6, d4, d6 []byte
	for _, e := range p.Added {
		if e.Addr.Addr().Unmap().Is4() {
			a4 = appendCompact(a4, e.Addr)
			f4 = append(f4, e.Flags)
		} else {
			a6 = appendCompact(a6, e.Addr)
			f6 = append(f6, e.Flags)
		}
	}
	for _, a := range p.Dropped {
		if a.Addr().Unmap().Is4() {
			d4 = appendCompact(d4, a)
		} else {
			d6 = appendCompact(d6, a)
		}
	}
	w.Added, w.AddedF, w.Added6, w.Added6F, w.Dropped, w.Dropped6 = string(a4), string(f4), string(a6), string(f6), string(d4), string(d6)
	b, err := bencode.Marshal(w)
	if err != nil {
		panic(fmt.Sprintf("peerwire: encode ut_pex: %v", err)) // only our own types
	}
	return b
}

// appendCompact appends the compact form of a: 4 or 16 address bytes, then
// the port, big-endian.
func appendCompact(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().Unmap()
	b = append(b, ip.AsSlice()...)
	return binary.BigEndian.AppendUint16(b, a.Port())
}

// ParsePEX decodes a ut_pex message, keeping at most maxPeers added and as
// many dropped peers: a message may list more, but no more are looked at.
// Compact lists whose length is not a whole number of entries, addresses
// with port 0 and unspecified or multicast addresses are refused.
func ParsePEX(b []byte, maxPeers int) (PEX, error) {
	var w pexWire
	if err := bencode.Unmarshal(b, &w); err != nil {
		return PEX{}, fmt.Errorf("%w: ut_pex: %v", ErrExtension, err)
	}
	var p PEX
	add := func(list, flags string, size int) error {
		if len(list)%size != 0 {
			return fmt.Errorf("%w: ut_pex list of %d bytes is not made of %d-byte entries", ErrExtension, len(list), size)
		}
		for i := 0; i+size <= len(list) && len(p.Added) < maxPeers; i += size {
			a, ok := parseCompact([]byte(list[i : i+size]))
			if !ok {
				continue
			}
			var f byte
			if j := i / size; j < len(flags) {
				f = flags[j]
			}
			p.Added = append(p.Added, PEXPeer{Addr: a, Flags: f})
		}
		return nil
	}
	drop := func(list string, size int) error {
		if len(list)%size != 0 {
			return fmt.Errorf("%w: ut_pex list of %d bytes is not made of %d-byte entries", ErrExtension, len(list), size)
		}
		for i := 0; i+size <= len(list) && len(p.Dropped) < maxPeers; i += size {
			if a, ok := parseCompact([]byte(list[i : i+size])); ok {
				p.Dropped = append(p.Dropped, a)
			}
		}
		return nil
	}
	if err := add(w.Added, w.AddedF, 6); err != nil {
		return PEX{}, err
	}
	if err := add(w.Added6, w.Added6F, 18); err != nil {
		return PEX{}, err
	}
	if err := drop(w.Dropped, 6); err != nil {
		return PEX{}, err
	}
	if err := drop(w.Dropped6, 18); err != nil {
		return PEX{}, err
	}
	return p, nil
}

// parseCompact reads one compact address of 6 or 18 bytes; ok is false for
// addresses no one can dial.
func parseCompact(b []byte) (netip.AddrPort, bool) {
	ip, ok := netip.AddrFromSlice(b[:len(b)-2])
	if !ok {
		return netip.AddrPort{}, false
	}
	ip = ip.Unmap()
	port := binary.BigEndian.Uint16(b[len(b)-2:])
	if port == 0 || ip.IsUnspecified() || ip.IsMulticast() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip, port), true
}
