package peerwire

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"
)

func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Message
	}{
		{"keep-alive", Message{ID: KeepAlive}},
		{"choke", Message{ID: Choke}},
		{"unchoke", Message{ID: Unchoke}},
		{"interested", Message{ID: Interested}},
		{"not interested", Message{ID: NotInterested}},
		{"have", Message{ID: Have, Index: 77}},
		{"bitfield", Message{ID: BitfieldMsg, Payload: []byte{0xf0, 0x80}}},
		{"request", Message{ID: Request, Index: 1, Begin: 16384, Length: 16384}},
		{"cancel", Message{ID: Cancel, Index: 2, Begin: 0, Length: 100}},
		{"piece", Message{ID: Piece, Index: 3, Begin: 32768, Block: []byte("hello")}},
		{"unknown type keeps its payload", Message{ID: 20, Payload: []byte{1, 2, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendMessage(nil, tt.m)
			got, n, err := Decode(b, 1<<20)
			if err != nil || n != len(b) {
				t.Fatalf("Decode = %v, %d; want nil, %d", err, n, len(b))
			}
			if got.ID != tt.m.ID || got.Index != tt.m.Index || got.Begin != tt.m.Begin ||
				got.Length != tt.m.Length || !bytes.Equal(got.Block, tt.m.Block) || !bytes.Equal(got.Payload, tt.m.Payload) {
				t.Fatalf("got %+v, want %+v", got, tt.m)
			}
		})
	}
}

func TestDecodeRejectsMalformedMessages(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"short prefix", []byte{0, 0, 1}, ErrMessage},
		{"truncated body", []byte{0, 0, 0, 5, 4, 0}, ErrMessage},
		{"have with 3 bytes", []byte{0, 0, 0, 4, 4, 0, 0, 1}, ErrMessage},
		{"request with 8 bytes", append([]byte{0, 0, 0, 9, 6}, make([]byte, 8)...), ErrMessage},
		{"choke with a payload", []byte{0, 0, 0, 2, 0, 9}, ErrMessage},
		{"piece without header", []byte{0, 0, 0, 5, 7, 0, 0, 0, 0}, ErrMessage},
		{"length over the bound", []byte{0x7f, 0, 0, 0, 7}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Decode(tt.b, 1<<20); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHandshake(t *testing.T) {
	h := Handshake{InfoHash: [20]byte{1, 2, 3}, PeerID: [20]byte{9}}
	var buf bytes.Buffer
	if err := WriteHandshake(&buf, h); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != HandshakeLen {
		t.Fatalf("handshake is %d bytes, want %d", buf.Len(), HandshakeLen)
	}
	got, err := ReadHandshake(bytes.NewReader(buf.Bytes()))
	if err != nil || got != h {
		t.Fatalf("ReadHandshake = %+v, %v", got, err)
	}
	bad := buf.Bytes()
	bad[5] = 'X'
	if _, err := ReadHandshake(bytes.NewReader(bad)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("wrong protocol string: err = %v", err)
	}
	if _, err := ReadHandshake(bytes.NewReader([]byte{18})); !errors.Is(err, ErrProtocol) {
		t.Fatalf("wrong protocol length: err = %v", err)
	}
}

func TestPeerIDHasPrefixAndHex(t *testing.T) {
	id, err := NewPeerID()
	if err != nil {
		t.Fatal(err)
	}
	if string(id[:8]) != PeerIDPrefix {
		t.Fatalf("peer id %q lacks prefix", id)
	}
	for _, c := range id[8:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			t.Fatalf("peer id %q has non-hex %q", id, c)
		}
	}
}

func TestParseBitfield(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		n    int
		ok   bool
	}{
		{"exact bytes", []byte{0xff}, 8, true},
		{"spare bits clear", []byte{0xff, 0x80}, 9, true},
		{"spare bit set", []byte{0xff, 0xc0}, 9, false},
		{"too short", []byte{0xff}, 9, false},
		{"too long", []byte{0xff, 0, 0}, 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bf, err := ParseBitfield(tt.b, tt.n)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && bf.Count() > tt.n {
				t.Fatalf("count %d > %d", bf.Count(), tt.n)
			}
		})
	}
	bf := NewBitfield(10)
	bf.Set(0)
	bf.Set(9)
	if !bf.Has(0) || !bf.Has(9) || bf.Has(5) || bf.Has(10) || bf.Has(-1) || bf.Count() != 2 {
		t.Fatalf("bitfield ops wrong: %08b", bf)
	}
	bf.Clear(9)
	if bf.Has(9) {
		t.Fatal("Clear did not clear")
	}
}

func TestConnOverTCP(t *testing.T) {
	a, b := tcpPair(t)
	cfg := DefaultConnConfig(100)
	ca, cb := NewConn(a, cfg), NewConn(b, cfg)
	block := bytes.Repeat([]byte{7}, 16384)
	go func() {
		_ = ca.SetWriteDeadline()
		_ = ca.WriteMessage(Message{ID: Interested})
		_ = ca.WritePiece(4, 0, block)
		_ = ca.WriteMessage(Message{ID: KeepAlive})
		_ = ca.Flush()
	}()
	want := []ID{Interested, Piece, KeepAlive}
	for _, id := range want {
		m, err := cb.ReadMessage()
		if err != nil || m.ID != id {
			t.Fatalf("ReadMessage = %v, %v; want %v", m.ID, err, id)
		}
		if id == Piece && (m.Index != 4 || !bytes.Equal(m.Block, block)) {
			t.Fatal("piece block differs")
		}
	}
}

func TestConnWritePieces(t *testing.T) {
	tests := []struct {
		name string
		pair func(t *testing.T) (net.Conn, net.Conn)
	}{
		{"tcp, vectored", tcpPair},
		{"pipe, one write at a time", func(*testing.T) (net.Conn, net.Conn) { return net.Pipe() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.pair(t)
			defer a.Close()
			defer b.Close()
			cfg := DefaultConnConfig(100)
			ca, cb := NewConn(a, cfg), NewConn(b, cfg)
			var blocks []PieceBlock
			for i := range 70 { // more than one writev's worth of iovecs on some systems
				blocks = append(blocks, PieceBlock{Index: uint32(i / 16), Begin: uint32(i%16) * 16384, Data: bytes.Repeat([]byte{byte(i)}, 16384-i)})
			}
			errc := make(chan error, 1)
			go func() {
				_ = ca.SetWriteDeadline()
				if err := ca.WriteMessage(Message{ID: Unchoke}); err != nil {
					errc <- err
					return
				}
				if err := ca.WritePieces(blocks); err != nil {
					errc <- err
					return
				}
				errc <- ca.Flush()
			}()
			if m, err := cb.ReadMessage(); err != nil || m.ID != Unchoke {
				t.Fatalf("first message = %v, %v; want the unchoke written before the pieces", m.ID, err)
			}
			for _, want := range blocks {
				m, err := cb.ReadMessage()
				if err != nil || m.ID != Piece || m.Index != want.Index || m.Begin != want.Begin || !bytes.Equal(m.Block, want.Data) {
					t.Fatalf("got %v %d/%d (%d bytes), %v; want piece %d/%d (%d bytes)", m.ID, m.Index, m.Begin, len(m.Block), err, want.Index, want.Begin, len(want.Data))
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConnRejectsOversizedMessage(t *testing.T) {
	a, b := tcpPair(t)
	cb := NewConn(b, DefaultConnConfig(8))
	go a.Write([]byte{0, 0x10, 0, 0, 7}) // 1 MiB declared
	if _, err := cb.ReadMessage(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestConnReadDeadline(t *testing.T) {
	_, b := tcpPair(t)
	cfg := DefaultConnConfig(8)
	cfg.ReadTimeout = 50 * time.Millisecond
	cb := NewConn(b, cfg)
	_, err := cb.ReadMessage()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ch <- c
	}()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func FuzzDecode(f *testing.F) {
	f.Add(AppendMessage(nil, Message{ID: Request, Index: 1, Begin: 2, Length: 3}))
	f.Add(AppendMessage(nil, Message{ID: Piece, Index: 1, Block: []byte("abc")}))
	f.Add(AppendMessage(nil, Message{ID: BitfieldMsg, Payload: []byte{0xff}}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, n, err := Decode(b, 1<<17)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		// A decoded message re-encodes to the bytes it came from.
		if again := AppendMessage(nil, m); !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding %+v gives %x, want %x", m, again, b[:n])
		}
	})
}

func TestReadMessageResultsOutliveTheNextRead(t *testing.T) {
	a, b := tcpPair(t)
	cb := NewConn(b, DefaultConnConfig(64))
	bf := []byte{0, 0, 0, 0, 0, 0, 0, 0}
	var wire []byte
	wire = AppendMessage(wire, Message{ID: BitfieldMsg, Payload: bf})
	wire = AppendMessage(wire, Message{ID: Have, Index: 42})
	wire = AppendMessage(wire, Message{ID: Request, Index: 1, Begin: 2, Length: 3})
	wire = AppendMessage(wire, Message{ID: Have, Index: 0x01020304}) // malformed sizes follow
	wire = append(wire, 0, 0, 0, 40, 4)
	wire = append(wire, make([]byte, 39)...)
	go a.Write(wire)
	first, err := cb.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := cb.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(first.Payload, bf) {
		t.Fatalf("bitfield changed by later reads: %x", first.Payload)
	}
	if _, err := cb.ReadMessage(); !errors.Is(err, ErrMessage) {
		t.Fatalf("a 39-byte have: err = %v, want ErrMessage", err)
	}
}
