package tracker

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"btclient/bencode"
)

// fakeTracker serves body at every path and remembers the last request.
type fakeTracker struct {
	*httptest.Server
	last chan *http.Request
}

func newFakeTracker(t *testing.T, status int, body []byte) *fakeTracker {
	t.Helper()
	ft := &fakeTracker{last: make(chan *http.Request, 16)}
	ft.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case ft.last <- r:
		default:
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(ft.Close)
	return ft
}

// bencoded encodes a reply for a fake tracker to send.
func bencoded(v map[string]any) []byte {
	b, err := bencode.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func compact4(peers ...string) []byte {
	var b []byte
	for _, p := range peers {
		ap := netip.MustParseAddrPort(p)
		a := ap.Addr().As4()
		b = append(append(b, a[:]...), byte(ap.Port()>>8), byte(ap.Port()))
	}
	return b
}

func compact6(peers ...string) []byte {
	var b []byte
	for _, p := range peers {
		ap := netip.MustParseAddrPort(p)
		a := ap.Addr().As16()
		b = append(append(b, a[:]...), byte(ap.Port()>>8), byte(ap.Port()))
	}
	return b
}

func peer(s string) Peer {
	ap := netip.MustParseAddrPort(s)
	return Peer{IP: ap.Addr(), Port: ap.Port()}
}

func TestClientAnnounceParsesReplies(t *testing.T) {
	tests := []struct {
		name        string
		body        []byte
		want        *AnnounceResponse
		wantFailure string // the tracker's failure reason
		wantErr     string // any other error
	}{
		{
			name: "reads a compact IPv4 peer list",
			body: bencoded(map[string]any{"interval": 1800, "peers": compact4("10.0.0.1:6881", "192.168.1.2:51413")}),
			want: &AnnounceResponse{Interval: 30 * time.Minute, Peers: []Peer{peer("10.0.0.1:6881"), peer("192.168.1.2:51413")}},
		},
		{
			name: "reads compact IPv6 peers from peers6",
			body: bencoded(map[string]any{"interval": 60, "peers": compact4("10.0.0.1:1"), "peers6": compact6("[2001:db8::1]:6881")}),
			want: &AnnounceResponse{Interval: time.Minute, Peers: []Peer{peer("10.0.0.1:1"), peer("[2001:db8::1]:6881")}},
		},
		{
			name: "reads a dictionary peer list with peer ids",
			body: bencoded(map[string]any{"interval": 60, "peers": []any{
				map[string]any{"ip": "10.0.0.3", "port": 6881, "peer id": "-BT0001-aaaaaaaaaaaa"},
				map[string]any{"ip": "2001:db8::2", "port": 6882},
			}}),
			want: &AnnounceResponse{Interval: time.Minute, Peers: []Peer{
				{IP: netip.MustParseAddr("10.0.0.3"), Port: 6881, ID: []byte("-BT0001-aaaaaaaaaaaa")},
				peer("[2001:db8::2]:6882"),
			}},
		},
		{
			name: "skips dictionary peers it cannot dial",
			body: bencoded(map[string]any{"peers": []any{
				map[string]any{"ip": "peer.example", "port": 6881},
				map[string]any{"ip": "10.0.0.4", "port": 70000},
				map[string]any{"ip": "10.0.0.5", "port": 1},
			}}),
			want: &AnnounceResponse{Peers: []Peer{peer("10.0.0.5:1")}},
		},
		{
			name: "honours interval, min interval and the counts",
			body: bencoded(map[string]any{"interval": 900, "min interval": 300, "complete": 3, "incomplete": 7, "peers": ""}),
			want: &AnnounceResponse{Interval: 15 * time.Minute, MinInterval: 5 * time.Minute, Complete: 3, Incomplete: 7, Peers: []Peer{}},
		},
		{
			name: "returns the warning message with the peers",
			body: bencoded(map[string]any{"interval": 60, "warning message": "slow down", "peers": compact4("10.0.0.1:80")}),
			want: &AnnounceResponse{Interval: time.Minute, Warning: "slow down", Peers: []Peer{peer("10.0.0.1:80")}},
		},
		{
			name:        "turns a failure reason into a FailureError",
			body:        bencoded(map[string]any{"failure reason": "unregistered torrent"}),
			wantFailure: "unregistered torrent",
		},
		{name: "rejects bad bencode", body: []byte("d8:intervali60e5:peers"), wantErr: "bencode"},
		{name: "rejects an HTML page", body: []byte("<html>hello</html>"), wantErr: "unexpected byte"},
		{name: "rejects a reply that is not a dictionary", body: []byte("li1ee"), wantErr: "want a dictionary"},
		{name: "rejects a compact list of the wrong length", body: bencoded(map[string]any{"peers": "12345"}), wantErr: "not a multiple of 6"},
		{name: "rejects a peers6 list of the wrong length", body: bencoded(map[string]any{"peers6": "123456"}), wantErr: "not a multiple of 18"},
		{name: "rejects peers of the wrong type", body: bencoded(map[string]any{"peers": 5}), wantErr: "peers: unexpected integer"},
		{name: "rejects a dictionary peer without a port", body: bencoded(map[string]any{"peers": []any{map[string]any{"ip": "10.0.0.1"}}}), wantErr: "port: missing"},
		{name: "rejects a negative interval", body: bencoded(map[string]any{"interval": -1}), wantErr: "out of range"},
		{name: "rejects an absurd interval", body: bencoded(map[string]any{"interval": int64(1) << 40}), wantErr: "out of range"},
		{name: "rejects a negative count", body: bencoded(map[string]any{"complete": -4}), wantErr: "out of range"},
		{name: "rejects a failure reason that is not a string", body: bencoded(map[string]any{"failure reason": 1}), wantErr: "failure reason: unexpected integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeTracker(t, http.StatusOK, tt.body)
			var c Client
			got, err := c.Announce(context.Background(), ft.URL+"/announce", AnnounceRequest{Port: 6881})
			var fe *FailureError
			switch {
			case tt.wantFailure != "":
				if !errors.As(err, &fe) || fe.Reason != tt.wantFailure {
					t.Fatalf("err = %v, want FailureError %q", err, tt.wantFailure)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if errors.As(err, &fe) {
					t.Fatalf("garbage reported as a tracker failure: %v", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got %+v\nwant %+v", got, tt.want)
				}
			}
		})
	}
}

func TestClientAnnounceSendsEveryParameter(t *testing.T) {
	infoHash := [20]byte{0x00, ' ', '%', '&', '+', '=', 0xff, '?', '#', '/', 'a', 'Z', '9', '~', '.', '-', '_', 0x80, 0x7f, 0x01}
	peerID := hash20("-BT0001-\x00\x01\x02\xfe&=+ xyz")
	tests := []struct {
		name      string
		path      string // appended to the fake tracker's URL
		req       AnnounceRequest
		wantQuery map[string]string
	}{
		{
			name: "percent-encodes the raw bytes of info_hash and peer_id",
			path: "/announce",
			req: AnnounceRequest{InfoHash: infoHash, PeerID: peerID, Port: 6881, Uploaded: 1, Downloaded: 2, Left: 3,
				Event: EventStarted, NumWant: 25},
			wantQuery: map[string]string{
				"info_hash": string(infoHash[:]), "peer_id": string(peerID[:]), "port": "6881",
				"uploaded": "1", "downloaded": "2", "left": "3", "compact": "1", "event": "started", "numwant": "25",
			},
		},
		{
			name: "keeps a query the announce URL already has",
			path: "/announce.php?passkey=s3cr%26t&",
			req:  AnnounceRequest{InfoHash: infoHash, PeerID: peerID, Port: 1, Left: 0, Event: EventCompleted},
			wantQuery: map[string]string{
				"passkey": "s3cr&t", "info_hash": string(infoHash[:]), "peer_id": string(peerID[:]),
				"port": "1", "left": "0", "event": "completed", "numwant": "",
			},
		},
		{
			name:      "leaves out event and numwant when unset and sends ip when set",
			path:      "/announce#fragment",
			req:       AnnounceRequest{InfoHash: infoHash, PeerID: peerID, Port: 2, IP: "2001:db8::1"},
			wantQuery: map[string]string{"event": "", "numwant": "", "ip": "2001:db8::1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeTracker(t, http.StatusOK, bencoded(map[string]any{"interval": 60, "peers": ""}))
			c := Client{UserAgent: "btclient/test"}
			if _, err := c.Announce(context.Background(), ft.URL+tt.path, tt.req); err != nil {
				t.Fatal(err)
			}
			r := <-ft.last
			if got := r.Header.Get("User-Agent"); got != "btclient/test" {
				t.Errorf("User-Agent = %q", got)
			}
			q, err := url.ParseQuery(r.URL.RawQuery)
			if err != nil {
				t.Fatalf("query %q does not parse: %v", r.URL.RawQuery, err)
			}
			for k, want := range tt.wantQuery {
				if got := q.Get(k); got != want {
					t.Errorf("%s = %q, want %q (raw query %q)", k, got, want, r.URL.RawQuery)
				}
				if want != "" && len(q[k]) != 1 {
					t.Errorf("%s sent %d times", k, len(q[k]))
				}
			}
		})
	}
}

func TestClientAnnounceRejectsBadURLs(t *testing.T) {
	// None of these may reach a resolver: each is refused before any lookup.
	for _, u := range []string{"udp://tracker.example/announce", "udp://:80/announce", "http:///announce", "::not a url", "ftp://x/announce", "wss://tracker.example/announce"} {
		t.Run(u, func(t *testing.T) {
			var c Client
			if _, err := c.Announce(context.Background(), u, AnnounceRequest{}); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestClientAnnounceBoundsTheReply(t *testing.T) {
	t.Run("refuses a body larger than the limit", func(t *testing.T) {
		ft := newFakeTracker(t, http.StatusOK, bytes.Repeat([]byte("x"), DefaultMaxResponseBytes+1))
		var c Client
		_, err := c.Announce(context.Background(), ft.URL+"/announce", AnnounceRequest{})
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("gives up on a tracker slower than the timeout", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		defer srv.Close()
		c := Client{Timeout: 50 * time.Millisecond}
		start := time.Now()
		_, err := c.Announce(context.Background(), srv.URL+"/announce", AnnounceRequest{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a deadline error", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
	})
	t.Run("reports an HTTP error status", func(t *testing.T) {
		ft := newFakeTracker(t, http.StatusNotFound, []byte("no such page"))
		var c Client
		_, err := c.Announce(context.Background(), ft.URL+"/announce", AnnounceRequest{})
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("reads a failure reason sent with an HTTP error status", func(t *testing.T) {
		ft := newFakeTracker(t, http.StatusForbidden, bencoded(map[string]any{"failure reason": "banned"}))
		var c Client
		_, err := c.Announce(context.Background(), ft.URL+"/announce", AnnounceRequest{})
		var fe *FailureError
		if !errors.As(err, &fe) || fe.Reason != "banned" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("keeps a passkey out of error messages", func(t *testing.T) {
		var c Client
		_, err := c.Announce(context.Background(), "http://"+closedAddr(t)+"/announce?passkey=SECRET", AnnounceRequest{})
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Fatalf("err = %v", err)
		}
	})
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestClientAnnounceTiers(t *testing.T) {
	good := newFakeTracker(t, http.StatusOK, bencoded(map[string]any{"interval": 60, "peers": compact4("10.0.0.9:9")}))
	refusing := newFakeTracker(t, http.StatusOK, bencoded(map[string]any{"failure reason": "go away"}))
	garbage := newFakeTracker(t, http.StatusOK, []byte("not bencode"))
	dead := "http://" + closedAddr(t) + "/announce"
	goodURL := good.URL + "/announce"

	tests := []struct {
		name      string
		tiers     [][]string
		wantURL   string
		wantTiers [][]string
		wantErr   string
	}{
		{
			name:      "falls over to the next tier when a whole tier fails",
			tiers:     [][]string{{dead, refusing.URL + "/announce"}, {goodURL}},
			wantURL:   goodURL,
			wantTiers: [][]string{{dead, refusing.URL + "/announce"}, {goodURL}},
		},
		{
			name:      "moves the tracker that answered to the front of its tier",
			tiers:     [][]string{{dead, garbage.URL + "/announce", goodURL, "http://x.invalid/announce"}},
			wantURL:   goodURL,
			wantTiers: [][]string{{goodURL, dead, garbage.URL + "/announce", "http://x.invalid/announce"}},
		},
		{
			name:      "skips URLs it cannot use",
			tiers:     [][]string{{"wss://tracker.example/announce", "udp://tracker.example/announce"}, {goodURL}},
			wantURL:   goodURL,
			wantTiers: [][]string{{"wss://tracker.example/announce", "udp://tracker.example/announce"}, {goodURL}},
		},
		{
			name:    "reports every failure when none answers",
			tiers:   [][]string{{dead}, {refusing.URL + "/announce"}},
			wantErr: "go away",
		},
		{
			name:    "reports an empty list",
			tiers:   nil,
			wantErr: "no tracker URLs",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Client
			resp, u, err := c.AnnounceTiers(context.Background(), tt.tiers, AnnounceRequest{Port: 1})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u != tt.wantURL || len(resp.Peers) != 1 {
				t.Fatalf("answered by %s with %v, want %s", u, resp.Peers, tt.wantURL)
			}
			if !reflect.DeepEqual(tt.tiers, tt.wantTiers) {
				t.Fatalf("tiers = %v, want %v", tt.tiers, tt.wantTiers)
			}
		})
	}

	t.Run("mixes UDP and HTTP trackers", func(t *testing.T) {
		silent := newFakeUDPTracker(t, "udp", "127.0.0.1:0", func(udpRequest) [][]byte { return nil })
		udpGood := newFakeUDPTracker(t, "udp", "127.0.0.1:0", honestUDP(3, compact4("10.0.0.8:8")))
		c := Client{Timeout: 300 * time.Millisecond, UDPRetry: 50 * time.Millisecond}
		tiers := [][]string{{silent.url, dead}, {garbage.URL + "/announce", udpGood.url, goodURL}}
		resp, u, err := c.AnnounceTiers(context.Background(), tiers, AnnounceRequest{Port: 1})
		if err != nil {
			t.Fatal(err)
		}
		if u != udpGood.url || len(resp.Peers) != 1 || resp.Peers[0].String() != "10.0.0.8:8" {
			t.Fatalf("answered by %s with %v, want %s with 10.0.0.8:8", u, resp.Peers, udpGood.url)
		}
		if tiers[1][0] != udpGood.url {
			t.Fatalf("tiers = %v: the UDP tracker that answered is not first in its tier", tiers)
		}
		if len(silent.received(udpConnect)) == 0 {
			t.Fatal("the silent UDP tracker was never asked")
		}
	})

	t.Run("stops when the context is cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var c Client
		_, _, err := c.AnnounceTiers(ctx, [][]string{{goodURL}, {goodURL}}, AnnounceRequest{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestScrapeURL(t *testing.T) {
	tests := []struct {
		announce, want string
	}{
		{"http://t.example/announce", "http://t.example/scrape"},
		{"http://t.example:6969/x/announce", "http://t.example:6969/x/scrape"},
		{"https://t.example/announce.php?passkey=abc", "https://t.example/scrape.php?passkey=abc"},
		{"http://t.example/x/announce?a=1#frag", "http://t.example/x/scrape?a=1"},
		{"http://t.example/a", ""},
		{"http://t.example/announce/", ""},
		{"http://t.example", ""},
		{"udp://t.example:80/announce", ""},
	}
	for _, tt := range tests {
		t.Run(tt.announce, func(t *testing.T) {
			u, err := scrapeURL(tt.announce)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got %s, want an error", u)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.String() != tt.want {
				t.Fatalf("got %s, want %s", u, tt.want)
			}
		})
	}
}

func TestClientScrape(t *testing.T) {
	a, b := hash20("torrent-a"), hash20("torrent-b")
	ft := newFakeTracker(t, http.StatusOK, bencoded(map[string]any{"files": map[string]any{
		string(a[:]): map[string]any{"complete": 4, "downloaded": 10, "incomplete": 2},
		string(b[:]): map[string]any{"complete": 0, "downloaded": 0, "incomplete": 1},
	}}))
	var c Client
	got, err := c.Scrape(context.Background(), ft.URL+"/announce?passkey=k", a, b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[20]byte]ScrapeStats{a: {Complete: 4, Downloaded: 10, Incomplete: 2}, b: {Incomplete: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	r := <-ft.last
	q, _ := url.ParseQuery(r.URL.RawQuery)
	if r.URL.Path != "/scrape" || q.Get("passkey") != "k" || len(q["info_hash"]) != 2 || q["info_hash"][0] != string(a[:]) {
		t.Fatalf("request was %s", r.URL)
	}

	for _, bad := range []struct{ name, body string }{
		{"rejects a reply without files", "d5:filesi1ee"},
		{"rejects a key that is not an info hash", "d5:filesd3:abcd8:completei1eeee"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			ft := newFakeTracker(t, http.StatusOK, []byte(bad.body))
			if _, err := c.Scrape(context.Background(), ft.URL+"/announce", a); err == nil {
				t.Fatal("no error")
			}
		})
	}
	t.Run("refuses an announce URL with no scrape counterpart", func(t *testing.T) {
		_, err := c.Scrape(context.Background(), ft.URL+"/tracker", a)
		if !errors.Is(err, ErrNoScrapeURL) {
			t.Fatalf("err = %v", err)
		}
	})
}
