package swarm

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"btclient/peerwire"
	"btclient/torrent"
)

// dialSession connects to a session and completes the handshake.
func dialSession(t *testing.T, addr string, m *torrent.MetaInfo) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	id, _ := peerwire.NewPeerID()
	if err := peerwire.WriteHandshake(nc, peerwire.Handshake{InfoHash: m.InfoHash, PeerID: id}); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := peerwire.ReadHandshake(nc); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return nc
}

// expectClosed reads until the session closes the connection.
func expectClosed(t *testing.T, nc net.Conn, within time.Duration) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", within)
	}
}

func msg(m peerwire.Message) []byte { return peerwire.AppendMessage(nil, m) }

func TestHostilePeersAreDropped(t *testing.T) {
	data, m := testTorrent(t, 1<<20+5, 64<<10) // 17 pieces: the bitfield has spare bits
	n := m.NumPieces()
	spare := make([]byte, (n+7)/8)
	spare[len(spare)-1] = 0x01
	tooLong := make([]byte, 4)
	binary.BigEndian.PutUint32(tooLong, 64<<20)
	var storm []byte
	for range 10 {
		storm = append(storm, msg(peerwire.Message{ID: peerwire.Request, Index: 0, Begin: 1 << 20, Length: 16 << 10})...)
	}
	tests := []struct {
		name string
		send []byte
	}{
		{"bitfield with spare bits set", msg(peerwire.Message{ID: peerwire.BitfieldMsg, Payload: spare})},
		{"bitfield of the wrong length", msg(peerwire.Message{ID: peerwire.BitfieldMsg, Payload: []byte{0xff}})},
		{"have for a piece out of range", msg(peerwire.Message{ID: peerwire.Have, Index: uint32(n)})},
		{"block for a piece out of range", msg(peerwire.Message{ID: peerwire.Piece, Index: uint32(n + 5), Block: make([]byte, 16)})},
		{"oversized message", append(tooLong, 7)},
		{"request over 128 KiB", msg(peerwire.Message{ID: peerwire.Interested})},
		{"request storm for invalid blocks", storm},
		{"malformed request", []byte{0, 0, 0, 3, 6, 0, 0}},
	}
	tests[5].send = append(tests[5].send, msg(peerwire.Message{ID: peerwire.Request, Index: 0, Begin: 0, Length: 256 << 10})...)
	seed, addr := session(t, DefaultConfig(), m, newMemStorage(len(data), data))
	waitDone(t, seed, 10*time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := dialSession(t, addr, m)
			if _, err := nc.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, nc, 5*time.Second)
		})
	}
}

func TestUnrequestedBlocksGetThePeerDropped(t *testing.T) {
	data, m := testTorrent(t, 1<<20, 64<<10)
	cfg := DefaultConfig()
	cfg.MaxUnsolicited = 8
	_, addr := session(t, cfg, m, newMemStorage(len(data), nil)) // a leecher with nothing
	nc := dialSession(t, addr, m)
	go func() {
		for range 100 {
			if _, err := nc.Write(msg(peerwire.Message{ID: peerwire.Piece, Index: 1, Begin: 0, Block: make([]byte, 16<<10)})); err != nil {
				return
			}
		}
	}()
	expectClosed(t, nc, 5*time.Second)
}

func TestSlowlorisHandshakeIsCutOff(t *testing.T) {
	data, m := testTorrent(t, 256<<10, 64<<10)
	cfg := DefaultConfig()
	cfg.HandshakeTimeout = 2 * time.Second
	cfg.MaxHandshakes = 4
	_, addr := session(t, cfg, m, newMemStorage(len(data), data))
	var conns []net.Conn
	for range 4 { // every half-open slot taken
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write([]byte{19, 'B'}) // and never the rest
		conns = append(conns, nc)
	}
	// An honest peer gets in while the slowloris connections hold every slot.
	dialSession(t, addr, m)
	for _, nc := range conns {
		expectClosed(t, nc, 3*time.Second)
	}
}

func TestHonestDownloadCompletesAmongHostilePeers(t *testing.T) {
	data, m := testTorrent(t, 2<<20, 64<<10)
	hole := blackHole(t, m)
	_, seed := session(t, DefaultConfig(), m, newMemStorage(len(data), data))
	store := newMemStorage(len(data), nil)
	leech, laddr := session(t, DefaultConfig(), m, store, hole, seed)
	// Hostile peers dial the leecher while it downloads.
	for range 5 {
		go func() {
			nc, err := net.Dial("tcp", laddr)
			if err != nil {
				return
			}
			defer nc.Close()
			id, _ := peerwire.NewPeerID()
			peerwire.WriteHandshake(nc, peerwire.Handshake{InfoHash: m.InfoHash, PeerID: id})
			nc.Write(msg(peerwire.Message{ID: peerwire.Have, Index: 1 << 30}))
			io.Copy(io.Discard, nc)
		}()
	}
	waitDone(t, leech, 30*time.Second)
	if string(store.data) != string(data) {
		t.Fatal("data differs")
	}
}

// A peer that stalls gets its requests taken back and asked of others; when
// its blocks arrive after all, they are late, not unsolicited, and the peer
// is not dropped for them.
func TestLateBlocksAfterAStallAreNotHeldAgainstThePeer(t *testing.T) {
	data, m := testTorrent(t, 1<<20, 64<<10)
	_, seed := session(t, DefaultConfig(), m, newMemStorage(len(data), data))
	cfg := DefaultConfig()
	cfg.Tick = 50 * time.Millisecond
	cfg.StallTimeout = 200 * time.Millisecond
	cfg.MaxUnsolicited = 4
	leech, laddr := session(t, cfg, m, newMemStorage(len(data), nil))

	// The slow peer has every piece but the last, so the leecher keeps it
	// after completing; it collects the requests and answers none yet.
	nc := dialSession(t, laddr, m)
	bf := peerwire.NewBitfield(m.NumPieces())
	for i := range m.NumPieces() - 1 {
		bf.Set(i)
	}
	if _, err := nc.Write(append(msg(peerwire.Message{ID: peerwire.BitfieldMsg, Payload: bf}), msg(peerwire.Message{ID: peerwire.Unchoke})...)); err != nil {
		t.Fatal(err)
	}
	conn := peerwire.NewConn(nc, peerwire.DefaultConnConfig(m.NumPieces()))
	var asked []peerwire.Message
	nc.SetReadDeadline(time.Now().Add(time.Second))
	for len(asked) < 8 {
		r, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for requests: %v", err)
		}
		if r.ID == peerwire.Request {
			asked = append(asked, r)
		}
	}
	time.Sleep(2 * cfg.StallTimeout) // stalled: the leecher takes its requests back
	leech.AddPeers("test", []string{seed})
	waitDone(t, leech, 10*time.Second)

	for _, r := range asked {
		off := int(r.Index)*int(m.PieceLength) + int(r.Begin)
		late := peerwire.Message{ID: peerwire.Piece, Index: r.Index, Begin: r.Begin, Block: data[off : off+int(r.Length)]}
		if _, err := nc.Write(msg(late)); err != nil {
			t.Fatalf("sending late block: %v", err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if s := leech.Stats(); s.BadPeers != 0 {
		t.Fatalf("the slow peer was dropped as bad for %d late blocks: %+v", len(asked), s)
	}
	nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		if _, err := conn.ReadMessage(); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("connection closed after the late blocks: %v", err)
			}
			break
		}
	}
}
