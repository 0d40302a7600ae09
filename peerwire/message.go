package peerwire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ID is a message type.
type ID int

// The BEP 3 message types.
const (
	Choke         ID = 0
	Unchoke       ID = 1
	Interested    ID = 2
	NotInterested ID = 3
	Have          ID = 4
	BitfieldMsg   ID = 5
	Request       ID = 6
	Piece         ID = 7
	Cancel        ID = 8
)

// KeepAlive is the ID given to a zero-length message. It is never on the wire.
const KeepAlive ID = -1

var idNames = [...]string{"choke", "unchoke", "interested", "not interested", "have", "bitfield", "request", "piece", "cancel"}

func (id ID) String() string {
	if id == KeepAlive {
		return "keep-alive"
	}
	if id >= 0 && int(id) < len(idNames) {
		return idNames[id]
	}
	return fmt.Sprintf("message %d", id)
}

// ErrMessage reports a message whose payload does not fit its type.
var ErrMessage = errors.New("peerwire: malformed message")

// ErrTooLarge reports a message over the connection's size bound.
var ErrTooLarge = errors.New("peerwire: message too large")

// Message is one decoded message. Which fields are meaningful depends on ID:
// Have uses Index; Request and Cancel use Index, Begin and Length; Piece uses
// Index, Begin and Block; Bitfield uses Payload. Unknown IDs keep their raw
// Payload so a caller can ignore them.
type Message struct {
	ID      ID
	Index   uint32
	Begin   uint32
	Length  uint32
	Block   []byte
	Payload []byte
}

// AppendMessage appends m in wire form to b.
func AppendMessage(b []byte, m Message) []byte {
	switch m.ID {
	case KeepAlive:
		return binary.BigEndian.AppendUint32(b, 0)
	case Choke, Unchoke, Interested, NotInterested:
		b = binary.BigEndian.AppendUint32(b, 1)
		return append(b, byte(m.ID))
	case Have:
		b = binary.BigEndian.AppendUint32(b, 5)
		b = append(b, byte(m.ID))
		return binary.BigEndian.AppendUint32(b, m.Index)
	case Request, Cancel:
		b = binary.BigEndian.AppendUint32(b, 13)
		b = append(b, byte(m.ID))
		b = binary.BigEndian.AppendUint32(b, m.Index)
		b = binary.BigEndian.AppendUint32(b, m.Begin)
		return binary.BigEndian.AppendUint32(b, m.Length)
	case Piece:
		b = AppendPieceHeader(b, m.Index, m.Begin, len(m.Block))
		return append(b, m.Block...)
	default:
		b = binary.BigEndian.AppendUint32(b, uint32(1+len(m.Payload)))
		b = append(b, byte(m.ID))
		return append(b, m.Payload...)
	}
}

// AppendPieceHeader appends the 13-byte header of a piece message carrying n
// bytes of block, so the block itself can be written without a copy.
func AppendPieceHeader(b []byte, index, begin uint32, n int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(9+n))
	b = append(b, byte(Piece))
	b = binary.BigEndian.AppendUint32(b, index)
	return binary.BigEndian.AppendUint32(b, begin)
}

// decodePayload fills m from the payload of a message of type id. The payload
// slice is retained for Bitfield and unknown messages.
func decodePayload(id ID, p []byte) (Message, error) {
	m := Message{ID: id}
	switch id {
	case Choke, Unchoke, Interested, NotInterested:
		if len(p) != 0 {
			return m, fmt.Errorf("%w: %v with %d payload bytes", ErrMessage, id, len(p))
		}
	case Have:
		if len(p) != 4 {
			return m, fmt.Errorf("%w: have of %d bytes", ErrMessage, len(p))
		}
		m.Index = binary.BigEndian.Uint32(p)
	case Request, Cancel:
		if len(p) != 12 {
			return m, fmt.Errorf("%w: %v of %d bytes", ErrMessage, id, len(p))
		}
		m.Index = binary.BigEndian.Uint32(p)
		m.Begin = binary.BigEndian.Uint32(p[4:])
		m.Length = binary.BigEndian.Uint32(p[8:])
	case Piece:
		if len(p) < 8 {
			return m, fmt.Errorf("%w: piece of %d bytes", ErrMessage, len(p))
		}
		m.Index = binary.BigEndian.Uint32(p)
		m.Begin = binary.BigEndian.Uint32(p[4:])
		m.Block = p[8:]
	default:
		m.Payload = p
	}
	return m, nil
}

// Decode parses one whole message (length prefix included) from b and returns
// it with the number of bytes used. It never reads past b and rejects a
// declared length over maxLen.
func Decode(b []byte, maxLen int) (Message, int, error) {
	if len(b) < 4 {
		return Message{}, 0, fmt.Errorf("%w: short length prefix", ErrMessage)
	}
	n := binary.BigEndian.Uint32(b)
	if n == 0 {
		return Message{ID: KeepAlive}, 4, nil
	}
	if uint64(n) > uint64(maxLen) {
		return Message{}, 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	if uint64(len(b)-4) < uint64(n) {
		return Message{}, 0, fmt.Errorf("%w: truncated", ErrMessage)
	}
	m, err := decodePayload(ID(b[4]), b[5:4+n])
	return m, 4 + int(n), err
}
