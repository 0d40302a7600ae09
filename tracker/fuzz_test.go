package tracker

import (
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzParseAnnounceResponse(f *testing.F) {
	seeds := [][]byte{
		bencoded(map[string]any{"interval": 1800, "min interval": 60, "complete": 1, "incomplete": 2,
			"peers": compact4("10.0.0.1:6881"), "peers6": compact6("[::1]:1")}),
		bencoded(map[string]any{"interval": 60, "peers": []any{map[string]any{"ip": "10.0.0.1", "port": 1, "peer id": "x"}}}),
		bencoded(map[string]any{"failure reason": "no"}),
		bencoded(map[string]any{"warning message": "w", "peers": ""}),
		bencoded(map[string]any{"files": map[string]any{"aaaaaaaaaaaaaaaaaaaa": map[string]any{"complete": 1}}}),
		[]byte("d5:peers6:abcdee"),
		[]byte("llllllllllee"),
		[]byte("99999999999999999999:"),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := parseAnnounceResponse(body)
		if err == nil {
			if resp.Interval < 0 || resp.MinInterval < 0 || resp.Complete < 0 || resp.Incomplete < 0 {
				t.Fatalf("negative field in %+v", resp)
			}
			for _, p := range resp.Peers {
				if !p.IP.IsValid() || p.Port == 0 {
					t.Fatalf("undialable peer %v", p)
				}
			}
		}
		if stats, err := parseScrapeResponse(body); err == nil {
			for _, st := range stats {
				if st.Complete < 0 || st.Downloaded < 0 || st.Incomplete < 0 {
					t.Fatalf("negative scrape count %+v", st)
				}
			}
		}
	})
}

func FuzzServeAnnounce(f *testing.F) {
	f.Add("/announce", announceQuery("info-hash-of-20-byte", "-BT0001-abcdefghijkl", 6881, 0, "event=started"), "127.0.0.1:1")
	f.Add("/announce", announceQuery("info-hash-of-20-byte", "-BT0001-abcdefghijkl", 6881, 10, "compact=0", "ip=%3A%3A1"), "127.0.0.1:1")
	f.Add("/announce", announceQuery("info-hash-of-20-byte", "-BT0001-zzzzzzzzzzzz", 1, 10, "numwant=-1", "event=stopped"), "[2001:db8::1]:5")
	f.Add("/announce", "info_hash=%zz;port=1&&=", "192.0.2.1:1")
	f.Add("/scrape", "info_hash=info-hash-of-20-byte", "192.0.2.1:1")
	f.Add("/scrape", "", "bogus")
	clock := newFakeClock()
	// One server for the whole run, with small caps, so that state carried
	// between inputs and the caps themselves get exercised.
	s := NewServer(ServerConfig{Interval: time.Minute, MaxSwarms: 8, MaxPeersPerSwarm: 8, MaxPeers: 32, Now: clock.Now})
	f.Fuzz(func(t *testing.T, path, rawQuery, remoteAddr string) {
		if path != "/scrape" {
			path = "/announce"
		}
		clock.Advance(7 * time.Second)
		r := &http.Request{
			Method:     http.MethodGet,
			URL:        &url.URL{Path: path, RawQuery: rawQuery},
			RemoteAddr: remoteAddr,
			Header:     http.Header{},
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("HTTP %d", w.Code)
		}
		reply, err := decodeDict(w.Body.Bytes())
		if err != nil {
			t.Fatalf("reply does not decode: %v: %q", err, w.Body.Bytes())
		}
		if _, failed := reply["failure reason"]; !failed {
			_, announced := reply["interval"]
			_, scraped := reply["files"]
			if !announced && !scraped {
				t.Fatalf("reply is neither a failure nor an answer: %q", w.Body.Bytes())
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		total := 0
		for _, sw := range s.swarms {
			total += sw.len()
			if sw.len() > 8 || sw.seeders < 0 || sw.seeders > sw.len() || sw.order.Len() != sw.len() {
				t.Fatalf("swarm out of shape: %d peers, %d seeders, %d in order", sw.len(), sw.seeders, sw.order.Len())
			}
		}
		if len(s.swarms) > 8 || s.peers != total || total > 32 {
			t.Fatalf("%d swarms, %d peers counted, %d held", len(s.swarms), s.peers, total)
		}
	})
}

// FuzzUDPReply feeds arbitrary datagrams to every check a UDP tracker's
// reply passes: nothing panics, only our transaction is believed, and what
// is accepted holds only dialable peers and counts in range.
func FuzzUDPReply(f *testing.F) {
	const tid = 0x01020304
	f.Add(udpReply(udpConnect, tid, be64(0x0123456789abcdef)), false, uint8(1))
	f.Add(udpReply(udpAnnounce, tid, be32(1800, 1, 2), compact4("10.0.0.1:6881", "10.0.0.2:0")), false, uint8(1))
	f.Add(udpReply(udpAnnounce, tid, be32(60, 0, 0), compact6("[2001:db8::1]:1")), true, uint8(1))
	f.Add(udpReply(udpScrape, tid, be32(1, 2, 3, 4, 5, 6)), false, uint8(2))
	f.Add(udpReply(udpError, tid, []byte("go away\x00")), false, uint8(1))
	f.Add(udpReply(udpAnnounce, tid+1, be32(60, 0, 0)), false, uint8(1))
	f.Add([]byte{0, 0, 0, 1}, false, uint8(0))
	f.Fuzz(func(t *testing.T, p []byte, v6 bool, nHashes uint8) {
		for _, want := range []uint32{udpConnect, udpAnnounce, udpScrape} {
			verdict := classifyReply(p, tid, want)
			if verdict != replyIgnore && (len(p) < 8 || binary.BigEndian.Uint32(p[4:]) != tid) {
				t.Fatalf("believed a datagram of another transaction: %x", p)
			}
			switch verdict {
			case replyFailure:
				fe := parseUDPError(p)
				if len(fe.Reason) > udpMaxErrorMessage || !utf8.ValidString(fe.Reason) {
					t.Fatalf("error message of %d bytes, valid UTF-8 %v", len(fe.Reason), utf8.ValidString(fe.Reason))
				}
			case replyAnswer:
				if binary.BigEndian.Uint32(p) != want {
					t.Fatalf("action %d taken for %d", binary.BigEndian.Uint32(p), want)
				}
				checkUDPAnswer(t, p, want, v6, int(nHashes%100))
			}
		}
	})
}

func checkUDPAnswer(t *testing.T, p []byte, action uint32, v6 bool, nHashes int) {
	switch action {
	case udpConnect:
		if _, err := parseConnectReply(p); err != nil {
			t.Fatalf("a classified connect reply does not parse: %v", err)
		}
	case udpAnnounce:
		resp, err := parseAnnounceReply(p, v6)
		if err != nil {
			return
		}
		if resp.Interval < 0 || resp.Interval > maxInterval || resp.Complete < 0 || resp.Incomplete < 0 {
			t.Fatalf("out of range: %+v", resp)
		}
		for _, peer := range resp.Peers {
			if !peer.IP.IsValid() || peer.Port == 0 || peer.IP.Is4In6() {
				t.Fatalf("undialable peer %v", peer)
			}
		}
	case udpScrape:
		hashes := make([][20]byte, nHashes)
		for i := range hashes {
			hashes[i][0] = byte(i)
		}
		stats := make(map[[20]byte]ScrapeStats)
		if err := parseScrapeReply(p, hashes, stats); err != nil {
			return
		}
		if len(stats) != nHashes {
			t.Fatalf("%d results for %d hashes", len(stats), nHashes)
		}
		for _, st := range stats {
			if st.Complete < 0 || st.Downloaded < 0 || st.Incomplete < 0 {
				t.Fatalf("negative count %+v", st)
			}
		}
	}
}
