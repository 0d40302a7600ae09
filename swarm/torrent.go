package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
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
	// Meta is the torrent's metainfo. Nil means it is fetched from peers
	// (BEP 9) for InfoHash, as for a magnet link.
	Meta *torrent.MetaInfo
	// InfoHash names the torrent when Meta is nil.
	InfoHash [20]byte
	// Name is shown until the metadata is known (a magnet's dn).
	Name string
	// Storage holds the data when Meta is given; the caller owns it.
	Storage Storage
	// OpenStorage, used when Storage is nil, opens the storage once the
	// metadata is known. The torrent closes what it opened (if it is an
	// io.Closer) when Run ends.
	OpenStorage func(*torrent.MetaInfo) (Storage, error)
	// GotMetadata, if set, is called on the torrent's goroutine with
	// metadata fetched from peers, before storage is opened: the place to
	// save it so a restart needs no peers. It must not block for long.
	GotMetadata func(*torrent.MetaInfo)
	// Verified, if set, lists pieces known good from trusted resume data:
	// the start-up check does not hash them again.
	Verified peerwire.Bitfield
	// DHTPort, when non-zero, is the UDP port of our DHT node: the
	// handshake says so and peers that run one get a port message.
	DHTPort int
	// DHTNode, if set, hears of every peer's DHT node (BEP 5 port
	// message). Called on the torrent's goroutine; it must not block.
	DHTNode func(netip.AddrPort)
	// ClientName is the v of our extension handshake.
	ClientName string
	PeerID     [20]byte
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
	StateMetadata    State = "fetching metadata"
	StateChecking    State = "checking"
	StateDownloading State = "downloading"
	StateSeeding     State = "seeding"
	StateStopping    State = "stopping"
)

// Stats is a snapshot of a session.
type Stats struct {
	State State
	// Name is the torrent's name, or the magnet's until the metadata is known.
	Name       string
	Size       int64 // 0 until the metadata is known
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
	// MetadataPieces and MetadataHave count BEP 9 pieces while fetching
	// the metadata; both 0 when it was known from the start.
	MetadataPieces, MetadataHave int
	// MetadataPeers counts the peers whose pieces made up the metadata that
	// verified (0 when it was known from the start).
	MetadataPeers int
	// PEXPeers counts addresses learned from peer exchange.
	PEXPeers int
	// Hashed counts the pieces the start-up check read and hashed: what
	// resume data did not vouch for.
	Hashed int
}

// Torrent is one session. Create it with New and drive it with Run.
type Torrent struct {
	cfg      Config
	opt      Options
	infoHash [20]byte
	log      *slog.Logger
	stats    atomic.Pointer[Stats]
	metaSet  atomic.Pointer[torrent.MetaInfo] // meta, for other goroutines
	done     chan struct{}
	stopped  chan struct{} // closed when Run returns

	addrs chan []string
	conns chan *peer // handshaken peers, dialed or accepted

	// Everything below is owned by the loop goroutine.
	meta  *torrent.MetaInfo // nil until the metadata is known
	store Storage           // nil until then; writers get it through their outbox
	md    *metadataDL       // the BEP 9 download; nil once done
	// ownStore is set when the torrent opened store and must close it.
	ownStore bool
	pexPeers int
	// metadataPeers counts who supplied the metadata that verified.
	metadataPeers int
	// hashedOnStart counts the pieces the start-up check read and hashed.
	hashedOnStart int
	peers         map[*peer]struct{}
	byID          map[[20]byte]*peer
	known         map[string]*candidate
	banned        map[string]bool
	dialing       int
	have          peerwire.Bitfield
	havePieces    int
	avail         []int
	active        map[int]*pieceDL
	started       peerwire.Bitfield // the keys of active, for the picker's scan
	order         []*pieceDL        // active pieces, oldest first
	memUsed       int64
	failed        map[int]*failedPiece
	downloaded    int64
	uploaded      atomic.Int64
	wasted        int64
	badPeers      int
	downRate      float64
	upRate        float64
	lastDown      int64
	lastUp        int64
	state         State
	lastChoke     time.Time
	lastOpt       time.Time
	blockPool     sync.Pool
	batchPool     sync.Pool     // *[]peerwire.Message for reader batches
	readPool      sync.Pool     // *[]byte of maxRead bytes for writers' storage reads
	upLimit       *rate.Limiter // nil: no limit
	downLimit     *rate.Limiter
}

type candidate struct {
	fails     int
	nextDial  time.Time
	connected bool
	self      bool
}

// New prepares a session; nothing runs until Run.
func New(cfg Config, opt Options) (*Torrent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := opt.Meta
	switch {
	case m == nil && opt.InfoHash == [20]byte{}:
		return nil, errors.New("swarm: metainfo or an info hash is required")
	case m != nil && opt.Storage == nil && opt.OpenStorage == nil:
		return nil, errors.New("swarm: storage is required")
	case m == nil && opt.OpenStorage == nil:
		return nil, errors.New("swarm: a torrent without metainfo needs OpenStorage")
	case m != nil && (m.PieceLength <= 0 || m.PieceLength > 1<<30):
		return nil, fmt.Errorf("swarm: piece length %d out of range", m.PieceLength)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.ClientName == "" {
		opt.ClientName = "btclient"
	}
	t := &Torrent{
		cfg:      cfg,
		opt:      opt,
		infoHash: opt.InfoHash,
		log:      opt.Logger,
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
		addrs:    make(chan []string, 16),
		conns:    make(chan *peer),
		peers:    make(map[*peer]struct{}),
		byID:     make(map[[20]byte]*peer),
		known:    make(map[string]*candidate),
		banned:   make(map[string]bool),
		active:   make(map[int]*pieceDL),
		failed:   make(map[int]*failedPiece),
		state:    StateMetadata,
		store:    opt.Storage,
	}
	if m != nil {
		t.infoHash = m.InfoHash
		t.setMeta(m)
		t.state = StateChecking
	}
	t.upLimit = newLimiter(cfg.UploadRate)
	t.downLimit = newLimiter(cfg.DownloadRate)
	t.batchPool.New = func() any { b := make([]peerwire.Message, 0, maxBatch); return &b }
	t.blockPool.New = func() any { b := make([]byte, cfg.BlockSize); return &b }
	t.readPool.New = func() any { b := make([]byte, maxRead); return &b }
	t.publish()
	return t, nil
}

// setMeta makes m the torrent's metainfo and sizes what depends on it.
func (t *Torrent) setMeta(m *torrent.MetaInfo) {
	t.meta = m
	t.have = peerwire.NewBitfield(m.NumPieces())
	t.avail = make([]int, m.NumPieces())
	t.started = peerwire.NewBitfield(m.NumPieces())
	t.metaSet.Store(m)
}

// InfoHash returns the torrent's info hash.
func (t *Torrent) InfoHash() [20]byte { return t.infoHash }

// Meta returns the metainfo, or nil while it is being fetched; safe to call
// from any goroutine.
func (t *Torrent) Meta() *torrent.MetaInfo { return t.metaSet.Load() }

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
// a fatal storage error occurs. Without metainfo it first fetches the
// metadata from the peers it finds. It returns nil on a clean stop.
func (t *Torrent) Run(ctx context.Context) error {
	defer close(t.stopped)
	if t.opt.Listener != nil {
		defer t.opt.Listener.Close()
	}
	defer t.closeStore()
	if t.meta != nil {
		if err := t.prepare(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	l := &loop{t: t, ctx: ctx, wg: &wg,
		dialFail: make(chan string),
		msgs:     make(chan peerMsg, 256),
		jobs:     make(chan hashJob),
		results:  make(chan hashResult),
	}
	if t.meta != nil {
		l.startHashing()
	} else {
		t.md = newMetadataDL()
		t.log.Info("fetching metadata from peers", "info_hash", fmt.Sprintf("%x", t.infoHash))
	}
	if t.opt.Listener != nil {
		wg.Go(func() { t.acceptLoop(ctx, t.opt.Listener) })
		go func() { <-ctx.Done(); t.opt.Listener.Close() }()
	}
	if t.opt.Source != nil {
		wg.Go(func() { t.announceLoop(ctx) })
	}
	t.addKnown(t.opt.Peers)

	err := l.run()
	t.state = StateStopping
	t.publish()
	for p := range t.peers {
		t.dropPeer(p, nil)
	}
	return err
}

// prepare opens the storage if the torrent opens its own and checks what it
// holds; the metainfo is known.
func (t *Torrent) prepare(ctx context.Context) error {
	if t.store == nil {
		st, err := t.opt.OpenStorage(t.meta)
		if err != nil {
			return fmt.Errorf("open storage: %w", err)
		}
		t.store, t.ownStore = st, true
	}
	t.state = StateChecking
	t.publish()
	if err := t.check(ctx); err != nil {
		return err
	}
	t.state = StateDownloading
	if t.havePieces == t.meta.NumPieces() {
		t.complete()
	}
	t.publish()
	return nil
}

func (t *Torrent) closeStore() {
	if c, ok := t.store.(io.Closer); ok && t.ownStore {
		if err := c.Close(); err != nil {
			t.log.Warn("closing storage", "err", err)
		}
	}
}

// publish stores a fresh Stats snapshot.
func (t *Torrent) publish() {
	s := &Stats{
		State:         t.state,
		Name:          t.opt.Name,
		Downloaded:    t.downloaded,
		Uploaded:      t.uploaded.Load(),
		DownRate:      t.downRate,
		UpRate:        t.upRate,
		Peers:         len(t.peers),
		HavePieces:    t.havePieces,
		Wasted:        t.wasted,
		BadPeers:      t.badPeers,
		PEXPeers:      t.pexPeers,
		Hashed:        t.hashedOnStart,
		MetadataPeers: t.metadataPeers,
	}
	if t.meta != nil {
		s.Name = t.meta.Name
		s.Size = t.meta.TotalLength
		s.Pieces = t.meta.NumPieces()
		s.Done = t.doneBytes()
	}
	if s.Name == "" {
		s.Name = fmt.Sprintf("%x", t.infoHash)
	}
	if md := t.md; md != nil && md.size > 0 {
		s.MetadataPieces, s.MetadataHave = len(md.pieces), md.got
	}
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

func (t *Torrent) isComplete() bool { return t.meta != nil && t.havePieces == t.meta.NumPieces() }

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
func (t *Torrent) acceptLoop(ctx context.Context, ln net.Listener) {
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
			case t.conns <- p:
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
	if err := nc.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	if outgoing {
		if err := peerwire.WriteHandshake(nc, t.ourHandshake()); err != nil {
			return nil, err
		}
	}
	theirs, err := peerwire.ReadHandshake(nc)
	if err != nil {
		return nil, err
	}
	if theirs.InfoHash != t.infoHash {
		return nil, errors.New("swarm: handshake for another torrent")
	}
	if outgoing {
		return t.newPeer(nc, theirs, true)
	}
	return t.accepted(nc, theirs)
}

// AddConn hands the torrent an incoming connection whose handshake, for this
// torrent, the caller already read: how a listener shared by many torrents
// routes peers by info hash. It answers with our handshake and queues the
// peer for the torrent's loop. On an error the caller closes nc.
func (t *Torrent) AddConn(ctx context.Context, nc net.Conn, theirs peerwire.Handshake) error {
	if theirs.InfoHash != t.infoHash {
		return errors.New("swarm: handshake for another torrent")
	}
	p, err := t.accepted(nc, theirs)
	if err != nil {
		return err
	}
	select {
	case t.conns <- p:
		return nil
	case <-t.stopped:
		return errors.New("swarm: torrent stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// accepted answers an incoming peer's handshake with ours.
func (t *Torrent) accepted(nc net.Conn, theirs peerwire.Handshake) (*peer, error) {
	if err := nc.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	if err := peerwire.WriteHandshake(nc, t.ourHandshake()); err != nil {
		return nil, err
	}
	return t.newPeer(nc, theirs, false)
}

func (t *Torrent) ourHandshake() peerwire.Handshake {
	h := peerwire.Handshake{InfoHash: t.infoHash, PeerID: t.opt.PeerID}
	h.SetExtensions()
	if t.opt.DHTPort > 0 {
		h.SetDHT()
	}
	return h
}

func (t *Torrent) newPeer(nc net.Conn, theirs peerwire.Handshake, outgoing bool) (*peer, error) {
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	// Before the metadata the piece count is unknown: the default bound
	// still fits the bitfield of the largest info dictionary accepted.
	numPieces := 0
	if m := t.Meta(); m != nil {
		numPieces = m.NumPieces()
	}
	cc := peerwire.DefaultConnConfig(numPieces)
	cc.ReadTimeout = t.cfg.ReadTimeout
	return &peer{
		addr:        nc.RemoteAddr().String(),
		id:          theirs.PeerID,
		incoming:    !outgoing,
		extensions:  theirs.SupportsExtensions(),
		dht:         theirs.SupportsDHT(),
		conn:        peerwire.NewConn(nc, cc),
		out:         newOutbox(),
		amChoking:   true,
		peerChoking: true,
		outstanding: make(map[blockKey]struct{}),
	}, nil
}

// dial connects to addr and hands the peer to the loop.
func (t *Torrent) dial(ctx context.Context, addr string, fail chan<- string) {
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
	case t.conns <- p:
	case <-ctx.Done():
		nc.Close()
	}
}

// announceLoop tells the peer source about us and feeds its peers to the loop.
func (t *Torrent) announceLoop(ctx context.Context) {
	ev := EventStarted
	completed := t.done
	if t.Stats().State == StateSeeding {
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
	left := s.Size - s.Done
	if s.State == StateMetadata {
		// The size is unknown, and 0 would claim we seed; libtorrent
		// reports one block in the same place.
		left = 16 << 10
	}
	return Announce{
		InfoHash:   t.infoHash,
		PeerID:     t.opt.PeerID,
		Port:       t.opt.Port,
		Uploaded:   s.Uploaded,
		Downloaded: s.Downloaded,
		Left:       left,
		Event:      ev,
		Private:    t.Meta() != nil && t.Meta().Private,
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
