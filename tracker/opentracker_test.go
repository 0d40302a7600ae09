package tracker

import (
	"context"
	"errors"
	"testing"
	"time"

	"btclient/internal/tooltest"
)

// TestUDPClientAgainstOpentracker runs our UDP client against Debian's
// opentracker over loopback: peers that announced earlier come back in a
// later announce, scrape counts agree with what was announced, and agree
// with the same tracker's HTTP view.
func TestUDPClientAgainstOpentracker(t *testing.T) {
	ih := hash20("opentracker-udp-0001")
	ot := tooltest.StartOpentracker(t, "127.0.0.3", ih)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var c Client

	seeder := AnnounceRequest{InfoHash: ih, PeerID: hash20("-BT0001-udpseeder000"), Port: 7001, Left: 0, Event: EventStarted}
	leecher := AnnounceRequest{InfoHash: ih, PeerID: hash20("-BT0001-udpleecher00"), Port: 7002, Left: 1000, Event: EventStarted, NumWant: 50}
	if _, err := c.Announce(ctx, ot.UDP, seeder); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Announce(ctx, ot.UDP, leecher)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leecher's announce: %+v", resp)
	found := false
	for _, p := range resp.Peers {
		if p.Port == 7001 && p.IP.IsLoopback() {
			found = true
		}
	}
	if !found || resp.Complete != 1 || resp.Incomplete != 1 || resp.Interval <= 0 {
		t.Fatalf("leecher got %+v; want the seeder on port 7001, 1 seeder, 1 leecher and an interval", resp)
	}

	stats, err := c.Scrape(ctx, ot.UDP, ih)
	if err != nil {
		t.Fatal(err)
	}
	if st := stats[ih]; st.Complete != 1 || st.Incomplete != 1 {
		t.Fatalf("scrape %+v, want 1 seeder and 1 leecher", st)
	}

	leecher.Event, leecher.Left = EventCompleted, 0
	if _, err := c.Announce(ctx, ot.UDP, leecher); err != nil {
		t.Fatal(err)
	}
	udpStats, err := c.Scrape(ctx, ot.UDP, ih)
	if err != nil {
		t.Fatal(err)
	}
	httpStats, err := c.Scrape(ctx, ot.HTTP, ih)
	if err != nil {
		t.Fatal(err)
	}
	if st := udpStats[ih]; st != (ScrapeStats{Complete: 2, Downloaded: 1, Incomplete: 0}) || httpStats[ih] != st {
		t.Fatalf("after the leecher completed: UDP scrape %+v, HTTP scrape %+v; want 2 seeders, 1 download in both", st, httpStats[ih])
	}

	seeder.Event = EventStopped
	if _, err := c.Announce(ctx, ot.UDP, seeder); err != nil {
		t.Fatal(err)
	}
	if stats, err := c.Scrape(ctx, ot.UDP, ih); err != nil || stats[ih].Complete != 1 {
		t.Fatalf("after the seeder stopped: %+v, %v; want 1 seeder", stats[ih], err)
	}

	// A torrent missing from the whitelist gets no peers: opentracker
	// drops such a UDP announce, and the client gives up within its Timeout.
	other := AnnounceRequest{InfoHash: hash20("not-on-the-whitelist"), PeerID: hash20("-BT0001-udpother0000"), Port: 7003, Left: 1}
	resp, err = (&Client{Timeout: time.Second, UDPRetry: 200 * time.Millisecond}).Announce(ctx, ot.UDP, other)
	var fe *FailureError
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &fe) {
		t.Fatalf("announce of a torrent off the whitelist: %+v, %v; want no answer or a refusal", resp, err)
	}
}
