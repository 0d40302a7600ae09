package dht

import "net/netip"

// Address rules. The node speaks IPv4 only (BEP 5's compact forms); BEP 32's
// IPv6 entries are read past.

// usable reports whether a can be a DHT node or a peer: IPv4, a port, and
// not unspecified, multicast, broadcast or in 0.0.0.0/8.
func usable(a netip.AddrPort) bool {
	ip := a.Addr()
	if !ip.Is4() || a.Port() == 0 {
		return false
	}
	b := ip.As4()
	return b[0] != 0 && !ip.IsMulticast() && b != [4]byte{255, 255, 255, 255}
}

// isLocal reports whether ip is loopback, private (RFC 1918) or link-local:
// addresses a remote attacker cannot make us talk to, and where one /24
// holds a whole lab or Docker network.
func isLocal(ip netip.Addr) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
}

// acceptReferral reports whether a node named by from may be contacted: a
// public node cannot point us at loopback or private addresses (that would
// turn the DHT into a scanner of our own network), and no one at unusable
// ones.
func acceptReferral(from, a netip.AddrPort) bool {
	if !usable(a) {
		return false
	}
	ip, src := a.Addr(), from.Addr()
	if ip.IsLoopback() && !src.IsLoopback() {
		return false
	}
	return !isLocal(ip) || isLocal(src)
}

// sourceKey is the unit that rate limits, amplification budgets and the
// per-IP cap of the table count: the IP for public addresses; the address
// and port for local ones, since every process on one machine (or one lab
// network) shares 127.0.0.1 or a /24.
func sourceKey(a netip.AddrPort) netip.AddrPort {
	if isLocal(a.Addr()) {
		return a
	}
	return netip.AddrPortFrom(a.Addr(), 0)
}

// subnetKey returns the /24 of a public IPv4 address; ok is false for local
// addresses, which the per-subnet cap of the table does not count.
func subnetKey(a netip.AddrPort) (key [3]byte, ok bool) {
	ip := a.Addr()
	if isLocal(ip) || !ip.Is4() {
		return key, false
	}
	b := ip.As4()
	return [3]byte{b[0], b[1], b[2]}, true
}
