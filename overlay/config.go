package overlay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config holds every tunable of a Node. Start from DefaultConfig and change what
// you need; tests shrink the timers instead of sleeping.
type Config struct {
	// ListenAddr is the TCP address the overlay listens on (":6000").
	// Ignored when Transport is set.
	ListenAddr string
	// Advertise is the host or host:port other nodes should dial to reach this
	// one. Empty means the listener's address, with an unspecified host
	// replaced by a detected local IP. A host without a port gets the
	// listener's port.
	Advertise string
	// Bootstrap lists overlay addresses (host:port) to join through. They are
	// gossiped to every round and retried after failures.
	Bootstrap []string
	// ResolveBootstrap, when set, is called at start, on every health round and,
	// while no node is live, every ResolveInterval; the addresses it returns
	// join the bootstrap nodes. It is how names such as Swarm's
	// tasks.<service>, which list only the tasks that exist right now, keep
	// bringing in nodes that appear later.
	ResolveBootstrap func(ctx context.Context) []string
	// ResolveInterval spaces ResolveBootstrap calls while isolated (2 s).
	ResolveInterval time.Duration
	// SwarmKey, when set, authenticates every message with HMAC-SHA256; nodes
	// without the key get no answers and cannot inject. Nil means open.
	SwarmKey []byte
	// Logger receives the node's log lines; nil discards them.
	Logger *slog.Logger
	// Transport carries the connections; nil means TCP on ListenAddr.
	Transport Transport

	// Replicas is how many nodes hold each record: the live nodes nearest its
	// key on the ring (all nodes when there are fewer) (5).
	Replicas int
	// GossipTimeout bounds one put or sync exchange with an owner (1200 ms).
	GossipTimeout time.Duration

	// HealthInterval is how often every known node is pinged (10 s).
	HealthInterval time.Duration
	// HealthTimeout bounds one ping (800 ms).
	HealthTimeout time.Duration
	// ProbeInterval is how often newly learned and suspect nodes are probed
	// between full health rounds (1 s).
	ProbeInterval time.Duration
	// SuspectRetry is how long after a failed probe the node is probed again
	// (2 s). A node is dead after DeadAfter consecutive failures.
	SuspectRetry time.Duration
	// DeadAfter is the number of consecutive failed probes that make a node
	// dead (2): one missed check is not death.
	DeadAfter int
	// DeadQuarantine is how long a dead node is remembered as dead (60 s):
	// other nodes' lists do not bring it back, they only get it probed again
	// (at most every SuspectRetry), and only its own answer revives it.
	DeadQuarantine time.Duration

	// LookupFanout is how many other nodes Query asks when none of a key's
	// owners answers, and the fanout of each Discover level (3).
	LookupFanout int
	// LookupTimeout bounds one remote lookup (800 ms).
	LookupTimeout time.Duration

	// ProviderTTL is how long an entry lives after its LastSeen (90 s).
	ProviderTTL time.Duration
	// SweepInterval is how often expired entries are removed (15 s).
	SweepInterval time.Duration
	// MaxClockSkew is how far in the future a LastSeen may be; later values
	// are replaced by the local receive time (2 s).
	MaxClockSkew time.Duration
	// MaxMessageAge bounds how old (or early) an authenticated message may be,
	// which bounds replays (30 s).
	MaxMessageAge time.Duration

	// MaxLineBytes bounds one wire line (1 MiB).
	MaxLineBytes int
	// MaxBufferedBytes bounds the bytes held in partly read lines over all
	// connections together (32 MiB); beyond it long lines are refused.
	MaxBufferedBytes int64
	// MaxConns caps concurrent inbound connections (256).
	MaxConns int
	// ConnIdleTimeout bounds the wait for each line on an inbound connection
	// (5 s).
	ConnIdleTimeout time.Duration
	// MaxMessagesPerConn caps the requests one inbound connection may carry
	// (4096).
	MaxMessagesPerConn int

	// MaxProvidersPerReply caps the providers in one message (100).
	MaxProvidersPerReply int
	// MaxStoreBytes caps what the records this node holds for others may
	// cost (16 MiB; a provider record costs about 200 bytes), and also what
	// it publishes itself. MaxOriginBytes caps one origin's records in it
	// (0: MaxStoreBytes/8). No cap evicts: records beyond one are refused, so
	// no node can push out another's.
	MaxStoreBytes  int64
	MaxOriginBytes int64
	// MaxValueBytes caps one record's value (1024).
	MaxValueBytes int
	// MaxRecordsPerKey caps the records held under one (kind, key), all
	// origins (256), and MaxRecordsPerOriginKey those of one origin (64).
	MaxRecordsPerKey       int
	MaxRecordsPerOriginKey int
	// MaxRecordsPerMessage caps the records in one put, sync or query answer
	// (100).
	MaxRecordsPerMessage int
	// MaxEntriesPerSource caps the direct announces one source IP may have
	// this node publish for it (1024).
	MaxEntriesPerSource int
	// MaxNodes caps the overlay nodes this node knows (4096): every node
	// knows every live node, so this bounds the overlay's size.
	MaxNodes int
	// MaxNodesPerMessage caps the node addresses sent or accepted in one
	// message (100); lookup and gossip replies carry a sample of
	// NodesSample (16).
	MaxNodesPerMessage int
	NodesSample        int

	// LookupRate and LookupBurst form the per-source-IP token bucket for
	// lookup requests (20/s, burst 40). RequestRate and RequestBurst bound all
	// requests from one IP (500/s, burst 1000).
	LookupRate   float64
	LookupBurst  int
	RequestRate  float64
	RequestBurst int

	// OutboundConcurrency caps concurrent outbound exchanges of the
	// background loops (16).
	OutboundConcurrency int
}

// DefaultConfig returns the seed's timings and safe caps.
func DefaultConfig() Config {
	return Config{
		ListenAddr:             ":6000",
		Replicas:               5,
		GossipTimeout:          1200 * time.Millisecond,
		HealthInterval:         10 * time.Second,
		HealthTimeout:          800 * time.Millisecond,
		ProbeInterval:          time.Second,
		SuspectRetry:           2 * time.Second,
		DeadAfter:              2,
		DeadQuarantine:         60 * time.Second,
		ResolveInterval:        2 * time.Second,
		LookupFanout:           3,
		LookupTimeout:          800 * time.Millisecond,
		ProviderTTL:            90 * time.Second,
		SweepInterval:          15 * time.Second,
		MaxClockSkew:           2 * time.Second,
		MaxMessageAge:          30 * time.Second,
		MaxLineBytes:           1 << 20,
		MaxBufferedBytes:       32 << 20,
		MaxConns:               256,
		ConnIdleTimeout:        5 * time.Second,
		MaxMessagesPerConn:     4096,
		MaxProvidersPerReply:   100,
		MaxStoreBytes:          16 << 20,
		MaxValueBytes:          1024,
		MaxRecordsPerKey:       256,
		MaxRecordsPerOriginKey: 64,
		MaxRecordsPerMessage:   100,
		MaxEntriesPerSource:    1024,
		MaxNodes:               4096,
		MaxNodesPerMessage:     100,
		NodesSample:            16,
		LookupRate:             20,
		LookupBurst:            40,
		RequestRate:            500,
		RequestBurst:           1000,
		OutboundConcurrency:    16,
	}
}

// validate reports the first setting that cannot work.
func (c *Config) validate() error {
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"GossipTimeout", c.GossipTimeout},
		{"HealthInterval", c.HealthInterval}, {"HealthTimeout", c.HealthTimeout},
		{"ProbeInterval", c.ProbeInterval}, {"LookupTimeout", c.LookupTimeout},
		{"ResolveInterval", c.ResolveInterval},
		{"ProviderTTL", c.ProviderTTL}, {"SweepInterval", c.SweepInterval},
		{"MaxMessageAge", c.MaxMessageAge}, {"ConnIdleTimeout", c.ConnIdleTimeout},
	}
	for _, d := range durations {
		if d.d <= 0 {
			return fmt.Errorf("overlay config: %s must be positive, got %v", d.name, d.d)
		}
	}
	ints := []struct {
		name string
		v    int
	}{
		{"Replicas", c.Replicas}, {"DeadAfter", c.DeadAfter}, {"LookupFanout", c.LookupFanout},
		{"MaxLineBytes", c.MaxLineBytes}, {"MaxConns", c.MaxConns},
		{"MaxMessagesPerConn", c.MaxMessagesPerConn},
		{"MaxProvidersPerReply", c.MaxProvidersPerReply},
		{"MaxValueBytes", c.MaxValueBytes}, {"MaxRecordsPerKey", c.MaxRecordsPerKey},
		{"MaxRecordsPerOriginKey", c.MaxRecordsPerOriginKey},
		{"MaxRecordsPerMessage", c.MaxRecordsPerMessage},
		{"MaxEntriesPerSource", c.MaxEntriesPerSource},
		{"MaxNodes", c.MaxNodes}, {"MaxNodesPerMessage", c.MaxNodesPerMessage},
		{"NodesSample", c.NodesSample}, {"LookupBurst", c.LookupBurst},
		{"RequestBurst", c.RequestBurst}, {"OutboundConcurrency", c.OutboundConcurrency},
	}
	for _, i := range ints {
		if i.v <= 0 {
			return fmt.Errorf("overlay config: %s must be positive, got %d", i.name, i.v)
		}
	}
	if c.LookupRate <= 0 || c.RequestRate <= 0 {
		return errors.New("overlay config: LookupRate and RequestRate must be positive")
	}
	if c.MaxStoreBytes <= 0 || c.MaxOriginBytes < 0 {
		return errors.New("overlay config: MaxStoreBytes must be positive and MaxOriginBytes not negative")
	}
	if c.MaxBufferedBytes < int64(c.MaxLineBytes) {
		return errors.New("overlay config: MaxBufferedBytes must be at least MaxLineBytes")
	}
	if c.ListenAddr == "" && c.Transport == nil {
		return errors.New("overlay config: ListenAddr or Transport is required")
	}
	return nil
}
