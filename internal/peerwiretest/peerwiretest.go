// Package peerwiretest runs scripted BitTorrent peers on loopback for tests:
// a listener that answers the handshake (with the extension bit), optionally
// sends an extension handshake, a bitfield and an unchoke, and hands every
// message it reads to a handler. Engine tests and end-to-end tests use it
// for the honest, the silent and the lying peers they need.
package peerwiretest

import (
	"net"
	"sync"
	"testing"
	"time"

	"btclient/peerwire"
)

// Peer scripts a fake peer.
type Peer struct {
	InfoHash [20]byte
	// Ext, when set, is sent as our extension handshake right after the
	// BitTorrent handshake.
	Ext *peerwire.ExtHandshake
	// Bitfield and Unchoke are sent next when set.
	Bitfield peerwire.Bitfield
	Unchoke  bool
	// MaxMessage bounds the messages read (default: room for a 128 KiB block).
	MaxMessage int
	// OnConnect runs on a goroutine of its own once the handshakes are done,
	// beside the reads (so it may wait for the client's extension handshake).
	OnConnect func(c *Conn)
	// Handle gets every message the peer reads; nil reads and ignores them.
	Handle func(c *Conn, m peerwire.Message)
	// OnClose runs when the connection has ended.
	OnClose func(c *Conn)
}

// Conn is one connection of a fake peer.
type Conn struct {
	*peerwire.Conn
	// Theirs is the handshake of the client under test.
	Theirs peerwire.Handshake

	mu       sync.Mutex
	theirExt *peerwire.ExtHandshake
}

// Send writes and flushes m; safe for concurrent use.
func (c *Conn) Send(m peerwire.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.SetWriteDeadline(); err != nil {
		return err
	}
	if err := c.WriteMessage(m); err != nil {
		return err
	}
	return c.Flush()
}

// TheirExt returns the extension handshake the client sent, nil before it did.
func (c *Conn) TheirExt() *peerwire.ExtHandshake {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.theirExt
}

// SendExt sends payload as the client's extension name (ut_metadata,
// ut_pex), under the id its handshake gave; false if it gave none.
func (c *Conn) SendExt(name string, payload []byte) bool {
	h := c.TheirExt()
	if h == nil || h.M[name] == 0 {
		return false
	}
	return c.Send(peerwire.ExtendedMessage(byte(h.M[name]), payload)) == nil
}

// Listen starts p on a loopback port and returns its address; it stops
// with the test.
func Listen(t testing.TB, p Peer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() { p.serve(nc) })
		}
	})
	return ln.Addr().String()
}

// Dial connects p to the client at addr and runs it there until the
// connection ends or the test does.
func Dial(t testing.TB, addr string, p Peer) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { nc.Close(); wg.Wait() })
	wg.Go(func() { p.dialed(nc) })
}

func (p Peer) ours() peerwire.Handshake {
	h := peerwire.Handshake{InfoHash: p.InfoHash}
	h.PeerID, _ = peerwire.NewPeerID()
	h.SetExtensions()
	return h
}

func (p Peer) serve(nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	theirs, err := peerwire.ReadHandshake(nc)
	if err != nil || peerwire.WriteHandshake(nc, p.ours()) != nil {
		return
	}
	p.run(nc, theirs)
}

func (p Peer) dialed(nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if peerwire.WriteHandshake(nc, p.ours()) != nil {
		return
	}
	theirs, err := peerwire.ReadHandshake(nc)
	if err != nil {
		return
	}
	p.run(nc, theirs)
}

func (p Peer) run(nc net.Conn, theirs peerwire.Handshake) {
	nc.SetDeadline(time.Time{})
	cfg := peerwire.DefaultConnConfig(0)
	if p.MaxMessage > 0 {
		cfg.MaxMessage = p.MaxMessage
	}
	c := &Conn{Conn: peerwire.NewConn(nc, cfg), Theirs: theirs}
	if p.OnClose != nil {
		defer p.OnClose(c)
	}
	if p.Ext != nil && c.Send(peerwire.ExtendedMessage(0, p.Ext.Marshal())) != nil {
		return
	}
	if p.Bitfield != nil && c.Send(peerwire.Message{ID: peerwire.BitfieldMsg, Payload: p.Bitfield}) != nil {
		return
	}
	if p.Unchoke && c.Send(peerwire.Message{ID: peerwire.Unchoke}) != nil {
		return
	}
	if p.OnConnect != nil {
		var wg sync.WaitGroup
		defer wg.Wait()
		defer nc.Close() // before the wait: the script's sends fail and it returns
		wg.Go(func() { p.OnConnect(c) })
	}
	for {
		m, err := c.ReadMessage()
		if err != nil {
			return
		}
		if m.ID == peerwire.Extended {
			if id, body, err := peerwire.SplitExtended(m.Payload); err == nil && id == 0 {
				if h, err := peerwire.ParseExtHandshake(body); err == nil {
					c.mu.Lock()
					c.theirExt = &h
					c.mu.Unlock()
				}
			}
		}
		if p.Handle != nil {
			p.Handle(c, m)
		}
	}
}
