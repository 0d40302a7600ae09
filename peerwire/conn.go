package peerwire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// MaxBlock is the largest block a peer may request or send: 128 KiB.
const MaxBlock = 128 << 10

// ConnConfig bounds one connection.
type ConnConfig struct {
	// ReadTimeout is how long a read may wait for the next message. A peer
	// sends at least a keep-alive every 2 minutes, so 3 minutes of silence is death.
	ReadTimeout time.Duration
	// WriteTimeout bounds every flush to the socket.
	WriteTimeout time.Duration
	// MaxMessage bounds a message's declared length. It must fit a piece
	// message of MaxBlock and the torrent's bitfield.
	MaxMessage int
	// BufferSize is the size of the read and the write buffer.
	BufferSize int
}

// DefaultConnConfig returns bounds for a torrent of numPieces pieces.
func DefaultConnConfig(numPieces int) ConnConfig {
	return ConnConfig{
		ReadTimeout:  3 * time.Minute,
		WriteTimeout: 30 * time.Second,
		MaxMessage:   max(9+MaxBlock, 1+(numPieces+7)/8),
		BufferSize:   128 << 10,
	}
}

// Conn is a peer-wire connection after the handshake. One goroutine may read
// while another writes; neither side is safe for concurrent use by itself.
type Conn struct {
	nc      net.Conn
	cfg     ConnConfig
	r       *bufio.Reader
	w       *bufio.Writer
	scratch [13]byte
	hdr     []byte

	// AllocBlock returns the buffer a piece message's block is read into; the
	// caller owns the result. Nil means make([]byte, n).
	AllocBlock func(n int) []byte

	readDeadline time.Time

	hdrs []byte      // piece headers of one WritePieces call
	iov  net.Buffers // its headers and blocks, interleaved
}

// PieceBlock is a block to send in a piece message.
type PieceBlock struct {
	Index, Begin uint32
	Data         []byte
}

// NewConn wraps nc. The handshake must already have been exchanged on nc.
func NewConn(nc net.Conn, cfg ConnConfig) *Conn {
	return &Conn{
		nc:  nc,
		cfg: cfg,
		r:   bufio.NewReaderSize(nc, cfg.BufferSize),
		w:   bufio.NewWriterSize(nc, cfg.BufferSize),
		hdr: make([]byte, 0, 17),
	}
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Buffered is how many received bytes wait in the read buffer: when zero,
// the next ReadMessage will wait for the network.
func (c *Conn) Buffered() int { return c.r.Buffered() }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// ReadMessage reads the next message. The returned message owns its memory:
// a Piece's Block comes from AllocBlock, a Bitfield's or unknown message's
// Payload is a fresh copy, so it may be handed to another goroutine while the
// next message is read.
func (c *Conn) ReadMessage() (Message, error) {
	// Moving the deadline costs a timer update; once a second is plenty.
	if now := time.Now(); c.readDeadline.Sub(now) < c.cfg.ReadTimeout-time.Second {
		c.readDeadline = now.Add(c.cfg.ReadTimeout)
		if err := c.nc.SetReadDeadline(c.readDeadline); err != nil {
			return Message{}, fmt.Errorf("peerwire: set deadline: %w", err)
		}
	}
	var lp [4]byte
	if _, err := io.ReadFull(c.r, lp[:]); err != nil {
		return Message{}, fmt.Errorf("peerwire: read: %w", err)
	}
	n := binary.BigEndian.Uint32(lp[:])
	if n == 0 {
		return Message{ID: KeepAlive}, nil
	}
	if uint64(n) > uint64(c.cfg.MaxMessage) {
		return Message{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	id, err := c.r.ReadByte()
	if err != nil {
		return Message{}, fmt.Errorf("peerwire: read: %w", err)
	}
	if ID(id) == Piece {
		return c.readPiece(int(n) - 1)
	}
	var p []byte
	if fixedSize(ID(id)) && int(n-1) <= len(c.scratch) {
		p = c.scratch[:n-1] // decoded into fields, never retained
	} else {
		p = make([]byte, n-1)
	}
	if _, err := io.ReadFull(c.r, p); err != nil {
		return Message{}, fmt.Errorf("peerwire: read %v: %w", ID(id), err)
	}
	return decodePayload(ID(id), p)
}

// fixedSize reports whether a message of type id decodes into fields only;
// its payload is at most 12 bytes when well formed.
func fixedSize(id ID) bool {
	switch id {
	case Choke, Unchoke, Interested, NotInterested, Have, Request, Cancel:
		return true
	}
	return false
}

func (c *Conn) readPiece(n int) (Message, error) {
	if n < 8 {
		return Message{}, fmt.Errorf("%w: piece of %d bytes", ErrMessage, n)
	}
	var h [8]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return Message{}, fmt.Errorf("peerwire: read piece: %w", err)
	}
	var block []byte
	if c.AllocBlock != nil {
		block = c.AllocBlock(n - 8)
	} else {
		block = make([]byte, n-8)
	}
	if _, err := io.ReadFull(c.r, block); err != nil {
		return Message{}, fmt.Errorf("peerwire: read piece: %w", err)
	}
	return Message{
		ID:    Piece,
		Index: binary.BigEndian.Uint32(h[:]),
		Begin: binary.BigEndian.Uint32(h[4:]),
		Block: block,
	}, nil
}

// WriteMessage buffers m; Flush sends it.
func (c *Conn) WriteMessage(m Message) error {
	if m.ID == Piece {
		return c.WritePiece(m.Index, m.Begin, m.Block)
	}
	c.hdr = AppendMessage(c.hdr[:0], m)
	if _, err := c.w.Write(c.hdr); err != nil {
		return fmt.Errorf("peerwire: write %v: %w", m.ID, err)
	}
	return nil
}

// WritePiece buffers a piece message without copying block into a message.
func (c *Conn) WritePiece(index, begin uint32, block []byte) error {
	c.hdr = AppendPieceHeader(c.hdr[:0], index, begin, len(block))
	if _, err := c.w.Write(c.hdr); err != nil {
		return fmt.Errorf("peerwire: write piece: %w", err)
	}
	if _, err := c.w.Write(block); err != nil {
		return fmt.Errorf("peerwire: write piece: %w", err)
	}
	return nil
}

// WritePieces sends a piece message for each block after what is buffered.
// The blocks are not copied into the write buffer: headers and blocks go to
// the kernel together in one vectored write.
func (c *Conn) WritePieces(blocks []PieceBlock) error {
	if err := c.Flush(); err != nil {
		return err
	}
	c.hdrs = c.hdrs[:0]
	for _, b := range blocks {
		c.hdrs = AppendPieceHeader(c.hdrs, b.Index, b.Begin, len(b.Data))
	}
	c.iov = c.iov[:0]
	for i, b := range blocks {
		c.iov = append(c.iov, c.hdrs[i*13:(i+1)*13], b.Data)
	}
	bufs := c.iov // WriteTo consumes its receiver
	if _, err := bufs.WriteTo(c.nc); err != nil {
		return fmt.Errorf("peerwire: write pieces: %w", err)
	}
	return nil
}

// SetWriteDeadline bounds the writes and the flush that follow.
func (c *Conn) SetWriteDeadline() error {
	return c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
}

// Flush sends what is buffered.
func (c *Conn) Flush() error {
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("peerwire: flush: %w", err)
	}
	return nil
}
