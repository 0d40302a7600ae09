package tracker

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestClientAgainstServer drives our server with our client over loopback
// HTTP, the way two btclients would find each other.
func TestClientAgainstServer(t *testing.T) {
	_, base := newTestServer(t, ServerConfig{Interval: 90 * time.Second})
	announce := base + "/announce"
	ctx := context.Background()
	var c Client
	ih := hash20("end-to-end torrent")
	seeder := AnnounceRequest{InfoHash: ih, PeerID: hash20("-BT0001-seeder"), Port: 6881, Left: 0, Event: EventStarted}
	leecher := AnnounceRequest{InfoHash: ih, PeerID: hash20("-BT0001-leecher"), Port: 6882, Left: 1000, Event: EventStarted}
	v6 := AnnounceRequest{InfoHash: ih, PeerID: hash20("-BT0001-v6"), Port: 6883, Left: 1000, Event: EventStarted, IP: "::1"}

	resp, err := c.Announce(ctx, announce, seeder)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Peers) != 0 || resp.Complete != 1 || resp.Incomplete != 0 {
		t.Fatalf("first announce: %+v", resp)
	}
	if resp.Interval != 90*time.Second || resp.MinInterval != 60*time.Second {
		t.Fatalf("intervals %v / %v", resp.Interval, resp.MinInterval)
	}
	if _, err := c.Announce(ctx, announce, v6); err != nil {
		t.Fatal(err)
	}

	resp, err = c.Announce(ctx, announce, leecher)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, 0, len(resp.Peers))
	for _, p := range resp.Peers {
		got = append(got, p.String())
	}
	slices.Sort(got)
	want := []string{"127.0.0.1:6881", "[::1]:6883"}
	if !slices.Equal(got, want) || resp.Complete != 1 || resp.Incomplete != 2 {
		t.Fatalf("leecher got %v (complete %d, incomplete %d), want %v, 1, 2", got, resp.Complete, resp.Incomplete, want)
	}

	leecher.Event, leecher.Left = EventCompleted, 0
	if _, err := c.Announce(ctx, announce, leecher); err != nil {
		t.Fatal(err)
	}
	v6.Event = EventStopped
	if _, err := c.Announce(ctx, announce, v6); err != nil {
		t.Fatal(err)
	}
	stats, err := c.Scrape(ctx, announce, ih, hash20("unknown"))
	if err != nil {
		t.Fatal(err)
	}
	if st := stats[ih]; st != (ScrapeStats{Complete: 2, Downloaded: 1, Incomplete: 0}) {
		t.Fatalf("scrape = %+v", st)
	}
	if st, ok := stats[hash20("unknown")]; !ok || st != (ScrapeStats{}) {
		t.Fatalf("scrape of an unknown torrent = %+v, %v", st, ok)
	}

	_, err = c.Announce(ctx, base+"/announce?info_hash=short", AnnounceRequest{})
	var fe *FailureError
	if !errors.As(err, &fe) {
		t.Fatalf("announce with a clashing query: err = %v, want a FailureError", err)
	}

	resp, u, err := c.AnnounceTiers(ctx, [][]string{{"http://" + closedAddr(t) + "/announce"}, {announce}}, seeder)
	if err != nil || u != announce {
		t.Fatalf("tiers: %v via %s", err, u)
	}
	if len(resp.Peers) != 0 || resp.Complete != 2 {
		t.Fatalf("a seeder among seeders got %v, complete %d", resp.Peers, resp.Complete)
	}
	if p := (Peer{IP: netip.MustParseAddr("::1"), Port: 1}); p.String() != "[::1]:1" {
		t.Fatalf("Peer.String = %s", p)
	}
}
