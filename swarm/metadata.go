package swarm

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"time"

	"btclient/peerwire"
	"btclient/torrent"
)

// metadataDL is the BEP 9 download of the info dictionary of a torrent that
// started from its info hash. Pieces are asked of every peer that offers
// the metadata, a few at a time each. A copy that does not hash to the info
// hash is kept as a suspect and the metadata is fetched again one peer at a
// time; the first good copy then shows which peers sent the pieces that
// differed, and exactly those are banned.
type metadataDL struct {
	size    int64    // 0 until a peer offers metadata of a size we accept
	pieces  [][]byte // nil until received
	got     int
	from    []*peer // who sent each piece
	asked   []*peer // whom each missing piece is asked of
	askedAt []time.Time

	// singleMode is set once a copy from several peers failed: from then on
	// one peer (single) delivers a whole copy; tried remembers who did.
	singleMode bool
	single     *peer
	tried      map[[20]byte]bool
	suspect    *metadataCopy
}

// metadataCopy is a copy that failed to hash, and who sent each piece.
type metadataCopy struct {
	pieces [][]byte
	from   []*peer
}

// peerMetadata is one peer's side of the metadata exchange.
type peerMetadata struct {
	asked     int       // our requests outstanding with it
	restUntil time.Time // not asked again before: it rejected or timed out
	served    int       // pieces it asked of us
}

func newMetadataDL() *metadataDL { return &metadataDL{tried: make(map[[20]byte]bool)} }

// init sizes the download for metadata of size bytes, forgetting what was
// received and asked before.
func (md *metadataDL) init(size int64) {
	for _, p := range md.asked {
		if p != nil {
			p.md.asked--
		}
	}
	n := peerwire.NumMetadataPieces(size)
	md.size = size
	md.pieces = make([][]byte, n)
	md.from = make([]*peer, n)
	md.asked = make([]*peer, n)
	md.askedAt = make([]time.Time, n)
	md.got = 0
}

// pieceLen is the length of metadata piece i.
func (md *metadataDL) pieceLen(i int) int {
	return int(min(peerwire.MetadataPieceSize, md.size-int64(i)*peerwire.MetadataPieceSize))
}

// offersMetadata reports a peer we can ask for metadata of the given size
// (any accepted size when size is 0).
func offersMetadata(p *peer, size int64, now time.Time) bool {
	if p.closed || p.ext == nil || p.ext.metadataID == 0 || now.Before(p.md.restUntil) {
		return false
	}
	s := p.ext.metadataSize
	if s <= 0 || s > torrent.MaxInfoSize {
		return false // nothing is allocated for a size beyond the bound
	}
	return size == 0 || s == size
}

// requestMetadata asks peers for the pieces still missing.
func (l *loop) requestMetadata(now time.Time) {
	t, md := l.t, l.t.md
	if md == nil {
		return
	}
	for i, p := range md.asked {
		if p != nil && (p.closed || now.Sub(md.askedAt[i]) > t.cfg.MetadataTimeout) {
			if !p.closed {
				p.md.asked--
				p.md.restUntil = now.Add(t.cfg.MetadataTimeout)
			}
			md.asked[i] = nil
		}
	}
	var cands []*peer
	if md.singleMode {
		if md.single != nil && (md.single.closed || !offersMetadata(md.single, 0, now.Add(-time.Hour))) {
			md.single = nil
		}
		if md.single == nil {
			for p := range t.peers {
				if !md.tried[p.id] && offersMetadata(p, 0, now) {
					md.single = p
					md.tried[p.id] = true
					md.init(p.ext.metadataSize)
					break
				}
			}
		}
		if md.single == nil {
			return
		}
		cands = []*peer{md.single}
	} else {
		if md.size == 0 || (md.got == 0 && !anyOffers(t, md.size, now)) {
			md.size = 0
			for p := range t.peers {
				if offersMetadata(p, 0, now) {
					md.init(p.ext.metadataSize)
					break
				}
			}
			if md.size == 0 {
				return
			}
		}
		for p := range t.peers {
			if offersMetadata(p, md.size, now) {
				cands = append(cands, p)
			}
		}
		shuffle(cands)
	}
	next := 0
	for i := range md.pieces {
		if md.pieces[i] != nil || md.asked[i] != nil {
			continue
		}
		var to *peer
		for k := range cands {
			c := cands[(next+k)%len(cands)]
			if c.md.asked < t.cfg.MetadataRequests {
				to, next = c, next+k+1
				break
			}
		}
		if to == nil {
			break
		}
		to.md.asked++
		md.asked[i], md.askedAt[i] = to, now
		to.out.send(peerwire.ExtendedMessage(to.ext.metadataID,
			peerwire.MetadataMsg{Type: peerwire.MetadataRequest, Piece: i}.Marshal()))
	}
	t.publish()
}

func anyOffers(t *Torrent, size int64, now time.Time) bool {
	for p := range t.peers {
		if offersMetadata(p, size, now) {
			return true
		}
	}
	return false
}

// releaseMetadata forgets what a dropped peer was asked.
func (t *Torrent) releaseMetadata(p *peer) {
	md := t.md
	if md == nil {
		return
	}
	for i, q := range md.asked {
		if q == p {
			md.asked[i] = nil
		}
	}
	if md.single == p {
		md.single = nil
	}
}

// handleMetadataMsg applies a ut_metadata message.
func (l *loop) handleMetadataMsg(p *peer, body []byte) error {
	t := l.t
	m, err := peerwire.ParseMetadataMsg(body)
	if err != nil {
		l.abuse(p, "malformed ut_metadata message")
		return nil
	}
	switch m.Type {
	case peerwire.MetadataRequest:
		l.serveMetadata(p, m.Piece)
		return nil
	case peerwire.MetadataReject:
		md := t.md
		if md == nil || m.Piece >= len(md.asked) || md.asked[m.Piece] != p {
			l.abuse(p, "ut_metadata reject of a piece not asked of it")
			return nil
		}
		md.asked[m.Piece] = nil
		p.md.asked--
		p.md.restUntil = time.Now().Add(t.cfg.MetadataTimeout)
		l.requestMetadata(time.Now())
		return nil
	}
	md := t.md
	if md == nil || m.Piece >= len(md.asked) || md.asked[m.Piece] != p {
		l.abuse(p, "ut_metadata piece nobody asked for")
		return nil
	}
	if m.TotalSize != md.size {
		l.ban(p, "ut_metadata total_size differs from its handshake")
		return nil
	}
	if len(m.Data) != md.pieceLen(m.Piece) {
		l.ban(p, "ut_metadata piece of the wrong length")
		return nil
	}
	md.asked[m.Piece] = nil
	p.md.asked--
	md.pieces[m.Piece] = bytes.Clone(m.Data)
	md.from[m.Piece] = p
	md.got++
	if md.got < len(md.pieces) {
		l.requestMetadata(time.Now())
		return nil
	}
	return l.metadataComplete()
}

// metadataComplete checks a whole copy against the info hash.
func (l *loop) metadataComplete() error {
	t, md := l.t, l.t.md
	info := bytes.Join(md.pieces, nil)
	if sha1.Sum(info) != t.infoHash {
		l.metadataFailed()
		return nil
	}
	meta, err := torrent.ParseInfo(info, t.infoHash)
	if err != nil {
		// It is the torrent the info hash names, and it is broken.
		return fmt.Errorf("metadata from peers: %w", err)
	}
	from := map[*peer]bool{}
	t.metadataFrom = t.metadataFrom[:0]
	for _, p := range md.from {
		a := p.addr
		if d, ok := p.dialAddr(); ok {
			a = d.String()
		}
		t.metadataFrom = append(t.metadataFrom, a)
		from[p] = true
	}
	t.metadataPeers = len(from)
	if s := md.suspect; s != nil && len(s.pieces) == len(md.pieces) {
		for i := range s.pieces {
			if !bytes.Equal(s.pieces[i], md.pieces[i]) {
				l.ban(s.from[i], "sent metadata that does not match the info hash")
			}
		}
	}
	return l.gotMetadata(meta)
}

// metadataFailed deals with a copy that does not hash to the info hash.
func (l *loop) metadataFailed() {
	t, md := l.t, l.t.md
	t.log.Warn("metadata from peers does not match the info hash")
	liar := md.single
	if liar == nil {
		sources := map[*peer]bool{}
		for _, p := range md.from {
			sources[p] = true
		}
		if len(sources) == 1 {
			liar = md.from[0]
		} else {
			md.suspect = &metadataCopy{pieces: md.pieces, from: md.from}
		}
	}
	md.singleMode = true
	md.single = nil
	md.init(md.size)
	if liar != nil {
		md.tried[liar.id] = true
		l.ban(liar, "sent metadata that does not match the info hash") // and asks the next
		return
	}
	l.requestMetadata(time.Now())
}

// gotMetadata turns a torrent that started from its info hash into one that
// downloads: the metainfo is saved, storage opened and checked, and every
// connected peer starts exchanging pieces.
func (l *loop) gotMetadata(meta *torrent.MetaInfo) error {
	t := l.t
	t.log.Info("metadata received", "name", meta.Name, "size", meta.TotalLength, "pieces", meta.NumPieces())
	t.md = nil
	if t.opt.GotMetadata != nil {
		t.opt.GotMetadata(meta)
	}
	t.setMeta(meta)
	if err := t.prepare(l.ctx); err != nil {
		return err
	}
	l.initPicker()
	for p := range t.peers {
		if p.extensions && p.ext != nil {
			l.sendExtHandshake(p) // now with the metadata size we serve
		}
		l.startPeer(p)
		if p.closed {
			continue
		}
		l.updateInterest(p)
		if t.isComplete() && p.numHave == meta.NumPieces() {
			t.dropPeer(p, fmt.Errorf("both complete"))
		}
	}
	l.fillAll()
	return nil
}

// serveMetadata answers a peer's request for a piece of the metadata.
func (l *loop) serveMetadata(p *peer, piece int) {
	t := l.t
	if p.ext == nil || p.ext.metadataID == 0 {
		l.abuse(p, "ut_metadata request without offering ut_metadata")
		return
	}
	msg := peerwire.MetadataMsg{Type: peerwire.MetadataReject, Piece: piece}
	if t.meta != nil && len(t.meta.InfoBytes) > 0 {
		info := t.meta.InfoBytes
		n := peerwire.NumMetadataPieces(int64(len(info)))
		// Enough for a few whole copies; a peer asking for more is
		// wasting our upload.
		if piece < n && p.md.served < 4*n+8 {
			off := piece * peerwire.MetadataPieceSize
			msg = peerwire.MetadataMsg{Type: peerwire.MetadataData, Piece: piece, TotalSize: int64(len(info)),
				Data: info[off:min(off+peerwire.MetadataPieceSize, len(info))]}
			p.md.served++
		}
	}
	p.out.send(peerwire.ExtendedMessage(p.ext.metadataID, msg.Marshal()))
}
