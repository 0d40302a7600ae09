package swarm

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"btclient/peerwire"
)

// blockKey names one block: piece index in the high half, block number in the low.
type blockKey uint64

func makeKey(piece, block int) blockKey { return blockKey(uint64(piece)<<32 | uint64(block)) }
func (k blockKey) piece() int           { return int(k >> 32) }
func (k blockKey) block() int           { return int(uint32(k)) }

// peer is one connected peer. The torrent loop owns every field except out
// and the atomic counters, which its writer goroutine shares.
type peer struct {
	addr     string // address as dialed, or the remote address when it dialed us
	id       [20]byte
	incoming bool
	conn     *peerwire.Conn
	out      *outbox
	closed   bool

	extensions bool // the handshake offered BEP 10
	dht        bool // the handshake offered BEP 5's port message
	ext        *extState
	// early holds what p announced before the metainfo was known.
	early *earlyAnnounce
	reqq  int // requests p queues (its extension handshake), 0 if unknown
	md    peerMetadata
	pex   peerPEX

	bf      peerwire.Bitfield
	numHave int

	amChoking, amInterested     bool
	peerChoking, peerInterested bool
	optimistic                  bool

	outstanding map[blockKey]struct{}
	lastBlock   time.Time // last block received, or when requests (re)started
	snubbed     bool
	// window is the request depth earned so far: set from the rate on each
	// tick, and one deeper per block received in between, so a fast link
	// reaches full depth within milliseconds instead of waiting for a tick
	// to measure it (TCP's slow start, in requests).
	window int

	downloaded  int64 // payload bytes received, loop-owned
	lastDown    int64
	downRate    float64 // bytes/s, smoothed
	lastUp      int64
	upRate      float64
	uploaded    atomic.Int64 // payload bytes sent, written by the writer
	badPieces   int
	unsolicited int
	abuse       int // protocol breaches that prove no lie (see maxAbuse)
	late        int // blocks we asked for, then cancelled or gave up on

	wantFill bool // a message of the current batch made room for requests

	// super is set when we super-seed p (see SuperSeedMode): it was sent
	// no bitfield, only HAVEs for offered, the pieces it was offered and has
	// not announced yet. lastHave is when it last announced one.
	super    bool
	offered  []int32
	lastHave time.Time

	// noPickGen and noPickHave remember a fruitless scan for a new piece, so
	// it is not repeated until the peer or the picker's state changes.
	noPickGen, noPickHave int
}

// outbox is what the loop hands to a peer's writer goroutine: control and
// request messages in order, and the peer's requests to us, served from
// storage by the writer so disk reads never stall the loop.
type outbox struct {
	mu      sync.Mutex
	msgs    []peerwire.Message
	uploads []upload
	store   io.ReaderAt // where uploads are read from; set before any is queued
	closed  bool
	wake    chan struct{}
}

// setStore gives the writer the storage to serve uploads from: known only
// once the metainfo is.
func (o *outbox) setStore(s io.ReaderAt) {
	o.mu.Lock()
	o.store = s
	o.mu.Unlock()
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) send(m peerwire.Message) {
	o.mu.Lock()
	o.msgs = append(o.msgs, m)
	o.mu.Unlock()
	o.signal()
}

// upload is a request a peer made of us; off is where the block starts in the
// torrent's data.
type upload struct {
	index, begin, length uint32
	off                  int64
}

// queueUpload adds a request to serve and returns how many are queued.
func (o *outbox) queueUpload(m upload) int {
	o.mu.Lock()
	o.uploads = append(o.uploads, m)
	n := len(o.uploads)
	o.mu.Unlock()
	o.signal()
	return n
}

func (o *outbox) cancelUpload(index, begin, length uint32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, u := range o.uploads {
		if u.index == index && u.begin == begin && u.length == length {
			o.uploads = append(o.uploads[:i], o.uploads[i+1:]...)
			return
		}
	}
}

// chokeUploads drops queued requests (BEP 3: choking discards them) and
// queues the choke message.
func (o *outbox) chokeUploads() {
	o.mu.Lock()
	o.uploads = o.uploads[:0]
	o.msgs = append(o.msgs, peerwire.Message{ID: peerwire.Choke})
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
}

// takeMsgs swaps out the queued messages and reports whether the outbox is
// closed.
func (o *outbox) takeMsgs(msgs []peerwire.Message) ([]peerwire.Message, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	msgs = append(msgs[:0], o.msgs...)
	o.msgs = o.msgs[:0]
	return msgs, o.closed
}

// takeRun removes the first queued request and those right after it that
// continue it on disk, up to maxBytes in all, so one read serves them; it
// returns the storage to read them from too.
func (o *outbox) takeRun(run []upload, maxBytes int) ([]upload, io.ReaderAt) {
	o.mu.Lock()
	defer o.mu.Unlock()
	run = run[:0]
	size := 0
	for _, u := range o.uploads {
		if len(run) > 0 && (u.off != run[len(run)-1].off+int64(run[len(run)-1].length) || size+int(u.length) > maxBytes) {
			break
		}
		run = append(run, u)
		size += int(u.length)
	}
	o.uploads = append(o.uploads[:0], o.uploads[len(run):]...)
	return run, o.store
}

// peerMsg is what a reader goroutine sends to the loop: the messages that
// were waiting in the read buffer, then, if set, the error that ended the
// connection. Batches spare the loop a wake-up per message.
type peerMsg struct {
	p   *peer
	ms  []peerwire.Message
	err error
}

// msgsBuffer is how many batches the readers may queue for the loop.
const msgsBuffer = 256

// maxBatch bounds the messages in one peerMsg.
const maxBatch = 64

// readLoop reads messages until the connection fails and hands them to the
// loop in batches; batches come from and go back to pool.
func readLoop(ctx context.Context, p *peer, msgs chan<- peerMsg, limit limits, pool *sync.Pool) {
	for {
		batch := (*pool.Get().(*[]peerwire.Message))[:0]
		var err error
		for {
			var m peerwire.Message
			if m, err = p.conn.ReadMessage(); err != nil {
				break
			}
			if m.ID == peerwire.Piece && limit.active() {
				// Not reading is how a download limit pushes back on the sender.
				if err = limit.wait(ctx, len(m.Block)); err != nil {
					break
				}
			}
			batch = append(batch, m)
			if len(batch) == maxBatch || p.conn.Buffered() == 0 {
				break
			}
		}
		select {
		case msgs <- peerMsg{p: p, ms: batch, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// A writer keeps up to readDepth storage reads of at most maxRead bytes in
// flight for its peer: a disk, or the page cache filling from one, serves
// several reads at once much faster than one after another, and the next
// reads proceed while the current blocks are on the wire.
const (
	readDepth = 4
	maxRead   = 256 << 10
)

// diskRead is one storage read serving a run of adjacent requests.
type diskRead struct {
	run     []upload
	buf     *[]byte
	err     error
	done    chan struct{}
	dropped bool // a choke came after it was queued: not to be sent
}

// writeLoop sends what the loop queues, reading requested blocks from the
// outbox's storage; bufs holds maxRead-byte buffers.
func writeLoop(ctx context.Context, p *peer, uploaded *atomic.Int64, keepAlive time.Duration, limit limits, bufs *sync.Pool) {
	var reads sync.WaitGroup
	defer reads.Wait() // no read outlives the writer
	defer p.conn.Close()
	var (
		msgs    []peerwire.Message
		pending []*diskRead // in request order
		blocks  []peerwire.PieceBlock
	)
	idle := time.NewTimer(keepAlive)
	defer idle.Stop()
	for {
		var closed bool
		if msgs, closed = p.out.takeMsgs(msgs); closed {
			return
		}
		if len(msgs) > 0 {
			if err := p.conn.SetWriteDeadline(); err != nil {
				return
			}
			for _, m := range msgs {
				if m.ID == peerwire.Choke {
					for _, r := range pending {
						r.dropped = true
					}
				}
				if err := p.conn.WriteMessage(m); err != nil {
					return
				}
			}
			idle.Reset(keepAlive)
		}
		for len(pending) < readDepth {
			run, store := p.out.takeRun(nil, maxRead)
			if len(run) == 0 {
				break
			}
			r := &diskRead{run: run, buf: bufs.Get().(*[]byte), done: make(chan struct{})}
			size := 0
			for _, u := range run {
				size += int(u.length)
			}
			if size > cap(*r.buf) { // one request larger than maxRead
				bufs.Put(r.buf)
				b := make([]byte, size)
				r.buf = &b
			}
			off := run[0].off
			reads.Go(func() {
				_, r.err = store.ReadAt((*r.buf)[:size], off)
				close(r.done)
			})
			pending = append(pending, r)
		}
		// Whatever waits in the buffer (our own requests, haves) goes out
		// before the writer blocks.
		if err := p.conn.Flush(); err != nil {
			return
		}
		if len(pending) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-p.out.wake:
			case <-idle.C:
				p.out.send(peerwire.Message{ID: peerwire.KeepAlive})
			}
			continue
		}
		r := pending[0]
		select {
		case <-ctx.Done():
			return
		case <-p.out.wake:
			continue
		case <-r.done:
		}
		pending = pending[1:]
		if r.err != nil {
			return
		}
		if !r.dropped {
			var err error
			if blocks, err = sendRun(ctx, p, r, blocks, uploaded, limit); err != nil {
				return
			}
			idle.Reset(keepAlive)
		}
		if cap(*r.buf) == maxRead {
			bufs.Put(r.buf)
		}
	}
}

// sendRun sends the blocks r read: in one writev, or, under an upload cap,
// block by block so the upload stays a steady stream rather than bursts with
// long gaps.
func sendRun(ctx context.Context, p *peer, r *diskRead, blocks []peerwire.PieceBlock, uploaded *atomic.Int64, limit limits) ([]peerwire.PieceBlock, error) {
	if err := p.conn.SetWriteDeadline(); err != nil {
		return blocks, err
	}
	off := 0
	if !limit.active() {
		blocks = blocks[:0]
		for _, u := range r.run {
			blocks = append(blocks, peerwire.PieceBlock{Index: u.index, Begin: u.begin, Data: (*r.buf)[off : off+int(u.length)]})
			off += int(u.length)
		}
		if err := p.conn.WritePieces(blocks); err != nil {
			return blocks, err
		}
		p.uploaded.Add(int64(off))
		uploaded.Add(int64(off))
		return blocks, nil
	}
	for _, u := range r.run {
		b := (*r.buf)[off : off+int(u.length)]
		off += len(b)
		if err := p.conn.Flush(); err != nil {
			return blocks, err
		}
		if err := limit.wait(ctx, len(b)); err != nil {
			return blocks, err
		}
		if err := p.conn.SetWriteDeadline(); err != nil {
			return blocks, err
		}
		if err := p.conn.WritePiece(u.index, u.begin, b); err != nil {
			return blocks, err
		}
		p.uploaded.Add(int64(len(b)))
		uploaded.Add(int64(len(b)))
	}
	return blocks, nil
}
