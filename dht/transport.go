package dht

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Transport carries the node's datagrams, like a net.PacketConn with
// netip addresses. UDPTransport is the real one; MemNetwork makes in-memory
// ones so a simulation can run thousands of nodes in one process.
type Transport interface {
	// ReadFrom reads one datagram into b. A datagram longer than b is
	// truncated to len(b), so the node reads with one byte of slack to
	// see it was too long.
	ReadFrom(b []byte) (n int, from netip.AddrPort, err error)
	WriteTo(b []byte, to netip.AddrPort) (int, error)
	LocalAddr() netip.AddrPort
	// Close unblocks ReadFrom, which then returns an error.
	Close() error
}

// UDPTransport is a Transport over an IPv4 UDP socket.
type UDPTransport struct {
	conn *net.UDPConn
}

// ListenUDP binds an IPv4 UDP socket on addr ("127.0.0.1:6881", ":6881").
func ListenUDP(addr string) (*UDPTransport, error) {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("dht: listen address %q: %w", addr, err)
	}
	c, err := net.ListenUDP("udp4", ua)
	if err != nil {
		return nil, fmt.Errorf("dht: %w", err)
	}
	return &UDPTransport{conn: c}, nil
}

func (t *UDPTransport) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, from, err := t.conn.ReadFromUDPAddrPort(b)
	return n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err
}

func (t *UDPTransport) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	return t.conn.WriteToUDPAddrPort(b, to)
}

func (t *UDPTransport) LocalAddr() netip.AddrPort {
	a := t.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func (t *UDPTransport) Close() error { return t.conn.Close() }

// MemNetwork is an in-memory network of Transports for tests and
// simulations: delivery is immediate and lossless unless a queue is full
// (then the datagram is dropped, as UDP would), and a closed transport's
// address swallows what is sent to it, as a node that died would.
type MemNetwork struct {
	mu    sync.RWMutex
	nodes map[netip.AddrPort]*MemTransport
	// QueueLen is the datagrams a transport holds unread (default 256).
	QueueLen int
	// Dropped counts datagrams lost to full queues.
	Dropped atomic.Int64
}

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{nodes: make(map[netip.AddrPort]*MemTransport), QueueLen: 256}
}

// Listen returns a transport at addr.
func (mn *MemNetwork) Listen(addr netip.AddrPort) (*MemTransport, error) {
	mn.mu.Lock()
	defer mn.mu.Unlock()
	if _, ok := mn.nodes[addr]; ok {
		return nil, fmt.Errorf("dht: mem listen %s: address in use", addr)
	}
	t := &MemTransport{mn: mn, addr: addr, in: make(chan memPacket, mn.QueueLen), done: make(chan struct{})}
	mn.nodes[addr] = t
	return t, nil
}

type memPacket struct {
	b    []byte
	from netip.AddrPort
}

// MemTransport is one address on a MemNetwork.
type MemTransport struct {
	mn   *MemNetwork
	addr netip.AddrPort
	in   chan memPacket
	once sync.Once
	done chan struct{}
}

var errClosed = errors.New("dht: transport closed")

func (t *MemTransport) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	select {
	case p := <-t.in:
		return copy(b, p.b), p.from, nil
	case <-t.done:
		return 0, netip.AddrPort{}, errClosed
	}
}

func (t *MemTransport) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	select {
	case <-t.done:
		return 0, errClosed
	default:
	}
	t.mn.mu.RLock()
	dst := t.mn.nodes[to]
	t.mn.mu.RUnlock()
	if dst == nil {
		return len(b), nil // nobody there: lost, as UDP would
	}
	select {
	case <-dst.done:
	case dst.in <- memPacket{b: append([]byte(nil), b...), from: t.addr}:
	default: // queue full: dropped
		t.mn.Dropped.Add(1)
	}
	return len(b), nil
}

func (t *MemTransport) LocalAddr() netip.AddrPort { return t.addr }

// Close stops the transport; its address stays taken and silent.
func (t *MemTransport) Close() error {
	t.once.Do(func() { close(t.done) })
	return nil
}
