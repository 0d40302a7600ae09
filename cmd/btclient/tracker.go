package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"btclient/tracker"
)

// Limits on the tracker's HTTP connections: announces are one small GET, so
// anything slower or bigger than this is a client to drop.
const (
	trackerReadHeaderTimeout = 5 * time.Second
	trackerReadTimeout       = 10 * time.Second
	trackerWriteTimeout      = 10 * time.Second
	trackerIdleTimeout       = 60 * time.Second
	trackerMaxHeaderBytes    = 16 << 10
	trackerShutdownTimeout   = 5 * time.Second
)

// runTracker runs the HTTP tracker until ctx is cancelled.
func runTracker(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	def := tracker.DefaultServerConfig()
	fs := newFlagSet("tracker", "btclient tracker [flags]", stderr)
	listen := fs.String("listen", ":6969", "address to serve /announce and /scrape on (HOST:PORT)")
	interval := fs.Duration("interval", def.Interval, "announce interval given to clients; peers silent for twice this are forgotten")
	maxSwarms := fs.Int("max-swarms", def.MaxSwarms, "most torrents tracked at once")
	maxPeers := fs.Int("max-peers", def.MaxPeersPerSwarm, "most peers remembered per torrent")
	maxConns := fs.Int("max-conns", 512, "most concurrent HTTP connections")
	quiet := fs.Bool("quiet", false, "log only warnings and errors")
	addConfigFlag(fs)
	if done, code := parseFlags(fs, args, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "tracker: unexpected argument %q (see --help)", fs.Arg(0))
	}
	switch {
	case *interval < time.Second:
		return usageError(stderr, "tracker: --interval must be at least 1s, got %v", *interval)
	case *maxSwarms < 1:
		return usageError(stderr, "tracker: --max-swarms must be at least 1, got %d", *maxSwarms)
	case *maxPeers < 1:
		return usageError(stderr, "tracker: --max-peers must be at least 1, got %d", *maxPeers)
	case *maxConns < 1:
		return usageError(stderr, "tracker: --max-conns must be at least 1, got %d", *maxConns)
	}

	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := def
	cfg.Interval = *interval
	cfg.MinInterval = min(def.MinInterval, *interval/2)
	cfg.MaxSwarms = *maxSwarms
	cfg.MaxPeersPerSwarm = *maxPeers
	srv := tracker.NewServer(cfg)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("tracker cannot listen", "err", err)
		return exitError
	}
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: trackerReadHeaderTimeout,
		ReadTimeout:       trackerReadTimeout,
		WriteTimeout:      trackerWriteTimeout,
		IdleTimeout:       trackerIdleTimeout,
		MaxHeaderBytes:    trackerMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info(fmt.Sprintf("tracker listening on %s", ln.Addr()), "interval", *interval)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { srv.Run(runCtx) })
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- httpSrv.Serve(netutil.LimitListener(ln, *maxConns)) })

	code := exitOK
	select {
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.Background(), trackerShutdownTimeout)
		if err := httpSrv.Shutdown(shutCtx); err != nil {
			log.Warn("tracker shutdown", "err", err)
			_ = httpSrv.Close()
		}
		cancel()
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("tracker serve", "err", err)
			code = exitError
		}
	case err := <-serveErr:
		log.Error("tracker serve", "err", err)
		code = exitError
	}
	stop()
	wg.Wait()
	log.Info("tracker stopped")
	return code
}
