package tracker

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hash20 pads or cuts s to a 20-byte value, for readable test hashes and ids.
func hash20(s string) [20]byte {
	var h [20]byte
	copy(h[:], s)
	return h
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// getBencoded fetches base+path+"?"+rawQuery over real HTTP, insists on
// status 200 and returns the decoded dictionary.
func getBencoded(t *testing.T, base, path, rawQuery string) map[string]any {
	t.Helper()
	res, err := http.Get(base + path + "?" + rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s?%s: HTTP %s", path, rawQuery, res.Status)
	}
	dict, err := decodeDict(body)
	if err != nil {
		t.Fatalf("GET %s?%s: %v in %q", path, rawQuery, err, body)
	}
	return dict
}

// announceQuery builds an announce query; extra parameters are appended raw.
func announceQuery(infoHash, peerID string, port int, left int64, extra ...string) string {
	q := "info_hash=" + escapeBytes([]byte(infoHash)) +
		"&peer_id=" + escapeBytes([]byte(peerID)) +
		"&port=" + itoa(int64(port)) +
		"&uploaded=0&downloaded=0&left=" + itoa(left)
	if len(extra) > 0 {
		q += "&" + strings.Join(extra, "&")
	}
	return q
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
