// Package swarm is the download engine: one Torrent session that dials and
// accepts peers, spreads block requests over them, verifies every piece with
// SHA-1, writes it to storage and keeps seeding. One goroutine owns all of a
// torrent's state; peer connections, hashing and disk I/O run on their own
// goroutines and talk to it over channels.
package swarm

import (
	"fmt"
	"runtime"
	"time"
)

// Config holds the engine's tunables. DefaultConfig documents the defaults;
// tests shrink the timers instead of sleeping.
type Config struct {
	// BlockSize is the size of a request: 16 KiB, what every client expects.
	BlockSize int
	// MaxPeers bounds connected peers; MaxDials bounds dials in flight and
	// MaxHandshakes incoming connections that have not finished the handshake.
	MaxPeers, MaxDials, MaxHandshakes int
	// DialTimeout bounds a TCP connect; HandshakeTimeout the exchange of
	// handshakes (a slowloris that never finishes is cut off after it).
	DialTimeout, HandshakeTimeout time.Duration
	// ReadTimeout is how long a peer may stay silent (keep-alives every 2 min).
	ReadTimeout time.Duration
	// KeepAlive is how often an otherwise idle connection sends a keep-alive.
	KeepAlive time.Duration

	// MinPipeline and MaxPipeline bound the requests outstanding at one peer;
	// in between the depth follows the peer's rate so that PipelineWindow of
	// data is always on its way.
	MinPipeline, MaxPipeline int
	PipelineWindow           time.Duration
	// MaxPieceMemory bounds the bytes of pieces being assembled in memory
	// (at least two pieces are always allowed). Memory does not grow with
	// the torrent's size.
	MaxPieceMemory int64
	// StallTimeout: a peer with requests outstanding that delivers nothing for
	// this long gives its blocks back to be requested from others.
	StallTimeout time.Duration
	// RandomFirst is how many pieces are picked at random before rarest-first.
	RandomFirst int
	// EndgameDuplicates is how many peers one block may be requested from at
	// once in endgame.
	EndgameDuplicates int
	// MaxBadPieces: a peer that took part in this many pieces that failed the
	// hash check is dropped (one proven by comparison is dropped at once).
	MaxBadPieces int
	// MaxUnsolicited: a peer that sends this many blocks nobody asked for is dropped.
	MaxUnsolicited int

	// UploadSlots peers are unchoked by rate, plus one optimistic unchoke
	// rotated every OptimisticInterval; the choker reruns every UnchokeInterval.
	UploadSlots                         int
	UnchokeInterval, OptimisticInterval time.Duration
	// MaxUploadQueue bounds the requests a peer may have queued with us; a
	// request storm past it gets the peer dropped.
	MaxUploadQueue int

	// RedialInterval is the base backoff before a failed address is dialed again.
	RedialInterval time.Duration

	// UploadRate and DownloadRate cap payload bytes per second over all
	// peers; 0 means no limit.
	UploadRate, DownloadRate int64

	// MetadataTimeout: a metadata piece asked of a peer that has not come
	// within it is asked of another; a peer that rejected or timed out is
	// not asked again for as long.
	MetadataTimeout time.Duration
	// MetadataRequests bounds the metadata pieces asked of one peer at once.
	MetadataRequests int
	// PEXInterval spaces our peer-exchange messages to a peer (BEP 11: at
	// most one a minute), and a peer's to us (give or take half of it).
	PEXInterval time.Duration
	// MaxPEXPerMessage bounds the peers taken from, and sent in, one PEX
	// message (BEP 11 says 50); MaxPEXPerPeer those taken from one peer in all.
	MaxPEXPerMessage, MaxPEXPerPeer int

	// SuperSeed says when a seeder super-seeds (see SuperSeedMode). A
	// super-seeded peer is offered enough pieces for SuperSeedWindow of its
	// rate, at least two; one that announced nothing for SuperSeedIdle while
	// offered nothing is offered pieces others have too, and one that took
	// nothing for twice as long gives its offers back for others.
	SuperSeed                      SuperSeedMode
	SuperSeedWindow, SuperSeedIdle time.Duration

	// HashWorkers verify pieces in parallel with the network loop.
	HashWorkers int
	// Tick is the period of the housekeeping timer (stalls, rates, dials).
	Tick time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		BlockSize:          16 << 10,
		MaxPeers:           80,
		MaxDials:           16,
		MaxHandshakes:      64,
		DialTimeout:        5 * time.Second,
		HandshakeTimeout:   10 * time.Second,
		ReadTimeout:        3 * time.Minute,
		KeepAlive:          2 * time.Minute,
		MinPipeline:        32,
		MaxPipeline:        1000,
		PipelineWindow:     500 * time.Millisecond,
		MaxPieceMemory:     16 << 20,
		StallTimeout:       3 * time.Second,
		RandomFirst:        4,
		EndgameDuplicates:  2,
		MaxBadPieces:       3,
		MaxUnsolicited:     256,
		UploadSlots:        8,
		UnchokeInterval:    10 * time.Second,
		OptimisticInterval: 30 * time.Second,
		MaxUploadQueue:     2048,
		RedialInterval:     2 * time.Second,
		MetadataTimeout:    10 * time.Second,
		MetadataRequests:   2,
		PEXInterval:        time.Minute,
		MaxPEXPerMessage:   50,
		MaxPEXPerPeer:      200,
		SuperSeed:          SuperSeedAuto,
		SuperSeedWindow:    time.Second,
		SuperSeedIdle:      3 * time.Second,
		HashWorkers:        max(1, runtime.NumCPU()),
		Tick:               500 * time.Millisecond,
	}
}

// validate reports a Config that cannot work: a zero Config, or one with a
// timer or bound left at zero.
func (c Config) validate() error {
	switch {
	case c.BlockSize <= 0 || c.BlockSize > 128<<10:
		return fmt.Errorf("swarm: block size %d outside 1…128 KiB", c.BlockSize)
	case c.MaxPeers <= 0 || c.MaxDials <= 0 || c.MaxHandshakes <= 0:
		return fmt.Errorf("swarm: MaxPeers, MaxDials and MaxHandshakes must be positive")
	case c.DialTimeout <= 0 || c.HandshakeTimeout <= 0 || c.ReadTimeout <= 0 || c.KeepAlive <= 0:
		return fmt.Errorf("swarm: dial, handshake, read and keep-alive timers must be positive")
	case c.MinPipeline <= 0 || c.MaxPipeline < c.MinPipeline:
		return fmt.Errorf("swarm: pipeline bounds %d…%d", c.MinPipeline, c.MaxPipeline)
	case c.MaxPieceMemory <= 0 || c.StallTimeout <= 0 || c.Tick <= 0:
		return fmt.Errorf("swarm: MaxPieceMemory, StallTimeout and Tick must be positive")
	case c.UploadSlots < 0 || c.UnchokeInterval <= 0 || c.OptimisticInterval <= 0 || c.MaxUploadQueue <= 0:
		return fmt.Errorf("swarm: choker settings must be positive")
	case c.RedialInterval <= 0:
		return fmt.Errorf("swarm: RedialInterval must be positive")
	case c.MetadataTimeout <= 0 || c.MetadataRequests <= 0:
		return fmt.Errorf("swarm: metadata timeout and requests must be positive")
	case c.PEXInterval <= 0 || c.MaxPEXPerMessage <= 0 || c.MaxPEXPerPeer < 0:
		return fmt.Errorf("swarm: PEX settings must be positive")
	case c.SuperSeed != SuperSeedAuto && c.SuperSeed != SuperSeedOn && c.SuperSeed != SuperSeedOff:
		return fmt.Errorf("swarm: super-seed mode %q: want auto, on or off", c.SuperSeed)
	case c.SuperSeedWindow <= 0 || c.SuperSeedIdle <= 0:
		return fmt.Errorf("swarm: super-seed timers must be positive")
	case c.HashWorkers <= 0:
		return fmt.Errorf("swarm: HashWorkers must be positive")
	}
	return nil
}
