// Package session holds many torrents in one process: one peer-wire listener
// that routes every incoming handshake to its torrent by info hash, one
// discovery service (overlay, DHT, trackers) and one pair of rate caps
// shared by all, per-torrent caps, add/remove/start/stop/verify, and state
// that survives restarts and crashes (the torrent list, metainfo and resume
// data in a state directory, written atomically).
package session

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"btclient/discovery"
	"btclient/swarm"
)

// Config holds every setting of a Session.
type Config struct {
	// StateDir keeps the torrent list, metainfo and resume data; "" keeps
	// nothing across runs.
	StateDir string
	// Restore brings back every torrent of StateDir at start (a daemon);
	// without it only the torrents added this run are saved and found there.
	Restore bool
	// DownloadDir is where a torrent's files go unless Add says otherwise.
	DownloadDir string
	// AllowedDirs, beside DownloadDir, are the only directories a torrent's
	// download directory may be in (a remote client cannot write elsewhere).
	AllowedDirs []string
	// ListenAddr is the peer-wire TCP address (":6881"; port 0: any).
	ListenAddr string
	// Swarm holds the engine tunables every torrent gets.
	Swarm swarm.Config
	// Discovery configures the overlay node, the trackers and the DHT.
	Discovery discovery.Config
	// UploadRate and DownloadRate cap every torrent together (bytes/s, 0:
	// none); each torrent may have its own caps too.
	UploadRate, DownloadRate int64
	// IdleAfter puts a seeding torrent that has had no peer for this long
	// to sleep: its engine stops (no goroutine, timer or open file) until a
	// peer connects, while its announcers keep it known; 0 never does. A
	// complete torrent restored with trusted resume data starts asleep.
	IdleAfter time.Duration
	// ClientName is what peers see in the extension handshake.
	ClientName string
	Logger     *slog.Logger
}

// DefaultConfig returns a configuration that keeps nothing on disk but the
// downloads, in the current directory, with the peer-wire port 6881.
func DefaultConfig() Config {
	return Config{
		DownloadDir: ".",
		ListenAddr:  ":6881",
		Swarm:       swarm.DefaultConfig(),
		Discovery:   discovery.DefaultConfig(),
		IdleAfter:   30 * time.Second,
		ClientName:  "btclient",
	}
}

// DefaultStateDir is $XDG_STATE_HOME/btclient, or ~/.local/state/btclient.
func DefaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "btclient"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "btclient"), nil
}

func (c *Config) validate() error {
	if c.DownloadDir == "" {
		return errors.New("session: a download directory is required")
	}
	if c.Restore && c.StateDir == "" {
		return errors.New("session: restoring torrents needs a state directory")
	}
	if c.UploadRate < 0 || c.DownloadRate < 0 {
		return errors.New("session: negative rate cap")
	}
	return c.Discovery.Validate()
}
