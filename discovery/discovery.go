// Package discovery finds peers for the torrents of a session: the gossip
// overlay, the mainline DHT and HTTP or UDP trackers. One Service holds the
// parts shared by every torrent (the overlay node, the DHT node, the tracker
// client); for each torrent it runs one announcer per source, and each hands
// what it finds to the torrent tagged with its origin. Private torrents
// (BEP 27) use their trackers only. The fallback policy lives here: in auto
// mode a tracker is asked once the overlay has yielded no peers for a while.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"btclient/dht"
	"btclient/overlay"
	"btclient/tracker"
)

// Origin says where a peer address came from.
type Origin string

// The origins of peer addresses.
const (
	FromOverlay Origin = "overlay"
	FromTracker Origin = "tracker"
	FromDHT     Origin = "dht"
	FromDirect  Origin = "direct" // --peer and a magnet's x.pe
)

// Modes of discovery.
const (
	ModeAuto    = "auto"    // the overlay, and trackers once it yields nothing for FallbackAfter
	ModeOverlay = "overlay" // the overlay only
	ModeTracker = "tracker" // trackers only; no overlay node is started
)

// Config holds every setting of a Service.
type Config struct {
	// Mode is ModeAuto, ModeOverlay or ModeTracker.
	Mode string
	// Overlay is the overlay node's configuration (unused in tracker mode).
	Overlay overlay.Config
	// RegisterName, with DNSAPI, keeps the overlay address registered in a
	// btclient dnsd under that name.
	RegisterName, DNSAPI string
	// FallbackAfter is how long the overlay may yield no peers, in auto
	// mode, before trackers are asked.
	FallbackAfter time.Duration
	// Tracker, when set, replaces every torrent's trackers.
	Tracker string
	// DHT configures the session's DHT node; nil runs none. With
	// DHTAnyPort, a DHT.ListenAddr whose port is taken is given up for any
	// free port rather than failing.
	DHT        *dht.Config
	DHTAnyPort bool
	// PeerPort is our peer-wire port, the one announced.
	PeerPort int
	// AnnounceInterval spaces routine overlay and DHT announces; while a
	// download has fewer than WantPeers peers they come every
	// PeerRetryInterval instead (DHTRetryInterval for the DHT, whose
	// lookups cost more).
	AnnounceInterval, PeerRetryInterval time.Duration
	DHTInterval, DHTRetryInterval       time.Duration
	WantPeers                           int
	// SeedLookupInterval spaces a complete torrent's overlay lookups (its
	// announces still come every AnnounceInterval, and cost nothing on the
	// wire while unchanged): leechers find a seeder, not the reverse, and a
	// daemon seeding thousands of torrents would otherwise query the
	// overlay for each of them every AnnounceInterval.
	SeedLookupInterval time.Duration
	// StopTimeout bounds the stopped announces when a torrent ends.
	StopTimeout time.Duration
	Logger      *slog.Logger
}

// DefaultConfig returns the defaults: auto mode, the seed's overlay
// timings, a tracker fallback after 3 s.
func DefaultConfig() Config {
	return Config{
		Mode:               ModeAuto,
		Overlay:            overlay.DefaultConfig(),
		FallbackAfter:      3 * time.Second,
		PeerPort:           6881,
		AnnounceInterval:   30 * time.Second,
		PeerRetryInterval:  2 * time.Second,
		DHTInterval:        15 * time.Minute,
		DHTRetryInterval:   20 * time.Second,
		WantPeers:          8,
		SeedLookupInterval: 10 * time.Minute,
		StopTimeout:        2 * time.Second,
	}
}

// Validate reports a setting that cannot work.
func (c Config) Validate() error {
	switch c.Mode {
	case ModeAuto, ModeOverlay, ModeTracker:
	default:
		return fmt.Errorf("discovery mode %q: want overlay, tracker or auto", c.Mode)
	}
	if c.RegisterName != "" && c.DNSAPI == "" {
		return errors.New("registering in dnsd needs its API address")
	}
	if c.PeerPort < 0 || c.PeerPort > 65535 {
		return fmt.Errorf("peer port %d out of range", c.PeerPort)
	}
	if c.AnnounceInterval <= 0 || c.PeerRetryInterval <= 0 || c.DHTInterval <= 0 || c.DHTRetryInterval <= 0 || c.SeedLookupInterval <= 0 || c.StopTimeout <= 0 {
		return errors.New("announce intervals must be positive")
	}
	return nil
}

// Torrent is what an announcer needs of a torrent.
type Torrent interface {
	// State is the torrent's progress now.
	State() State
	// Completed is closed when the download is complete.
	Completed() <-chan struct{}
	// AddPeers hands the torrent addresses worth dialing; it must not block.
	AddPeers(origin Origin, addrs []string)
}

// State is a torrent's progress as announces report it.
type State struct {
	Uploaded, Downloaded, Left int64
	// Peers is how many peers are connected.
	Peers int
	// Complete is set once every piece is verified; Private for a BEP 27
	// torrent (known once its metadata is); Checking while the data on disk
	// is being verified, or not yet.
	Complete, Private, Checking bool
}

// Params are what does not change about a torrent for its announcers.
type Params struct {
	InfoHash [20]byte
	PeerID   [20]byte
	// Trackers are the tracker tiers: the torrent's, or a magnet's tr list.
	Trackers [][]string
}

// Service is the discovery shared by the torrents of a session.
type Service struct {
	cfg     Config
	log     *slog.Logger
	node    *overlay.Node // nil in tracker mode
	dht     *dht.Node     // nil without a DHT
	tracker *tracker.Client
	peerAdv string // our peer-wire address as the overlay announces it
}

// New starts listening for the overlay (unless in tracker mode); Run runs it.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, tracker: &tracker.Client{}}
	if cfg.DHT != nil {
		dc := *cfg.DHT
		dc.Logger = cfg.Logger
		n, err := dht.New(dc)
		if host, _, serr := net.SplitHostPort(dc.ListenAddr); err != nil && cfg.DHTAnyPort && serr == nil {
			s.log.Warn("the DHT's port is taken; taking any", "addr", dc.ListenAddr, "err", err)
			dc.ListenAddr = net.JoinHostPort(host, "0")
			n, err = dht.New(dc)
		}
		if err != nil {
			return nil, fmt.Errorf("dht: %w", err)
		}
		s.dht = n
	}
	if cfg.Mode != ModeTracker {
		oc := cfg.Overlay
		oc.Logger = cfg.Logger
		n, err := overlay.NewNode(oc)
		if err != nil {
			s.closeDHT()
			return nil, err // it names the overlay and its address
		}
		s.node = n
		host, _, _ := net.SplitHostPort(n.Addr())
		s.peerAdv = net.JoinHostPort(host, fmt.Sprint(cfg.PeerPort))
	}
	return s, nil
}

// closeDHT releases a DHT node that will never run: Run on a done context
// closes its socket (and saves the table it loaded, unchanged).
func (s *Service) closeDHT() {
	if s.dht == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.dht.Run(ctx)
	s.dht = nil
}

// DHTPort is the DHT node's UDP port, 0 without one.
func (s *Service) DHTPort() int {
	if s.dht == nil {
		return 0
	}
	return int(s.dht.Addr().Port())
}

// AddDHTNode hears of a peer's DHT node (its BEP 5 port message).
func (s *Service) AddDHTNode(addr netip.AddrPort) {
	if s.dht != nil {
		s.dht.AddNode(addr)
	}
}

// DHTStats are the DHT node's numbers, ok false without one.
func (s *Service) DHTStats() (st dht.Stats, ok bool) {
	if s.dht == nil {
		return st, false
	}
	return s.dht.Stats(), true
}

// Overlay is the overlay node, nil in tracker mode: the session's other
// users of the overlay (the name index) share it.
func (s *Service) Overlay() *overlay.Node { return s.node }

// OverlayAddr is the overlay node's address, "" in tracker mode.
func (s *Service) OverlayAddr() string {
	if s.node == nil {
		return ""
	}
	return s.node.Addr()
}

// Run runs the overlay node (and its dnsd registration) and the DHT node
// until ctx is done. Cancel it only after every torrent's Announce has
// returned, so that their stopped announces still go out.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	var dhtErr error
	if s.dht != nil {
		wg.Go(func() { dhtErr = s.dht.Run(ctx) })
	}
	var err error
	if s.node != nil {
		if s.cfg.RegisterName != "" {
			host, _, _ := net.SplitHostPort(s.node.Addr())
			wg.Go(func() { KeepRegistered(ctx, s.cfg.DNSAPI, s.cfg.RegisterName, host, s.log) })
		}
		err = s.node.Run(ctx)
	} else {
		<-ctx.Done()
	}
	wg.Wait()
	return errors.Join(err, dhtErr)
}

// Announce finds peers for one torrent until ctx is done, then tells every
// source it stopped. It blocks; run it on a goroutine of the torrent's.
func (s *Service) Announce(ctx context.Context, p Params, t Torrent) {
	// As other clients do, announce once the data is checked: until then
	// the torrent cannot say what it has, and a daemon checking thousands
	// of new torrents would look each up every PeerRetryInterval.
	wake := t.Completed() // a seeder's check ends as it closes
	for t.State().Checking {
		select {
		case <-wake:
			wake = nil // closed already (checked again after completing): it wakes no one
		default:
		}
		if !wait(ctx, s.cfg.PeerRetryInterval, wake) {
			return
		}
	}
	tiers := p.Trackers
	if s.cfg.Tracker != "" {
		tiers = [][]string{{s.cfg.Tracker}}
	}
	g := &fallbackGate{opened: make(chan struct{}), after: s.cfg.FallbackAfter}
	if s.cfg.Mode == ModeTracker || len(s.cfg.Overlay.Bootstrap) == 0 && s.cfg.Overlay.ResolveBootstrap == nil {
		g.open() // nothing to wait for
	}
	var wg sync.WaitGroup
	if s.node != nil {
		wg.Go(func() { s.announceOverlay(ctx, p, t, g) })
	}
	if s.cfg.Mode != ModeOverlay && len(tiers) > 0 {
		wg.Go(func() { s.announceTrackers(ctx, p, t, tiers, g) })
	}
	if s.dht != nil {
		wg.Go(func() { s.announceDHT(ctx, p, t) })
	}
	wg.Wait()
}

// fallbackGate opens once the overlay has found no peers for a while.
type fallbackGate struct {
	mu     sync.Mutex
	since  time.Time
	after  time.Duration
	once   sync.Once
	opened chan struct{}
}

func (g *fallbackGate) open() { g.once.Do(func() { close(g.opened) }) }

// found records what one overlay round yielded.
func (g *fallbackGate) found(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case n > 0:
		g.since = time.Time{}
	case g.since.IsZero():
		g.since = time.Now()
	case time.Since(g.since) >= g.after:
		g.open()
	}
}

// wait sleeps for d or until ctx is done; false means ctx is done.
func wait(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// nextRound is how long an announcer waits: short while a download lacks peers.
func (s *Service) nextRound(st State, routine, retry time.Duration) time.Duration {
	if !st.Complete && st.Peers < s.cfg.WantPeers {
		return retry
	}
	return routine
}

// stopContext bounds a stopped announce after the torrent's context ended.
func (s *Service) stopContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StopTimeout)
}
