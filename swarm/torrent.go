package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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
	// SessionUpload and SessionDownload, if set, are caps shared with the
	// other torrents of a session, obeyed beside this torrent's own.
	SessionUpload, SessionDownload *Limiter
	// ClientName is the v of our extension handshake.
	ClientName string
	PeerID     [20]byte
	// Listener, if set, accepts incoming peers; the torrent closes it when Run ends.
	Listener net.Listener
	// Port is our peer-wire port, told to peers in the extension handshake.
	Port int
	// Peers are dialed at start (origin "direct").
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
	// verified (0 when it was known from the start); MetadataFrom gives the
	// address each piece came from.
	MetadataPeers int
	MetadataFrom  []string
	// Learned counts the peer addresses learned from each origin ("pex",
	// "direct", and the names AddPeers was given).
	Learned map[string]int
	// Hashed counts the pieces the start-up check read and hashed: what
	// resume data did not vouch for.
	Hashed int
	// Checked is set once the start-up check is over: from then on the
	// verified pieces are all there are on disk.
	Checked bool
	// PeersSending and PeersGetting count the peers payload came from, and
	// went to, lately (a smoothed rate above zero).
	PeersSending, PeersGetting int
}

// Torrent is one session. Create it with New and drive it with Run.
type Torrent struct {
	cfg      Config
	opt      Options
	infoHash [20]byte
	log      *slog.Logger
	stats    atomic.Pointer[Stats]
	metaSet  atomic.Pointer[torrent.MetaInfo]  // meta, for other goroutines
	haveSet  atomic.Pointer[peerwire.Bitfield] // a copy of have, for other goroutines
	done     chan struct{}
	stopped  chan struct{} // closed when Run returns

	addrs chan peerBatch
	conns chan *peer // handshaken peers, dialed or accepted

	// Everything below is owned by the loop goroutine.
	meta  *torrent.MetaInfo // nil until the metadata is known
	store Storage           // nil until then; writers get it through their outbox
	md    *metadataDL       // the BEP 9 download; nil once done
	// ownStore is set when the torrent opened store and must close it.
	ownStore bool
	// learned counts the addresses learned from each origin.
	learned map[string]int
	// metadataPeers counts who supplied the metadata that verified;
	// metadataFrom says who, piece by piece.
	metadataPeers int
	metadataFrom  []string
	// hashedOnStart counts the pieces the start-up check read and hashed.
	hashedOnStart int
	checked       bool // the start-up check is over
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
	batchPool     sync.Pool // *[]peerwire.Message for reader batches
	readPool      sync.Pool // *[]byte of maxRead bytes for writers' storage reads
	up, down      *Limiter  // this torrent's caps
	// offeredTo counts, by piece, the super-seeded peers offered it that
	// have not announced it yet; superFrom is below the first piece that no
	// peer has or is offered (see superOffer).
	offeredTo []int32
	superFrom int
}

type candidate struct {
	origin    string
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
		addrs:    make(chan peerBatch, 16),
		conns:    make(chan *peer),
		peers:    make(map[*peer]struct{}),
		byID:     make(map[[20]byte]*peer),
		known:    make(map[string]*candidate),
		learned:  make(map[string]int),
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
	t.up = NewLimiter(cfg.UploadRate)
	t.down = NewLimiter(cfg.DownloadRate)
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

// Have returns a snapshot of the verified pieces, nil before the metainfo
// is known; safe to call from any goroutine. It is shared: do not change it.
func (t *Torrent) Have() peerwire.Bitfield {
	if h := t.haveSet.Load(); h != nil {
		return *h
	}
	return nil
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

// peerBatch is addresses from one source.
type peerBatch struct {
	origin string
	addrs  []string
}

// AddPeers asks the torrent to dial addrs (host:port), found by origin (the
// overlay, a tracker, the DHT...). It never blocks: the intake is bounded,
// and a batch that does not fit is dropped (its source will come again).
func (t *Torrent) AddPeers(origin string, addrs []string) {
	select {
	case t.addrs <- peerBatch{origin, addrs}:
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
		jobs:     make(chan hashJob),
		results:  make(chan hashResult),
	}
	if t.meta == nil {
		t.md = newMetadataDL()
		t.log.Info("fetching metadata from peers", "info_hash", fmt.Sprintf("%x", t.infoHash))
	}
	if ln := t.opt.Listener; ln != nil {
		route := func(ih [20]byte) *Torrent {
			if ih == t.infoHash {
				return t
			}
			return nil
		}
		wg.Go(func() { Serve(ctx, ln, route, t.cfg.MaxHandshakes, t.cfg.HandshakeTimeout, t.log) })
	}
	t.addKnown("direct", t.opt.Peers)

	err := l.run()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // stopped while checking data the metadata described
	}
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
	t.checked = true
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
		Learned:       maps.Clone(t.learned),
		Hashed:        t.hashedOnStart,
		Checked:       t.checked,
		MetadataPeers: t.metadataPeers,
		MetadataFrom:  slices.Clone(t.metadataFrom),
	}
	for p := range t.peers {
		if p.downRate > 0 {
			s.PeersSending++
		}
		if p.upRate > 0 {
			s.PeersGetting++
		}
	}
	if t.meta != nil {
		s.Name = t.meta.Name
		s.Size = t.meta.TotalLength
		s.Pieces = t.meta.NumPieces()
		s.Done = t.doneBytes()
		if prev := t.stats.Load(); prev == nil || prev.HavePieces != t.havePieces || t.haveSet.Load() == nil {
			have := slices.Clone(t.have)
			t.haveSet.Store(&have)
		}
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

// addKnown records addresses worth dialing and returns how many were new.
func (t *Torrent) addKnown(origin string, addrs []string) int {
	added := 0
	for _, a := range addrs {
		if a == "" || t.banned[a] {
			continue
		}
		if _, ok := t.known[a]; !ok && len(t.known) < 10*t.cfg.MaxPeers {
			t.known[a] = &candidate{origin: origin}
			t.learned[origin]++
			added++
		}
	}
	return added
}

// handshake exchanges handshakes on a connection we dialed: we speak first.
func (t *Torrent) handshake(nc net.Conn) (*peer, error) {
	if err := nc.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	if err := peerwire.WriteHandshake(nc, t.ourHandshake()); err != nil {
		return nil, err
	}
	theirs, err := peerwire.ReadHandshake(nc)
	if err != nil {
		return nil, err
	}
	if theirs.InfoHash != t.infoHash {
		return nil, errors.New("swarm: handshake for another torrent")
	}
	return t.newPeer(nc, theirs, true)
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
		p, err = t.handshake(nc)
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

// SetRates changes this torrent's upload and download caps (bytes/s, 0
// for none) while it runs.
func (t *Torrent) SetRates(up, down int64) {
	t.up.SetRate(up)
	t.down.SetRate(down)
}

// Rates returns this torrent's upload and download caps.
func (t *Torrent) Rates() (up, down int64) { return t.up.Rate(), t.down.Rate() }

func shuffle[T any](s []T) { rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] }) }
