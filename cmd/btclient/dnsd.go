package main

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"btclient/dnsd"
)

// runDNSD runs the DNS service until ctx is cancelled.
func runDNSD(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	def := dnsd.DefaultConfig()
	fs := newFlagSet("dnsd", "btclient dnsd [flags]", stderr)
	listen := fs.String("listen", def.Listen, "DNS address, served over UDP and TCP (HOST:PORT)")
	apiAddr := fs.String("api", def.API, "HTTP API address (HOST:PORT)")
	peers := fs.StringSlice("peers", nil, "other dnsd servers' API addresses (HOST:PORT,...)")
	interval := fs.Duration("gossip-interval", def.GossipInterval, "how often records are exchanged with every peer")
	quiet := fs.Bool("quiet", false, "log only warnings and errors (and where it listens)")
	addConfigFlag(fs)
	if done, code := parseFlags(fs, args, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "dnsd: unexpected argument %q (see --help)", fs.Arg(0))
	}

	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := def
	cfg.Listen = *listen
	cfg.API = *apiAddr
	for _, p := range *peers {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Peers = append(cfg.Peers, p)
		}
	}
	cfg.GossipInterval = *interval
	cfg.Logger = log
	srv, err := dnsd.New(cfg)
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	if err := srv.Listen(); err != nil {
		log.Error("dnsd: cannot start", "err", err)
		return exitError
	}
	log.Info("dns listening on " + srv.DNSAddr())
	log.Info("api listening on "+srv.APIAddr(), "peers", strings.Join(cfg.Peers, ","))
	if *quiet {
		level.Set(slog.LevelWarn)
	}
	if err := srv.Serve(ctx); err != nil {
		log.Error("dnsd stopped", "err", err)
		return exitError
	}
	log.Info("dnsd stopped")
	return exitOK
}
