package swarm

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"btclient/peerwire"
)

// loop is the torrent's owning goroutine and the channels it listens on.
type loop struct {
	t        *Torrent
	ctx      context.Context
	wg       *sync.WaitGroup
	dialFail chan string
	// msgs is made when the first peer connects, and the hash workers
	// start with the first piece to verify: a daemon's idle torrents, a
	// thousand of them, hold neither the buffer nor the goroutines.
	msgs    chan peerMsg
	jobs    chan hashJob
	results chan hashResult
	hashing bool // the hash workers run

	hashQueue []hashJob
	gen       int // bumps when a piece becomes pickable again
	// pickOrder is every piece in the order ties are broken: runs of
	// pieces in file order (see pickRunBytes), the runs in a random order
	// of this session's own, so two clients rarely chase each other through
	// the same pieces while reads and writes stay sequential a run at a time.
	pickOrder []int32
	// memFull is set when a piece could not start for want of memory
	// (MaxPieceMemory): the next piece verified frees some, and fills.
	memFull bool
	// pickFrom skips the head of pickOrder that is all had or started; both
	// sets only grow, so it only moves forward.
	pickFrom int
}

func (l *loop) run() error {
	t := l.t
	tick := time.NewTicker(t.cfg.Tick)
	defer tick.Stop()
	t.lastChoke = time.Now()
	if t.meta != nil {
		l.initPicker()
	}
	l.dialMore(time.Now())
	for {
		var jobs chan<- hashJob
		var next hashJob
		if len(l.hashQueue) > 0 {
			jobs, next = l.jobs, l.hashQueue[0]
		}
		select {
		case <-l.ctx.Done():
			return nil
		case p := <-t.conns:
			l.addPeer(p)
		case a := <-l.dialFail:
			l.dialFailed(a)
		case b := <-t.addrs:
			t.addKnown(b.origin, b.addrs)
			l.dialMore(time.Now())
		case pm := <-l.msgs:
			if err := l.handle(pm); err != nil {
				return err
			}
		case jobs <- next:
			l.hashQueue = l.hashQueue[1:]
		case r := <-l.results:
			if err := l.hashed(r); err != nil {
				return err
			}
		case now := <-tick.C:
			l.tick(now)
		}
	}
}

func (l *loop) addPeer(p *peer) {
	t := l.t
	if !p.incoming {
		t.dialing-- // the dial is over, whether the peer is kept or not
	}
	c := t.known[p.addr]
	switch {
	case p.id == t.opt.PeerID:
		if c != nil {
			c.self = true
		}
		p.conn.Close()
		return
	case t.banned[p.addr] || t.banned[string(p.id[:])]:
		p.conn.Close()
		return
	case t.byID[p.id] != nil:
		if c != nil {
			c.connected = true
		}
		p.conn.Close()
		return
	case len(t.peers) >= t.cfg.MaxPeers:
		p.conn.Close()
		return
	}
	if c != nil {
		c.connected, c.fails = true, 0
	}
	p.lastBlock = time.Now()
	p.conn.AllocBlock = t.getBlock
	t.peers[p] = struct{}{}
	t.byID[p.id] = p
	if p.extensions {
		l.sendExtHandshake(p)
	}
	if p.dht && t.opt.DHTPort > 0 {
		p.out.send(peerwire.PortMessage(uint16(t.opt.DHTPort)))
	}
	if t.meta != nil {
		l.startPeer(p)
	}
	if l.msgs == nil {
		l.msgs = make(chan peerMsg, msgsBuffer)
	}
	l.wg.Go(func() { readLoop(l.ctx, p, l.msgs, limits{t.down, t.opt.SessionDownload}, &t.batchPool) })
	l.wg.Go(func() {
		writeLoop(l.ctx, p, &t.uploaded, t.cfg.KeepAlive, limits{t.up, t.opt.SessionUpload}, &t.readPool)
	})
	t.log.Debug("peer connected", "addr", p.addr, "incoming", p.incoming, "extensions", p.extensions)
}

// startPeer begins the piece exchange with p once the metainfo is known:
// its bitfield sized, what it announced before then applied, ours sent.
func (l *loop) startPeer(p *peer) {
	t := l.t
	n := t.meta.NumPieces()
	p.bf = peerwire.NewBitfield(n)
	p.out.setStore(t.store)
	p.super = l.superSeedFor(p)
	p.lastHave = time.Now()
	if t.havePieces > 0 && !p.super {
		p.out.send(peerwire.Message{ID: peerwire.BitfieldMsg, Payload: append([]byte(nil), t.have...)})
	}
	if p.early != nil {
		early := p.early
		p.early = nil
		if early.bitfield != nil {
			l.handleOne(p, peerwire.Message{ID: peerwire.BitfieldMsg, Payload: early.bitfield})
		}
		for _, i := range early.haves {
			if p.closed {
				return
			}
			l.handleOne(p, peerwire.Message{ID: peerwire.Have, Index: i})
		}
	}
	l.superOffer(p, time.Now())
}

// dropPeer closes p and gives back everything it held.
func (t *Torrent) dropPeer(p *peer, reason error) {
	if p.closed {
		return
	}
	p.closed = true
	p.out.close()
	p.conn.Close()
	delete(t.peers, p)
	if t.byID[p.id] == p {
		delete(t.byID, p.id)
	}
	t.release(p)
	t.releaseMetadata(p)
	if p.super {
		t.superWithdraw(p)
	}
	for i := range t.avail {
		if p.bf.Has(i) {
			t.avail[i]--
		}
	}
	if c := t.known[p.addr]; c != nil {
		c.connected = false
		c.nextDial = time.Now().Add(t.cfg.RedialInterval)
	}
	if reason != nil {
		t.log.Debug("peer dropped", "addr", p.addr, "reason", reason)
	}
}

// maxBanned bounds the ban list (addresses and peer ids).
const maxBanned = 4096

// ban drops p for good: its address and peer id are refused from now on.
func (l *loop) ban(p *peer, why string) {
	t := l.t
	if t.banned[p.addr] && t.banned[string(p.id[:])] {
		return
	}
	for k := range t.banned { // bounded: a flood of liars cannot grow it forever
		if len(t.banned) < maxBanned {
			break
		}
		delete(t.banned, k)
	}
	t.banned[p.addr] = true
	t.banned[string(p.id[:])] = true
	t.badPeers++
	t.log.Warn("dropping peer", "addr", p.addr, "reason", why)
	t.dropPeer(p, errors.New(why))
	l.afterDrop()
	t.publish() // a ban shows at once, not at the next tick
}

// release gives p's outstanding requests back to the pending set. A stalled
// peer's late blocks are still accepted while their piece needs them.
func (t *Torrent) release(p *peer) {
	for k := range p.outstanding {
		if pd := t.active[k.piece()]; pd != nil {
			pd.unrequest(k.block())
		}
	}
	clear(p.outstanding)
}

func (l *loop) dialFailed(addr string) {
	t := l.t
	t.dialing--
	c := t.known[addr]
	if c == nil {
		return
	}
	c.fails++
	if c.fails > 8 {
		delete(t.known, addr)
		return
	}
	c.nextDial = time.Now().Add(t.cfg.RedialInterval << min(c.fails, 5))
}

// dialMore dials known addresses while the download wants peers.
func (l *loop) dialMore(now time.Time) {
	t := l.t
	if t.isComplete() {
		return
	}
	for addr, c := range t.known {
		if len(t.peers)+t.dialing >= t.cfg.MaxPeers || t.dialing >= t.cfg.MaxDials {
			return
		}
		if c.connected || c.self || now.Before(c.nextDial) {
			continue
		}
		c.nextDial = now.Add(t.cfg.RedialInterval)
		t.dialing++
		l.wg.Go(func() { t.dial(l.ctx, addr, l.dialFail) })
	}
}

// handle applies a batch of messages from a peer, then tops up its pipeline
// once for the whole batch. An error is fatal to the torrent: metadata
// that verified but does not describe a torrent.
func (l *loop) handle(pm peerMsg) error {
	t, p := l.t, pm.p
	var err error
	for i, m := range pm.ms {
		if p.closed || err != nil {
			for _, m := range pm.ms[i:] {
				if m.ID == peerwire.Piece {
					t.putBlock(m.Block)
				}
			}
			break
		}
		err = l.handleOne(p, m)
	}
	clear(pm.ms)
	ms := pm.ms[:0]
	t.batchPool.Put(&ms)
	if err != nil || p.closed {
		return err
	}
	if pm.err != nil {
		t.dropPeer(p, pm.err)
		l.afterDrop()
		return nil
	}
	if p.wantFill {
		p.wantFill = false
		l.fill(p)
	}
	return nil
}

// afterDrop gives a dropped peer's work to the others.
func (l *loop) afterDrop() {
	if l.t.meta == nil {
		l.requestMetadata(time.Now())
		return
	}
	l.fillAll()
}

// handleOne applies one message from p.
func (l *loop) handleOne(p *peer, m peerwire.Message) error {
	t := l.t
	switch m.ID {
	case peerwire.Extended:
		return l.handleExtended(p, m.Payload)
	case peerwire.Port:
		l.handlePort(p, m.Payload)
		return nil
	}
	if t.meta == nil {
		l.handleEarly(p, m)
		return nil
	}
	n := t.meta.NumPieces()
	switch m.ID {
	case peerwire.KeepAlive:
	case peerwire.Choke:
		p.peerChoking = true
		t.release(p)
		l.fillAll()
	case peerwire.Unchoke:
		p.peerChoking = false
		p.lastBlock = time.Now()
		p.wantFill = true
	case peerwire.Interested:
		p.peerInterested = true
		l.maybeUnchoke(p)
	case peerwire.NotInterested:
		p.peerInterested = false
		if !p.amChoking {
			l.choke(p)
		}
	case peerwire.Have:
		if int(m.Index) >= n {
			l.ban(p, "have for a piece outside the torrent")
			return nil
		}
		i := int(m.Index)
		if !p.bf.Has(i) {
			p.bf.Set(i)
			p.numHave++
			t.avail[i]++
			if !t.have.Has(i) {
				l.setInterested(p, true)
				p.wantFill = true
			}
			if p.super {
				l.superSaw(p, time.Now())
			}
		}
	case peerwire.BitfieldMsg:
		bf, err := peerwire.ParseBitfield(m.Payload, n)
		if err != nil {
			l.ban(p, "malformed bitfield")
			return nil
		}
		for i := range n {
			if bf.Has(i) && !p.bf.Has(i) {
				p.bf.Set(i)
				p.numHave++
				t.avail[i]++
			}
		}
		l.updateInterest(p)
		p.wantFill = true
		if p.super {
			l.superSaw(p, time.Now())
		}
	case peerwire.Request:
		l.handleRequest(p, m)
	case peerwire.Piece:
		l.handleBlock(p, m)
	case peerwire.Cancel:
		p.out.cancelUpload(m.Index, m.Begin, m.Length)
	default:
		// Extensions we did not negotiate: ignore.
	}
	return nil
}

func (l *loop) handleRequest(p *peer, m peerwire.Message) {
	t := l.t
	if int(m.Index) >= t.meta.NumPieces() || m.Length == 0 || m.Length > peerwire.MaxBlock ||
		int64(m.Begin)+int64(m.Length) > t.meta.PieceSize(int(m.Index)) {
		l.ban(p, "request outside the torrent")
		return
	}
	if !t.have.Has(int(m.Index)) {
		l.ban(p, "request for a piece we never announced")
		return
	}
	if p.amChoking {
		return // it raced our choke; BEP 3 says drop it
	}
	off := int64(m.Index)*t.meta.PieceLength + int64(m.Begin)
	if p.out.queueUpload(upload{index: m.Index, begin: m.Begin, length: m.Length, off: off}) > t.cfg.MaxUploadQueue {
		l.ban(p, "request storm")
	}
}

func (l *loop) handleBlock(p *peer, m peerwire.Message) {
	t := l.t
	kept := false // by the piece; otherwise the buffer goes back to the pool
	defer func() {
		if !kept {
			t.putBlock(m.Block)
		}
	}()
	idx, bs := int(m.Index), t.cfg.BlockSize
	if idx >= t.meta.NumPieces() || int(m.Begin)%bs != 0 || int64(m.Begin) >= t.meta.PieceSize(idx) {
		l.ban(p, "block outside the torrent")
		return
	}
	b := int(m.Begin) / bs
	key := makeKey(idx, b)
	_, asked := p.outstanding[key]
	if asked {
		delete(p.outstanding, key)
	}
	pd := t.active[idx]
	if pd == nil || pd.hashing || pd.state[b] == blockReceived {
		if asked {
			if pd != nil {
				pd.reqs[b]--
			}
		} else if p.late > 0 {
			p.late-- // asked for once, then given up on or cancelled
		} else if p.unsolicited++; p.unsolicited > t.cfg.MaxUnsolicited {
			l.ban(p, "too many blocks nobody asked for")
			return
		}
		p.wantFill = true
		return
	}
	if len(m.Block) != pd.blockLen(b) {
		l.ban(p, "block of the wrong size")
		return
	}
	if asked {
		pd.reqs[b]--
	}
	now := time.Now()
	p.lastBlock, p.snubbed = now, false
	if p.window < t.cfg.MaxPipeline {
		p.window = max(p.window, t.cfg.MinPipeline) + 1
	}
	p.downloaded += int64(len(m.Block))
	t.downloaded += int64(len(m.Block))
	pd.receive(b, m.Block, p)
	kept = true
	if pd.reqs[b] > 0 { // endgame: others were asked for it too
		for q := range t.peers {
			if _, ok := q.outstanding[key]; ok {
				delete(q.outstanding, key)
				q.late++ // the block may be on its way already
				pd.reqs[b]--
				q.out.send(peerwire.Message{ID: peerwire.Cancel, Index: m.Index, Begin: m.Begin, Length: m.Length})
			}
		}
	}
	if pd.received == pd.nblocks {
		l.finishPiece(pd)
	}
	p.wantFill = true
}

// finishPiece sends a fully received piece to the hash workers.
func (l *loop) finishPiece(pd *pieceDL) {
	t := l.t
	pd.hashing = true
	t.removeOrder(pd)
	if !l.hashing {
		l.startHashing()
	}
	l.hashQueue = append(l.hashQueue, hashJob{
		index:  pd.index,
		off:    int64(pd.index) * t.meta.PieceLength,
		blocks: pd.blocks,
		want:   t.meta.Pieces[pd.index],
	})
}

// hashed applies a verification result; a write error is fatal.
func (l *loop) hashed(r hashResult) error {
	t := l.t
	pd := t.active[r.index]
	if r.err != nil {
		return r.err
	}
	if r.ok {
		delete(t.active, r.index)
		t.started.Clear(r.index)
		t.have.Set(r.index)
		t.havePieces++
		if f := t.failed[r.index]; f != nil {
			l.smartBan(f, pd)
		}
		t.freePiece(pd)
		for p := range t.peers {
			p.out.send(peerwire.Message{ID: peerwire.Have, Index: uint32(r.index)})
		}
		if t.isComplete() {
			l.completed()
			return nil
		}
		if l.memFull {
			// A piece could not start for want of the memory this one
			// held: the pipelines it left short are topped up now, not
			// at the next block or tick (up to 500 ms of an idle link).
			l.memFull = false
			l.fillAll()
		}
		return nil
	}
	t.wasted += int64(pd.size)
	l.blame(pd)
	t.log.Warn("piece failed its hash check", "piece", r.index)
	// Fetch it again, from the front of the queue.
	pd.releaseBlocks(t.putBlock)
	pd.reset()
	t.order = append([]*pieceDL{pd}, t.order...)
	l.gen++
	l.fillAll()
	return nil
}

// completed turns the session into a seeder.
func (l *loop) completed() {
	t := l.t
	t.complete()
	t.publish()
	for p := range t.peers {
		if p.numHave == t.meta.NumPieces() {
			t.dropPeer(p, errors.New("both complete"))
			continue
		}
		l.setInterested(p, false)
	}
}

func (l *loop) setInterested(p *peer, v bool) {
	if p.amInterested == v {
		return
	}
	p.amInterested = v
	id := peerwire.NotInterested
	if v {
		id = peerwire.Interested
	}
	p.out.send(peerwire.Message{ID: id})
}

// updateInterest tells p whether it has something we lack.
func (l *loop) updateInterest(p *peer) {
	t := l.t
	want := false
	if !t.isComplete() {
		for i, b := range p.bf {
			if b&^t.have[i] != 0 {
				want = true
				break
			}
		}
	}
	l.setInterested(p, want)
}

func (l *loop) tick(now time.Time) {
	t := l.t
	secs := t.cfg.Tick.Seconds()
	if t.meta == nil {
		l.requestMetadata(now)
	}
	l.sendPEX(now)
	for p := range t.peers {
		p.downRate = smooth(p.downRate, p.downloaded-p.lastDown, secs)
		p.lastDown = p.downloaded
		u := p.uploaded.Load()
		p.upRate = smooth(p.upRate, u-p.lastUp, secs)
		p.lastUp = u
		p.window = int(p.downRate * t.cfg.PipelineWindow.Seconds() / float64(t.cfg.BlockSize))
		if len(p.outstanding) > 0 && now.Sub(p.lastBlock) > t.cfg.StallTimeout {
			// Stalled: its blocks go back to be asked of others now. The
			// peer may still send them; they are not held against it.
			p.late += len(p.outstanding)
			t.release(p)
			p.snubbed = true
			p.lastBlock = now
			l.fillAll()
		}
		if t.meta != nil {
			l.updateInterest(p)
			if !p.peerChoking && len(p.outstanding) == 0 {
				l.fill(p)
			}
		}
	}
	up := t.uploaded.Load()
	t.downRate = smooth(t.downRate, t.downloaded-t.lastDown, secs)
	t.upRate = smooth(t.upRate, up-t.lastUp, secs)
	t.lastDown, t.lastUp = t.downloaded, up
	if t.log.Enabled(l.ctx, slog.LevelDebug) {
		for p := range t.peers {
			t.log.Debug("peer", "addr", p.addr, "down", int64(p.downRate), "up", int64(p.upRate),
				"outstanding", len(p.outstanding), "pipeline", l.pipeline(p), "choked", p.peerChoking,
				"active", len(t.active), "order", len(t.order), "hashq", len(l.hashQueue), "mem", t.memUsed)
		}
	}
	if t.isComplete() {
		l.superTick(now)
	}
	if t.meta != nil && now.Sub(t.lastChoke) >= t.cfg.UnchokeInterval {
		l.rechoke(now)
	}
	l.dialMore(now)
	t.publish()
}

// smooth folds bytes moved in the last secs into a rate (bytes/s), an
// exponential average that forgets half of the past every tick; below 1 B/s
// it is zero, not a vanishing remainder.
func smooth(rate float64, bytes int64, secs float64) float64 {
	const alpha = 0.5
	r := alpha*float64(bytes)/secs + (1-alpha)*rate
	if r < 1 {
		return 0
	}
	return r
}

// fillAll tops up every peer's pipeline one block at a time in turn, so the
// blocks of a piece are spread round-robin over the peers that have it.
func (l *loop) fillAll() {
	t := l.t
	ps := make([]*peer, 0, len(t.peers))
	for p := range t.peers {
		if l.canRequest(p) {
			ps = append(ps, p)
		}
	}
	shuffle(ps)
	for len(ps) > 0 {
		k := 0
		for _, p := range ps {
			if len(p.outstanding) < l.pipeline(p) && l.requestOne(p) {
				ps[k] = p
				k++
			}
		}
		ps = ps[:k]
	}
}

// fill tops up p's pipeline.
func (l *loop) fill(p *peer) {
	if !l.canRequest(p) {
		return
	}
	for target := l.pipeline(p); len(p.outstanding) < target; {
		if !l.requestOne(p) {
			return
		}
	}
}

func (l *loop) canRequest(p *peer) bool {
	return !p.closed && !p.peerChoking && p.amInterested && l.t.meta != nil && !l.t.isComplete()
}

// pipeline is how many requests p should have outstanding: enough for
// PipelineWindow of its observed rate.
func (l *loop) pipeline(p *peer) int {
	cfg := l.t.cfg
	if p.snubbed {
		return 2
	}
	depth := min(max(p.window, cfg.MinPipeline), cfg.MaxPipeline)
	if p.reqq > 0 {
		// More than the peer said it queues would be dropped (libtorrent
		// drops them), or taken for a storm.
		depth = min(depth, p.reqq)
	}
	return depth
}

// requestOne sends p one more request; false when there is nothing to ask it.
func (l *loop) requestOne(p *peer) bool {
	t := l.t
	// Finish what is started, oldest first.
	for _, pd := range t.order {
		if pd.pending > 0 && p.bf.Has(pd.index) {
			l.request(p, pd, pd.nextPending())
			return true
		}
	}
	if pd := l.startPiece(p); pd != nil {
		l.request(p, pd, pd.nextPending())
		return true
	}
	// Endgame: everything missing is already requested; ask p too.
	if len(t.order) > 0 && l.nothingToStart() {
		for _, pd := range t.order {
			if !p.bf.Has(pd.index) {
				continue
			}
			for b := range pd.nblocks {
				if pd.state[b] == blockRequested && int(pd.reqs[b]) < t.cfg.EndgameDuplicates {
					if _, mine := p.outstanding[makeKey(pd.index, b)]; !mine {
						l.request(p, pd, b)
						return true
					}
				}
			}
		}
	}
	return false
}

func (l *loop) request(p *peer, pd *pieceDL, b int) {
	if len(p.outstanding) == 0 {
		p.lastBlock = time.Now()
	}
	pd.markRequested(b)
	p.outstanding[makeKey(pd.index, b)] = struct{}{}
	p.out.send(peerwire.Message{
		ID:     peerwire.Request,
		Index:  uint32(pd.index),
		Begin:  uint32(b * l.t.cfg.BlockSize),
		Length: uint32(pd.blockLen(b)),
	})
}

// nothingToStart reports whether every missing piece is already in flight.
func (l *loop) nothingToStart() bool {
	t := l.t
	return t.havePieces+len(t.active) >= t.meta.NumPieces()
}

// initPicker draws this session's order of piece runs.
func (l *loop) initPicker() {
	n := l.t.meta.NumPieces()
	run := int(max(1, pickRunBytes(l.t.meta.TotalLength)/l.t.meta.PieceLength))
	l.pickOrder = make([]int32, 0, n)
	for _, r := range rand.Perm((n + run - 1) / run) {
		for i := r * run; i < min((r+1)*run, n); i++ {
			l.pickOrder = append(l.pickOrder, int32(i))
		}
	}
}

// pickRunBytes is the size of the runs of pieces that rarest-first takes in
// file order when they are equally rare: a 64th of the torrent, within
// 4-64 MiB. Long runs let a seeder reading a cold file keep its read-ahead
// going: from a libtorrent seeder in the VM's slow state, 1 GiB took a median
// 3.6 s with 16 MiB runs and 5.1 s with 4 MiB ones. Many runs keep leechers
// of a slow seeder apart: walking the file in order from a random start,
// five of them took 65 s and had it send the file 3.2 times, against 31 s and
// 1.55 times with 4 MiB runs (scripts/bench-slow-seeder.sh).
func pickRunBytes(total int64) int64 {
	return min(max(total/64, 4<<20), 64<<20)
}

// startPiece picks a new piece p has: random for the first few, then
// rarest-first with ties broken by pickOrder. Nil when none or no memory is free.
func (l *loop) startPiece(p *peer) *pieceDL {
	t := l.t
	if l.nothingToStart() {
		return nil
	}
	if len(t.active) >= 2 && t.memUsed+t.meta.PieceLength > t.cfg.MaxPieceMemory {
		l.memFull = true
		return nil
	}
	if p.noPickGen == l.gen+1 && p.noPickHave == p.numHave {
		return nil // nothing changed since the last fruitless scan
	}
	best := -1
	if t.havePieces < t.cfg.RandomFirst {
		n := t.meta.NumPieces()
		start := rand.IntN(n)
		for j := range n {
			i := (start + j) % n
			if p.bf.Has(i) && !l.taken(i) {
				best = i
				break
			}
		}
	} else {
		for l.pickFrom < len(l.pickOrder) && l.taken(int(l.pickOrder[l.pickFrom])) {
			l.pickFrom++
		}
		bestAvail := int(^uint(0) >> 1)
		for _, i32 := range l.pickOrder[l.pickFrom:] {
			i := int(i32)
			if !p.bf.Has(i) || l.taken(i) {
				continue
			}
			// The first of the rarest wins: pickOrder breaks the ties.
			if a := t.avail[i]; a < bestAvail {
				best, bestAvail = i, a
				if a <= 1 {
					break // nothing is rarer than a piece only p has
				}
			}
		}
	}
	if best < 0 {
		p.noPickGen, p.noPickHave = l.gen+1, p.numHave
		return nil
	}
	t.memUsed += t.meta.PieceLength
	pd := newPieceDL(best, int(t.meta.PieceSize(best)), t.cfg.BlockSize)
	t.active[best] = pd
	t.started.Set(best)
	t.order = append(t.order, pd)
	return pd
}

// taken reports a piece that is had or being downloaded.
func (l *loop) taken(i int) bool { return l.t.have.Has(i) || l.t.started.Has(i) }

// freePiece returns a verified piece's memory.
func (t *Torrent) freePiece(pd *pieceDL) {
	pd.releaseBlocks(t.putBlock)
	t.memUsed -= t.meta.PieceLength
}

func (t *Torrent) removeOrder(pd *pieceDL) {
	for i, q := range t.order {
		if q == pd {
			t.order = append(t.order[:i], t.order[i+1:]...)
			return
		}
	}
}

// maybeUnchoke unchokes a newly interested peer at once while a slot is free.
func (l *loop) maybeUnchoke(p *peer) {
	if !p.amChoking {
		return
	}
	if p.super { // a super-seeded peer is only sent what it was offered
		l.unchoke(p)
		return
	}
	unchoked := 0
	for q := range l.t.peers {
		if !q.amChoking && !q.super {
			unchoked++
		}
	}
	if unchoked < l.t.cfg.UploadSlots+1 {
		l.unchoke(p)
	}
}

func (l *loop) unchoke(p *peer) {
	p.amChoking = false
	p.out.send(peerwire.Message{ID: peerwire.Unchoke})
}

func (l *loop) choke(p *peer) {
	p.amChoking = true
	p.optimistic = false
	p.out.chokeUploads()
}
