package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"btclient/index"
	"btclient/torrent"
)

// Config holds every setting of a Server.
type Config struct {
	// User and Password, when User is set, are demanded of every request
	// (HTTP Basic auth).
	User, Password string
	// ListenHost is the host the RPC listens on; besides localhost and IP
	// literals it is a name the Host header may carry.
	ListenHost string
	// AllowedHosts are further names the Host header may carry (the name a
	// reverse proxy forwards). Others are refused: a page on another site
	// that rebinds its name to this address cannot reach the RPC.
	AllowedHosts []string
	// TorrentDirs are the directories torrent-add's filename may read
	// .torrent files from (the download and watch directories); a relative
	// filename is looked up in each in turn.
	TorrentDirs []string
	// MaxBody bounds a request body: a .torrent of torrent.MaxTorrentSize,
	// base64-encoded, fits.
	MaxBody int64
	// MaxInFlight bounds the RPC calls being read or served at once (bodies
	// are held in memory while decoded).
	MaxInFlight int
	// AuthBurst wrong passwords are answered from one address; then one more
	// every AuthRefill, the rest get 429 without a password check.
	AuthBurst  int
	AuthRefill time.Duration
	// RecentlyActive is how far back "recently-active" looks.
	RecentlyActive time.Duration
	// PeerLimit is the peers each torrent may have (swarm's MaxPeers), as
	// session-get reports it.
	PeerLimit int
	// Version is what session-get reports as version.
	Version string
	// Close, when set, is what session-close calls (the daemon shuts down).
	Close func()
	// Search, when set, answers btclient-search (the overlay's index).
	Search func(ctx context.Context, query string, limit int) ([]index.Result, error)
	// SearchTimeout bounds one search (the seed asks for answers within 3 s).
	SearchTimeout time.Duration
	// MaxSearches bounds the searches served at once; more are refused.
	MaxSearches int
	Logger      *slog.Logger
}

// DefaultConfig returns a configuration with no auth, room for a .torrent
// of the largest size btclient reads, and 10 wrong passwords per address
// before they are slowed to one a second.
func DefaultConfig() Config {
	return Config{
		MaxBody:        torrent.MaxTorrentSize/3*4 + 1<<20,
		MaxInFlight:    16,
		AuthBurst:      10,
		AuthRefill:     time.Second,
		RecentlyActive: time.Minute,
		Version:        "btclient",
		PeerLimit:      80,
		SearchTimeout:  3 * time.Second,
		MaxSearches:    4,
	}
}

func (c *Config) validate() error {
	if c.User == "" && c.Password != "" {
		return errors.New("rpc: a password needs a user name")
	}
	if strings.Contains(c.User, ":") {
		return errors.New("rpc: the user name cannot contain ':'")
	}
	if c.MaxBody <= 0 || c.MaxInFlight <= 0 || c.AuthBurst <= 0 || c.AuthRefill <= 0 || c.SearchTimeout <= 0 || c.MaxSearches <= 0 {
		return errors.New("rpc: MaxBody, MaxInFlight, AuthBurst, AuthRefill, SearchTimeout and MaxSearches must be positive (see DefaultConfig)")
	}
	for i, d := range c.TorrentDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("rpc: torrent directory %q: %w", d, err)
		}
		c.TorrentDirs[i] = abs
	}
	return nil
}
