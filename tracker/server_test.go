package tracker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// newTestServer runs a Server behind a real loopback HTTP listener.
func newTestServer(t *testing.T, cfg ServerConfig) (*Server, string) {
	t.Helper()
	s := NewServer(cfg)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs.URL
}

func TestServerAnswersBadRequestsWithAFailureReason(t *testing.T) {
	_, base := newTestServer(t, ServerConfig{})
	ih, id := "info-hash-of-20-byte", "-BT0001-abcdefghijkl"
	tests := []struct {
		name  string
		path  string
		query string
		want  string // part of the failure reason
	}{
		{"missing info_hash", "/announce", "peer_id=" + id + "&port=1&left=0", "missing info_hash"},
		{"info_hash of 19 bytes", "/announce", announceQuery(ih[:19], id, 1, 0), "info_hash is 19 bytes"},
		{"info_hash of 21 bytes", "/announce", announceQuery(ih+"x", id, 1, 0), "info_hash is 21 bytes"},
		{"empty info_hash", "/announce", "info_hash=&peer_id=" + id + "&port=1", "info_hash is 0 bytes"},
		{"missing peer_id", "/announce", "info_hash=" + ih + "&port=1&left=0", "missing peer_id"},
		{"peer_id of 5 bytes", "/announce", announceQuery(ih, "short", 1, 0), "peer_id is 5 bytes"},
		{"missing port", "/announce", "info_hash=" + ih + "&peer_id=" + id + "&left=0", "missing port"},
		{"port 0", "/announce", announceQuery(ih, id, 0, 0), "invalid port"},
		{"port 70000", "/announce", announceQuery(ih, id, 70000, 0), "invalid port"},
		{"port -1", "/announce", announceQuery(ih, id, -1, 0), "invalid port"},
		{"port abc", "/announce", "info_hash=" + ih + "&peer_id=" + id + "&port=abc", "invalid port"},
		{"negative left", "/announce", announceQuery(ih, id, 1, -5), "invalid left"},
		{"uploaded not a number", "/announce", "info_hash=" + ih + "&peer_id=" + id + "&port=1&uploaded=lots", "invalid uploaded"},
		{"downloaded overflowing int64", "/announce", "info_hash=" + ih + "&peer_id=" + id + "&port=1&downloaded=99999999999999999999", "invalid downloaded"},
		{"left in exponent notation", "/announce", "info_hash=" + ih + "&peer_id=" + id + "&port=1&left=1e3", "invalid left"},
		{"numwant not a number", "/announce", announceQuery(ih, id, 1, 0, "numwant=all"), "invalid numwant"},
		{"unknown event", "/announce", announceQuery(ih, id, 1, 0, "event=exploded"), "unknown event"},
		{"ip that is not an address", "/announce", announceQuery(ih, id, 1, 0, "ip=peer.example"), "invalid ip"},
		{"bad percent escape", "/announce", "info_hash=%zz&peer_id=" + id + "&port=1", "malformed query"},
		{"no query at all", "/announce", "", "missing info_hash"},
		{"scrape with an info_hash of 19 bytes", "/scrape", "info_hash=" + ih[:19], "info_hash is 19 bytes"},
		{"scrape with a bad percent escape", "/scrape", "info_hash=%", "malformed query"},
		{"scrape of too many torrents", "/scrape", strings.Repeat("info_hash="+ih+"&", 101), "at most 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := getBencoded(t, base, tt.path, tt.query)
			reason, ok := reply["failure reason"].(string)
			if !ok || !strings.Contains(reason, tt.want) {
				t.Fatalf("reply %v, want a failure reason containing %q", reply, tt.want)
			}
		})
	}
}

func TestServerRefusesOtherMethodsAndPaths(t *testing.T) {
	_, base := newTestServer(t, ServerConfig{})
	res, err := http.Post(base+"/announce", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /announce: %s", res.Status)
	}
	res, err = http.Get(base + "/favicon.ico")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /favicon.ico: %s", res.Status)
	}
}

// scrapeOne returns the scrape counts of one torrent.
func scrapeOne(t *testing.T, base, infoHash string) (complete, incomplete, downloaded int64) {
	t.Helper()
	reply := getBencoded(t, base, "/scrape", "info_hash="+escapeBytes([]byte(infoHash)))
	files, ok := reply["files"].(map[string]any)
	if !ok {
		t.Fatalf("scrape reply %v", reply)
	}
	f, ok := files[infoHash].(map[string]any)
	if !ok {
		t.Fatalf("scrape reply %v has no entry for %q", reply, infoHash)
	}
	return f["complete"].(int64), f["incomplete"].(int64), f["downloaded"].(int64)
}

func TestServerCountsSeedersAndLeechers(t *testing.T) {
	_, base := newTestServer(t, ServerConfig{})
	const ih = "torrent-counted-0001"
	steps := []struct {
		name                      string
		query                     string
		wantComplete, wantIncompl int64
		wantDownloaded            int64
	}{
		{"a leecher starts", announceQuery(ih, "peer-a--------------", 1001, 500, "event=started"), 0, 1, 0},
		{"a second leecher starts", announceQuery(ih, "peer-b--------------", 1002, 500, "event=started"), 0, 2, 0},
		{"a seeder starts", announceQuery(ih, "peer-c--------------", 1003, 0, "event=started"), 1, 2, 0},
		{"a leecher re-announces without changing", announceQuery(ih, "peer-a--------------", 1001, 200), 1, 2, 0},
		{"a leecher completes", announceQuery(ih, "peer-b--------------", 1002, 0, "event=completed"), 2, 1, 1},
		{"the completed peer announces again", announceQuery(ih, "peer-b--------------", 1002, 0), 2, 1, 1},
		{"a third leecher starts", announceQuery(ih, "peer-d--------------", 1004, 900, "event=started"), 2, 2, 1},
		{"the third leecher stops", announceQuery(ih, "peer-d--------------", 1004, 900, "event=stopped"), 2, 1, 1},
		{"a peer unknown to the tracker stops", announceQuery(ih, "peer-e--------------", 1005, 0, "event=stopped"), 2, 1, 1},
		{"a seeder stops", announceQuery(ih, "peer-c--------------", 1003, 0, "event=stopped"), 1, 1, 1},
	}
	for _, st := range steps {
		reply := getBencoded(t, base, "/announce", st.query)
		if r, ok := reply["failure reason"]; ok {
			t.Fatalf("%s: failure %v", st.name, r)
		}
		if reply["complete"] != st.wantComplete || reply["incomplete"] != st.wantIncompl {
			t.Errorf("%s: announce reply counts %v seeders, %v leechers; want %d, %d",
				st.name, reply["complete"], reply["incomplete"], st.wantComplete, st.wantIncompl)
		}
		c, i, d := scrapeOne(t, base, ih)
		if c != st.wantComplete || i != st.wantIncompl || d != st.wantDownloaded {
			t.Errorf("%s: scrape says complete=%d incomplete=%d downloaded=%d; want %d, %d, %d",
				st.name, c, i, d, st.wantComplete, st.wantIncompl, st.wantDownloaded)
		}
	}

	t.Run("scrape of an unknown torrent reports zeros", func(t *testing.T) {
		if c, i, d := scrapeOne(t, base, "never-announced-0001"); c != 0 || i != 0 || d != 0 {
			t.Fatalf("got %d %d %d", c, i, d)
		}
	})
	t.Run("scrape without info_hash reports every torrent", func(t *testing.T) {
		files := getBencoded(t, base, "/scrape", "")["files"].(map[string]any)
		if len(files) != 1 || files[ih] == nil {
			t.Fatalf("files = %v", files)
		}
	})
}

func TestServerPeerLists(t *testing.T) {
	_, base := newTestServer(t, ServerConfig{})
	const ih = "torrent-peerlist-001"
	// Five leechers and two seeders, all on loopback with distinct ports.
	for i := range 7 {
		left := int64(100)
		if i >= 5 {
			left = 0
		}
		getBencoded(t, base, "/announce", announceQuery(ih, fmt.Sprintf("peer-%015d", i), 2000+i, left))
	}

	type peerEntry struct {
		ip   string
		port int64
		id   string
	}
	peersOf := func(t *testing.T, reply map[string]any) []peerEntry {
		t.Helper()
		var out []peerEntry
		switch p := reply["peers"].(type) {
		case string:
			if len(p)%6 != 0 {
				t.Fatalf("compact peers of %d bytes", len(p))
			}
			for i := 0; i < len(p); i += 6 {
				out = append(out, peerEntry{
					ip:   fmt.Sprintf("%d.%d.%d.%d", p[i], p[i+1], p[i+2], p[i+3]),
					port: int64(p[i+4])<<8 | int64(p[i+5]),
				})
			}
		case []any:
			for _, e := range p {
				d := e.(map[string]any)
				id, _ := d["peer id"].(string)
				out = append(out, peerEntry{ip: d["ip"].(string), port: d["port"].(int64), id: id})
			}
		default:
			t.Fatalf("peers = %#v", reply["peers"])
		}
		return out
	}

	tests := []struct {
		name   string
		query  string
		check  func(t *testing.T, peers []peerEntry)
		peers6 bool
	}{
		{
			name:  "never returns the announcing peer to itself",
			query: announceQuery(ih, fmt.Sprintf("peer-%015d", 0), 2000, 100),
			check: func(t *testing.T, peers []peerEntry) {
				if len(peers) != 6 {
					t.Fatalf("%d peers, want the other 6", len(peers))
				}
				for _, p := range peers {
					if p.port == 2000 {
						t.Fatalf("got itself back: %v", peers)
					}
				}
			},
		},
		{
			name:  "gives no more than numwant",
			query: announceQuery(ih, "newcomer------------", 3000, 100, "numwant=2"),
			check: func(t *testing.T, peers []peerEntry) {
				if len(peers) != 2 {
					t.Fatalf("%d peers, want 2", len(peers))
				}
			},
		},
		{
			name:  "gives none for numwant=0",
			query: announceQuery(ih, "newcomer------------", 3000, 100, "numwant=0"),
			check: func(t *testing.T, peers []peerEntry) {
				if len(peers) != 0 {
					t.Fatalf("%d peers, want 0", len(peers))
				}
			},
		},
		{
			name:  "gives seeders only leechers",
			query: announceQuery(ih, fmt.Sprintf("peer-%015d", 5), 2005, 0),
			check: func(t *testing.T, peers []peerEntry) {
				for _, p := range peers {
					if p.port >= 2005 && p.port <= 2006 {
						t.Fatalf("a seeder got seeder %v", p)
					}
				}
				if len(peers) != 6 { // the 5 leechers and the newcomer
					t.Fatalf("%d peers, want 6", len(peers))
				}
			},
		},
		{
			name:  "uses the dictionary model when compact=0",
			query: announceQuery(ih, "dict-client---------", 4000, 100, "compact=0", "numwant=1"),
			check: func(t *testing.T, peers []peerEntry) {
				if len(peers) != 1 || peers[0].ip != "127.0.0.1" || len(peers[0].id) != 20 {
					t.Fatalf("peers = %+v", peers)
				}
			},
		},
		{
			name:  "leaves out peer ids when asked",
			query: announceQuery(ih, "dict-client---------", 4000, 100, "compact=0", "no_peer_id=1"),
			check: func(t *testing.T, peers []peerEntry) {
				for _, p := range peers {
					if p.id != "" {
						t.Fatalf("peer id sent: %+v", p)
					}
				}
			},
		},
		{
			name:   "puts IPv6 peers in peers6",
			query:  announceQuery(ih, "ipv6-client---------", 5000, 100, "ip=%3A%3A1"),
			peers6: true,
			check:  func(t *testing.T, peers []peerEntry) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := getBencoded(t, base, "/announce", tt.query)
			if r, ok := reply["failure reason"]; ok {
				t.Fatalf("failure %v", r)
			}
			if reply["interval"] != int64(120) || reply["min interval"] != int64(60) {
				t.Errorf("interval %v, min interval %v", reply["interval"], reply["min interval"])
			}
			tt.check(t, peersOf(t, reply))
		})
	}

	t.Run("an IPv4 peer then sees the IPv6 peer in peers6", func(t *testing.T) {
		reply := getBencoded(t, base, "/announce", announceQuery(ih, "newcomer------------", 3000, 100, "numwant=200"))
		p6, _ := reply["peers6"].(string)
		want := "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13\x88" // [::1]:5000
		if p6 != want {
			t.Fatalf("peers6 = %q, want %q", p6, want)
		}
	})
}

func TestServerForgetsPeersThatStopAnnouncing(t *testing.T) {
	clock := newFakeClock()
	s, base := newTestServer(t, ServerConfig{Interval: time.Minute, Now: clock.Now})
	const ih = "torrent-expiring-001"
	getBencoded(t, base, "/announce", announceQuery(ih, "peer-a--------------", 1001, 10))
	getBencoded(t, base, "/announce", announceQuery(ih, "peer-b--------------", 1002, 0))

	clock.Advance(90 * time.Second)
	getBencoded(t, base, "/announce", announceQuery(ih, "peer-a--------------", 1001, 10))
	if c, i, _ := scrapeOne(t, base, ih); c != 1 || i != 1 {
		t.Fatalf("after 90 s: %d seeders, %d leechers; want both still there", c, i)
	}

	clock.Advance(31 * time.Second) // b silent for 121 s > 2 × interval; a for 31 s
	if c, i, _ := scrapeOne(t, base, ih); c != 0 || i != 1 {
		t.Fatalf("after 121 s: %d seeders, %d leechers; want only the leecher that re-announced", c, i)
	}
	reply := getBencoded(t, base, "/announce", announceQuery(ih, "peer-c--------------", 1003, 10))
	if peers := reply["peers"].(string); len(peers) != 6 || peers[5] != byte(1001&0xff) {
		t.Fatalf("peers %q, want only peer a", peers)
	}

	t.Run("a sweep forgets swarms nobody asks about", func(t *testing.T) {
		clock.Advance(3 * time.Minute)
		s.mu.Lock()
		s.sweepLocked(clock.Now())
		swarms, peers := len(s.swarms), s.peers
		s.mu.Unlock()
		if swarms != 0 || peers != 0 {
			t.Fatalf("%d swarms and %d peers left", swarms, peers)
		}
	})
}

func TestServerRunStopsWithItsContext(t *testing.T) {
	s := NewServer(ServerConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx)
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestServerCapsHoldUnderAFlood(t *testing.T) {
	clock := newFakeClock()
	cfg := ServerConfig{Interval: time.Minute, MaxSwarms: 10, MaxPeersPerSwarm: 5, MaxPeers: 30, Now: clock.Now}

	t.Run("distinct torrents beyond MaxSwarms are refused", func(t *testing.T) {
		s := NewServer(cfg)
		refused := 0
		for i := range 1000 {
			reply := s.announce(announceQuery(fmt.Sprintf("flood-torrent-%06d", i), "peer-a--------------", 1, 0), "192.0.2.1:1")
			if _, ok := decodeMust(t, reply)["failure reason"]; ok {
				refused++
			}
		}
		if len(s.swarms) != 10 || refused != 990 {
			t.Fatalf("%d swarms, %d refused; want 10 and 990", len(s.swarms), refused)
		}
		// Once the swarms expire, new torrents are accepted again.
		clock.Advance(3 * time.Minute)
		reply := s.announce(announceQuery("after-the-flood-0001", "peer-a--------------", 1, 0), "192.0.2.1:1")
		if r, ok := decodeMust(t, reply)["failure reason"]; ok {
			t.Fatalf("refused after expiry: %v", r)
		}
		if len(s.swarms) != 1 {
			t.Fatalf("%d swarms after expiry, want 1", len(s.swarms))
		}
	})

	t.Run("peers beyond MaxPeersPerSwarm get peers but are not remembered", func(t *testing.T) {
		s := NewServer(cfg)
		for i := range 1000 {
			reply := decodeMust(t, s.announce(announceQuery("one-big-torrent-0001", fmt.Sprintf("peer-%015d", i), 1+i, 1), "192.0.2.1:1"))
			if r, ok := reply["failure reason"]; ok {
				t.Fatalf("peer %d refused: %v", i, r)
			}
			if i >= 5 && len(reply["peers"].(string)) != 5*6 {
				t.Fatalf("peer %d got %d bytes of peers, want 5 peers", i, len(reply["peers"].(string)))
			}
		}
		if n := s.swarms[hash20("one-big-torrent-0001")].len(); n != 5 || s.peers != 5 {
			t.Fatalf("swarm holds %d peers (%d in all), want 5", n, s.peers)
		}
	})

	t.Run("a sweep to make room keeps the swarm being announced to", func(t *testing.T) {
		s := NewServer(ServerConfig{Interval: time.Minute, MaxPeers: 2, Now: clock.Now})
		s.announce(announceQuery("old-torrent-00000001", "peer-a--------------", 1, 1), "192.0.2.1:1")
		s.announce(announceQuery("old-torrent-00000001", "peer-b--------------", 2, 1), "192.0.2.1:1")
		clock.Advance(3 * time.Minute)
		s.announce(announceQuery("new-torrent-00000001", "peer-c--------------", 3, 1), "192.0.2.1:1")
		sw := s.swarms[hash20("new-torrent-00000001")]
		if len(s.swarms) != 1 || sw == nil || sw.len() != 1 || s.peers != 1 {
			t.Fatalf("%d swarms, %d peers counted; want the new swarm with its one peer", len(s.swarms), s.peers)
		}
	})

	t.Run("total peers stay within MaxPeers", func(t *testing.T) {
		s := NewServer(cfg)
		for i := range 10 {
			for j := range 10 {
				s.announce(announceQuery(fmt.Sprintf("flood-torrent-%06d", i), fmt.Sprintf("peer-%015d", j), 1+j, 1), "192.0.2.1:1")
			}
		}
		total := 0
		for _, sw := range s.swarms {
			total += sw.len()
		}
		if s.peers != 30 || total != 30 {
			t.Fatalf("%d peers counted, %d held; want 30", s.peers, total)
		}
	})
}

func decodeMust(t *testing.T, body []byte) map[string]any {
	t.Helper()
	d, err := decodeDict(body)
	if err != nil {
		t.Fatalf("%v in %q", err, body)
	}
	return d
}

func TestServerKeepsAPeerIDToTheHostThatAnnouncedIt(t *testing.T) {
	s := NewServer(ServerConfig{})
	const ih, id = "torrent-owned-peer-1", "peer-owned----------"
	decodeMust(t, s.announce(announceQuery(ih, id, 1000, 10), "192.0.2.1:5555"))
	tests := []struct {
		name  string
		query string
	}{
		{"another host cannot stop it", announceQuery(ih, id, 1000, 10, "event=stopped")},
		{"another host cannot move it", announceQuery(ih, id, 2000, 0, "event=completed")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := decodeMust(t, s.announce(tt.query, "198.51.100.7:1"))
			if r, ok := reply["failure reason"]; ok {
				t.Fatalf("failure %v", r)
			}
			p := s.swarms[hash20(ih)].peers[hash20(id)].Value.(*swarmPeer)
			if p.addr.String() != "192.0.2.1:1000" || p.seeder {
				t.Fatalf("peer is now %+v", p)
			}
		})
	}
	t.Run("the host that announced it can stop it", func(t *testing.T) {
		decodeMust(t, s.announce(announceQuery(ih, id, 1000, 10, "event=stopped"), "192.0.2.1:6666"))
		if len(s.swarms) != 0 {
			t.Fatalf("%d swarms left", len(s.swarms))
		}
	})
}
