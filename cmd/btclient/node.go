package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"btclient/discovery"
	"btclient/overlay"
	"btclient/peerwire"
)

// reannounceEvery keeps --announce entries alive well within the 90 s TTL.
const reannounceEvery = 30 * time.Second

// joinWait is how long the first announce waits for the node to know
// Replicas other nodes (a smaller overlay never gets there).
const joinWait = 3 * time.Second

// runNode implements `btclient node`: an overlay-only node, a rendezvous that
// holds and gossips provider lists but downloads nothing.
func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	def := overlay.DefaultConfig()
	fs := newFlagSet("node", "btclient node [flags]", stderr)
	port := fs.Int("overlay-port", 6000, "overlay TCP `PORT` (0 = any free port)")
	bind := fs.String("bind", "", "listen on this `IP` only (default: all interfaces)")
	bootstrap := fs.StringSlice("bootstrap", nil, "overlay nodes to join through, comma-separated `host:port` list\n(names resolved via --dns first, then the system)")
	dnsServer := fs.String("dns", "", "btclient dnsd server (`HOST:PORT`) that resolves bootstrap names")
	advertise := fs.String("advertise", "", "`HOST` (or host:port) other nodes should dial (default: the listen host, or a detected local IP)")
	swarmKey := fs.String("swarm-key", "", "shared secret `KEY`: every message is authenticated with HMAC-SHA256 and nodes\nwithout the same key get no answers and cannot inject; prefer BTCLIENT_SWARM_KEY,\nsince command lines are visible to other users (default: none, open overlay)")
	announce := fs.StringArray("announce", nil, "`INFOHASH=HOST:PORT`: announce that peer-wire address as a seeder of the torrent\n(40 hex characters) at start and every 30 s, and as stopped on exit; repeatable")
	quiet := fs.Bool("quiet", false, "log only warnings and errors (and where it listens)")
	addConfigFlag(fs)
	if done, code := parseFlags(fs, args, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "node: unexpected argument %q (see --help)", fs.Arg(0))
	}
	if *port < 0 || *port > 65535 {
		return usageError(stderr, "node: --overlay-port %d: want 0-65535", *port)
	}
	type provided struct {
		ih [20]byte
		p  overlay.Provider
	}
	var provides []provided
	peerID, err := peerwire.NewPeerID()
	if err != nil {
		fmt.Fprintf(stderr, "btclient: node: %v\n", err)
		return exitError
	}
	for _, a := range *announce {
		hash, addr, ok := strings.Cut(a, "=")
		if !ok {
			return usageError(stderr, "node: --announce %q: want INFOHASH=HOST:PORT", a)
		}
		ih, err := overlay.ParseInfoHash(strings.TrimSpace(hash))
		if err != nil {
			return usageError(stderr, "node: --announce: %v", err)
		}
		addr = strings.TrimSpace(addr)
		if _, p, err := net.SplitHostPort(addr); err != nil || p == "" {
			return usageError(stderr, "node: --announce %q: want INFOHASH=HOST:PORT", a)
		}
		provides = append(provides, provided{ih, overlay.Provider{Addr: addr, PeerID: hex.EncodeToString(peerID[:])}})
	}

	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := def
	cfg.ListenAddr = net.JoinHostPort(*bind, strconv.Itoa(*port))
	cfg.Advertise = *advertise
	var boot []string
	for _, b := range *bootstrap {
		if b = strings.TrimSpace(b); b != "" {
			if _, _, err := net.SplitHostPort(b); err != nil {
				return usageError(stderr, "node: --bootstrap %q: want host:port", b)
			}
			boot = append(boot, b)
		}
	}
	cfg.ResolveBootstrap = discovery.BootstrapResolver(*dnsServer, boot, log)
	if *swarmKey != "" {
		cfg.SwarmKey = []byte(*swarmKey)
	}
	cfg.Logger = log
	n, err := overlay.NewNode(cfg)
	if err != nil {
		log.Error("node: cannot start", "err", err)
		return exitError
	}
	log.Info("overlay listening on "+n.Addr(), "bootstrap", strings.Join(boot, ","), "swarm_key", cfg.SwarmKey != nil)
	if *quiet {
		level.Set(slog.LevelWarn)
	}

	// The node runs on its own context so that stopped announces can still go
	// out after SIGINT/SIGTERM, before it closes.
	nodeCtx, stopNode := context.WithCancel(context.Background())
	defer stopNode()
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(nodeCtx) }()

	announceAll := func(ctx context.Context, stopped bool) {
		// One batch: each owner gets its share in a few lines, and entries
		// announced unchanged again only renew their lease.
		rs := make([]overlay.Record, 0, len(provides))
		for _, pr := range provides {
			p := pr.p
			p.Stopped = stopped
			p.LastSeen = time.Now()
			rs = append(rs, overlay.ProviderRecord(pr.ih, p))
		}
		if err := n.PublishBatch(ctx, rs); err != nil {
			log.Warn("announce failed", "entries", len(rs), "err", err)
		}
	}
	var wg sync.WaitGroup
	if len(provides) > 0 {
		wg.Go(func() {
			// Announcing before the node knows the overlay would send every
			// entry to the bootstrap nodes; give it a few seconds to join.
			joined := time.Now().Add(joinWait)
			for len(n.LiveNodes()) < def.Replicas && time.Now().Before(joined) && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
			t := time.NewTicker(reannounceEvery)
			defer t.Stop()
			for {
				announceAll(ctx, false)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}

	wg.Go(func() {
		// What the node's own requests cost, once a minute, by type.
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var args []any
			for typ, c := range n.Traffic() {
				args = append(args, typ, fmt.Sprintf("%d/%dB", c.Requests, c.Bytes))
			}
			log.Info("overlay traffic so far (requests/bytes by type)", args...)
		}
	})

	var err2 error
	select {
	case <-ctx.Done():
	case err2 = <-runErr:
	}
	wg.Wait()
	if err2 == nil {
		if len(provides) > 0 {
			stopCtx, cancel := context.WithTimeout(nodeCtx, 3*time.Second)
			announceAll(stopCtx, true)
			cancel()
		}
		stopNode()
		err2 = <-runErr
	}
	if err2 != nil {
		log.Error("node stopped", "err", err2)
		return exitError
	}
	log.Info("node stopped")
	return exitOK
}
