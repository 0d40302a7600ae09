package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// MemNetwork is an in-memory network of Transports, for tests and
// simulations: connections are net.Pipes, addresses are any host:port
// strings, and the network can be split into partitions and healed.
type MemNetwork struct {
	mu        sync.Mutex
	listeners map[string]*MemTransport
	group     map[string]int // partition group per address; absent = reaches all
	slow      map[string]time.Duration
}

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{listeners: make(map[string]*MemTransport)}
}

// Listen returns a Transport bound to addr on this network.
func (mn *MemNetwork) Listen(addr string) (*MemTransport, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("mem listen %s: %w", addr, err)
	}
	mn.mu.Lock()
	defer mn.mu.Unlock()
	if _, ok := mn.listeners[addr]; ok {
		return nil, fmt.Errorf("mem listen %s: address in use", addr)
	}
	t := &MemTransport{mn: mn, addr: addr, conns: make(chan net.Conn, 64), done: make(chan struct{})}
	mn.listeners[addr] = t
	return t, nil
}

// Partition splits the network: an address in one group cannot reach an
// address in another. Addresses in no group reach everyone.
func (mn *MemNetwork) Partition(groups ...[]string) {
	mn.mu.Lock()
	defer mn.mu.Unlock()
	mn.group = make(map[string]int)
	for i, g := range groups {
		for _, a := range g {
			mn.group[a] = i
		}
	}
}

// Slow makes every connection to addr take d to open, as to a busy node
// (0: no delay).
func (mn *MemNetwork) Slow(addr string, d time.Duration) {
	mn.mu.Lock()
	defer mn.mu.Unlock()
	if mn.slow == nil {
		mn.slow = make(map[string]time.Duration)
	}
	mn.slow[addr] = d
}

// Heal removes every partition.
func (mn *MemNetwork) Heal() {
	mn.mu.Lock()
	defer mn.mu.Unlock()
	mn.group = nil
}

var errMemRefused = errors.New("connection refused")

func (mn *MemNetwork) dial(ctx context.Context, from, to string) (net.Conn, error) {
	mn.mu.Lock()
	t := mn.listeners[to]
	gf, okf := mn.group[from]
	gt, okt := mn.group[to]
	delay := mn.slow[to]
	mn.mu.Unlock()
	if okf && okt && gf != gt {
		return nil, fmt.Errorf("mem dial %s: %w", to, errors.New("network unreachable"))
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("mem dial %s: %w", to, ctx.Err())
		}
	}
	if t == nil {
		return nil, fmt.Errorf("mem dial %s: %w", to, errMemRefused)
	}
	client, server := net.Pipe()
	select {
	case t.conns <- &memConn{Conn: server, local: memAddr(to), remote: memAddr(from)}:
		return &memConn{Conn: client, local: memAddr(from), remote: memAddr(to)}, nil
	case <-t.done:
	case <-ctx.Done():
	}
	client.Close()
	server.Close()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mem dial %s: %w", to, err)
	}
	return nil, fmt.Errorf("mem dial %s: %w", to, errMemRefused)
}

// MemTransport is one address on a MemNetwork.
type MemTransport struct {
	mn    *MemNetwork
	addr  string
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

// Accept waits for the next inbound connection.
func (t *MemTransport) Accept() (net.Conn, error) {
	select {
	case c := <-t.conns:
		return c, nil
	case <-t.done:
		return nil, net.ErrClosed
	}
}

// Close stops listening: later dials to this address are refused, as for a
// process that died.
func (t *MemTransport) Close() error {
	t.once.Do(func() {
		t.mn.mu.Lock()
		delete(t.mn.listeners, t.addr)
		t.mn.mu.Unlock()
		close(t.done)
	})
	return nil
}

// Addr returns the address the transport listens on.
func (t *MemTransport) Addr() net.Addr { return memAddr(t.addr) }

// DialContext connects to another transport on the same network.
func (t *MemTransport) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	select {
	case <-t.done:
		return nil, fmt.Errorf("mem dial %s: %w", addr, net.ErrClosed)
	default:
	}
	return t.mn.dial(ctx, t.addr, addr)
}

// memAddr is an address on a MemNetwork; it looks like a TCP address.
type memAddr string

func (a memAddr) Network() string { return "tcp" }
func (a memAddr) String() string  { return string(a) }

type memConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }
