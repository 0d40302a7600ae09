package peerwire

import "testing"

func BenchmarkEncodeRequest(b *testing.B) {
	buf := make([]byte, 0, 64)
	m := Message{ID: Request, Index: 10, Begin: 16384, Length: 16384}
	for b.Loop() {
		buf = AppendMessage(buf[:0], m)
	}
}

func BenchmarkDecodePiece(b *testing.B) {
	msg := AppendMessage(nil, Message{ID: Piece, Index: 1, Block: make([]byte, 16384)})
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, _, err := Decode(msg, 1<<17); err != nil {
			b.Fatal(err)
		}
	}
}
