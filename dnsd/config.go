package dnsd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Config holds every tunable of a dnsd server. Start from DefaultConfig and
// change what you need; tests shrink the timers instead of sleeping.
type Config struct {
	// Listen is the DNS address, served over both UDP and TCP on the same
	// port. Port 0 picks a free port (see Server.DNSAddr).
	Listen string
	// API is the HTTP API address. Port 0 picks a free port (see Server.APIAddr).
	API string
	// Peers are the other servers' API addresses (HOST:PORT or http://HOST:PORT).
	// Records and deletions are pushed to them and pulled from them.
	Peers []string

	// GossipInterval is how often the whole record set is exchanged with
	// every peer (push-pull). A local change is pushed at once as well.
	GossipInterval time.Duration
	// GossipTimeout bounds one exchange with one peer.
	GossipTimeout time.Duration

	// DefaultTTL is used when a registration gives no TTL (or 0).
	DefaultTTL time.Duration
	// MaxTTL is the longest TTL a registration may ask for.
	MaxTTL time.Duration
	// NegativeTTL is how long resolvers may cache a negative answer: the
	// TTL and MINIMUM of the SOA sent with NXDOMAIN and NODATA answers.
	NegativeTTL time.Duration
	// TombstoneTTL is how long a deletion is remembered (and replicated)
	// at least; it is also kept until the deleted record would have expired,
	// so a peer that missed the deletion cannot bring the record back.
	TombstoneTTL time.Duration

	// MaxRecords caps the records and tombstones held in memory.
	MaxRecords int
	// MaxRecordsPerName caps the addresses one name may have.
	MaxRecordsPerName int

	// MaxUDPSize is the largest UDP answer sent, whatever a client's EDNS0
	// buffer size says. Answers without EDNS0 are limited to 512 bytes.
	MaxUDPSize int
	// MaxRequestBody caps the body of a POST /records request.
	MaxRequestBody int64
	// MaxGossipBody caps a replication message (both directions).
	MaxGossipBody int64
	// MaxConns caps concurrent HTTP connections, and separately concurrent
	// DNS-over-TCP connections.
	MaxConns int

	// Nameserver and Mailbox fill the SOA record of negative answers.
	Nameserver string
	Mailbox    string

	// Logger receives what the long-running loops have to say; nil discards it.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration of a production server.
func DefaultConfig() Config {
	return Config{
		Listen:            ":8053",
		API:               ":8054",
		GossipInterval:    2 * time.Second,
		GossipTimeout:     2 * time.Second,
		DefaultTTL:        60 * time.Second,
		MaxTTL:            24 * time.Hour,
		NegativeTTL:       5 * time.Second,
		TombstoneTTL:      5 * time.Minute,
		MaxRecords:        10000,
		MaxRecordsPerName: 1000,
		MaxUDPSize:        1232, // the DNS Flag Day 2020 recommendation
		MaxRequestBody:    64 << 10,
		MaxGossipBody:     16 << 20,
		MaxConns:          256,
		Nameserver:        "ns.dnsd.invalid.",
		Mailbox:           "hostmaster.dnsd.invalid.",
	}
}

func (c Config) validate() error {
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	for _, a := range []struct{ what, addr string }{{"DNS listen", c.Listen}, {"API", c.API}} {
		_, _, err := net.SplitHostPort(a.addr)
		check(err == nil, "%s address %q: want HOST:PORT", a.what, a.addr)
	}
	check(c.GossipInterval > 0, "gossip interval %v is not positive", c.GossipInterval)
	check(c.GossipTimeout > 0, "gossip timeout %v is not positive", c.GossipTimeout)
	check(c.DefaultTTL >= time.Second, "default TTL %v is under 1s", c.DefaultTTL)
	check(c.MaxTTL >= c.DefaultTTL, "max TTL %v is under the default TTL %v", c.MaxTTL, c.DefaultTTL)
	check(c.NegativeTTL >= 0, "negative TTL %v is negative", c.NegativeTTL)
	check(c.TombstoneTTL > 0, "tombstone TTL %v is not positive", c.TombstoneTTL)
	check(c.MaxRecords > 0, "max records %d is not positive", c.MaxRecords)
	check(c.MaxRecordsPerName > 0, "max records per name %d is not positive", c.MaxRecordsPerName)
	check(c.MaxUDPSize >= 512 && c.MaxUDPSize <= 65535, "max UDP size %d is outside 512..65535", c.MaxUDPSize)
	check(c.MaxRequestBody > 0, "max request body %d is not positive", c.MaxRequestBody)
	check(c.MaxGossipBody > 0, "max gossip body %d is not positive", c.MaxGossipBody)
	check(c.MaxConns > 0, "max conns %d is not positive", c.MaxConns)
	check(c.Nameserver != "" && c.Mailbox != "", "SOA nameserver and mailbox must be set")
	if len(errs) > 0 {
		return fmt.Errorf("dnsd config: %w", errors.Join(errs...))
	}
	return nil
}
