package swarm

import (
	"net/netip"
	"time"

	"btclient/peerwire"
)

// peerPEX is one peer's side of peer exchange (BEP 11).
type peerPEX struct {
	due      bool                        // the first message goes out at the next tick
	lastSent time.Time                   // our last message to it
	sent     map[netip.AddrPort]struct{} // what we told it is connected
	lastRecv time.Time                   // its last message we took
	taken    int                         // addresses taken from it in all
}

// dialAddr is the address others can dial p at: the one we dialed, or its
// IP and the port its extension handshake gave.
func (p *peer) dialAddr() (netip.AddrPort, bool) {
	if !p.incoming {
		a, err := netip.ParseAddrPort(p.addr)
		return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()), err == nil
	}
	if p.ext == nil || p.ext.port == 0 {
		return netip.AddrPort{}, false
	}
	a, err := netip.ParseAddrPort(p.conn.NetConn().RemoteAddr().String())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), uint16(p.ext.port)), true
}

// sendPEX sends each peer that speaks ut_pex the peers connected and dropped
// since its last message: at most once per PEXInterval (the first soon after
// its handshake), at most MaxPEXPerMessage of each, never for a private torrent.
func (l *loop) sendPEX(now time.Time) {
	t := l.t
	if t.private() {
		return
	}
	var current map[netip.AddrPort]byte // built on first need
	for p := range t.peers {
		if p.ext == nil || p.ext.pexID == 0 || (!p.pex.due && now.Sub(p.pex.lastSent) < t.cfg.PEXInterval) {
			continue
		}
		if current == nil {
			current = l.pexView()
		}
		self, _ := p.dialAddr()
		var msg peerwire.PEX
		for a, flags := range current {
			if _, told := p.pex.sent[a]; told || a == self {
				continue
			}
			if len(msg.Added) == t.cfg.MaxPEXPerMessage {
				break
			}
			msg.Added = append(msg.Added, peerwire.PEXPeer{Addr: a, Flags: flags})
		}
		for a := range p.pex.sent {
			if _, ok := current[a]; ok {
				continue
			}
			if len(msg.Dropped) == t.cfg.MaxPEXPerMessage {
				break
			}
			msg.Dropped = append(msg.Dropped, a)
		}
		first := p.pex.due
		p.pex.due, p.pex.lastSent = false, now
		if len(msg.Added) == 0 && len(msg.Dropped) == 0 && !first {
			continue
		}
		if p.pex.sent == nil {
			p.pex.sent = make(map[netip.AddrPort]struct{})
		}
		for _, a := range msg.Added {
			p.pex.sent[a.Addr] = struct{}{}
		}
		for _, a := range msg.Dropped {
			delete(p.pex.sent, a)
		}
		p.out.send(peerwire.ExtendedMessage(p.ext.pexID, msg.Marshal()))
	}
}

// pexView is every connected peer others could dial, with its PEX flags.
func (l *loop) pexView() map[netip.AddrPort]byte {
	t := l.t
	view := make(map[netip.AddrPort]byte, len(t.peers))
	for q := range t.peers {
		a, ok := q.dialAddr()
		if !ok {
			continue
		}
		var f byte
		if t.meta != nil && q.numHave == t.meta.NumPieces() {
			f |= peerwire.PEXSeed
		}
		if !q.incoming {
			f |= peerwire.PEXReachable // we reached it
		}
		view[a] = f
	}
	return view
}

// handlePEX takes peers from a ut_pex message: only from a peer that keeps
// to one message per PEXInterval (give or take), at most MaxPEXPerMessage a
// message and MaxPEXPerPeer from one peer in all, so no peer can flood the
// set of peers we know.
func (l *loop) handlePEX(p *peer, body []byte) {
	t := l.t
	if t.private() {
		return
	}
	now := time.Now()
	if !p.pex.lastRecv.IsZero() && now.Sub(p.pex.lastRecv) < t.cfg.PEXInterval/2 {
		l.abuse(p, "ut_pex more often than allowed")
		return
	}
	p.pex.lastRecv = now
	msg, err := peerwire.ParsePEX(body, t.cfg.MaxPEXPerMessage)
	if err != nil {
		l.abuse(p, "malformed ut_pex message")
		return
	}
	var addrs []string
	for _, a := range msg.Added {
		if p.pex.taken >= t.cfg.MaxPEXPerPeer {
			break
		}
		if t.isComplete() && a.Flags&peerwire.PEXSeed != 0 {
			continue // a seed has nothing for a seed
		}
		p.pex.taken++
		addrs = append(addrs, a.Addr.String())
	}
	if len(addrs) == 0 {
		return
	}
	t.addKnown("pex", addrs)
	l.dialMore(now)
}
