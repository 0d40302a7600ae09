package swarm

import (
	"net"
	"net/netip"
	"time"

	"btclient/peerwire"
)

// The extended message ids we ask peers to use for us (our m dictionary).
const (
	extIDMetadata = 1
	extIDPEX      = 2
)

// extState is what a peer's extension handshake told us.
type extState struct {
	metadataID   byte  // its id for ut_metadata, 0 if it has none
	pexID        byte  // its id for ut_pex, 0 if it has none
	metadataSize int64 // its metadata_size, 0 if unknown
	port         int   // its listening port (p), 0 if unknown
	client       string
}

// earlyAnnounce is what a peer announced before the metainfo was known,
// applied once it is. Bounded: the bitfield by the connection's message
// bound, the haves by maxEarlyHaves.
type earlyAnnounce struct {
	bitfield []byte
	haves    []uint32
}

// maxEarlyHaves bounds the haves kept from one peer while the metadata is
// fetched; a peer that sends more is not believed for the rest.
const maxEarlyHaves = 4096

// maxAbuse is how many protocol breaches short of a lie a peer is forgiven
// (extension messages before the handshake, unsolicited metadata pieces,
// PEX too often) before it is dropped.
const maxAbuse = 32

// sendExtHandshake tells p which extensions we speak and, once known, the
// size of the metadata we can serve.
func (l *loop) sendExtHandshake(p *peer) {
	t := l.t
	h := peerwire.ExtHandshake{
		M:    map[string]int{peerwire.ExtMetadata: extIDMetadata, peerwire.ExtPEX: extIDPEX},
		V:    t.opt.ClientName,
		Port: t.opt.Port,
		ReqQ: t.cfg.MaxUploadQueue,
	}
	if t.private() {
		delete(h.M, peerwire.ExtPEX) // BEP 27: no peer exchange
	}
	if t.meta != nil {
		h.MetadataSize = int64(len(t.meta.InfoBytes))
	}
	if host, _, err := net.SplitHostPort(p.conn.NetConn().RemoteAddr().String()); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil {
			h.YourIP = ip
		}
	}
	p.out.send(peerwire.ExtendedMessage(0, h.Marshal()))
}

// private reports a BEP 27 private torrent (known only with the metainfo).
func (t *Torrent) private() bool { return t.meta != nil && t.meta.Private }

// handleExtended dispatches a BEP 10 message.
func (l *loop) handleExtended(p *peer, payload []byte) error {
	id, body, err := peerwire.SplitExtended(payload)
	if err != nil {
		l.abuse(p, "empty extension message")
		return nil
	}
	if id == 0 {
		l.handleExtHandshake(p, body)
		return nil
	}
	if p.ext == nil {
		l.abuse(p, "extension message before the extension handshake")
		return nil
	}
	switch id {
	case extIDMetadata:
		return l.handleMetadataMsg(p, body)
	case extIDPEX:
		l.handlePEX(p, body)
	}
	return nil
}

func (l *loop) handleExtHandshake(p *peer, body []byte) {
	h, err := peerwire.ParseExtHandshake(body)
	if err != nil {
		l.t.dropPeer(p, err)
		l.afterDrop()
		return
	}
	first := p.ext == nil
	p.ext = &extState{
		metadataID:   byte(h.M[peerwire.ExtMetadata]),
		pexID:        byte(h.M[peerwire.ExtPEX]),
		metadataSize: h.MetadataSize,
		port:         h.Port,
		client:       h.V,
	}
	p.reqq = h.ReqQ
	if first && p.ext.pexID != 0 {
		p.pex.due = true // the first message goes out at the next tick
	}
	if l.t.meta == nil {
		l.requestMetadata(time.Now())
	}
}

// abuse counts a breach of the protocol that proves no lie; too many get p
// dropped for good.
func (l *loop) abuse(p *peer, why string) {
	p.abuse++
	if p.abuse > maxAbuse {
		l.ban(p, why)
	}
}

// handlePort hears of p's DHT node.
func (l *loop) handlePort(p *peer, payload []byte) {
	port, err := peerwire.ParsePort(payload)
	if err != nil || port == 0 {
		l.abuse(p, "malformed port message")
		return
	}
	if l.t.opt.DHTNode == nil {
		return
	}
	if ap, err := netip.ParseAddrPort(p.conn.NetConn().RemoteAddr().String()); err == nil {
		l.t.opt.DHTNode(netip.AddrPortFrom(ap.Addr().Unmap(), port))
	}
}

// handleEarly applies a message that came before the metainfo was known:
// what the peer has is kept for later, its choke state followed; no piece
// can have been asked of us or by us yet.
func (l *loop) handleEarly(p *peer, m peerwire.Message) {
	switch m.ID {
	case peerwire.Choke:
		p.peerChoking = true
	case peerwire.Unchoke:
		p.peerChoking = false
	case peerwire.Interested:
		p.peerInterested = true
	case peerwire.NotInterested:
		p.peerInterested = false
	case peerwire.BitfieldMsg:
		if p.early == nil {
			p.early = &earlyAnnounce{}
		}
		if p.early.bitfield != nil {
			l.ban(p, "second bitfield")
			return
		}
		p.early.bitfield = m.Payload
	case peerwire.Have:
		if p.early == nil {
			p.early = &earlyAnnounce{}
		}
		if len(p.early.haves) < maxEarlyHaves {
			p.early.haves = append(p.early.haves, m.Index)
		}
	case peerwire.Request:
		l.ban(p, "request for a piece we never announced")
	case peerwire.Piece:
		l.t.putBlock(m.Block)
		if p.unsolicited++; p.unsolicited > l.t.cfg.MaxUnsolicited {
			l.ban(p, "too many blocks nobody asked for")
		}
	}
}
