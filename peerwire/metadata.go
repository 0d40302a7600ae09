package peerwire

import (
	"fmt"

	"btclient/bencode"
)

// MetadataPieceSize is the size of every ut_metadata piece but the last.
const MetadataPieceSize = 16 << 10

// ut_metadata message types (BEP 9).
const (
	MetadataRequest = 0
	MetadataData    = 1
	MetadataReject  = 2
)

// MetadataMsg is one ut_metadata message.
type MetadataMsg struct {
	Type  int
	Piece int
	// TotalSize is the metadata's size, sent with data.
	TotalSize int64
	// Data is the piece, for data messages.
	Data []byte
}

type metadataWire struct {
	Type      int64 `bencode:"msg_type"`
	Piece     int64 `bencode:"piece"`
	TotalSize int64 `bencode:"total_size,omitempty"`
}

// Marshal returns the message's payload: a dictionary, then the data.
func (m MetadataMsg) Marshal() []byte {
	w := metadataWire{Type: int64(m.Type), Piece: int64(m.Piece)}
	if m.Type == MetadataData {
		w.TotalSize = m.TotalSize
	}
	b, err := bencode.Marshal(w)
	if err != nil {
		panic(fmt.Sprintf("peerwire: encode ut_metadata: %v", err)) // only our own types
	}
	return append(b, m.Data...)
}

// NumMetadataPieces is how many ut_metadata pieces metadata of size bytes has.
func NumMetadataPieces(size int64) int {
	return int((size + MetadataPieceSize - 1) / MetadataPieceSize)
}

// ParseMetadataMsg decodes a ut_metadata payload. Only a data message may
// carry bytes after the dictionary, and at most one piece of them.
func ParseMetadataMsg(b []byte) (MetadataMsg, error) {
	var w metadataWire
	w.Type = -1
	rest, err := bencode.UnmarshalPrefix(b, &w)
	if err != nil {
		return MetadataMsg{}, fmt.Errorf("%w: ut_metadata: %v", ErrExtension, err)
	}
	switch {
	case w.Type < MetadataRequest || w.Type > MetadataReject:
		return MetadataMsg{}, fmt.Errorf("%w: ut_metadata type %d", ErrExtension, w.Type)
	case w.Piece < 0 || w.Piece > 1<<20:
		return MetadataMsg{}, fmt.Errorf("%w: ut_metadata piece %d", ErrExtension, w.Piece)
	case w.Type != MetadataData && len(rest) > 0:
		return MetadataMsg{}, fmt.Errorf("%w: %d bytes after a ut_metadata message of type %d", ErrExtension, len(rest), w.Type)
	case len(rest) > MetadataPieceSize:
		return MetadataMsg{}, fmt.Errorf("%w: ut_metadata piece of %d bytes", ErrExtension, len(rest))
	case w.Type == MetadataData && w.TotalSize <= 0:
		return MetadataMsg{}, fmt.Errorf("%w: ut_metadata data without total_size", ErrExtension)
	}
	return MetadataMsg{Type: int(w.Type), Piece: int(w.Piece), TotalSize: w.TotalSize, Data: rest}, nil
}
