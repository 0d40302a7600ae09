package dht

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Config holds every tunable of a Node. Start from DefaultConfig and change
// what you need; tests shrink the timers instead of sleeping.
type Config struct {
	// ListenAddr is the UDP address to bind ("127.0.0.1:6881", ":6881").
	// The node speaks IPv4. Ignored when Transport is set.
	ListenAddr string
	// Transport carries the datagrams; nil means UDP on ListenAddr. The
	// node closes it when Run returns.
	Transport Transport
	// Bootstrap lists nodes (host:port, names resolved by the system) to
	// join through while the table is empty. Empty by default: no public
	// router is ever contacted unless named here.
	Bootstrap []string
	// StateFile, when set, is where the routing table (and the node id) is
	// saved on a clean exit and every SaveInterval, and loaded from at New,
	// so a restarted node rejoins without bootstrap nodes. Empty: nothing
	// is saved.
	StateFile string
	// Logger receives the node's log lines; nil discards them.
	Logger *slog.Logger

	// K is the bucket size and the number of closest nodes a lookup
	// finds and an announce goes to (8).
	K int
	// Alpha is how many queries a lookup keeps in flight (3).
	Alpha int
	// QueryTimeout bounds the wait for one answer (2 s).
	QueryTimeout time.Duration
	// SlowQuery is how long a lookup waits for an answer before it stops
	// counting that query against Alpha and asks another node; the answer
	// is still used if it comes within QueryTimeout (500 ms).
	SlowQuery time.Duration
	// MaxLookupQueries bounds the queries of one lookup (200).
	MaxLookupQueries int
	// RefreshInterval: a node silent this long is questionable, and a
	// bucket unchanged this long is refreshed by a lookup of a random id in
	// it (15 min).
	RefreshInterval time.Duration
	// MaxFails is the unanswered queries in a row that make a node bad (2).
	MaxFails int
	// MaintenanceInterval spaces the checks that retry bootstrap while the
	// table is empty, refresh stale buckets and sweep the peer store (10 s).
	MaintenanceInterval time.Duration
	// SaveInterval spaces periodic saves of the table when StateFile is
	// set (10 min).
	SaveInterval time.Duration

	// MaxNodesPerIP caps the table entries of one IP (1), and
	// MaxNodesPerSubnet those of one public /24 (4); loopback and private
	// addresses are counted per address and port instead (see isLocal).
	MaxNodesPerIP     int
	MaxNodesPerSubnet int

	// TokenInterval rotates the token secret; a token is accepted for one
	// to two intervals (5 min).
	TokenInterval time.Duration
	// PeerTTL is how long an announced peer is kept (30 min).
	PeerTTL time.Duration
	// MaxInfoHashes (2000), MaxPeersPerHash (256) and MaxPeersPerIPPerHash
	// (4) bound the peer store.
	MaxInfoHashes        int
	MaxPeersPerHash      int
	MaxPeersPerIPPerHash int
	// MaxValues caps the peers in one get_peers reply (32), fewer when the
	// amplification budget says so.
	MaxValues int
	// MaxPacketSize bounds a datagram read (2048 bytes); longer ones are
	// dropped as junk.
	MaxPacketSize int
	// MaxPending bounds the queries awaiting an answer (1024) and
	// MaxVerifying the pings in flight that verify nodes that queried us
	// (16).
	MaxPending   int
	MaxVerifying int

	// QueryRate and QueryBurst form the per-source token bucket of
	// queries answered (20/s, burst 40); GlobalQueryRate and
	// GlobalQueryBurst bound all sources together (2000/s, burst 4000).
	QueryRate        float64
	QueryBurst       int
	GlobalQueryRate  float64
	GlobalQueryBurst int
	// JunkRate and JunkBurst bound a source's junk (malformed packets,
	// oversized ones, responses to no query of ours, forged tokens): past
	// them the source is ignored for BlockDuration (1/s, burst 20, 1 min).
	JunkRate      float64
	JunkBurst     int
	BlockDuration time.Duration
	// AmplificationFactor and AmplificationBurst bound what the node sends
	// an address in answer to what it received from it: over any interval,
	// bytes sent ≤ Factor × bytes received + Burst (4, 4096 bytes).
	AmplificationFactor float64
	AmplificationBurst  int
	// MaxSources bounds the sources the limits remember (8192).
	MaxSources int
}

// DefaultConfig returns BEP 5's constants and safe caps, listening on the
// default peer-wire port number with no bootstrap nodes.
func DefaultConfig() Config {
	return Config{
		ListenAddr:           ":6881",
		K:                    8,
		Alpha:                3,
		QueryTimeout:         2 * time.Second,
		SlowQuery:            500 * time.Millisecond,
		MaxLookupQueries:     200,
		RefreshInterval:      15 * time.Minute,
		MaxFails:             2,
		MaintenanceInterval:  10 * time.Second,
		SaveInterval:         10 * time.Minute,
		MaxNodesPerIP:        1,
		MaxNodesPerSubnet:    4,
		TokenInterval:        5 * time.Minute,
		PeerTTL:              30 * time.Minute,
		MaxInfoHashes:        2000,
		MaxPeersPerHash:      256,
		MaxPeersPerIPPerHash: 4,
		MaxValues:            32,
		MaxPacketSize:        2048,
		MaxPending:           1024,
		MaxVerifying:         16,
		QueryRate:            20,
		QueryBurst:           40,
		GlobalQueryRate:      2000,
		GlobalQueryBurst:     4000,
		JunkRate:             1,
		JunkBurst:            20,
		BlockDuration:        time.Minute,
		AmplificationFactor:  4,
		AmplificationBurst:   4096,
		MaxSources:           8192,
	}
}

// validate reports the first setting that cannot work.
func (c *Config) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"QueryTimeout", c.QueryTimeout}, {"SlowQuery", c.SlowQuery},
		{"RefreshInterval", c.RefreshInterval}, {"MaintenanceInterval", c.MaintenanceInterval},
		{"SaveInterval", c.SaveInterval}, {"TokenInterval", c.TokenInterval},
		{"PeerTTL", c.PeerTTL}, {"BlockDuration", c.BlockDuration},
	} {
		if d.v <= 0 {
			return fmt.Errorf("dht config: %s must be positive, got %v", d.name, d.v)
		}
	}
	for _, i := range []struct {
		name string
		v    int
	}{
		{"K", c.K}, {"Alpha", c.Alpha}, {"MaxLookupQueries", c.MaxLookupQueries},
		{"MaxFails", c.MaxFails}, {"MaxNodesPerIP", c.MaxNodesPerIP},
		{"MaxNodesPerSubnet", c.MaxNodesPerSubnet}, {"MaxInfoHashes", c.MaxInfoHashes},
		{"MaxPeersPerHash", c.MaxPeersPerHash}, {"MaxPeersPerIPPerHash", c.MaxPeersPerIPPerHash},
		{"MaxValues", c.MaxValues}, {"MaxPending", c.MaxPending}, {"MaxVerifying", c.MaxVerifying},
		{"QueryBurst", c.QueryBurst}, {"GlobalQueryBurst", c.GlobalQueryBurst},
		{"JunkBurst", c.JunkBurst}, {"AmplificationBurst", c.AmplificationBurst},
		{"MaxSources", c.MaxSources},
	} {
		if i.v <= 0 {
			return fmt.Errorf("dht config: %s must be positive, got %d", i.name, i.v)
		}
	}
	if c.QueryRate <= 0 || c.GlobalQueryRate <= 0 || c.JunkRate <= 0 {
		return errors.New("dht config: QueryRate, GlobalQueryRate and JunkRate must be positive")
	}
	if c.AmplificationFactor < 1 {
		return fmt.Errorf("dht config: AmplificationFactor must be at least 1, got %v", c.AmplificationFactor)
	}
	if c.MaxPacketSize < 512 || c.MaxPacketSize > 65507 {
		return fmt.Errorf("dht config: MaxPacketSize %d: want 512-65507", c.MaxPacketSize)
	}
	if c.SlowQuery > c.QueryTimeout {
		return errors.New("dht config: SlowQuery must not exceed QueryTimeout")
	}
	if c.ListenAddr == "" && c.Transport == nil {
		return errors.New("dht config: ListenAddr or Transport is required")
	}
	for _, b := range c.Bootstrap {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("dht config: bootstrap node %q: want host:port", b)
		}
	}
	return nil
}
