package overlay

import (
	"context"
	"net"
	"time"
)

// Client sends one-shot requests to overlay nodes without running a node:
// for scripts, tests and programs that only announce or look up.
type Client struct {
	// SwarmKey must match the nodes' key when they use one.
	SwarmKey []byte
	// Timeout bounds each request (default 2 s).
	Timeout time.Duration
	// Dial opens connections (default TCP).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

func (c *Client) do(ctx context.Context, addr string, req message) ([]message, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	dial := c.Dial
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	def := DefaultConfig()
	cd := codec{key: c.SwarmKey, maxAge: def.MaxMessageAge.Milliseconds(), now: func() int64 { return time.Now().UnixMilli() }}
	return exchange(ctx, dial, cd, def.MaxLineBytes, addr, timeout, req)
}

// Ping asks the node at addr for its live view.
func (c *Client) Ping(ctx context.Context, addr string) ([]string, error) {
	replies, err := c.do(ctx, addr, message{Type: typePing})
	if err != nil {
		return nil, err
	}
	return replies[0].Nodes, nil
}

// Lookup asks the node at addr for up to limit providers of infoHash; it also
// returns the overlay nodes the answer named.
func (c *Client) Lookup(ctx context.Context, addr string, infoHash [20]byte, limit int) ([]Provider, []string, error) {
	replies, err := c.do(ctx, addr, message{Type: typeLookup, InfoHash: hexHash(infoHash), Limit: limit})
	if err != nil {
		return nil, nil, err
	}
	return replies[0].Providers, replies[0].Nodes, nil
}

// Query asks the node at addr for up to limit records of (kind, key); the
// node asks the key's owners for them.
func (c *Client) Query(ctx context.Context, addr, kind string, key [20]byte, limit int) ([]Record, error) {
	if err := validKind(kind); err != nil {
		return nil, err
	}
	replies, err := c.do(ctx, addr, message{Type: typeQuery, Kind: kind, Key: hexHash(key), Limit: limit})
	if err != nil {
		return nil, err
	}
	return replies[0].Records, nil
}

// Announce tells the node at addr that p provides infoHash (fire and forget:
// a nil error means the line was sent). A zero LastSeen means now. The node
// takes p's IP from the connection unless it comes from the node's own host.
func (c *Client) Announce(ctx context.Context, addr string, infoHash [20]byte, p Provider) error {
	if p.LastSeen.IsZero() {
		p.LastSeen = time.Now()
	}
	_, err := c.do(ctx, addr, message{Type: typeAnnounce, InfoHash: hexHash(infoHash), Providers: []Provider{p}})
	return err
}
