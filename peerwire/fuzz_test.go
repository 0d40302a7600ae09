package peerwire

import (
	"testing"
)

// FuzzExtHandshake: a peer's extension handshake never panics the parser,
// and what is accepted stays within the bounds.
func FuzzExtHandshake(f *testing.F) {
	f.Add([]byte("d1:md11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei5000e4:reqqi500e1:v4:test6:yourip4:\x7f\x00\x00\x01e"))
	f.Add([]byte("d1:mde1:pi70000ee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseExtHandshake(b)
		if err != nil {
			return
		}
		if len(h.M) > maxExtensions || len(h.V) > maxClientName || h.Port < 0 || h.Port > 65535 || h.ReqQ < 0 || h.MetadataSize < 0 {
			t.Fatalf("out of bounds: %+v", h)
		}
		for _, id := range h.M {
			if id < 1 || id > 255 {
				t.Fatalf("id %d kept", id)
			}
		}
		if _, err := ParseExtHandshake(h.Marshal()); err != nil {
			t.Fatalf("re-encoded handshake does not parse: %v", err)
		}
	})
}

// FuzzMetadataMsg: ut_metadata messages never panic, and accepted data stays
// within one piece.
func FuzzMetadataMsg(f *testing.F) {
	f.Add([]byte("d8:msg_typei1e5:piecei0e10:total_sizei3eeabc"))
	f.Add([]byte("d8:msg_typei0e5:piecei2ee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetadataMsg(b)
		if err != nil {
			return
		}
		if len(m.Data) > MetadataPieceSize || m.Piece < 0 || (m.Type != MetadataData && len(m.Data) > 0) {
			t.Fatalf("out of bounds: type %d piece %d data %d", m.Type, m.Piece, len(m.Data))
		}
	})
}

// FuzzPEX: ut_pex messages never panic and never yield more than the cap or
// an undialable address.
func FuzzPEX(f *testing.F) {
	f.Add([]byte("d5:added6:\x7f\x00\x00\x01\x1a\xe17:added.f1:\x02e"))
	f.Add([]byte("d6:added618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x017:dropped0:e"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePEX(b, 50)
		if err != nil {
			return
		}
		if len(p.Added) > 50 || len(p.Dropped) > 50 {
			t.Fatalf("%d added, %d dropped: over the cap", len(p.Added), len(p.Dropped))
		}
		for _, a := range p.Added {
			if !a.Addr.IsValid() || a.Addr.Port() == 0 || a.Addr.Addr().IsUnspecified() {
				t.Fatalf("undialable %v kept", a.Addr)
			}
		}
	})
}
