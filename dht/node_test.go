package dht

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"btclient/internal/testwait"
)

func TestThreeNodesFindAnAnnouncedPeerOverUDP(t *testing.T) {
	a := udpNode(t, nil)
	b := udpNode(t, nil, a)
	c := udpNode(t, nil, a)
	waitJoined(t, b)
	waitJoined(t, c)
	ih := randomID()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Announce(ctx, ih, 7000, false); err != nil {
		t.Fatalf("announce: %v", err)
	}
	peers, err := c.GetPeers(ctx, ih)
	if err != nil {
		t.Fatalf("get_peers: %v", err)
	}
	want := netip.MustParseAddrPort("127.0.0.1:7000")
	if !slices.Contains(peers, want) {
		t.Fatalf("get_peers found %v, want %v among them", peers, want)
	}
	testwait.Until(t, 5*time.Second, "c's table to hold both other nodes", func() bool { return c.Stats().Nodes == 2 })
}
