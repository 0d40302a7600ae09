package overlay

import (
	"context"
	"net"
)

// Transport carries a node's connections: it accepts inbound ones like a
// net.Listener and dials outbound ones. TCPTransport is the real one;
// MemNetwork makes in-memory ones for tests and simulations.
type Transport interface {
	net.Listener
	DialContext(ctx context.Context, addr string) (net.Conn, error)
}
