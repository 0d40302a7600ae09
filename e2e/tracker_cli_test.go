package e2e

import (
	"btclient/internal/testwait"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTrackerCLI runs `btclient tracker` on loopback, sends it bad requests,
// announces and a scrape over real HTTP, and stops it with SIGTERM.
func TestTrackerCLI(t *testing.T) {
	addr := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	p := btclient(t, "tracker", "tracker", "--listen", addr, "--interval", "1m")
	testwait.Until(t, 10*time.Second, "tracker listening", func() bool {
		return strings.Contains(p.out.String(), "tracker listening on "+addr)
	})
	base := "http://" + addr

	ih := "e2e-tracker-infohash" // 20 bytes
	announce := func(peerID string, port int, left int, extra string) string {
		return fmt.Sprintf("info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d%s",
			url.QueryEscape(ih), url.QueryEscape(peerID), port, left, extra)
	}

	bad := []struct{ name, query, want string }{
		{"info_hash of 19 bytes", "info_hash=" + ih[:19] + "&peer_id=-BT0001-aaaaaaaaaaaa&port=1", "info_hash is 19 bytes"},
		{"info_hash of 21 bytes", "info_hash=" + ih + "x&peer_id=-BT0001-aaaaaaaaaaaa&port=1", "info_hash is 21 bytes"},
		{"missing peer_id", "info_hash=" + ih + "&port=1", "missing peer_id"},
		{"missing port", "info_hash=" + ih + "&peer_id=-BT0001-aaaaaaaaaaaa", "missing port"},
		{"port 0", announce("-BT0001-aaaaaaaaaaaa", 0, 0, ""), "invalid port"},
		{"port 70000", announce("-BT0001-aaaaaaaaaaaa", 70000, 0, ""), "invalid port"},
		{"left not a number", "info_hash=" + ih + "&peer_id=-BT0001-aaaaaaaaaaaa&port=1&left=x", "invalid left"},
	}
	for _, tt := range bad {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			body := trackerGet(t, base+"/announce?"+tt.query)
			if !strings.HasPrefix(body, "d14:failure reason") || !strings.Contains(body, tt.want) {
				t.Fatalf("body %q, want a failure reason containing %q", body, tt.want)
			}
		})
	}

	// Two leechers, a seeder, one leecher completes and one more starts and stops.
	for _, q := range []string{
		announce("-BT0001-leecher-0001", 7001, 100, "&event=started"),
		announce("-BT0001-leecher-0002", 7002, 100, "&event=started"),
		announce("-BT0001-seeder--0003", 7003, 0, "&event=started"),
		announce("-BT0001-leecher-0001", 7001, 0, "&event=completed"),
		announce("-BT0001-leecher-0004", 7004, 100, "&event=started"),
		announce("-BT0001-leecher-0004", 7004, 100, "&event=stopped"),
	} {
		if body := trackerGet(t, base+"/announce?"+q); strings.Contains(body, "failure reason") {
			t.Fatalf("announce %s: %q", q, body)
		}
	}
	body := trackerGet(t, base+"/scrape?info_hash="+url.QueryEscape(ih))
	want := "d5:filesd20:" + ih + "d8:completei2e10:downloadedi1e10:incompletei1eeee"
	if body != want {
		t.Fatalf("scrape = %q, want %q", body, want)
	}

	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("tracker exited %d after SIGTERM, want 0", code)
	}
}

// TestTrackerCLIRejectsBadFlags checks the usage exit status.
func TestTrackerCLIRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"tracker", "--interval", "soon"},
		{"tracker", "--interval", "10ms"},
		{"tracker", "--no-such-flag"},
	} {
		p := btclient(t, "tracker "+joinArgs(args...), args...)
		if code := p.wait(10 * time.Second); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func trackerGet(t *testing.T, u string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %s: %q", u, res.Status, b)
	}
	return string(b)
}
