package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"btclient/rpc"
	"btclient/session"
	"btclient/watchdir"
)

const daemonUsage = `btclient daemon [flags]

Run many torrents in one process behind one peer-wire port, driven through
Transmission's RPC (transmission-remote and the tools built on it, or
btclient remote), the web page at http://RPC-LISTEN/ and the --watch
directory. Torrents, their metainfo and resume data survive restarts in
--state-dir. SIGINT/SIGTERM stops it cleanly.`

// daemonFlags are the flags of `btclient daemon`.
type daemonFlags struct {
	rpcListen   string
	rpcAuth     string
	insecure    bool
	allowHosts  []string
	downloadDir string
	watch       string
	status      string
	shares      []string
	shareHidden bool
	session     sessionFlags
}

func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return daemonCommand(ctx, args, stderr, false)
}

// runShare is `btclient share DIR...`: a daemon whose arguments are the
// folders it shares.
func runShare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return daemonCommand(ctx, args, stderr, true)
}

// daemonGCPercent is the daemon's GOGC unless the environment sets one. A
// daemon is long-lived and mostly idle, so a heap that grows only a quarter
// past what is live costs little CPU and keeps RSS down: with 1,000 seeding
// torrents (scripts/bench-daemon.sh) peak RSS went from 17.5-17.9 MiB at 100
// to 15.6-16.0 at 50 and 14.9-15.4 at 25 (transmission-daemon: 16.0-16.5).
const daemonGCPercent = 25

func daemonCommand(ctx context.Context, args []string, stderr io.Writer, shareCmd bool) int {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
	var f daemonFlags
	name, usage := "btclient daemon", daemonUsage
	if shareCmd {
		name, usage = "btclient share", shareUsage
	}
	fs := newFlagSet(name, usage, stderr)
	fs.StringVar(&f.rpcListen, "rpc-listen", "127.0.0.1:9091", "HOST:PORT of the RPC and the web page")
	fs.StringVar(&f.rpcAuth, "rpc-auth", "", "USER:PASS demanded of every RPC call and of the web page (HTTP Basic)")
	fs.BoolVar(&f.insecure, "rpc-insecure", false, "serve the RPC on a non-loopback address without --rpc-auth")
	fs.StringSliceVar(&f.allowHosts, "rpc-allow-host", nil, "host names the RPC answers to besides localhost and IP addresses (comma-separated)")
	fs.StringVar(&f.downloadDir, "download-dir", ".", "where torrents' files go; RPC clients may choose directories inside it, no others")
	fs.StringVar(&f.watch, "watch", "", "add every .torrent or .magnet file dropped into DIR (renamed .added, or .invalid)")
	fs.StringVar(&f.status, "status", "", "serve GET /status (JSON, every torrent) and GET /metrics (Prometheus) on HOST:PORT")
	fs.StringArrayVar(&f.shares, "share", nil, "share DIR: each file and top-level folder in it becomes a torrent, seeded and found by name (repeatable)")
	fs.BoolVar(&f.shareHidden, "share-hidden", false, "share hidden files and folders (names starting with a dot) too")
	f.session.register(fs, "keep the torrent list, metainfo and resume data here (default $XDG_STATE_HOME/btclient)")
	if done, code := parseFlags(fs, args, stderr); done {
		return code
	}
	switch {
	case shareCmd && fs.NArg() == 0 && len(f.shares) == 0:
		return usageError(stderr, "share needs at least one folder (DIR... or --share DIR)")
	case shareCmd:
		f.shares = append(f.shares, fs.Args()...)
	case fs.NArg() != 0:
		return usageError(stderr, "daemon takes no arguments, got %q (add torrents with btclient remote add)", fs.Arg(0))
	}
	shares, err := shareDirs(f.shares)
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	f.shares = shares
	log := newLogger(stderr)
	rcfg, listenHost, err := f.rpcConfig()
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	if f.session.stateDir == "" {
		// Before the session configuration: the DHT's table is kept there too.
		if f.session.stateDir, err = session.DefaultStateDir(); err != nil {
			return usageError(stderr, "%v (set --state-dir)", err)
		}
	}
	cfg, err := f.session.config(log)
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	cfg.Restore = true
	if cfg.DownloadDir, err = filepath.Abs(f.downloadDir); err != nil {
		return usageError(stderr, "--download-dir: %v", err)
	}
	if err := os.MkdirAll(cfg.DownloadDir, 0o755); err != nil {
		fmt.Fprintf(stderr, "btclient: create download directory: %v\n", err)
		return exitError
	}
	cfg.AllowedDirs = append(cfg.AllowedDirs, f.shares...)
	rcfg.TorrentDirs = []string{cfg.DownloadDir}
	if f.watch != "" {
		if fi, err := os.Stat(f.watch); err != nil || !fi.IsDir() {
			return usageError(stderr, "--watch %s: not a directory", f.watch)
		}
		rcfg.TorrentDirs = append(rcfg.TorrentDirs, f.watch)
	}
	rcfg.ListenHost = listenHost
	rcfg.Version = version + " (btclient)"
	rcfg.Logger = log
	rcfg.PeerLimit = cfg.Swarm.MaxPeers
	stop, err := f.session.startCPUProfile()
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	defer stop()
	if err := daemon(ctx, f, cfg, rcfg, log); err != nil {
		fmt.Fprintf(stderr, "btclient: %v\n", err)
		return exitError
	}
	return exitOK
}

// rpcConfig checks the RPC flags: a listener off loopback needs auth (or
// --rpc-insecure saying it knowingly does without).
func (f *daemonFlags) rpcConfig() (rpc.Config, string, error) {
	cfg := rpc.DefaultConfig()
	host, port, err := net.SplitHostPort(f.rpcListen)
	if err != nil {
		return cfg, "", fmt.Errorf("--rpc-listen %q: want HOST:PORT", f.rpcListen)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return cfg, "", fmt.Errorf("--rpc-listen %q: bad port", f.rpcListen)
	}
	if f.rpcAuth != "" {
		user, pass, ok := strings.Cut(f.rpcAuth, ":")
		if !ok || user == "" || pass == "" {
			return cfg, "", errors.New("--rpc-auth: want USER:PASS, both non-empty")
		}
		cfg.User, cfg.Password = user, pass
	}
	if !loopbackHost(host) && f.rpcAuth == "" && !f.insecure {
		return cfg, "", fmt.Errorf("--rpc-listen %s is reachable from other machines: set --rpc-auth USER:PASS (or --rpc-insecure to serve it to anyone)", f.rpcListen)
	}
	cfg.AllowedHosts = f.allowHosts
	return cfg, host, nil
}

// loopbackHost reports whether host only answers this machine.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// daemon runs the session, the RPC, the watch directory and the status
// server until ctx is done (or an RPC client calls session-close).
func daemon(ctx context.Context, f daemonFlags, cfg session.Config, rcfg rpc.Config, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sess, err := session.New(cfg)
	if err != nil {
		return err
	}
	sh, err := newSharing(sess, f.shares, f.shareHidden, cfg.StateDir, log)
	if err != nil {
		return err
	}
	rcfg.Close = cancel
	rcfg.Search = sh.search()
	srv, err := rpc.New(sess, rcfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.rpcListen)
	if err != nil {
		return fmt.Errorf("RPC listener: %w", err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // a large .torrent over a slow link
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	runErr := make(chan error, 1)
	go func() { runErr <- sess.Run(ctx) }()
	// Clients see every saved torrent from their first call.
	select {
	case <-sess.Ready():
	case err := <-runErr:
		ln.Close()
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("RPC server stopped", "err", err)
			cancel()
		}
	})
	defer func() {
		sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = hs.Shutdown(sctx)
	}()
	if f.watch != "" {
		wcfg := watchdir.DefaultConfig()
		wcfg.Dir, wcfg.Logger = f.watch, log
		wcfg.Add = func(it watchdir.Item) error {
			_, _, err := sess.Add(session.AddOptions{Metainfo: it.Metainfo, Magnet: it.Magnet})
			if errors.Is(err, session.ErrBadInput) {
				return fmt.Errorf("%w: %w", watchdir.ErrInvalid, err)
			}
			return err
		}
		wg.Go(func() {
			if err := watchdir.Run(ctx, wcfg); err != nil {
				log.Error("watch directory", "err", err)
			}
		})
	}
	sh.run(ctx, &wg)
	if f.status != "" {
		stop, err := serveStatus(ctx, f.status, sess, nil, sh.status, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	log.Info("daemon listening", "rpc", "http://"+ln.Addr().String()+rpc.RPCPath,
		"web", "http://"+ln.Addr().String()+"/", "peer_port", sess.PeerPort(),
		"download_dir", cfg.DownloadDir, "state_dir", cfg.StateDir, "auth", rcfg.User != "",
		"torrents", len(sess.List()))
	err = <-runErr
	cancel() // Run may end by itself: the watcher and the servers follow
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("daemon stopped; every torrent saved")
	return nil
}
