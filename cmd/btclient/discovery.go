package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"btclient/dnsd"
	"btclient/overlay"
	"btclient/swarm"
	"btclient/torrent"
	"btclient/tracker"
)

// discoveryFlags choose how peers are found: the overlay, a tracker, or both.
type discoveryFlags struct {
	mode        string
	bootstrap   []string
	overlayPort int
	tracker     string
	dns         string
	advertise   string
	swarmKey    string
	regName     string
	dnsAPI      string
	fallback    time.Duration
	bind        string
}

func (d *discoveryFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&d.bootstrap, "bootstrap", nil, "overlay bootstrap nodes, comma-separated host:port (names resolved via --dns first, then the system)")
	fs.IntVar(&d.overlayPort, "overlay-port", 6000, "overlay TCP port (0 = any free port)")
	fs.StringVar(&d.mode, "discovery-mode", "auto", "overlay | tracker | auto (overlay, and the tracker when the overlay yields no peers)")
	fs.StringVar(&d.tracker, "tracker", "", "announce URL (overrides the torrent's)")
	fs.StringVar(&d.dns, "dns", "", "btclient dnsd server (HOST:PORT) that resolves bootstrap names")
	fs.StringVar(&d.advertise, "advertise", "", "address others should dial (default: detected)")
	fs.StringVar(&d.swarmKey, "swarm-key", "", "shared overlay key: every overlay message is authenticated with it (HMAC-SHA256)")
	fs.StringVar(&d.regName, "register", "", "register this node's overlay address under NAME in dnsd (needs --dns-api)")
	fs.StringVar(&d.dnsAPI, "dns-api", "", "dnsd HTTP API URL for --register, e.g. http://dns:8054")
	fs.StringVar(&d.bind, "bind", "", "IP the peer-wire and overlay listeners bind (default: all interfaces)")
	fs.DurationVar(&d.fallback, "fallback-after", 3*time.Second, "in auto mode, how long the overlay may yield no peers before the tracker is asked")
}

func (d *discoveryFlags) validate() error {
	switch d.mode {
	case "overlay", "tracker", "auto":
	default:
		return fmt.Errorf("--discovery-mode %q: want overlay, tracker or auto", d.mode)
	}
	if d.overlayPort < 0 || d.overlayPort > 65535 {
		return fmt.Errorf("--overlay-port %d out of range", d.overlayPort)
	}
	if d.regName != "" && d.dnsAPI == "" {
		return errors.New("--register needs --dns-api")
	}
	if d.bind != "" && net.ParseIP(d.bind) == nil {
		return fmt.Errorf("--bind %q: want an IP address", d.bind)
	}
	for _, b := range d.bootstrap {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("--bootstrap %q: want host:port", b)
		}
	}
	return nil
}

// bindHost is the host the listeners bind; empty means all interfaces.
func (d *discoveryFlags) bindHost() string { return d.bind }

// discovery is what start wired up: the engine's peer source and what to
// stop when the session ends.
type discovery struct {
	source swarm.PeerSource
	close  func()
}

// start brings up the overlay node (unless in tracker mode) and builds the
// peer source for the mode. The node outlives ctx until close, so the
// `stopped` announce still goes out on shutdown.
func (d *discoveryFlags) start(ctx context.Context, meta *torrent.MetaInfo, port int, log *slog.Logger) (*discovery, error) {
	var trk swarm.PeerSource
	tiers := meta.Trackers()
	if d.tracker != "" {
		tiers = [][]string{{d.tracker}}
	}
	if d.mode != "overlay" && len(tiers) > 0 {
		trk = &trackerSource{client: &tracker.Client{}, tiers: tiers, log: log}
	}
	if d.mode == "tracker" {
		if trk == nil {
			log.Warn("tracker mode but the torrent names no tracker and --tracker is unset; only --peer peers will be used")
			return &discovery{close: func() {}}, nil
		}
		return &discovery{source: trk, close: func() {}}, nil
	}
	node, stop, err := d.startNode(ctx, log)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(node.Addr())
	ov := &overlaySource{node: node, addr: net.JoinHostPort(host, strconv.Itoa(port))}
	var src swarm.PeerSource = ov
	if trk != nil {
		src = &fallbackSource{primary: ov, secondary: trk, after: d.fallback, log: log}
	}
	return &discovery{source: src, close: stop}, nil
}

// startNode starts an overlay node and, with --register, keeps it
// registered in dnsd.
func (d *discoveryFlags) startNode(ctx context.Context, log *slog.Logger) (*overlay.Node, func(), error) {
	cfg := overlay.DefaultConfig()
	cfg.ListenAddr = net.JoinHostPort(d.bind, strconv.Itoa(d.overlayPort))
	cfg.Advertise = d.advertise
	if cfg.Advertise == "" && d.bind != "" && !net.ParseIP(d.bind).IsUnspecified() {
		cfg.Advertise = d.bind
	}
	cfg.ResolveBootstrap = bootstrapResolver(d.dns, d.bootstrap, log)
	cfg.Logger = log
	if d.swarmKey != "" {
		cfg.SwarmKey = []byte(d.swarmKey)
	}
	node, err := overlay.NewNode(cfg)
	if err != nil {
		return nil, nil, err // already names the overlay and its address
	}
	log.Info("overlay listening", "addr", node.Addr(), "bootstrap", d.bootstrap)
	nodeCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := node.Run(nodeCtx); err != nil {
			log.Error("overlay stopped", "err", err)
		}
	})
	if d.regName != "" {
		host, _, _ := net.SplitHostPort(node.Addr())
		wg.Go(func() { keepRegistered(nodeCtx, d.dnsAPI, d.regName, host, log) })
	}
	return node, func() { cancel(); wg.Wait() }, nil
}

// bootstrapResolver returns what the overlay node calls, at start and again
// and again, to turn the bootstrap entries into addresses: names through the
// dnsd given by --dns first (all A records), then the system resolver. A name
// may resolve to nothing yet (Swarm's tasks.<service> lists only running
// tasks) and to more nodes later. Each entry that fails is logged once.
func bootstrapResolver(dnsServer string, entries []string, log *slog.Logger) func(context.Context) []string {
	if len(entries) == 0 {
		return nil
	}
	var mu sync.Mutex
	warned := map[string]bool{}
	return func(ctx context.Context) []string {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var out []string
		for _, e := range entries {
			addrs, err := dnsd.ResolveBootstrap(rctx, dnsServer, []string{e})
			mu.Lock()
			switch {
			case err != nil && !warned[e]:
				warned[e] = true
				log.Warn("bootstrap entry does not resolve (yet); will retry", "entry", e, "err", err)
			case err == nil && warned[e]:
				delete(warned, e)
				log.Info("bootstrap entry resolves", "entry", e, "addrs", addrs)
			}
			mu.Unlock()
			out = append(out, addrs...)
		}
		return out
	}
}

// registrationTTL is the TTL of our dnsd record; it is renewed at a third of it.
const registrationTTL = 60 * time.Second

// keepRegistered registers name → ip in dnsd now and renews it until ctx is
// done, so the record outlives neither the node nor a restart of dnsd by long.
func keepRegistered(ctx context.Context, apiURL, name, ip string, log *slog.Logger) {
	registered := false
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := dnsd.Register(rctx, apiURL, name, ip, registrationTTL)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("dns registration failed", "name", name, "err", err)
		case err == nil && !registered:
			log.Info("registered in dnsd", "name", name, "ip", ip)
		}
		registered = err == nil
		wait := registrationTTL / 3
		if !registered {
			wait = 2 * time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// overlaySource announces this client in the overlay and looks up providers.
type overlaySource struct {
	node *overlay.Node
	addr string // our peer-wire address as others should dial it
}

func (s *overlaySource) Announce(ctx context.Context, a swarm.Announce) ([]string, error) {
	p := overlay.Provider{
		Addr:    s.addr,
		PeerID:  hex.EncodeToString(a.PeerID[:]),
		Left:    a.Left,
		Stopped: a.Event == swarm.EventStopped,
	}
	if err := s.node.Announce(ctx, a.InfoHash, p); err != nil {
		return nil, err
	}
	if p.Stopped {
		return nil, nil
	}
	const want = 50
	ps, err := s.node.Lookup(ctx, a.InfoHash, want)
	if err == nil && len(ps) <= 1 {
		ps, err = s.node.Discover(ctx, a.InfoHash, 3, want)
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ps {
		if p.Addr != s.addr {
			out = append(out, p.Addr)
		}
	}
	return out, nil
}

// trackerSource announces to the torrent's trackers (BEP 12 tiers), never
// more often than the tracker's min interval except for lifecycle events.
type trackerSource struct {
	client *tracker.Client
	tiers  [][]string
	log    *slog.Logger

	mu      sync.Mutex
	started bool
	next    time.Time // no routine announce before this
}

func (s *trackerSource) Announce(ctx context.Context, a swarm.Announce) ([]string, error) {
	s.mu.Lock()
	ev := a.Event
	if !s.started {
		if ev == swarm.EventStopped {
			s.mu.Unlock()
			return nil, nil // never announced: nothing to withdraw
		}
		ev, s.started = swarm.EventStarted, true
	}
	if ev == swarm.EventNone && time.Now().Before(s.next) {
		s.mu.Unlock()
		return nil, nil
	}
	s.mu.Unlock()

	resp, url, err := s.client.AnnounceTiers(ctx, s.tiers, tracker.AnnounceRequest{
		InfoHash: a.InfoHash, PeerID: a.PeerID, Port: uint16(a.Port),
		Uploaded: a.Uploaded, Downloaded: a.Downloaded, Left: a.Left,
		Event: trackerEvent(ev), NumWant: 50,
	})
	if err != nil {
		s.mu.Lock()
		if ev == swarm.EventStarted {
			s.started = false // try `started` again next time
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("tracker: %w", err)
	}
	if resp.Warning != "" {
		s.log.Warn("tracker warning", "url", url, "warning", resp.Warning)
	}
	wait := max(resp.MinInterval, min(resp.Interval, 30*time.Second), 5*time.Second)
	s.mu.Lock()
	s.next = time.Now().Add(wait)
	s.mu.Unlock()
	out := make([]string, 0, len(resp.Peers))
	for _, p := range resp.Peers {
		out = append(out, p.String())
	}
	return out, nil
}

func trackerEvent(e swarm.Event) tracker.Event {
	switch e {
	case swarm.EventStarted:
		return tracker.EventStarted
	case swarm.EventCompleted:
		return tracker.EventCompleted
	case swarm.EventStopped:
		return tracker.EventStopped
	}
	return tracker.EventNone
}

// fallbackSource asks its primary (the overlay) first and brings in the
// secondary (a tracker) once the primary has yielded no peers for a while;
// from then on both are kept informed.
type fallbackSource struct {
	primary, secondary swarm.PeerSource
	after              time.Duration
	log                *slog.Logger

	mu        sync.Mutex
	since     time.Time // first announce that found nothing
	useSecond bool
}

func (s *fallbackSource) Announce(ctx context.Context, a swarm.Announce) ([]string, error) {
	peers, perr := s.primary.Announce(ctx, a)
	s.mu.Lock()
	if len(peers) > 0 {
		s.since = time.Time{}
	} else if s.since.IsZero() {
		s.since = time.Now()
	}
	if !s.useSecond && !s.since.IsZero() && time.Since(s.since) >= s.after && a.Event != swarm.EventStopped {
		s.useSecond = true
		s.log.Info("overlay found no peers; falling back to the tracker")
	}
	second := s.useSecond
	s.mu.Unlock()
	if !second {
		return peers, perr
	}
	more, serr := s.secondary.Announce(ctx, a)
	peers = append(peers, more...)
	if len(peers) > 0 {
		return peers, nil
	}
	return nil, errors.Join(perr, serr)
}
