package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"btclient/dht"
)

// dhtStatusEvery spaces the DHT node's status log lines.
const dhtStatusEvery = time.Minute

// runDHT implements `btclient dht`: a mainline DHT node and nothing else, a
// bootstrap node for a private DHT or a long-lived member of one.
func runDHT(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("dht", "btclient dht [flags]", stderr)
	listen := fs.String("listen", ":6881", "UDP `HOST:PORT` the DHT node serves on (IPv4)")
	bootstrap := fs.StringSlice("bootstrap", nil, "DHT nodes to join through, comma-separated `host:port` list (default: none;\nno public router is contacted unless named here)")
	state := fs.String("state", "", "save the routing table to `FILE` on exit and load it at start, so a restart\nrejoins without bootstrap nodes (default: nothing saved)")
	quiet := fs.Bool("quiet", false, "log only warnings and errors (and where it listens)")
	addConfigFlag(fs)
	if done, code := parseFlags(fs, args, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "dht: unexpected argument %q (see --help)", fs.Arg(0))
	}
	if _, port, err := net.SplitHostPort(*listen); err != nil {
		return usageError(stderr, "dht: --listen %q: want HOST:PORT", *listen)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return usageError(stderr, "dht: --listen %q: port must be 0-65535", *listen)
	}
	var boot []string
	for _, b := range *bootstrap {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return usageError(stderr, "dht: --bootstrap %q: want host:port", b)
		}
		boot = append(boot, b)
	}

	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := dht.DefaultConfig()
	cfg.ListenAddr = *listen
	cfg.Bootstrap = boot
	cfg.StateFile = *state
	cfg.Logger = log
	n, err := dht.New(cfg)
	if err != nil {
		log.Error("dht: cannot start", "err", err)
		return exitError
	}
	log.Info("dht listening on "+n.Addr().String(), "id", n.ID().String(), "bootstrap", strings.Join(boot, ","), "state", *state)
	if *quiet {
		level.Set(slog.LevelWarn)
	}

	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	tick := time.NewTicker(dhtStatusEvery)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Error("dht stopped", "err", err)
				return exitError
			}
			st := n.Stats()
			log.Info("dht stopped", "nodes", st.Nodes, "state", *state)
			return exitOK
		case <-tick.C:
			st := n.Stats()
			log.Info("dht status", "nodes", st.Nodes, "good", st.GoodNodes, "info_hashes", st.InfoHashes,
				"peers", st.Peers, "queries_in", st.QueriesIn, "packets_in", st.PacketsIn, "packets_out", st.PacketsOut,
				"rate_limited", st.RateLimited, "blocked", st.Blocked)
		}
	}
}
