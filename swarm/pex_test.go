package swarm

import (
	"net/netip"
	"testing"
	"time"

	"btclient/internal/peerwiretest"
	"btclient/internal/testwait"
	"btclient/peerwire"
)

// C knows only B; B is connected to the seeder A and tells C about it
// through PEX; C downloads from A. B can hardly download, so what C gets
// comes from A.
func TestPeerExchangeFindsTheSeeder(t *testing.T) {
	data, m := realTorrent(t, 4<<20, 64<<10, 0)
	a, aAddr := session(t, fastConfig(), m, newMemStorage(len(data), data))
	slow := fastConfig()
	slow.DownloadRate = 1
	_, bAddr := session(t, slow, m, newMemStorage(len(data), nil), aAddr)
	store := newMemStorage(len(data), nil)
	c, _ := session(t, fastConfig(), m, store, bAddr)
	waitDone(t, c, 30*time.Second)
	if string(store.data) != string(data) {
		t.Fatal("data differs")
	}
	if got := c.Stats().Learned["pex"]; got < 1 {
		t.Fatalf("C learned %d peers from PEX, want A", got)
	}
	// Stats are a snapshot published every tick.
	testwait.Until(t, 2*time.Second, "A to have uploaded most of the file to C", func() bool {
		return a.Stats().Uploaded >= 3<<20
	})
}

// pexFlooder is a fake peer that sends PEX messages as fast as it can:
// the first lists 10,000 peers, then more of them, then garbage.
func pexFlooder(t *testing.T, infoHash [20]byte) string {
	return peerwiretest.Listen(t, peerwiretest.Peer{
		InfoHash: infoHash,
		Ext:      &peerwire.ExtHandshake{M: map[string]int{peerwire.ExtPEX: 7}},
		OnConnect: func(c *peerwiretest.Conn) {
			for c.TheirExt() == nil {
				time.Sleep(10 * time.Millisecond)
			}
			for round := range 5 {
				var msg peerwire.PEX
				for i := range 10000 {
					ip := netip.AddrFrom4([4]byte{10, byte(round), byte(i >> 8), byte(i)})
					msg.Added = append(msg.Added, peerwire.PEXPeer{Addr: netip.AddrPortFrom(ip, 6881)})
				}
				if !c.SendExt(peerwire.ExtPEX, msg.Marshal()) || !c.SendExt(peerwire.ExtPEX, []byte("d5:added5:junke")) {
					return
				}
			}
		},
	})
}

func TestPEXFloodIsCapped(t *testing.T) {
	data, m := realTorrent(t, 1<<20, 64<<10, 0)
	_, seed := session(t, DefaultConfig(), m, newMemStorage(len(data), data))
	cfg := fastConfig()
	cfg.PEXInterval = time.Hour // the flooder's later messages all come too soon
	flood := pexFlooder(t, m.InfoHash)
	store := newMemStorage(len(data), nil)
	tr, _ := session(t, cfg, m, store, flood, seed)
	waitDone(t, tr, 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	if got := tr.Stats().Learned["pex"]; got > cfg.MaxPEXPerMessage {
		t.Fatalf("took %d peers from one flooding peer, want at most %d", got, cfg.MaxPEXPerMessage)
	}
	if string(store.data) != string(data) {
		t.Fatal("data differs")
	}
}

// A private torrent (BEP 27) offers no PEX and sends none.
func TestPrivateTorrentHasNoPEX(t *testing.T) {
	data, m := realTorrent(t, 256<<10, 64<<10, 0)
	m.Private = true
	_, addr := session(t, fastConfig(), m, newMemStorage(len(data), data))
	got := make(chan *peerwire.ExtHandshake, 1)
	pex := make(chan struct{}, 1)
	peerwiretest.Dial(t, addr, peerwiretest.Peer{
		InfoHash: m.InfoHash,
		Ext:      &peerwire.ExtHandshake{M: map[string]int{peerwire.ExtPEX: 7}},
		Handle: func(c *peerwiretest.Conn, msg peerwire.Message) {
			if msg.ID != peerwire.Extended {
				return
			}
			id, _, _ := peerwire.SplitExtended(msg.Payload)
			switch id {
			case 0:
				got <- c.TheirExt()
			case 7:
				pex <- struct{}{}
			}
		},
	})
	select {
	case h := <-got:
		if h.M[peerwire.ExtPEX] != 0 {
			t.Fatal("a private torrent offers ut_pex")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no extension handshake")
	}
	select {
	case <-pex:
		t.Fatal("a private torrent sent PEX")
	case <-time.After(500 * time.Millisecond):
	}
}
