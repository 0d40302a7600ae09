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

	"github.com/spf13/pflag"

	"btclient/session"
	"btclient/swarm"
	"btclient/torrent"
)

// sessionFlags are the flags every command that runs torrents shares: the
// peer wire, rate caps, discovery.
type sessionFlags struct {
	port       int
	upRate     string
	downRate   string
	superSeed  string
	stateDir   string
	cpuProfile string
	discovery  discoveryFlags
}

func (f *sessionFlags) register(fs *pflag.FlagSet, stateHelp string) {
	fs.IntVarP(&f.port, "port", "p", 6881, "peer-wire TCP port (0 = any free port)")
	fs.StringVar(&f.upRate, "max-upload-rate", "0", "cap on upload payload per second, e.g. 5MiB (0 = none)")
	fs.StringVar(&f.downRate, "max-download-rate", "0", "cap on download payload per second, e.g. 20MiB (0 = none)")
	fs.StringVar(&f.superSeed, "super-seed", "auto", "super-seeding (BEP 16) as the only seeder: auto (while the upload is capped), on or off")
	fs.StringVar(&f.stateDir, "state-dir", "", stateHelp)
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to FILE (for performance work)")
	_ = fs.MarkHidden("cpuprofile")
	f.discovery.register(fs)
	addConfigFlag(fs)
}

// config checks the flags and turns them into a session configuration.
func (f *sessionFlags) config(log *slog.Logger) (session.Config, error) {
	cfg := session.DefaultConfig()
	if f.port < 0 || f.port > 65535 {
		return cfg, fmt.Errorf("--port %d out of range", f.port)
	}
	if err := f.discovery.validate(); err != nil {
		return cfg, err
	}
	var err error
	if cfg.UploadRate, err = parseSize(f.upRate); err != nil {
		return cfg, fmt.Errorf("--max-upload-rate: %v", err)
	}
	if cfg.DownloadRate, err = parseSize(f.downRate); err != nil {
		return cfg, fmt.Errorf("--max-download-rate: %v", err)
	}
	if cfg.Swarm.SuperSeed, err = swarm.ParseSuperSeedMode(f.superSeed); err != nil {
		return cfg, fmt.Errorf("--super-seed: %v", err)
	}
	cfg.ListenAddr = net.JoinHostPort(f.discovery.bindHost(), fmt.Sprint(f.port))
	cfg.StateDir = f.stateDir
	cfg.Discovery = f.discovery.config(log, cfg.StateDir)
	cfg.Logger = log
	return cfg, nil
}

// downloadFlags are the flags of `btclient [flags] TORRENT`.
type downloadFlags struct {
	out     string
	peers   []string
	seed    bool
	quiet   bool
	status  string
	session sessionFlags
}

const downloadUsage = `btclient [flags] TORRENT|MAGNET
       btclient create|info|daemon|remote|tracker|dnsd|node|dht|probe [flags] ...

Download TORRENT (a .torrent file) or MAGNET (a magnet link), verify every
piece, then keep seeding until SIGINT/SIGTERM.`

func runDownload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f downloadFlags
	fs := newFlagSet("btclient", downloadUsage, stderr)
	fs.StringVarP(&f.out, "out", "o", ".", "directory the files go in")
	fs.StringSliceVar(&f.peers, "peer", nil, "also connect to these peers directly (host:port, comma-separated)")
	fs.BoolVar(&f.seed, "seed", true, "keep seeding after the download; --seed=false exits 0 once complete and verified")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress bar; plain log lines only")
	fs.StringVar(&f.status, "status", "", "serve GET /status (JSON) and GET /metrics (Prometheus) on HOST:PORT")
	f.session.register(fs, "keep the metadata and resume data here (default: OUT/.btclient, if it can be created)")
	version := fs.Bool("version", false, "print the version and exit")
	if done, code := parseFlags(fs, args, stderr); done {
		return code
	}
	if *version {
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	if fs.NArg() != 1 {
		if fs.NArg() == 0 {
			fs.Usage()
		}
		return usageError(stderr, "expected exactly one TORRENT or MAGNET argument, got %d", fs.NArg())
	}
	log := newLogger(stderr)
	cfg, err := f.session.config(log)
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	add := session.AddOptions{}
	if arg := fs.Arg(0); torrent.IsMagnet(arg) {
		if _, err := torrent.ParseMagnet(arg); err != nil {
			return usageError(stderr, "%v", err)
		}
		add.Magnet = arg
	} else {
		data, err := readTorrentFile(arg)
		if err != nil {
			return usageError(stderr, "%v", err)
		}
		if _, err := torrent.Parse(data); err != nil {
			return usageError(stderr, "torrent: %s: %v", arg, errors.Unwrap(err))
		}
		add.Metainfo = data
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		fmt.Fprintf(stderr, "btclient: create download directory: %v\n", err)
		return exitError
	}
	cfg.DownloadDir = f.out
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(f.out, ".btclient")
		if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
			log.Warn("no state directory: the metadata and resume data are not kept", "dir", cfg.StateDir, "err", err)
			cfg.StateDir = ""
		}
		cfg.Discovery = f.session.discovery.config(log, cfg.StateDir)
	}
	stop, err := f.session.startCPUProfile()
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	defer stop()
	if err := download(ctx, f, cfg, add, stderr, log); err != nil {
		fmt.Fprintf(stderr, "btclient: %v\n", err)
		return exitError
	}
	return exitOK
}

// readTorrentFile reads a .torrent file, refusing one over the size bound.
func readTorrentFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("torrent: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, torrent.MaxTorrentSize+1))
	if err != nil {
		return nil, fmt.Errorf("torrent: %w", err)
	}
	if len(data) > torrent.MaxTorrentSize {
		return nil, fmt.Errorf("torrent: %s: %w: more than %d bytes", path, torrent.ErrTooLarge, torrent.MaxTorrentSize)
	}
	return data, nil
}

// newLogger logs to w at info level, or debug with BTCLIENT_DEBUG set.
func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("BTCLIENT_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// download runs a session with one torrent: until it fails, or until ctx is
// done, or (with --seed=false) until it is complete.
func download(ctx context.Context, f downloadFlags, cfg session.Config, add session.AddOptions, stderr io.Writer, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sess, err := session.New(cfg)
	if err != nil {
		return err
	}
	add.Peers = f.peers
	t, _, err := sess.Add(add)
	if err != nil {
		return err
	}
	log.Info("peer wire listening", "addr", net.JoinHostPort(f.session.discovery.bindHost(), fmt.Sprint(sess.PeerPort())),
		"name", t.Status().Name, "info_hash", fmt.Sprintf("%x", t.InfoHash()))
	if a := sess.Discovery().OverlayAddr(); a != "" {
		log.Info("overlay listening", "addr", a, "bootstrap", f.session.discovery.bootstrap)
	}
	if f.status != "" {
		stop, err := serveStatus(ctx, f.status, sess, t, nil, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	runErr := make(chan error, 1)
	go func() { runErr <- sess.Run(ctx) }()
	prog := newProgress(stderr, f.quiet, t)
	defer prog.stop()

	done := t.Completed()
	check := time.NewTicker(250 * time.Millisecond)
	defer check.Stop()
	for {
		select {
		case <-check.C:
			// A failed torrent (a full disk, a write error) ends the program.
			if st := t.Status(); st.State == session.StateError {
				cancel()
				<-runErr
				return fmt.Errorf("%s: %s", st.Name, st.Error)
			}
		case err := <-runErr:
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case <-done:
			// No fsync here, as in other clients: the kernel writes the
			// pages back, and verify-on-start catches what a power loss
			// took. Waiting for a GiB to reach the disk cost a third of a
			// second before the user could use the file.
			done = nil
			prog.finish()
			st := t.Status()
			log.Info("download complete and verified", "name", st.Name, "path", filepath.Join(f.out, st.Name))
			if !f.seed {
				cancel()
			} else {
				log.Info("seeding; SIGINT or SIGTERM to stop")
			}
		case <-ctx.Done():
			// The session sees the same cancellation and announces `stopped`.
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

// startCPUProfile profiles the process into --cpuprofile's file, if given,
// until stop is called.
func (f *sessionFlags) startCPUProfile() (stop func(), err error) {
	if f.cpuProfile == "" {
		return func() {}, nil
	}
	out, err := os.Create(f.cpuProfile)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); out.Close() }, nil
}

// versionString is the program's name and version.
func versionString() string { return "btclient " + version }
