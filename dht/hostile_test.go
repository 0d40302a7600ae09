package dht

import (
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"btclient/bencode"
	"btclient/internal/testwait"
)

// rawPeer is a hand-driven UDP socket speaking KRPC (or junk) to a node.
type rawPeer struct {
	t    *testing.T
	conn *net.UDPConn
	id   ID
}

func newRawPeer(t *testing.T, ip string) *rawPeer {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, conn: c, id: randomID()}
}

func (p *rawPeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *rawPeer) send(to netip.AddrPort, b []byte) {
	if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// query sends a query with transaction id tid.
func (p *rawPeer) query(to netip.AddrPort, tid, method string, args map[string]any) {
	if _, ok := args["id"]; !ok {
		args["id"] = string(p.id[:])
	}
	b, err := encodeQuery(tid, method, args)
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(to, b)
}

// recv returns the next message within d; ok is false on silence.
func (p *rawPeer) recv(d time.Duration) (m *message, size int, ok bool) {
	buf := make([]byte, 65536)
	p.conn.SetReadDeadline(time.Now().Add(d))
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, 0, false
	}
	m, err = decodeMessage(buf[:n])
	if err != nil {
		p.t.Fatalf("node sent an undecodable packet %q: %v", buf[:n], err)
	}
	return m, n, true
}

// answer returns the answer to transaction tid within d, skipping other
// packets (such as the node's pings verifying us).
func (p *rawPeer) answer(tid string, d time.Duration) (*message, bool) {
	deadline := time.Now().Add(d)
	for {
		m, _, ok := p.recv(time.Until(deadline))
		if !ok {
			return nil, false
		}
		if m.T == tid && m.Y != kindQuery {
			return m, true
		}
	}
}

// pingAnswered reports whether the node answers a ping from p.
func (p *rawPeer) pingAnswered(to netip.AddrPort) bool {
	p.query(to, "pi", methodPing, map[string]any{})
	m, ok := p.answer("pi", time.Second)
	return ok && m.Y == kindResponse
}

// honestNetwork is a target node with two honest nodes beside it: one has
// announced ih, the other looks peers up through the target.
type honestNetwork struct {
	target, announcer, seeker *Node
	ih                        ID
	peer                      netip.AddrPort
}

func newHonestNetwork(t *testing.T, mutate func(*Config)) *honestNetwork {
	t.Helper()
	h := &honestNetwork{ih: randomID()}
	h.target = udpNode(t, mutate)
	h.announcer = udpNode(t, nil, h.target)
	h.seeker = udpNode(t, nil, h.target)
	waitJoined(t, h.announcer)
	waitJoined(t, h.seeker)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.announcer.Announce(ctx, h.ih, 7001, false); err != nil {
		t.Fatalf("honest announce: %v", err)
	}
	h.peer = netip.MustParseAddrPort("127.0.0.1:7001")
	return h
}

// honestLookupSucceeds fails the test unless the seeker still finds the peer.
func (h *honestNetwork) honestLookupSucceeds(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peers, err := h.seeker.GetPeers(ctx, h.ih)
	if err != nil || !slices.Contains(peers, h.peer) {
		t.Fatalf("honest lookup: %v, %v; want %v", peers, err, h.peer)
	}
}

// junkDatagrams returns n datagrams of every kind of junk: random bytes,
// truncated and corrupted KRPC, bencode of the wrong shape, deep nesting.
func junkDatagrams(n int) [][]byte {
	id := strings.Repeat("j", 20)
	valid := []string{
		"d1:ad2:id20:" + id + "9:info_hash20:" + id + "e1:q9:get_peers1:t2:aa1:y1:qe",
		"d1:rd2:id20:" + id + "5:nodes26:" + id + "\x7f\x00\x00\x01\x1a\xe1e1:t2:zz1:y1:re",
	}
	shapes := []string{
		"le", "i42e", "de", "d1:t2:aa1:y1:qe", "d1:ad2:idi1ee1:q4:ping1:t2:aa1:y1:qe",
		"d1:rd2:id3:abc5:nodes3:xyze1:t2:aa1:y1:re", "d1:eli201ee1:t2:aa1:y1:ee",
		strings.Repeat("l", 200) + strings.Repeat("e", 200),
		"d1:ad2:id20:" + id + "e1:q4:ping1:t2:aa1:y1:qe1:x",
		"999999999999:x",
	}
	out := make([][]byte, n)
	for i := range out {
		switch i % 4 {
		case 0:
			b := make([]byte, 1+mrand.IntN(1500))
			rand.Read(b)
			out[i] = b
		case 1:
			v := valid[i%len(valid)]
			out[i] = []byte(v[:mrand.IntN(len(v))])
		case 2:
			b := []byte(valid[i%len(valid)])
			b[mrand.IntN(len(b))] ^= byte(1 + mrand.IntN(255))
			out[i] = b
		default:
			out[i] = []byte(shapes[i%len(shapes)])
		}
	}
	return out
}

func TestHostileInput(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		check  func(t *testing.T, h *honestNetwork)
	}{
		{"survives 20,000 junk datagrams", nil, func(t *testing.T, h *honestNetwork) {
			heap0 := heapInuse()
			junk := junkDatagrams(20000)
			// 40 sources of 500 datagrams, each blocked after its junk
			// burst; sent 100 at a time so the socket buffer drops none.
			base := h.target.Stats().PacketsIn
			sent := 0
			for s := range 40 {
				p := newRawPeer(t, "127.0.0.1")
				for i, d := range junk[s*500 : (s+1)*500] {
					p.send(h.target.Addr(), d)
					if sent++; i%100 == 99 {
						testwait.Until(t, 5*time.Second, "the node to read the junk", func() bool {
							return h.target.Stats().PacketsIn-base >= int64(sent)
						})
					}
				}
			}
			fresh := newRawPeer(t, "127.0.0.1")
			if !fresh.pingAnswered(h.target.Addr()) {
				t.Fatal("the node does not answer a ping after the junk")
			}
			st := h.target.Stats()
			grew := int64(heapInuse()) - int64(heap0)
			if read := st.PacketsIn - base; read < 20000 {
				t.Errorf("the node read %d of the 20,000 datagrams", read)
			}
			t.Logf("20,000 junk datagrams: %d malformed, %d oversized, %d unsolicited, %d dropped from blocked sources, %d answered as errors; heap grew %d KiB",
				st.Malformed, st.Oversized, st.Unsolicited, st.Blocked, h.target.stats.protocolErrors.Load(), grew>>10)
			if st.Blocked == 0 {
				t.Error("no source of junk was blocked")
			}
			if st.Panics != 0 {
				t.Errorf("%d handler panics", st.Panics)
			}
			if grew > 8<<20 {
				t.Errorf("heap grew by %s", mib(uint64(grew)))
			}
			h.honestLookupSucceeds(t)
		}},
		{"drops oversized packets unread", nil, func(t *testing.T, h *honestNetwork) {
			p := newRawPeer(t, "127.0.0.1")
			pad := func(size int) []byte {
				// A ping padded with an unknown key to exactly size bytes.
				head := "d1:ad2:id20:" + string(p.id[:]) + "e1:q4:ping1:t2:pi1:y1:q1:z"
				for l := size - len(head); l > 0; l-- {
					if s := head + strconv.Itoa(l) + ":" + strings.Repeat("x", l) + "e"; len(s) == size {
						return []byte(s)
					}
				}
				t.Fatalf("cannot pad to %d", size)
				return nil
			}
			for _, size := range []int{2049, 4000, 60000} {
				p.send(h.target.Addr(), pad(size))
				if m, _, ok := p.recv(300 * time.Millisecond); ok {
					t.Fatalf("a %d-byte ping was answered: %+v", size, m)
				}
			}
			if got := h.target.Stats().Oversized; got != 3 {
				t.Fatalf("oversized count %d, want 3", got)
			}
			p.send(h.target.Addr(), pad(2048))
			if m, _, ok := p.recv(2 * time.Second); !ok || m.Y != kindResponse {
				t.Fatal("a 2048-byte ping (the bound) was not answered")
			}
		}},
		{"ignores responses to transactions it never sent", nil, func(t *testing.T, h *honestNetwork) {
			p := newRawPeer(t, "127.0.0.1")
			var planted []netip.AddrPort
			for i := range 100 {
				fake := nodeInfo{randomID(), netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 66, byte(i), 1}), 6881)}
				planted = append(planted, fake.Addr)
				b, _ := encodeReply(string([]byte{byte(i), 1, 2, 3}), map[string]any{"id": string(p.id[:]), "nodes": string(appendCompactNode(nil, fake))})
				p.send(h.target.Addr(), b)
			}
			time.Sleep(300 * time.Millisecond)
			st := h.target.Stats()
			if st.Unsolicited == 0 || st.Blocked == 0 {
				t.Fatalf("unsolicited %d, blocked %d; want both counted", st.Unsolicited, st.Blocked)
			}
			locked(h.target, func() bool {
				for _, a := range append(planted, p.addr()) {
					if h.target.table.byAddr[a] != nil {
						t.Errorf("%v got into the table", a)
					}
				}
				return true
			})
			if p.pingAnswered(h.target.Addr()) {
				t.Error("a source of unsolicited responses is still answered")
			}
			if !newRawPeer(t, "127.0.0.1").pingAnswered(h.target.Addr()) {
				t.Error("another source is not answered")
			}
			h.honestLookupSucceeds(t)
		}},
		{"accepts a response only from the address it asked", nil, func(t *testing.T, h *honestNetwork) {
			asked := newRawPeer(t, "127.0.0.1")
			forger := newRawPeer(t, "127.0.0.1")
			h.target.AddNode(asked.addr()) // the node pings it
			m, _, ok := asked.recv(2 * time.Second)
			if !ok || m.Q != methodPing {
				t.Fatalf("no ping arrived: %+v", m)
			}
			forged, _ := encodeReply(m.T, map[string]any{"id": string(forger.id[:])})
			forger.send(h.target.Addr(), forged)
			time.Sleep(200 * time.Millisecond)
			if h.target.stats.unsolicited.Load() != 1 {
				t.Fatal("the forged answer was not refused")
			}
			real, _ := encodeReply(m.T, map[string]any{"id": string(asked.id[:])})
			asked.send(h.target.Addr(), real)
			testwait.Until(t, 2*time.Second, "the asked node in the table", func() bool {
				return locked(h.target, func() bool {
					e := h.target.table.byAddr[asked.addr()]
					return e != nil && e.ID == asked.id
				})
			})
			if locked(h.target, func() bool { return h.target.table.byAddr[forger.addr()] != nil }) {
				t.Fatal("the forger got into the table")
			}
		}},
		{"does not add a node whose reply has a bad compact length", nil, func(t *testing.T, h *honestNetwork) {
			p := newRawPeer(t, "127.0.0.1")
			h.target.AddNode(p.addr())
			m, _, ok := p.recv(2 * time.Second)
			if !ok || m.Q != methodPing {
				t.Fatalf("no ping arrived: %+v", m)
			}
			junk, _ := encodeReply(m.T, map[string]any{"id": string(p.id[:]), "nodes": strings.Repeat("x", 27)})
			malformed := h.target.Stats().Malformed
			p.send(h.target.Addr(), junk)
			testwait.Until(t, 2*time.Second, "the reply to be counted as malformed", func() bool {
				return h.target.Stats().Malformed > malformed
			})
			if locked(h.target, func() bool { return h.target.table.byAddr[p.addr()] != nil }) {
				t.Fatal("a node that answered with 27 bytes of nodes got into the table")
			}
		}},
		{"answers a read-only node but never adds it", nil, func(t *testing.T, h *honestNetwork) {
			ro := newRawPeer(t, "127.0.0.1")
			pkt, _ := bencode.Marshal(map[string]any{"t": "ro", "y": "q", "q": "ping", "ro": 1, "a": map[string]any{"id": string(ro.id[:])}})
			ro.send(h.target.Addr(), pkt)
			if m, ok := ro.answer("ro", time.Second); !ok || m.Y != kindResponse {
				t.Fatal("a read-only node's ping was not answered")
			}
			if m, _, ok := ro.recv(500 * time.Millisecond); ok {
				t.Fatalf("the node sent a read-only node %+v (a verifying ping?)", m)
			}
			// A node that is not read-only gets a ping that verifies it.
			rw := newRawPeer(t, "127.0.0.1")
			rw.query(h.target.Addr(), "rw", methodPing, map[string]any{})
			if _, ok := rw.answer("rw", time.Second); !ok {
				t.Fatal("no answer")
			}
			if m, _, ok := rw.recv(time.Second); !ok || m.Q != methodPing {
				t.Fatalf("no verifying ping to a querier: %+v", m)
			}
		}},
		{"refuses announce_peer with a forged token", nil, func(t *testing.T, h *honestNetwork) {
			p := newRawPeer(t, "127.0.0.1")
			other := newRawPeer(t, "127.0.0.2")
			ih := randomID()
			p.query(h.target.Addr(), "gp", methodGetPeers, map[string]any{"info_hash": string(ih[:])})
			m, ok := p.answer("gp", 2*time.Second)
			if !ok || m.R.Token == "" {
				t.Fatalf("no token: %+v", m)
			}
			token := m.R.Token
			otherIH := randomID()
			announce := func(from *rawPeer, ih ID, token string) *message {
				from.query(h.target.Addr(), "an", methodAnnouncePeer, map[string]any{"info_hash": string(ih[:]), "port": 7777, "token": token})
				m, ok := from.answer("an", 2*time.Second)
				if !ok {
					t.Fatal("no answer to announce_peer")
				}
				return m
			}
			for _, c := range []struct {
				what  string
				from  *rawPeer
				ih    ID
				token string
			}{
				{"a random token", p, ih, "\x01\x02\x03\x04\x05\x06\x07\x08"},
				{"an empty token", p, ih, ""},
				{"a token for another info hash", p, otherIH, token},
				{"a token issued to another IP", other, ih, token},
			} {
				if m := announce(c.from, c.ih, c.token); m.Y != kindError {
					t.Errorf("%s: answered %+v, want an error", c.what, m)
				}
			}
			stored := func() int {
				return len(locked(h.target, func() []netip.AddrPort { return h.target.store.get(ih, 100, time.Now()) }))
			}
			if n := stored(); n != 0 || h.target.Stats().BadTokens != 4 {
				t.Fatalf("%d peers stored, %d bad tokens counted after forged announces", n, h.target.Stats().BadTokens)
			}
			if m := announce(p, ih, token); m.Y != kindResponse || stored() != 1 {
				t.Fatalf("the genuine token was refused: %+v", m)
			}
			// Eleven minutes on (for the token issuer), the same token is
			// stale: two rotations of 5 min.
			locked(h.target, func() bool {
				h.target.tok.rotated = h.target.tok.rotated.Add(-11 * time.Minute)
				return true
			})
			if m := announce(p, ih, token); m.Y != kindError {
				t.Fatalf("a token eleven minutes old was accepted: %+v", m)
			}
		}},
		{"recovers from a panic in a handler", nil, func(t *testing.T, h *honestNetwork) {
			p := newRawPeer(t, "127.0.0.1")
			// A nil token issuer makes the get_peers handler (and nothing
			// else) dereference nil.
			tok := locked(h.target, func() *tokens { tk := h.target.tok; h.target.tok = nil; return tk })
			ih := randomID()
			p.query(h.target.Addr(), "gp", methodGetPeers, map[string]any{"info_hash": string(ih[:])})
			if _, ok := p.answer("gp", 500*time.Millisecond); ok {
				t.Fatal("answered while the token issuer was broken")
			}
			locked(h.target, func() bool { h.target.tok = tok; return true })
			if got := h.target.Stats().Panics; got != 1 {
				t.Fatalf("%d panics counted, want 1", got)
			}
			if !p.pingAnswered(h.target.Addr()) {
				t.Fatal("the node is not answering after a recovered panic")
			}
			h.honestLookupSucceeds(t)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, newHonestNetwork(t, tt.mutate)) })
	}
}
