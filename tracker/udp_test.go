package tracker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fastUDP is a client whose retransmissions come quickly, so tests of lost
// and hostile replies finish in well under a second.
func fastUDP() *Client {
	return &Client{Timeout: 3 * time.Second, UDPRetry: 50 * time.Millisecond}
}

func TestUDPAnnounceSendsTheRequestAndReadsTheReply(t *testing.T) {
	ft := newFakeUDPTracker(t, "udp", "127.0.0.1:0", honestUDP(0xfeedface, compact4("10.0.0.1:6881", "10.0.0.2:0", "192.168.1.2:51413")))
	c := fastUDP()
	req := AnnounceRequest{
		InfoHash: hash20("udp-announce-torrent"), PeerID: hash20("-BT0001-udppeer00000"),
		Port: 6881, Uploaded: 5, Downloaded: 6, Left: 7, Event: EventStarted, NumWant: 30, IP: "10.1.2.3",
	}
	resp, err := c.Announce(context.Background(), ft.url+"?passkey=s3cret", req)
	if err != nil {
		t.Fatal(err)
	}
	want := &AnnounceResponse{Interval: 30 * time.Minute, Complete: 3, Incomplete: 2,
		Peers: []Peer{peer("10.0.0.1:6881"), peer("192.168.1.2:51413")}}
	if !reflect.DeepEqual(resp, want) {
		t.Fatalf("got %+v\nwant %+v", resp, want)
	}

	connects, announces := ft.received(udpConnect), ft.received(udpAnnounce)
	if len(connects) != 1 || len(connects[0].raw) != 16 {
		t.Fatalf("connect requests %+v, want one of 16 bytes", connects)
	}
	if len(announces) != 1 {
		t.Fatalf("%d announce requests, want 1", len(announces))
	}
	a := announces[0].raw
	if len(a) < 98 {
		t.Fatalf("announce of %d bytes, want at least 98", len(a))
	}
	u64 := func(off int) uint64 { return binary.BigEndian.Uint64(a[off:]) }
	u32 := func(off int) uint32 { return binary.BigEndian.Uint32(a[off:]) }
	checks := []struct {
		field     string
		got, want any
	}{
		{"connection id", u64(0), uint64(0xfeedface)},
		{"info hash", string(a[16:36]), string(req.InfoHash[:])},
		{"peer id", string(a[36:56]), string(req.PeerID[:])},
		{"downloaded", u64(56), uint64(6)},
		{"left", u64(64), uint64(7)},
		{"uploaded", u64(72), uint64(5)},
		{"event (2 = started)", u32(80), uint32(2)},
		{"ip", net.IP(a[84:88]).String(), "10.1.2.3"},
		{"num_want", u32(92), uint32(30)},
		{"port", binary.BigEndian.Uint16(a[96:]), uint16(6881)},
		// BEP 41: the path and query as URLData options, for trackers
		// that keep a passkey there.
		{"URLData option", string(a[98:]), "\x02\x18/announce?passkey=s3cret"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.field, c.got, c.want)
		}
	}

	// The key stays the same from one announce to the next: the tracker
	// tells us by it after an address change.
	req.Event, req.NumWant, req.IP = EventNone, 0, "2001:db8::1"
	if _, err := c.Announce(context.Background(), ft.url, req); err != nil {
		t.Fatal(err)
	}
	b := ft.received(udpAnnounce)[1].raw
	if !bytes.Equal(a[88:92], b[88:92]) {
		t.Errorf("key changed between announces: %x then %x", a[88:92], b[88:92])
	}
	if binary.BigEndian.Uint32(b[80:]) != 0 || int32(binary.BigEndian.Uint32(b[92:])) != -1 || !bytes.Equal(b[84:88], []byte{0, 0, 0, 0}) {
		t.Errorf("no event, the default num_want and no IPv4 address: event %d num_want %d ip %v",
			binary.BigEndian.Uint32(b[80:]), int32(binary.BigEndian.Uint32(b[92:])), b[84:88])
	}
	if string(b[98:]) != "\x02\x09/announce" {
		t.Errorf("URLData %q, want the path alone", b[98:])
	}
}

func TestUDPConnectionIDIsReusedForOneMinute(t *testing.T) {
	ft := newFakeUDPTracker(t, "udp", "127.0.0.1:0", honestUDP(42, nil))
	clock := newFakeClock()
	c := fastUDP()
	c.now = clock.Now
	announce := func() {
		t.Helper()
		if _, err := c.Announce(context.Background(), ft.url, AnnounceRequest{Port: 1}); err != nil {
			t.Fatal(err)
		}
	}
	announce()
	clock.Advance(59 * time.Second)
	announce()
	if _, err := c.Scrape(context.Background(), ft.url, hash20("x")); err != nil {
		t.Fatal(err)
	}
	if n := len(ft.received(udpConnect)); n != 1 {
		t.Fatalf("%d connects within the minute, want 1", n)
	}
	clock.Advance(2 * time.Second)
	announce()
	if n := len(ft.received(udpConnect)); n != 2 {
		t.Fatalf("%d connects after the id expired, want 2", n)
	}
}

func TestUDPAsksForANewConnectionIDWhenTheTrackerForgotIt(t *testing.T) {
	tests := []struct {
		name string
		// onStale is what the tracker does with a request made with the
		// first connection id once it has moved on to the second.
		onStale func(udpRequest) [][]byte
	}{
		{"the tracker refuses the old id", func(r udpRequest) [][]byte {
			return [][]byte{udpReply(udpError, r.tid, []byte("Connection ID missmatch."))}
		}},
		{"the tracker ignores the old id", func(udpRequest) [][]byte { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var current atomic.Uint64
			current.Store(1)
			ft := newFakeUDPTracker(t, "udp", "127.0.0.1:0", func(r udpRequest) [][]byte {
				id := current.Load()
				if r.action != udpConnect && r.connID != id {
					return tt.onStale(r)
				}
				return honestUDP(id, compact4("10.0.0.7:7"))(r)
			})
			c := fastUDP()
			if _, err := c.Announce(context.Background(), ft.url, AnnounceRequest{Port: 1}); err != nil {
				t.Fatal(err)
			}
			current.Store(2) // the tracker restarted
			resp, err := c.Announce(context.Background(), ft.url, AnnounceRequest{Port: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Peers) != 1 || len(ft.received(udpConnect)) != 2 {
				t.Fatalf("peers %v after %d connects; want 1 peer after 2", resp.Peers, len(ft.received(udpConnect)))
			}
		})
	}
}

func TestUDPRetransmitsWithTheSameTransaction(t *testing.T) {
	var seen atomic.Int32
	honest := honestUDP(9, compact4("10.0.0.3:3"))
	ft := newFakeUDPTracker(t, "udp", "127.0.0.1:0", func(r udpRequest) [][]byte {
		if r.action == udpAnnounce && seen.Add(1) < 3 {
			return nil // lost
		}
		return honest(r)
	})
	c := fastUDP()
	resp, err := c.Announce(context.Background(), ft.url, AnnounceRequest{Port: 1})
	if err != nil {
		t.Fatal(err)
	}
	sent := ft.received(udpAnnounce)
	if len(sent) != 3 || len(resp.Peers) != 1 {
		t.Fatalf("%d announces sent, %d peers; want 3 sends and the peer", len(sent), len(resp.Peers))
	}
	for _, r := range sent[1:] {
		if !bytes.Equal(r.raw, sent[0].raw) {
			t.Fatal("a retransmission differs from the first request")
		}
	}
}

func TestUDPHostileTrackers(t *testing.T) {
	truth := compact4("10.9.9.9:9999")
	lie := compact4("6.6.6.6:666")
	// before returns a tracker that sends junk ahead of every honest reply.
	before := func(junk func(r udpRequest) [][]byte) func(udpRequest) [][]byte {
		honest := honestUDP(5, truth)
		return func(r udpRequest) [][]byte { return append(junk(r), honest(r)...) }
	}
	tests := []struct {
		name        string
		answer      func(udpRequest) [][]byte
		ctxTimeout  time.Duration
		wantPeers   []byte // the honest answer got through
		wantErr     string
		wantFailure string
		wantTimeout bool
	}{
		{
			name: "junk is dropped and the true answer used",
			answer: before(func(r udpRequest) [][]byte {
				return [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n"), bytes.Repeat([]byte{0xff}, 200), {}}
			}),
			wantPeers: truth,
		},
		{
			name: "a wrong transaction id is not believed",
			answer: before(func(r udpRequest) [][]byte {
				return [][]byte{udpReply(udpConnect, r.tid+1, be64(666)), udpReply(udpAnnounce, r.tid^0x80000000, be32(1, 1, 1), lie)}
			}),
			wantPeers: truth,
		},
		{
			name: "a wrong action is not believed",
			answer: before(func(r udpRequest) [][]byte {
				return [][]byte{udpReply(udpScrape, r.tid, be32(1, 2, 3)), udpReply(7, r.tid, lie)}
			}),
			wantPeers: truth,
		},
		{
			name: "short packets are dropped",
			answer: before(func(r udpRequest) [][]byte {
				// Our transaction and action, but too short to be the answer.
				return [][]byte{{0}, udpReply(r.action, r.tid)[:7], udpReply(r.action, r.tid), udpReply(r.action, r.tid, be32(60))}
			}),
			wantPeers: truth,
		},
		{
			name: "a packet over the size bound is dropped unread",
			answer: before(func(r udpRequest) [][]byte {
				return [][]byte{udpReply(r.action, r.tid, be64(1), bytes.Repeat(lie, 60000/len(lie)))}
			}),
			wantPeers: truth,
		},
		{
			name:        "silence ends in an error within the context's deadline",
			answer:      func(udpRequest) [][]byte { return nil },
			ctxTimeout:  400 * time.Millisecond,
			wantTimeout: true,
		},
		{
			name: "only wrong transaction ids end like silence",
			answer: func(r udpRequest) [][]byte {
				return [][]byte{udpReply(udpConnect, r.tid+1, be64(1))}
			},
			ctxTimeout:  400 * time.Millisecond,
			wantTimeout: true,
		},
		{
			name: "an error reply is the tracker's failure",
			answer: func(r udpRequest) [][]byte {
				if r.action == udpConnect {
					return honestUDP(5, nil)(r)
				}
				return [][]byte{udpReply(udpError, r.tid, []byte("torrent not registered\x00"))}
			},
			wantFailure: "torrent not registered",
		},
		{
			name: "an answer with a torn peer list is an error",
			answer: func(r udpRequest) [][]byte {
				if r.action == udpConnect {
					return honestUDP(5, nil)(r)
				}
				return [][]byte{udpReply(udpAnnounce, r.tid, be32(60, 0, 0), truth[:5])}
			},
			wantErr: "not a multiple of 6",
		},
		{
			name: "only answers shorter than an announce reply end like silence",
			answer: func(r udpRequest) [][]byte {
				if r.action == udpConnect {
					return honestUDP(5, nil)(r)
				}
				return [][]byte{udpReply(udpAnnounce, r.tid, be32(60))}
			},
			ctxTimeout:  400 * time.Millisecond,
			wantTimeout: true,
		},
		{
			name: "an absurd interval is an error",
			answer: func(r udpRequest) [][]byte {
				if r.action == udpConnect {
					return honestUDP(5, nil)(r)
				}
				return [][]byte{udpReply(udpAnnounce, r.tid, be32(0xffffffff, 0, 0))}
			},
			wantErr: "out of range",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeUDPTracker(t, "udp", "127.0.0.1:0", tt.answer)
			ctx := context.Background()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			c := fastUDP()
			start := time.Now()
			resp, err := c.Announce(ctx, ft.url, AnnounceRequest{Port: 1})
			elapsed := time.Since(start)
			var fe *FailureError
			switch {
			case tt.wantPeers != nil:
				if err != nil {
					t.Fatal(err)
				}
				want, _ := parseCompactPeers(string(tt.wantPeers), 4)
				if !reflect.DeepEqual(resp.Peers, want) {
					t.Fatalf("peers %v, want %v", resp.Peers, want)
				}
			case tt.wantTimeout:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want a deadline error", err)
				}
				// Bounded by the caller's deadline, not by the client's 3 s
				// Timeout; the margin is for a loaded machine.
				if elapsed > tt.ctxTimeout+time.Second {
					t.Fatalf("gave up after %v, past the %v deadline", elapsed, tt.ctxTimeout)
				}
				if n := len(ft.received(udpConnect)) + len(ft.received(udpAnnounce)); n < 2 {
					t.Fatalf("%d requests sent; want retransmissions before giving up", n)
				}
			case tt.wantFailure != "":
				if !errors.As(err, &fe) || fe.Reason != tt.wantFailure {
					t.Fatalf("err = %v, want FailureError %q", err, tt.wantFailure)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if errors.As(err, &fe) {
					t.Fatalf("garbage reported as a tracker failure: %v", err)
				}
			}
		})
	}
}

func TestUDPIgnoresAForgedReplyFromAnotherAddress(t *testing.T) {
	forger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	defer forger.Close()
	honest := honestUDP(5, compact4("10.0.0.5:5"))
	ft := newFakeUDPTracker(t, "udp", "127.0.0.1:0", func(r udpRequest) [][]byte {
		// Someone who sees our request answers first, with the right
		// transaction id, from an address that is not the tracker's.
		forged := udpReply(r.action, r.tid, be32(60, 0, 0), compact4("6.6.6.6:666"))
		if r.action == udpConnect {
			forged = udpReply(udpConnect, r.tid, be64(666))
		}
		if _, err := forger.WriteToUDPAddrPort(forged, r.from); err != nil {
			t.Error(err)
		}
		return honest(r)
	})
	resp, err := fastUDP().Announce(context.Background(), ft.url, AnnounceRequest{Port: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Peers) != 1 || resp.Peers[0].String() != "10.0.0.5:5" {
		t.Fatalf("peers %v, want only the tracker's 10.0.0.5:5", resp.Peers)
	}
}

func TestUDPStopsWhenTheContextIsCancelled(t *testing.T) {
	ft := newFakeUDPTracker(t, "udp", "127.0.0.1:0", func(udpRequest) [][]byte { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	c := &Client{UDPRetry: 10 * time.Second} // only the cancel can end the wait early
	start := time.Now()
	_, err := c.Announce(ctx, ft.url, AnnounceRequest{Port: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v to notice the cancel", d)
	}
}

func TestUDPGivesUpWithinTheClientTimeout(t *testing.T) {
	ft := newFakeUDPTracker(t, "udp", "127.0.0.1:0", func(udpRequest) [][]byte { return nil })
	c := &Client{Timeout: 300 * time.Millisecond, UDPRetry: 40 * time.Millisecond}
	start := time.Now()
	_, err := c.Announce(context.Background(), ft.url, AnnounceRequest{Port: 1})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v with a 300ms Timeout", d)
	}
	// Waits of 40, 80 and 160 ms fit in 300 ms: the first request and at
	// least two retransmissions.
	if n := len(ft.received(udpConnect)); n < 3 {
		t.Fatalf("%d connect requests, want the first and at least two retransmissions", n)
	}
}

func TestUDPTrackerThatRefusesPackets(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "udp://" + pc.LocalAddr().String() + "/announce"
	pc.Close() // nothing listens: the kernel answers port unreachable
	_, err = fastUDP().Announce(context.Background(), url, AnnounceRequest{Port: 1})
	if err == nil {
		t.Fatal("no error from a closed port")
	}
}

func TestUDPOverIPv6CarriesIPv6Peers(t *testing.T) {
	if pc, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		pc.Close()
	}
	ft := newFakeUDPTracker(t, "udp6", "[::1]:0", honestUDP(6, compact6("[2001:db8::1]:6881", "[::ffff:10.0.0.1]:80")))
	resp, err := fastUDP().Announce(context.Background(), ft.url, AnnounceRequest{Port: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := []Peer{peer("[2001:db8::1]:6881"), peer("10.0.0.1:80")}
	if !reflect.DeepEqual(resp.Peers, want) {
		t.Fatalf("peers %v, want %v", resp.Peers, want)
	}
}

func TestUDPScrape(t *testing.T) {
	ft := newFakeUDPTracker(t, "udp", "127.0.0.1:0", honestUDP(8, nil))
	c := fastUDP()
	// More hashes than one request holds: the client splits them.
	var hashes [][20]byte
	for i := range 80 {
		hashes = append(hashes, hash20("scrape-"+string(rune('A'+i))))
	}
	got, err := c.Scrape(context.Background(), ft.url, hashes...)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 80 {
		t.Fatalf("%d results, want 80", len(got))
	}
	if st := got[hashes[0]]; st != (ScrapeStats{Complete: 1, Downloaded: 2, Incomplete: 3}) {
		t.Fatalf("first hash: %+v", st)
	}
	if st := got[hashes[74]]; st != (ScrapeStats{Complete: 1, Downloaded: 2, Incomplete: 3}) {
		t.Fatalf("first hash of the second request: %+v", st)
	}
	if st := got[hashes[73]]; st != (ScrapeStats{Complete: 74, Downloaded: 75, Incomplete: 76}) {
		t.Fatalf("last hash of the first request: %+v", st)
	}
	reqs := ft.received(udpScrape)
	if len(reqs) != 2 || len(reqs[0].raw) != 16+74*20 || len(reqs[1].raw) != 16+6*20 {
		t.Fatalf("%d scrape requests; want 74 then 6 hashes", len(reqs))
	}

	if _, err := c.Scrape(context.Background(), ft.url); err == nil {
		t.Fatal("a UDP scrape of no torrents should be refused")
	}
	short := newFakeUDPTracker(t, "udp", "127.0.0.1:0", func(r udpRequest) [][]byte {
		if r.action == udpConnect {
			return honestUDP(8, nil)(r)
		}
		return [][]byte{udpReply(udpScrape, r.tid, be32(1, 2))}
	})
	if _, err := c.Scrape(context.Background(), short.url, hashes[0]); err == nil || !strings.Contains(err.Error(), "scrape reply of 16 bytes") {
		t.Fatalf("a short scrape reply: err = %v", err)
	}
}

func TestUDPURLs(t *testing.T) {
	tests := []struct {
		url, host string
		port      uint16
		urlData   string
		wantErr   string
	}{
		{url: "udp://tracker.example:6969", host: "tracker.example", port: 6969},
		{url: "udp://tracker.example:6969/announce", host: "tracker.example", port: 6969, urlData: "/announce"},
		{url: "UDP://10.0.0.1:80/a%20b?passkey=x&y=1", host: "10.0.0.1", port: 80, urlData: "/a%20b?passkey=x&y=1"},
		{url: "udp://[2001:db8::1]:1337/announce", host: "2001:db8::1", port: 1337, urlData: "/announce"},
		{url: "udp://tracker.example/announce", wantErr: "needs a port"},
		{url: "udp://tracker.example:0/announce", wantErr: "needs a port"},
		{url: "udp://tracker.example:70000/announce", wantErr: "needs a port"},
		{url: "udp://:6969/announce", wantErr: "no host"},
		{url: "udp://tracker.example:69 69/", wantErr: "bad tracker URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := parseUDPURL(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := (udpTracker{host: tt.host, port: tt.port, urlData: tt.urlData}); got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}
