package dht

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// storePeers puts n loopback peers of ih straight into the node's store, so
// get_peers answers carry values: the largest answers there are.
func storePeers(nd *Node, ih ID, n int) {
	locked(nd, func() bool {
		for i := range n {
			nd.store.add(ih, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+i)), time.Now())
		}
		return true
	})
}

// trafficMeter counts a raw peer's bytes each way, per second.
type trafficMeter struct {
	mu        sync.Mutex
	start     time.Time
	sent, got []int // bytes per second since start
	replies   int
}

func (m *trafficMeter) add(list *[]int, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := int(time.Since(m.start) / time.Second)
	for len(*list) <= s {
		*list = append(*list, 0)
	}
	(*list)[s] += n
}

func sum(v []int) int {
	t := 0
	for _, x := range v {
		t += x
	}
	return t
}

// readAll counts everything the node sends p until stop is closed.
func readAll(p *rawPeer, m *trafficMeter, stop <-chan struct{}) {
	buf := make([]byte, 65536)
	for {
		select {
		case <-stop:
			return
		default:
		}
		p.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		m.add(&m.got, n)
		m.mu.Lock()
		if mm, err := decodeMessage(buf[:n]); err == nil && mm.Y == kindResponse {
			m.replies++
		}
		m.mu.Unlock()
	}
}

// stream sends get_peers from p to the node at rate per second (0: as fast
// as possible) for d, counting bytes, and returns the meter.
func stream(t *testing.T, p *rawPeer, to netip.AddrPort, ih ID, rate int, d time.Duration) *trafficMeter {
	m := &trafficMeter{start: time.Now()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { readAll(p, m, stop) })
	pkt, _ := encodeQuery("gp", methodGetPeers, map[string]any{"id": string(p.id[:]), "info_hash": string(ih[:])})
	for i := 0; time.Since(m.start) < d; i++ {
		p.send(to, pkt)
		m.add(&m.sent, len(pkt))
		if rate > 0 {
			time.Sleep(time.Until(m.start.Add(time.Duration(i+1) * time.Second / time.Duration(rate))))
		} else if i%64 == 63 {
			time.Sleep(time.Millisecond) // fast, without filling the socket buffer at once
		}
	}
	time.Sleep(300 * time.Millisecond) // the last answers
	close(stop)
	wg.Wait()
	return m
}

// checkAmplification fails unless, in every second and overall, the bytes
// the node sent are at most Factor × the bytes it received + Burst.
func checkAmplification(t *testing.T, cfg Config, m *trafficMeter) {
	t.Helper()
	for s := range m.got {
		in := 0
		if s < len(m.sent) {
			in = m.sent[s]
		}
		if out := m.got[s]; float64(out) > cfg.AmplificationFactor*float64(in)+float64(cfg.AmplificationBurst) {
			t.Errorf("second %d: %d bytes sent for %d received, over %.0f × + %d", s, out, in, cfg.AmplificationFactor, cfg.AmplificationBurst)
		}
	}
	in, out := sum(m.sent), sum(m.got)
	if float64(out) > cfg.AmplificationFactor*float64(in)+float64(cfg.AmplificationBurst) {
		t.Errorf("%d bytes sent for %d received", out, in)
	}
}

func TestAmplificationIsBoundedAndMeasured(t *testing.T) {
	cfg := testConfig()
	h := newHonestNetwork(t, nil)
	ih := randomID()
	storePeers(h.target, ih, 100)

	t.Run("within the rate limit, answers carrying 32 peers", func(t *testing.T) {
		p := newRawPeer(t, "127.0.0.1")
		m := stream(t, p, h.target.Addr(), ih, 15, 3*time.Second)
		in, out := sum(m.sent), sum(m.got)
		t.Logf("measured: 15 get_peers/s for 3 s: %d bytes in, %d bytes out (%.2f×), %d answers; per second in %v out %v",
			in, out, float64(out)/float64(in), m.replies, m.sent, m.got)
		checkAmplification(t, cfg, m)
		if m.replies < 40 {
			t.Errorf("only %d of 45 queries within the rate limit answered", m.replies)
		}
	})
	t.Run("a get_peers flood from one address", func(t *testing.T) {
		heap0 := heapInuse()
		limited0 := h.target.Stats().RateLimited
		p := newRawPeer(t, "127.0.0.1")
		var honestOK atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			time.Sleep(500 * time.Millisecond) // in the middle of the flood
			// A flood as fast as the sender goes fills the socket's buffer,
			// and the kernel drops what does not fit, honest datagrams
			// too: on a loaded machine (2 cores, -race) a lookup's one
			// query to the target can be lost. An honest client looks up
			// again, as discovery does; the flood must not lock it out.
			for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline) && !honestOK.Load(); {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				peers, err := h.seeker.GetPeers(ctx, h.ih)
				cancel()
				honestOK.Store(err == nil && slices.Contains(peers, h.peer))
			}
		})
		m := stream(t, p, h.target.Addr(), ih, 0, 2*time.Second)
		wg.Wait()
		in, out := sum(m.sent), sum(m.got)
		t.Logf("measured: flood for 2 s: %d bytes in, %d bytes out (%.3f×), %d answers; per second in %v out %v; heap grew %d KiB",
			in, out, float64(out)/float64(in), m.replies, m.sent, m.got, (int64(heapInuse())-int64(heap0))>>10)
		checkAmplification(t, cfg, m)
		if most := cfg.QueryBurst + int(cfg.QueryRate*2.5) + 1; m.replies > most {
			t.Errorf("%d answers to one source in 2 s, rate limit allows %d", m.replies, most)
		}
		if h.target.Stats().RateLimited == limited0 {
			t.Error("nothing was rate limited")
		}
		if !honestOK.Load() {
			t.Error("the honest lookup during the flood failed")
		}
	})
}
