package swarm

import (
	"slices"
	"testing"
	"time"

	"btclient/peerwire"
)

// offers reads from c until it has been offered want pieces by HAVE, and
// fails on a bitfield: a super-seeder shows only what it offers.
func offers(t *testing.T, c *peerwire.Conn, want int) []int {
	t.Helper()
	var got []int
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < want {
		if time.Now().After(deadline) {
			t.Fatalf("offered %v after 5 s; want %d pieces", got, want)
		}
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("offered %v, then %v", got, err)
		}
		switch m.ID {
		case peerwire.BitfieldMsg:
			t.Fatal("a super-seeder sent its bitfield")
		case peerwire.Have:
			got = append(got, int(m.Index))
		}
	}
	return got
}

func TestSuperSeederOffersEachPieceToOnePeer(t *testing.T) {
	const size, pieceLen = 4 << 20, 256 << 10 // 16 pieces
	data, m := testTorrent(t, size, pieceLen)
	cfg := DefaultConfig()
	cfg.SuperSeed = SuperSeedOn
	_, addr := session(t, cfg, m, newMemStorage(size, data))

	connect := func() *peerwire.Conn {
		c := peerwire.NewConn(dialSession(t, addr, m), peerwire.DefaultConnConfig(m.NumPieces()))
		// Its empty bitfield, as a fresh leecher's.
		if err := c.WriteMessage(peerwire.Message{ID: peerwire.BitfieldMsg, Payload: peerwire.NewBitfield(m.NumPieces())}); err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := connect()
	fromA := offers(t, a, 2)
	b := connect()
	fromB := offers(t, b, 2)
	for _, i := range fromB {
		if slices.Contains(fromA, i) {
			t.Fatalf("piece %d offered to both peers (%v, %v) while others were offered to none", i, fromA, fromB)
		}
	}

	// A announces it has what it was offered: it is offered more, and
	// nothing yet offered to anyone.
	for _, i := range fromA {
		if err := a.WriteMessage(peerwire.Message{ID: peerwire.Have, Index: uint32(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	more := offers(t, a, 2)
	for _, i := range more {
		if slices.Contains(fromA, i) || slices.Contains(fromB, i) {
			t.Fatalf("then offered %v to A: piece %d was offered before (A %v, B %v)", more, i, fromA, fromB)
		}
	}
}

func TestSuperSeedModes(t *testing.T) {
	for _, s := range []string{"auto", "on", "off"} {
		if m, err := ParseSuperSeedMode(s); err != nil || string(m) != s {
			t.Errorf("ParseSuperSeedMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "yes", "AUTO"} {
		if _, err := ParseSuperSeedMode(s); err == nil {
			t.Errorf("ParseSuperSeedMode(%q) accepted", s)
		}
	}
	cfg := DefaultConfig()
	cfg.SuperSeed = "sometimes"
	if cfg.validate() == nil {
		t.Error("a Config with super-seed mode \"sometimes\" validated")
	}
}
