package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"btclient/peerwire"
	"btclient/torrent"
)

// Storage is what the engine needs of a piece store: positional reads and
// writes in the torrent's concatenated data, safe for concurrent use.
type Storage interface {
	io.ReaderAt
	io.WriterAt
}

// Options are the parts of a session that are not tunables.
type Options struct {
	Meta    *torrent.MetaInfo
	Storage Storage
	PeerID  [20]byte
	// Listener, if set, accepts incoming peers; the torrent closes it when Run ends.
	Listener net.Listener
	// Port is the peer-wire port given to peer sources.
	Port int
	// Source is asked for peers; nil means only Peers and AddPeers.
	Source PeerSource
	// Peers are dialed at start.
	Peers  []string
	Logger *slog.Logger
}

// State is where a session is in its life.
type State string

// States of a session, as /status reports them.
const (
	StateChecking    State = "checking"
	StateDownloading State = "downloading"
	StateSeeding     State = "seeding"
	StateStopping    State = "stopping"
)

// Stats is a snapshot of a session.
type Stats struct {
	State      State
	Size       int64
	Done       int64 // verified bytes
	Downloaded int64 // payload bytes received this run
	Uploaded   int64 // payload bytes sent this run
	DownRate   float64
	UpRate     float64
	Peers      int
	Pieces     int
	HavePieces int
	Wasted     int64 // bytes of pieces that failed the hash check
	BadPeers   int   // peers dropped for bad data or protocol abuse
}

// Torrent is one session. Create it with New and drive it with Run.
type Torrent struct {
	cfg   Config
	opt   Options
	meta  *torrent.MetaInfo
	log   *slog.Logger
	stats atomic.Pointer[Stats]
	done  chan struct{}

	addrs chan []string

	// Everything below is owned by the loop goroutine.
	peers      map[*peer]struct{}
	byID       map[[20]byte]*peer
	known      map[string]*candidate
	banned     map[string]bool
	dialing    int
	have       peerwire.Bitfield
	havePieces int
	avail      []int
	active     map[int]*pieceDL
	started    peerwire.Bitfield // the keys of active, for the picker's scan
	order      []*pieceDL        // active pieces, oldest first
	memUsed    int64
	failed     map[int]*failedPiece
	downloaded int64
	uploaded   atomic.Int64
	wasted     int64
	badPeers   int
	downRate   float64
	upRate     float64
	lastDown   int64
	lastUp     int64
	state      State
	lastChoke  time.Time
	lastOpt    time.Time
	blockPool  sync.Pool
	batchPool  sync.Pool     // *[]peerwire.Message for reader batches
	readPool   sync.Pool     // *[]byte of maxRead bytes for writers' storage reads
	upLimit    *rate.Limiter // nil: no limit
	downLimit  *rate.Limiter
}

type candidate struct {
	fails     int
	nextDial  time.Time
	connected bool
	self      bool
}

// New prepares a session; nothing runs until Run.
func New(cfg Config, opt Options) (*Torrent, error) {
	m := opt.Meta
	if m == nil || opt.Storage == nil {
		return nil, errors.New("swarm: metainfo and storage are required")
	}
	if m.PieceLength <= 0 || m.PieceLength > 1<<30 {
		return nil, fmt.Errorf("swarm: piece length %d out of range", m.PieceLength)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Torrent{
		cfg:     cfg,
		opt:     opt,
		meta:    m,
		log:     opt.Logger,
		done:    make(chan struct{}),
		addrs:   make(chan []string, 16),
		peers:   make(map[*peer]struct{}),
		byID:    make(map[[20]byte]*peer),
		known:   make(map[string]*candidate),
		banned:  make(map[string]bool),
		have:    peerwire.NewBitfield(m.NumPieces()),
		avail:   make([]int, m.NumPieces()),
		active:  make(map[int]*pieceDL),
		started: peerwire.NewBitfield(m.NumPieces()),
		failed:  make(map[int]*failedPiece),
		state:   StateChecking,
	}
	t.upLimit = newLimiter(cfg.UploadRate)
	t.downLimit = newLimiter(cfg.DownloadRate)
	t.batchPool.New = func() any { b := make([]peerwire.Message, 0, maxBatch); return &b }
	t.blockPool.New = func() any { b := make([]byte, cfg.BlockSize); return &b }
	t.readPool.New = func() any { b := make([]byte, maxRead); return &b }
	t.publish()
	return t, nil
}

// Stats returns the latest snapshot; safe to call from any goroutine.
func (t *Torrent) Stats() Stats { return *t.stats.Load() }

// Done is closed once every piece is verified on disk.
func (t *Torrent) Done() <-chan struct{} { return t.done }

// AddPeers asks the session to dial addrs (host:port). It never blocks.
func (t *Torrent) AddPeers(addrs []string) {
	select {
	case t.addrs <- addrs:
	default:
	}
}

// Run checks what is on disk, then downloads and seeds until ctx is done or
// a fatal storage error occurs. It returns nil on a clean stop.
func (t *Torrent) Run(ctx context.Context) error {
	if t.opt.Listener != nil {
		defer t.opt.Listener.Close()
	}
	if err := t.check(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	t.state = StateDownloading
	if t.havePieces == t.meta.NumPieces() {
		t.complete()
	}
	t.publish()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	conns := make(chan *peer)
	dialFail := make(chan string)
	msgs := make(chan peerMsg, 256)
	jobs := make(chan hashJob)
	results := make(chan hashResult)
	for range t.cfg.HashWorkers {
		wg.Go(func() { hashWorker(ctx, t.opt.Storage, jobs, results) })
	}
	if t.opt.Listener != nil {
		wg.Go(func() { t.acceptLoop(ctx, t.opt.Listener, conns) })
		go func() { <-ctx.Done(); t.opt.Listener.Close() }()
	}
	if t.opt.Source != nil {
		wg.Go(func() { t.announceLoop(ctx) })
	}
	t.addKnown(t.opt.Peers)

	l := loop{t: t, ctx: ctx, wg: &wg, conns: conns, dialFail: dialFail, msgs: msgs, jobs: jobs, results: results}
	err := l.run()
	t.state = StateStopping
	t.publish()
	for p := range t.peers {
		t.dropPeer(p, nil)
	}
	return err
}

// publish stores a fresh Stats snapshot.
func (t *Torrent) publish() {
	s := &Stats{
		State:      t.state,
		Size:       t.meta.TotalLength,
		Downloaded: t.downloaded,
		Uploaded:   t.uploaded.Load(),
		DownRate:   t.downRate,
		UpRate:     t.upRate,
		Peers:      len(t.peers),
		Pieces:     t.meta.NumPieces(),
		HavePieces: t.havePieces,
		Wasted:     t.wasted,
		BadPeers:   t.badPeers,
	}
	s.Done = t.doneBytes()
	t.stats.Store(s)
}

func (t *Torrent) doneBytes() int64 {
	n := t.meta.NumPieces()
	if t.havePieces == n {
		return t.meta.TotalLength
	}
	done := int64(t.havePieces) * t.meta.PieceLength
	if n > 0 && t.have.Has(n-1) {
		done -= t.meta.PieceLength - t.meta.PieceSize(n-1)
	}
	return done
}

func (t *Torrent) complete() {
	select {
	case <-t.done:
		return
	default:
	}
	t.state = StateSeeding
	t.publish() // before close, so whoever Done wakes sees the final stats
	close(t.done)
	t.log.Info("download complete", "name", t.meta.Name, "bytes", t.meta.TotalLength)
}

func (t *Torrent) isComplete() bool { return t.havePieces == t.meta.NumPieces() }

// addKnown records addresses worth dialing.
func (t *Torrent) addKnown(addrs []string) {
	for _, a := range addrs {
		if a == "" || t.banned[a] {
			continue
		}
		if _, ok := t.known[a]; !ok && len(t.known) < 10*t.cfg.MaxPeers {
			t.known[a] = &candidate{}
		}
	}
}

// acceptLoop accepts incoming peers and handshakes with each on its own
// goroutine. At most MaxHandshakes may be half-open: a newcomer beyond that
// closes the oldest, so a slowloris holding every slot cannot lock honest
// peers out.
func (t *Torrent) acceptLoop(ctx context.Context, ln net.Listener, conns chan<- *peer) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var half halfOpen
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.log.Warn("accept failed", "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
				continue
			case <-ctx.Done():
				return
			}
		}
		half.add(nc, t.cfg.MaxHandshakes)
		wg.Go(func() {
			p, err := t.handshake(nc, false)
			half.remove(nc)
			if err != nil {
				nc.Close()
				return
			}
			select {
			case conns <- p:
			case <-ctx.Done():
				nc.Close()
			}
		})
	}
}

// halfOpen tracks incoming connections still in their handshake, oldest first.
type halfOpen struct {
	mu    sync.Mutex
	conns []net.Conn
}

// add records nc, closing the oldest connections while more than max are open.
func (h *halfOpen) add(nc net.Conn, max int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.conns) >= max {
		h.conns[0].Close()
		h.conns = h.conns[1:]
	}
	h.conns = append(h.conns, nc)
}

func (h *halfOpen) remove(nc net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range h.conns {
		if c == nc {
			h.conns = append(h.conns[:i], h.conns[i+1:]...)
			return
		}
	}
}

// handshake exchanges handshakes on nc; an outgoing side speaks first.
func (t *Torrent) handshake(nc net.Conn, outgoing bool) (*peer, error) {
	ours := peerwire.Handshake{InfoHash: t.meta.InfoHash, PeerID: t.opt.PeerID}
	if err := nc.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	if outgoing {
		if err := peerwire.WriteHandshake(nc, ours); err != nil {
			return nil, err
		}
	}
	theirs, err := peerwire.ReadHandshake(nc)
	if err != nil {
		return nil, err
	}
	if theirs.InfoHash != t.meta.InfoHash {
		return nil, errors.New("swarm: handshake for another torrent")
	}
	if !outgoing {
		if err := peerwire.WriteHandshake(nc, ours); err != nil {
			return nil, err
		}
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	cc := peerwire.DefaultConnConfig(t.meta.NumPieces())
	cc.ReadTimeout = t.cfg.ReadTimeout
	return &peer{
		addr:        nc.RemoteAddr().String(),
		id:          theirs.PeerID,
		incoming:    !outgoing,
		conn:        peerwire.NewConn(nc, cc),
		out:         newOutbox(),
		amChoking:   true,
		peerChoking: true,
		outstanding: make(map[blockKey]struct{}),
	}, nil
}

// dial connects to addr and hands the peer to the loop.
func (t *Torrent) dial(ctx context.Context, addr string, conns chan<- *peer, fail chan<- string) {
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	var p *peer
	if err == nil {
		p, err = t.handshake(nc, true)
		if err != nil {
			nc.Close()
		}
	}
	if err != nil {
		select {
		case fail <- addr:
		case <-ctx.Done():
		}
		return
	}
	p.addr = addr
	select {
	case conns <- p:
	case <-ctx.Done():
		nc.Close()
	}
}

// announceLoop tells the peer source about us and feeds its peers to the loop.
func (t *Torrent) announceLoop(ctx context.Context) {
	ev := EventStarted
	completed := t.done
	if t.isComplete() {
		completed = nil // a seeder from the start announces started with left 0
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), t.cfg.StopTimeout)
			_, _ = t.opt.Source.Announce(sctx, t.announce(EventStopped))
			cancel()
			return
		case <-completed:
			completed = nil
			ev = EventCompleted
		case <-timer.C:
		}
		addrs, err := t.opt.Source.Announce(ctx, t.announce(ev))
		if err != nil {
			if ctx.Err() == nil {
				t.log.Debug("announce failed", "event", ev, "err", err)
			}
		} else {
			ev = EventNone
			if len(addrs) > 0 {
				select {
				case t.addrs <- addrs:
				case <-ctx.Done():
				}
			}
		}
		next := t.cfg.AnnounceInterval
		if s := t.Stats(); s.State != StateSeeding && s.Peers < t.cfg.WantPeers {
			next = t.cfg.PeerRetryInterval
		}
		timer.Reset(next)
	}
}

func (t *Torrent) announce(ev Event) Announce {
	s := t.Stats()
	return Announce{
		InfoHash:   t.meta.InfoHash,
		PeerID:     t.opt.PeerID,
		Port:       t.opt.Port,
		Uploaded:   s.Uploaded,
		Downloaded: s.Downloaded,
		Left:       s.Size - s.Done,
		Event:      ev,
	}
}

func (t *Torrent) getBlock(n int) []byte {
	if n == t.cfg.BlockSize {
		return *t.blockPool.Get().(*[]byte)
	}
	return make([]byte, n)
}

func (t *Torrent) putBlock(b []byte) {
	if cap(b) == t.cfg.BlockSize {
		b = b[:cap(b)]
		t.blockPool.Put(&b)
	}
}

// newLimiter returns a limiter of bytesPerSec, or nil for no limit. Its burst
// fits the largest block.
func newLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), int(max(bytesPerSec, 128<<10)))
}

func shuffle[T any](s []T) { rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] }) }
