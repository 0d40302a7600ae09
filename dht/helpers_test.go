package dht

import (
	"btclient/internal/testwait"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// testConfig shrinks the timers for tests; the rest is DefaultConfig.
func testConfig() Config {
	c := DefaultConfig()
	c.ListenAddr = "127.0.0.1:0"
	c.QueryTimeout = time.Second
	c.SlowQuery = 200 * time.Millisecond
	c.MaintenanceInterval = 200 * time.Millisecond
	return c
}

// startNode creates a node from cfg and runs it until the test ends.
func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	return n
}

// runNode runs n until the test ends (or until the returned stop is called).
func runNode(t testing.TB, n *Node) (stop func()) {
	t.Helper()
	return testwait.Run(t, "Run", n.Run)
}

// waitJoined waits for the node's first join attempt to finish.
func waitJoined(t testing.TB, n *Node) {
	t.Helper()
	select {
	case <-n.joined:
	case <-time.After(2 * time.Minute):
		t.Fatalf("node %s did not finish joining", n.Addr())
	}
}

// udpNode runs a node on 127.0.0.1 over real UDP with the given bootstrap nodes.
func udpNode(t testing.TB, mutate func(*Config), boot ...*Node) *Node {
	t.Helper()
	cfg := testConfig()
	for _, b := range boot {
		cfg.Bootstrap = append(cfg.Bootstrap, b.Addr().String())
	}
	if mutate != nil {
		mutate(&cfg)
	}
	return startNode(t, cfg)
}

// memAddr returns the i-th simulated public address: one node per /24.
func memAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{11, byte(i >> 8), byte(i), 1}), 6881)
}

// memNode runs a node at addr on mn.
func memNode(t testing.TB, mn *MemNetwork, addr netip.AddrPort, cfg Config, boot ...netip.AddrPort) *Node {
	t.Helper()
	tr, err := mn.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Transport = tr
	cfg.Bootstrap = nil
	for _, b := range boot {
		cfg.Bootstrap = append(cfg.Bootstrap, b.String())
	}
	return startNode(t, cfg)
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
