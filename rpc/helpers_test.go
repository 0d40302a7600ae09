package rpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"btclient/discovery"
	"btclient/session"
	"btclient/torrent"
)

// fixture is a running session behind a test server on loopback.
type fixture struct {
	srv  *Server
	sess *session.Session
	url  string // the RPC's
	base string // the server's root
	dir  string // the download directory
}

// newFixture runs a session (no discovery beyond what a test says) and an
// RPC server over it; cfg may change the RPC's configuration.
func newFixture(t *testing.T, cfg func(*Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	scfg := session.DefaultConfig()
	scfg.DownloadDir = dir
	scfg.StateDir = t.TempDir()
	scfg.ListenAddr = "127.0.0.1:0"
	scfg.Discovery.Mode = discovery.ModeTracker
	scfg.Swarm.Tick = 100 * time.Millisecond
	sess, err := session.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sess.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	rc := DefaultConfig()
	rc.TorrentDirs = []string{dir}
	rc.Version = "test"
	if cfg != nil {
		cfg(&rc)
	}
	srv, err := New(sess, rc)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &fixture{srv: srv, sess: sess, url: hs.URL + RPCPath, base: hs.URL, dir: dir}
}

// call posts a raw body with the right session id and returns the status
// and decoded response.
func (f *fixture) call(t *testing.T, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url, bytes.NewBufferString(body))
	req.Header.Set(SessionIDHeader, f.srv.SessionID())
	return f.do(t, req)
}

func (f *fixture) do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if resp.Header.Get("Content-Type") == "application/json; charset=UTF-8" {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("response is not JSON: %v: %s", err, data)
		}
	}
	return resp.StatusCode, out
}

// method calls method with args and fails the test unless it succeeds.
func (f *fixture) method(t *testing.T, method string, args any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"method": method, "arguments": args})
	code, out := f.call(t, string(body))
	if code != http.StatusOK || out["result"] != "success" {
		t.Fatalf("%s: HTTP %d, %v", method, code, out)
	}
	a, _ := out["arguments"].(map[string]any)
	return a
}

// failing calls method with args and returns its non-success result.
func (f *fixture) failing(t *testing.T, method string, args any) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"method": method, "arguments": args})
	code, out := f.call(t, string(body))
	if code != http.StatusOK {
		t.Fatalf("%s: HTTP %d", method, code)
	}
	r, _ := out["result"].(string)
	if r == "success" || r == "" {
		t.Fatalf("%s %v: result %q, want an error", method, args, r)
	}
	return r
}

// content writes a file of size random bytes into dir and returns its
// .torrent's bytes.
func content(t *testing.T, dir, name string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	data, _, err := torrent.Create(filepath.Join(dir, name), torrent.CreateOptions{PieceLength: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
}

// mustAddr returns the i-th address of 10.0.0.0/8 (never dialed).
func mustAddr(t *testing.T, i int) netip.Addr {
	t.Helper()
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}
