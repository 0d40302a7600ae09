package e2e

import (
	"btclient/internal/testwait"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"btclient/overlay"
	"btclient/torrent"
)

// Flood bounds: every flood is bounded in count, concurrency and time.
const (
	floodConns       = 5000 // TCP connections per port
	floodConcurrency = 200  // at once, per port
	floodHold        = 1500 * time.Millisecond
	floodSlow        = 100 // slowloris connections per TCP port
	floodSlowLimit   = 15 * time.Second
	floodUDPPackets  = 20000
	floodMaxTime     = 30 * time.Second // per flood, whatever the counts
	floodRSSBound    = 150 << 20
)

// floodRSS reads a process's resident set size from /proc.
func floodRSS(t *testing.T, p *proc) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("read status of %s: %v", p.name, err)
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", l, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for %s", p.name)
	return 0
}

// floodPort is one TCP port to flood, with the start of a plausible request
// that half-open and slowloris connections send and never finish.
type floodPort struct {
	name   string
	addr   string
	prefix []byte
	// honest performs one honest request with a short timeout.
	honest func() error
}

type floodTCPStats struct {
	dialed, failed, writeErrs int64
	elapsed                   time.Duration
}

// floodTCP opens floodConns connections to addr, floodConcurrency at a
// time: a quarter close at once, a quarter send 1–4 KiB of junk, a quarter
// send the prefix and hold the connection half-open, a quarter send 64 KiB
// of junk with no newline.
func floodTCP(ctx context.Context, fp floodPort) floodTCPStats {
	ctx, cancel := context.WithTimeout(ctx, floodMaxTime)
	defer cancel()
	var st floodTCPStats
	var dialed, failed, writeErrs atomic.Int64
	sem := make(chan struct{}, floodConcurrency)
	var wg sync.WaitGroup
	start := time.Now()
	big := make([]byte, 64<<10)
	rand.Read(big)
	for i := 0; i < floodConns && ctx.Err() == nil; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			d := net.Dialer{Timeout: 2 * time.Second}
			c, err := d.DialContext(ctx, "tcp", fp.addr)
			if err != nil {
				failed.Add(1)
				return
			}
			dialed.Add(1)
			defer c.Close()
			c.SetDeadline(time.Now().Add(floodHold + time.Second))
			var werr error
			switch i % 4 {
			case 0:
			case 1:
				junk := make([]byte, 1024+mrand.IntN(3072))
				rand.Read(junk)
				_, werr = c.Write(junk)
			case 2:
				_, werr = c.Write(fp.prefix)
				select {
				case <-time.After(floodHold):
				case <-ctx.Done():
				}
			case 3:
				_, werr = c.Write(big)
			}
			if werr != nil {
				writeErrs.Add(1)
			}
		})
	}
	wg.Wait()
	st.dialed, st.failed, st.writeErrs = dialed.Load(), failed.Load(), writeErrs.Load()
	st.elapsed = time.Since(start)
	return st
}

// floodSlowloris holds floodSlow connections that send the prefix one byte
// every 500 ms (then filler bytes that never complete the request) and
// returns how long the server took to close each, and how many it left open
// after floodSlowLimit. established is closed once all are connected.
func floodSlowloris(ctx context.Context, fp floodPort, established chan<- struct{}) (closedAfter []time.Duration, open int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	ready.Add(floodSlow)
	for range floodSlow {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", fp.addr, 2*time.Second)
			ready.Done()
			if err != nil {
				mu.Lock()
				closedAfter = append(closedAfter, 0)
				mu.Unlock()
				return
			}
			defer c.Close()
			start := time.Now()
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				c.SetReadDeadline(start.Add(floodSlowLimit))
				io.Copy(io.Discard, c)
			}()
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for i := 0; ; i++ {
				b := byte('a')
				if i < len(fp.prefix) {
					b = fp.prefix[i]
				}
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Write([]byte{b})
				select {
				case <-closed:
					if d := time.Since(start); d < floodSlowLimit-100*time.Millisecond {
						mu.Lock()
						closedAfter = append(closedAfter, d)
						mu.Unlock()
						return
					}
					mu.Lock()
					open++
					mu.Unlock()
					return
				case <-ctx.Done():
					mu.Lock()
					open++
					mu.Unlock()
					return
				case <-t.C:
				}
			}
		})
	}
	ready.Wait()
	close(established)
	wg.Wait()
	return closedAfter, open
}

// floodUDP sends floodUDPPackets to addr: random junk, truncated headers and
// well-formed queries for random names, without reading the answers.
func floodUDP(ctx context.Context, addr string) (sent int, elapsed time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, floodMaxTime)
	defer cancel()
	start := time.Now()
	c, err := net.Dial("udp", addr)
	if err != nil {
		return 0, 0
	}
	defer c.Close()
	for i := 0; i < floodUDPPackets && ctx.Err() == nil; i++ {
		var pkt []byte
		switch i % 3 {
		case 0:
			pkt = make([]byte, 1+mrand.IntN(512))
			rand.Read(pkt)
		case 1:
			pkt = make([]byte, mrand.IntN(12))
			rand.Read(pkt)
		case 2:
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("x%d.flood.test.", i), dns.TypeA)
			pkt, _ = m.Pack()
		}
		if _, err := c.Write(pkt); err == nil {
			sent++
		}
		if i%500 == 499 {
			time.Sleep(time.Millisecond) // keep the loopback queue from overflowing only on our side
		}
	}
	return sent, time.Since(start)
}

// floodTarget floods every port of one process at once (TCP floods and
// slowloris on each, plus UDP when given) and checks that the process stays
// up, answers honest requests during the slowloris and after, and keeps its
// memory bounded.
func floodTarget(t *testing.T, p *proc, ports []floodPort, udpAddr string, udpHonest func() error) {
	t.Helper()
	rssBefore := floodRSS(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var peak atomic.Int64
	peak.Store(rssBefore)
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tk.C:
				if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)); err == nil {
					for l := range strings.Lines(string(b)) {
						if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
							kb, _ := strconv.ParseInt(f[1], 10, 64)
							if kb<<10 > peak.Load() {
								peak.Store(kb << 10)
							}
						}
					}
				}
			}
		}
	})

	type portResult struct {
		tcp        floodTCPStats
		slowClosed []time.Duration
		slowOpen   int
		during     error
		duringTook time.Duration
	}
	results := make([]portResult, len(ports))
	var wg sync.WaitGroup
	for i, fp := range ports {
		established := make(chan struct{})
		wg.Go(func() { results[i].slowClosed, results[i].slowOpen = floodSlowloris(ctx, fp, established) })
		wg.Go(func() {
			<-established
			results[i].tcp = floodTCP(ctx, fp)
		})
		wg.Go(func() {
			// An honest request while the slowloris holds its connections
			// and the flood runs.
			<-established
			time.Sleep(time.Second)
			start := time.Now()
			results[i].during = fp.honest()
			results[i].duringTook = time.Since(start)
		})
	}
	var udpSent int
	var udpTook time.Duration
	var udpDuring error
	if udpAddr != "" {
		wg.Go(func() { udpSent, udpTook = floodUDP(ctx, udpAddr) })
		wg.Go(func() {
			time.Sleep(500 * time.Millisecond)
			udpDuring = udpHonest()
		})
	}
	wg.Wait()
	close(stopSampling)
	sampler.Wait()

	if p.exited() {
		t.Fatalf("%s died under the flood:\n%s", p.name, tail(p.out.String(), 3000))
	}
	// Honest requests afterwards: each must be answered within 10 s.
	check := func(name string, honest func() error) {
		start := time.Now()
		var err error
		for time.Since(start) < 10*time.Second {
			if err = honest(); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("%s %s: no honest answer within 10 s after the flood: %v", p.name, name, err)
			return
		}
		t.Logf("%s %s: honest request answered %v after the flood", p.name, name, time.Since(start).Round(time.Millisecond))
	}
	for i, fp := range ports {
		r := results[i]
		var maxClose time.Duration
		for _, d := range r.slowClosed {
			maxClose = max(maxClose, d)
		}
		during := "answered in " + r.duringTook.Round(time.Millisecond).String()
		if r.during != nil {
			during = fmt.Sprintf("FAILED after %v (%v)", r.duringTook.Round(time.Millisecond), r.during)
		}
		t.Logf("measured: flood %s %s: %d conns dialed (%d refused at dial) in %v; slowloris: %d closed by the server (slowest after %v), %d still open after %v; honest request during the flood %s",
			p.name, fp.name, r.tcp.dialed, r.tcp.failed, r.tcp.elapsed.Round(time.Millisecond),
			len(r.slowClosed), maxClose.Round(time.Millisecond), r.slowOpen, floodSlowLimit, during)
		if r.slowOpen > 0 {
			t.Errorf("%s %s: %d slowloris connections still open after %v: no read deadline", p.name, fp.name, r.slowOpen, floodSlowLimit)
		}
		check(fp.name, fp.honest)
	}
	if udpAddr != "" {
		during := "answered"
		if udpDuring != nil {
			during = fmt.Sprintf("FAILED (%v)", udpDuring)
		}
		t.Logf("measured: flood %s udp %s: %d packets in %v; honest query during the flood %s", p.name, udpAddr, udpSent, udpTook.Round(time.Millisecond), during)
		check("udp", udpHonest)
	}
	if p.exited() {
		t.Fatalf("%s died after the flood:\n%s", p.name, tail(p.out.String(), 3000))
	}
	rssAfter := floodRSS(t, p)
	t.Logf("measured: flood %s RSS before %.1f MiB, peak %.1f MiB, after %.1f MiB (bound %d MiB)",
		p.name, float64(rssBefore)/(1<<20), float64(peak.Load())/(1<<20), float64(rssAfter)/(1<<20), floodRSSBound>>20)
	if rssAfter > floodRSSBound || peak.Load() > floodRSSBound {
		t.Errorf("%s RSS peak %d, after %d bytes: over the %d MiB bound", p.name, peak.Load(), rssAfter, floodRSSBound>>20)
	}
}

// floodHTTPGet is an honest GET that wants status 200.
func floodHTTPGet(u string) error {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

func floodHTTPPrefix(path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: flood.test\r\nUser-Agent: flood\r\nX-Slow: ")
}

// floodHandshake dials a peer-wire port, sends an honest handshake and
// wants one back for the same torrent.
func floodHandshake(addr string, infoHash [20]byte) error {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	hs := append([]byte("\x13BitTorrent protocol"), make([]byte, 8)...)
	hs = append(hs, infoHash[:]...)
	hs = append(hs, []byte("-FL0001-"+hex.EncodeToString([]byte("floodx")))...)
	if _, err := c.Write(hs); err != nil {
		return err
	}
	got := make([]byte, 68)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if !bytes.Equal(got[28:48], infoHash[:]) {
		return errors.New("handshake: wrong info hash back")
	}
	return nil
}

// TestFloodBtclientPorts floods the peer-wire, overlay and status ports of
// a seeding btclient; then an honest leecher still downloads the file.
func TestFloodBtclientPorts(t *testing.T) {
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 8<<20)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	meta, err := torrent.Load(tor)
	if err != nil {
		t.Fatal(err)
	}
	peerPort := chaosPort(t)
	overlayPort := chaosPort(t)
	status := chaosAddr(t)
	p := btclient(t, "seeder", "-o", src, "-p", strconv.Itoa(peerPort), "--overlay-port", strconv.Itoa(overlayPort),
		"--advertise", "127.0.0.1", "--discovery-mode", "overlay", "--status", status, "--quiet", tor)
	waitSeeding(t, status, time.Minute)
	peerAddr := hostPort("127.0.0.1", peerPort)
	overlayAddr := hostPort("127.0.0.1", overlayPort)
	cl := overlay.Client{Timeout: 3 * time.Second}

	floodTarget(t, p, []floodPort{
		{name: "peer-wire " + peerAddr, addr: peerAddr, prefix: append([]byte("\x13BitTorrent protocol"), make([]byte, 8)...),
			honest: func() error { return floodHandshake(peerAddr, meta.InfoHash) }},
		{name: "overlay " + overlayAddr, addr: overlayAddr, prefix: []byte(`{"type":"ping","from":"`),
			honest: func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				_, err := cl.Ping(ctx, overlayAddr)
				return err
			}},
		{name: "status " + status, addr: status, prefix: floodHTTPPrefix("/status"),
			honest: func() error { return floodHTTPGet("http://" + status + "/status") }},
	}, "", nil)

	// The real test of the peer wire: an honest leecher gets the whole file.
	dst := t.TempDir()
	start := time.Now()
	l := leecher(t, "honest leecher", dst, tor, "", peerAddr)
	if code := l.wait(time.Minute); code != 0 {
		t.Fatalf("honest leecher exit status %d after the flood", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
	t.Logf("measured: flood seeder: honest leecher downloaded 8 MiB in %v after the flood", time.Since(start).Round(time.Millisecond))
}

// TestFloodTracker floods `btclient tracker`'s HTTP port.
func TestFloodTracker(t *testing.T) {
	addr := chaosAddr(t)
	p := btclient(t, "tracker", "tracker", "--listen", addr, "--interval", "1m")
	testwait.Until(t, 10*time.Second, "tracker listening", func() bool {
		return strings.Contains(p.out.String(), "tracker listening on "+addr)
	})
	ih := "flood-test-infohash!" // 20 bytes
	announce := func() error {
		q := fmt.Sprintf("info_hash=%s&peer_id=%s&port=7001&uploaded=0&downloaded=0&left=100&compact=1",
			url.QueryEscape(ih), url.QueryEscape("-FL0001-honestpeer01"))
		c := http.Client{Timeout: 3 * time.Second}
		resp, err := c.Get("http://" + addr + "/announce?" + q)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("d")) || bytes.Contains(body, []byte("failure reason")) {
			return fmt.Errorf("announce: %s %q", resp.Status, body)
		}
		return nil
	}
	if err := announce(); err != nil {
		t.Fatal(err)
	}
	floodTarget(t, p, []floodPort{
		{name: "http " + addr, addr: addr, prefix: floodHTTPPrefix("/announce"), honest: announce},
	}, "", nil)
}

// floodDNSQuery asks server for name's A record over UDP or TCP with the
// miekg/dns client and wants ip in the answer.
func floodDNSQuery(server, name, ip, netw string) error {
	c := dns.Client{Net: netw, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return err
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok && a.A.String() == ip {
			return nil
		}
	}
	return fmt.Errorf("%s %s: no %s in %v", netw, name, ip, r.Answer)
}

// floodDig asks with dig when it is installed (the tool people use), else
// with the Go client.
func floodDig(server, name, ip string, tcp bool) error {
	dig, err := exec.LookPath("dig")
	if err != nil {
		netw := "udp"
		if tcp {
			netw = "tcp"
		}
		return floodDNSQuery(server, name, ip, netw)
	}
	host, port, _ := net.SplitHostPort(server)
	args := []string{"@" + host, "-p", port, name, "A", "+norec", "+time=2", "+tries=1", "+short"}
	if tcp {
		args = append(args, "+tcp")
	}
	out, err := exec.Command(dig, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dig: %v: %s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == ip {
			return nil
		}
	}
	return fmt.Errorf("dig %s: %q, want %s", name, out, ip)
}

// TestFloodDNSD floods `btclient dnsd`: UDP junk and queries on the DNS
// port, TCP floods on the DNS and API ports, and oversized POST bodies.
func TestFloodDNSD(t *testing.T) {
	d := startDNSD(t, "dnsd", chaosAddr(t), chaosAddr(t), "--quiet")
	dnsdPost(t, d.api, "honest.flood.test", "127.0.0.42", 600)
	if err := floodDNSQuery(d.dns, "honest.flood.test", "127.0.0.42", "udp"); err != nil {
		t.Fatal(err)
	}

	// Oversized bodies: 20 POSTs announcing 64 MiB each, 8 at a time; the
	// API must refuse them without reading (or holding) it all.
	var bigStatus sync.Map
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	bigStart := time.Now()
	for i := range 20 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			body := io.LimitReader(rand.Reader, 64<<20)
			req, _ := http.NewRequest(http.MethodPost, "http://"+d.api+"/records", body)
			req.ContentLength = 64 << 20
			req.Header.Set("Content-Type", "application/json")
			c := http.Client{Timeout: 10 * time.Second}
			resp, err := c.Do(req)
			if err != nil {
				bigStatus.Store(i, "error: "+err.Error())
				return
			}
			resp.Body.Close()
			bigStatus.Store(i, resp.Status)
		})
	}
	wg.Wait()
	counts := map[string]int{}
	bigStatus.Range(func(_, v any) bool {
		s := v.(string)
		if strings.HasPrefix(s, "error: ") {
			// The server closing the connection while we still write is a
			// refusal too.
			if strings.Contains(s, "broken pipe") || strings.Contains(s, "connection reset") {
				s = "closed while sending"
			}
		}
		counts[s]++
		return true
	})
	t.Logf("measured: flood dnsd: 20 POSTs of 64 MiB answered in %v: %v", time.Since(bigStart).Round(time.Millisecond), counts)
	for s, n := range counts {
		if !strings.HasPrefix(s, "4") && s != "closed while sending" {
			t.Errorf("%d oversized POSTs got %q, want a 4xx refusal", n, s)
		}
	}

	api := d.api
	floodTarget(t, d.proc, []floodPort{
		{name: "dns tcp " + d.dns, addr: d.dns, prefix: []byte{0x01, 0x00, 0xab, 0xcd},
			honest: func() error { return floodDNSQuery(d.dns, "honest.flood.test", "127.0.0.42", "tcp") }},
		{name: "api " + api, addr: api, prefix: floodHTTPPrefix("/records"),
			honest: func() error { return floodHTTPGet("http://" + api + "/records") }},
	}, d.dns, func() error { return floodDNSQuery(d.dns, "honest.flood.test", "127.0.0.42", "udp") })

	// What a person would run afterwards.
	for _, tcp := range []bool{false, true} {
		if err := floodDig(d.dns, "honest.flood.test", "127.0.0.42", tcp); err != nil {
			t.Errorf("after the flood (tcp=%v): %v", tcp, err)
		}
	}
	if err := floodHTTPGet("http://" + api + "/records"); err != nil {
		t.Errorf("after the flood: %v", err)
	}
}
