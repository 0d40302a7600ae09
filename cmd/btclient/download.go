package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"btclient/peerwire"
	"btclient/storage"
	"btclient/swarm"
	"btclient/torrent"
)

// downloadFlags are the flags of `btclient [flags] TORRENT`.
type downloadFlags struct {
	out        string
	port       int
	peers      []string
	seed       bool
	quiet      bool
	status     string
	cpuProfile string
	upRate     string
	downRate   string
	discovery  discoveryFlags
}

func runDownload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f downloadFlags
	fs := newFlagSet("btclient", "btclient [flags] TORRENT\n       btclient create|info|tracker|dnsd|node|probe [flags] ...\n\nDownload TORRENT, verify every piece, then keep seeding until SIGINT/SIGTERM.", stderr)
	fs.StringVarP(&f.out, "out", "o", ".", "directory the files go in")
	fs.IntVarP(&f.port, "port", "p", 6881, "peer-wire TCP port (0 = any free port)")
	fs.StringSliceVar(&f.peers, "peer", nil, "also connect to these peers directly (host:port, comma-separated)")
	fs.BoolVar(&f.seed, "seed", true, "keep seeding after the download; --seed=false exits 0 once complete and verified")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress bar; plain log lines only")
	fs.StringVar(&f.status, "status", "", "serve GET /status (JSON) and GET /metrics (Prometheus) on HOST:PORT")
	fs.StringVar(&f.upRate, "max-upload-rate", "0", "cap on upload payload per second, e.g. 5MiB (0 = none)")
	fs.StringVar(&f.downRate, "max-download-rate", "0", "cap on download payload per second, e.g. 20MiB (0 = none)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to FILE (for performance work)")
	_ = fs.MarkHidden("cpuprofile")
	f.discovery.register(fs)
	if done, code := parseFlags(fs, args, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		if fs.NArg() == 0 {
			fs.Usage()
		}
		return usageError(stderr, "expected exactly one TORRENT argument, got %d", fs.NArg())
	}
	if f.port < 0 || f.port > 65535 {
		return usageError(stderr, "--port %d out of range", f.port)
	}
	if err := f.discovery.validate(); err != nil {
		return usageError(stderr, "%v", err)
	}
	cfg := swarm.DefaultConfig()
	var err error
	if cfg.UploadRate, err = parseSize(f.upRate); err != nil {
		return usageError(stderr, "--max-upload-rate: %v", err)
	}
	if cfg.DownloadRate, err = parseSize(f.downRate); err != nil {
		return usageError(stderr, "--max-download-rate: %v", err)
	}
	meta, err := torrent.Load(fs.Arg(0))
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	log := newLogger(stderr)
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return usageError(stderr, "--cpuprofile: %v", err)
		}
		defer stop()
	}
	if err := download(ctx, f, cfg, meta, stderr, log); err != nil {
		fmt.Fprintf(stderr, "btclient: %v\n", err)
		return exitError
	}
	return exitOK
}

// newLogger logs to w at info level, or debug with BTCLIENT_DEBUG set.
func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("BTCLIENT_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// layout maps a torrent's files onto paths below the download directory.
func layout(m *torrent.MetaInfo) []storage.FileSpec {
	specs := make([]storage.FileSpec, len(m.Files))
	for i, f := range m.Files {
		specs[i] = storage.FileSpec{Path: m.FilePath(f), Offset: f.Offset, Length: f.Length}
	}
	return specs
}

func download(ctx context.Context, f downloadFlags, cfg swarm.Config, meta *torrent.MetaInfo, stderr io.Writer, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return fmt.Errorf("create download directory: %w", err)
	}
	store, err := storage.OpenDisk(f.out, layout(meta))
	if err != nil {
		return fmt.Errorf("open %s: %w", filepath.Join(f.out, meta.Name), err)
	}
	defer store.Close()

	ln, err := net.Listen("tcp", net.JoinHostPort(f.discovery.bindHost(), fmt.Sprint(f.port)))
	if err != nil {
		return fmt.Errorf("peer-wire listener: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	peerID, err := peerwire.NewPeerID()
	if err != nil {
		return err
	}
	log.Info("peer wire listening", "addr", ln.Addr().String(), "name", meta.Name, "info_hash", fmt.Sprintf("%x", meta.InfoHash))

	disc, err := f.discovery.start(ctx, meta, port, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer disc.close()

	t, err := swarm.New(cfg, swarm.Options{
		Meta:     meta,
		Storage:  store,
		PeerID:   peerID,
		Listener: ln,
		Port:     port,
		Source:   disc.source,
		Peers:    f.peers,
		Logger:   log,
	})
	if err != nil {
		ln.Close()
		return err
	}

	if f.status != "" {
		stop, err := serveStatus(ctx, f.status, meta, t, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	runErr := make(chan error, 1)
	go func() { runErr <- t.Run(ctx) }()
	prog := newProgress(stderr, f.quiet, meta, t)
	defer prog.stop()

	done := t.Done()
	for {
		select {
		case err := <-runErr:
			if err != nil {
				return fmt.Errorf("%s: %w", meta.Name, err)
			}
			return nil
		case <-done:
			// No fsync here, as in other clients: the kernel writes the
			// pages back, and verify-on-start catches what a power loss
			// took. Waiting for a GiB to reach the disk cost a third of a
			// second before the user could use the file.
			done = nil
			prog.finish()
			log.Info("download complete and verified", "name", meta.Name, "path", filepath.Join(f.out, meta.Name))
			if !f.seed {
				cancel()
			} else {
				log.Info("seeding; SIGINT or SIGTERM to stop")
			}
		case <-ctx.Done():
			// Run sees the same cancellation and announces `stopped`.
			select {
			case err := <-runErr:
				if err != nil && !errors.Is(err, context.Canceled) {
					return err
				}
			case <-time.After(10 * time.Second):
				return errors.New("shutdown timed out")
			}
			return nil
		}
	}
}

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
