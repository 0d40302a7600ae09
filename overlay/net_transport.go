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

// NewTCPTransport listens on addr (host:port; port 0 picks a free one);
// when host is a single IP, outbound connections start from it too.
func NewTCPTransport(addr string) (*TCPTransport, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("overlay listen %s: %w", addr, err)
	}
	t := &TCPTransport{Listener: l}
	if a, ok := l.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		// Bound to one IP: dial from it too, so that other nodes see the
		// address this node advertises (several nodes on one host's
		// 127.0.0.x each keep their own identity and per-IP limits).
		t.dialer.LocalAddr = &net.TCPAddr{IP: a.IP}
	}
	return t, nil
}

// DialContext opens a TCP connection to addr.
func (t *TCPTransport) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	return t.dialer.DialContext(ctx, "tcp", addr)
}
