package overlay

import (
	"context"
	"fmt"
	"net"
)

// TCPTransport is a Transport over TCP.
type TCPTransport struct {
	net.Listener
	dialer net.Dialer
}

// NewTCPTransport listens on addr (host:port; port 0 picks a free one).
func NewTCPTransport(addr string) (*TCPTransport, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("overlay listen %s: %w", addr, err)
	}
	return &TCPTransport{Listener: l}, nil
}

// DialContext opens a TCP connection to addr.
func (t *TCPTransport) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	return t.dialer.DialContext(ctx, "tcp", addr)
}
