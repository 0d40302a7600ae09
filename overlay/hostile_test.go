package overlay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawConn is a test client speaking raw lines to a node.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) send(line string) {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(line + "\n")); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// recv reads one answer; ok is false when the node closed the connection or
// said nothing within d.
func (rc *rawConn) recv(d time.Duration) (message, bool) {
	rc.c.SetReadDeadline(time.Now().Add(d))
	line, err := rc.r.ReadBytes('\n')
	if err != nil {
		return message{}, false
	}
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		rc.t.Fatalf("node sent invalid JSON %q: %v", line, err)
	}
	return m, true
}

// closedByNode reports whether the node closed the connection (EOF or reset)
// within d.
func (rc *rawConn) closedByNode(d time.Duration) bool {
	rc.c.SetReadDeadline(time.Now().Add(d))
	_, err := rc.r.ReadByte()
	var ne net.Error
	return err != nil && !(errAs(err, &ne) && ne.Timeout())
}

func errAs(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

// hostileNode runs a node holding one honest provider and returns it.
func hostileNode(t *testing.T, mutate func(*Config)) (*Node, [20]byte, Provider) {
	cfg := fastConfig(1)
	cfg.HealthInterval = time.Hour
	if mutate != nil {
		mutate(&cfg)
	}
	n := startNode(t, cfg)
	h, _ := ParseInfoHash(strings.Repeat("ab", 20))
	p := Provider{Addr: "127.0.0.1:6881", PeerID: "-JC0001-honesthonest", LastSeen: time.Now()}
	n.store.Merge(h, []Provider{p}, "")
	return n, h, p
}

// honestLookup fails the test unless the node still answers a lookup with
// the honest provider (retrying while a rate limit refills).
func honestLookup(t *testing.T, n *Node, h [20]byte, p Provider, key []byte) {
	t.Helper()
	cl := Client{SwarmKey: key, Timeout: 2 * time.Second}
	var lastErr error
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ps, _, err := cl.Lookup(context.Background(), n.Addr(), h, 100)
		if err == nil {
			if !slices.ContainsFunc(ps, func(q Provider) bool { return q.Addr == p.Addr }) {
				t.Fatalf("honest lookup returned %v", ps)
			}
			return
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("honest lookup not answered: %v", lastErr)
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func TestHostileInput(t *testing.T) {
	hash := strings.Repeat("ab", 20)
	tests := []struct {
		name  string
		key   []byte
		check func(t *testing.T, n *Node, h [20]byte)
	}{
		{"a 2 MiB line closes the connection", nil, func(t *testing.T, n *Node, h [20]byte) {
			rc := dialRaw(t, n.Addr())
			junk := bytes.Repeat([]byte("x"), 2<<20)
			// The node stops reading at 1 MiB, so the write may fail: fine.
			go func() { rc.c.Write(append(junk, '\n')) }()
			if !rc.closedByNode(5 * time.Second) {
				t.Fatalf("connection still open after a 2 MiB line")
			}
		}},
		{"invalid JSON gets an error answer", nil, func(t *testing.T, n *Node, h [20]byte) {
			rc := dialRaw(t, n.Addr())
			for _, junk := range []string{"{", "null", "[1,2]", `{"type":5}`, "\x00\xff"} {
				rc.send(junk)
				m, ok := rc.recv(2 * time.Second)
				if !ok || m.Type != typeError {
					t.Fatalf("%q: answer %+v, %v; want an error", junk, m, ok)
				}
			}
		}},
		{"an unknown type gets an error answer", nil, func(t *testing.T, n *Node, h [20]byte) {
			rc := dialRaw(t, n.Addr())
			rc.send(`{"type":"steal_everything","info_hash":"` + hash + `","extra":{"a":[1]}}`)
			if m, ok := rc.recv(2 * time.Second); !ok || m.Type != typeError || !strings.Contains(m.Error, "unknown") {
				t.Fatalf("answer %+v, %v", m, ok)
			}
		}},
		{"unknown fields are ignored", nil, func(t *testing.T, n *Node, h [20]byte) {
			rc := dialRaw(t, n.Addr())
			rc.send(`{"type":"lookup","info_hash":"` + hash + `","limit":5,"colour":"blue"}`)
			if m, ok := rc.recv(2 * time.Second); !ok || m.Type != typeLookupReply || len(m.Providers) != 1 {
				t.Fatalf("answer %+v, %v", m, ok)
			}
		}},
		{"unsolicited replies are dropped", nil, func(t *testing.T, n *Node, h [20]byte) {
			forged := `[{"addr":"6.6.6.6:6881","left":0,"last_seen":` + fmt.Sprint(time.Now().UnixMilli()) + `}]`
			for _, line := range []string{
				`{"type":"lookup_reply","info_hash":"` + hash + `","providers":` + forged + `,"nodes":["6.6.6.6:6000"]}`,
				`{"type":"gossip_reply","info_hash":"` + hash + `","providers":` + forged + `}`,
				`{"type":"pong","nodes":["6.6.6.7:6000"]}`,
			} {
				rc := dialRaw(t, n.Addr())
				rc.send(line)
				if m, ok := rc.recv(500 * time.Millisecond); ok {
					t.Fatalf("node answered an unsolicited reply with %+v", m)
				}
			}
			if knows(n, h, "6.6.6.6:6881") {
				t.Fatalf("unsolicited reply poisoned the store")
			}
			n.members.mu.Lock()
			_, k1 := n.members.m["6.6.6.6:6000"]
			_, k2 := n.members.m["6.6.6.7:6000"]
			n.members.mu.Unlock()
			if k1 || k2 {
				t.Fatalf("unsolicited reply added nodes")
			}
			if got := n.stats.unsolicited.Load(); got != 3 {
				t.Fatalf("unsolicited counter = %d, want 3", got)
			}
		}},
		{"a lookup flood is rate limited", nil, func(t *testing.T, n *Node, h [20]byte) {
			rc := dialRaw(t, n.Addr())
			limited := 0
			for range 200 {
				rc.send(`{"type":"lookup","info_hash":"` + hash + `"}`)
				m, ok := rc.recv(2 * time.Second)
				if !ok {
					break // the node closes a connection that hit the limit
				}
				if m.Type == typeError && m.Error == "rate limited" {
					limited++
				}
			}
			if limited == 0 || n.stats.rateLimited.Load() == 0 {
				t.Fatalf("200 lookups at once were not rate limited")
			}
		}},
		{"a keyless node can neither inject nor read", []byte("swarm secret"), func(t *testing.T, n *Node, h [20]byte) {
			forged := Provider{Addr: "6.6.6.6:6881", LastSeen: time.Now()}
			// A plain announce, and one sealed with the wrong key.
			var stranger Client
			if err := stranger.Announce(context.Background(), n.Addr(), h, forged); err != nil {
				t.Fatal(err)
			}
			wrong := Client{SwarmKey: []byte("guess")}
			if err := wrong.Announce(context.Background(), n.Addr(), h, forged); err != nil {
				t.Fatal(err)
			}
			// A correctly sealed but stale message (a replay) is dropped too.
			body, _ := json.Marshal(message{Type: typeAnnounce, InfoHash: hash, Providers: []Provider{forged}})
			rc := dialRaw(t, n.Addr())
			rc.send(string(seal([]byte("swarm secret"), body, time.Now().Add(-time.Hour).UnixMilli())))
			if _, _, err := stranger.Lookup(context.Background(), n.Addr(), h, 10); err == nil {
				t.Fatalf("keyless lookup got an answer")
			}
			if _, err := stranger.Ping(context.Background(), n.Addr()); err == nil {
				t.Fatalf("keyless ping got an answer")
			}
			time.Sleep(100 * time.Millisecond)
			if knows(n, h, forged.Addr) {
				t.Fatalf("forged announce was stored")
			}
			if got := n.stats.unauthenticated.Load(); got < 5 {
				t.Fatalf("unauthenticated counter = %d, want ≥ 5", got)
			}
		}},
		{"10,000 junk connections", nil, func(t *testing.T, n *Node, h [20]byte) {
			before := heapInuse()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var next, opened atomic.Int64
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					var d net.Dialer
					buf := make([]byte, 512)
					for next.Add(1) <= 10000 && ctx.Err() == nil {
						c, err := d.DialContext(ctx, "tcp", n.Addr())
						if err != nil {
							continue
						}
						opened.Add(1)
						for i := range buf {
							buf[i] = byte(rand.IntN(256))
						}
						switch rand.IntN(3) {
						case 0: // connect and leave
						case 1:
							c.Write(buf)
						case 2:
							c.Write(append(buf[:rand.IntN(len(buf))], '\n'))
						}
						c.Close()
					}
				})
			}
			wg.Wait()
			if ctx.Err() != nil {
				t.Fatalf("junk loop hit its time limit after %d connections", opened.Load())
			}
			after := heapInuse()
			t.Logf("%d junk connections; heap in use %d KiB → %d KiB", opened.Load(), before>>10, after>>10)
			if after > before+32<<20 {
				t.Fatalf("heap grew from %d to %d bytes", before, after)
			}
		}},
		{"a flood of forged records stays within the per-origin cap", nil, func(t *testing.T, n *Node, h [20]byte) {
			rc := dialRaw(t, n.Addr())
			for i := range 50 {
				var rs []string
				for j := range 100 {
					rs = append(rs, fmt.Sprintf(`{"kind":"peer","key":"%s","id":"6.%d.%d.1:6881","seen":%d}`, hash, i, j, time.Now().UnixMilli()))
				}
				rc.send(`{"type":"put","from":"127.0.0.1:1","records":[` + strings.Join(rs, ",") + `]}`)
				if m, ok := rc.recv(2 * time.Second); !ok || m.Type != typePutReply {
					t.Fatalf("put %d answered %+v, %v", i, m, ok)
				}
			}
			if got, cap := len(n.store.Entries(h)), 1+DefaultConfig().MaxRecordsPerOriginKey; got > cap {
				t.Fatalf("one origin filled %d entries, cap %d", got, cap)
			}
		}},
		{"records from another host than their origin are refused", nil, func(t *testing.T, n *Node, h [20]byte) {
			rc := dialRaw(t, n.Addr())
			rc.send(`{"type":"put","from":"6.6.6.6:6000","records":[{"kind":"peer","key":"` + hash + `","id":"6.6.6.6:6881","seen":` + fmt.Sprint(time.Now().UnixMilli()) + `}]}`)
			if m, ok := rc.recv(2 * time.Second); !ok || m.Type != typeError {
				t.Fatalf("put for another host answered %+v, %v", m, ok)
			}
			if holds(n, h, "6.6.6.6:6881") {
				t.Fatalf("a record claimed for another host was stored")
			}
		}},
		{"a newer protocol version gets a clear error", nil, func(t *testing.T, n *Node, h [20]byte) {
			rc := dialRaw(t, n.Addr())
			rc.send(`{"v":99,"type":"lookup","info_hash":"` + hash + `"}`)
			if m, ok := rc.recv(2 * time.Second); !ok || m.Type != typeError || !strings.Contains(m.Error, "protocol version 99") {
				t.Fatalf("answer %+v, %v", m, ok)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, h, p := hostileNode(t, func(c *Config) { c.SwarmKey = tt.key })
			tt.check(t, n, h)
			honestLookup(t, n, h, p, tt.key)
			if got := n.stats.panics.Load(); got != 0 {
				t.Fatalf("%d handler panics", got)
			}
		})
	}
}
