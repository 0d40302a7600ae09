package dnsd

import (
	"btclient/internal/testwait"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestDigAnswersRegisteredNames(t *testing.T) {
	digPath(t)
	cfg := testConfig(t)
	srv, _ := startServer(t, cfg)
	api := srv.APIAddr()
	post(t, api, "node.example", "10.0.0.1", 300)
	post(t, api, "node.example", "10.0.0.2", 300)
	post(t, api, "dual.example", "10.0.0.3", 120)
	post(t, api, "dual.example", "2001:db8::3", 120)
	post(t, api, "leaf.deep.sub.example", "10.0.0.4", 60)

	negTTL := uint32(cfg.NegativeTTL / time.Second)
	tests := []struct {
		name       string
		args       []string
		status     string
		answers    []string
		ttl        uint32 // of every answer, give or take 2 s of test time
		soaOwner   string // non-empty: a negative answer with this SOA owner
		owner      string // the owner name answers must carry
		wantFlagTC bool
	}{
		{name: "a registered name answers all its A records with their TTL over UDP",
			args: []string{"node.example", "A"}, status: "NOERROR", answers: []string{"10.0.0.1", "10.0.0.2"}, ttl: 300, owner: "node.example."},
		{name: "a registered name answers the same over TCP",
			args: []string{"node.example", "A", "+tcp"}, status: "NOERROR", answers: []string{"10.0.0.1", "10.0.0.2"}, ttl: 300, owner: "node.example."},
		{name: "an unknown name is NXDOMAIN with an SOA in authority",
			args: []string{"nobody.example", "A"}, status: "NXDOMAIN", soaOwner: "example."},
		{name: "an unknown name is NXDOMAIN over TCP too",
			args: []string{"nobody.example", "A", "+tcp"}, status: "NXDOMAIN", soaOwner: "example."},
		{name: "AAAA for an A-only name is NOERROR with no answer and an SOA",
			args: []string{"node.example", "AAAA"}, status: "NOERROR", soaOwner: "example."},
		{name: "another type for a registered name is NOERROR with no answer",
			args: []string{"node.example", "TXT"}, status: "NOERROR", soaOwner: "example."},
		{name: "AAAA answers the IPv6 addresses of a name",
			args: []string{"dual.example", "AAAA"}, status: "NOERROR", answers: []string{"2001:db8::3"}, ttl: 120, owner: "dual.example."},
		{name: "A answers only the IPv4 addresses of a dual-stack name",
			args: []string{"dual.example", "A"}, status: "NOERROR", answers: []string{"10.0.0.3"}, ttl: 120, owner: "dual.example."},
		{name: "names match case-insensitively and answers keep the asker's case",
			args: []string{"NoDe.ExAmPlE", "A"}, status: "NOERROR", answers: []string{"10.0.0.1", "10.0.0.2"}, ttl: 300, owner: "NoDe.ExAmPlE."},
		{name: "a single-label unknown name gets the root's SOA",
			args: []string{"nothing", "A"}, status: "NXDOMAIN", soaOwner: "."},
		{name: "a parent of a registered name exists (NOERROR, not NXDOMAIN)",
			args: []string{"sub.example", "A"}, status: "NOERROR", soaOwner: "example."},
		{name: "a deep name resolves",
			args: []string{"leaf.deep.sub.example", "A"}, status: "NOERROR", answers: []string{"10.0.0.4"}, ttl: 60, owner: "leaf.deep.sub.example."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := dig(t, srv.DNSAddr(), tt.args...)
			if res.status != tt.status {
				t.Fatalf("status %s, want %s\n%s", res.status, tt.status, res.raw)
			}
			if !res.hasFlag("aa") || !res.hasFlag("qr") || res.hasFlag("ra") {
				t.Errorf("flags %v, want qr and aa without ra", res.flags)
			}
			if got := addrsOf(res.answer); !slices.Equal(got, tt.answers) {
				t.Errorf("answers %v, want %v\n%s", got, tt.answers, res.raw)
			}
			for _, rr := range res.answer {
				h := rr.Header()
				if h.Ttl > tt.ttl || h.Ttl+2 < tt.ttl {
					t.Errorf("TTL %d, want %d (give or take 2)", h.Ttl, tt.ttl)
				}
				if h.Name != tt.owner {
					t.Errorf("owner %q, want %q", h.Name, tt.owner)
				}
			}
			if tt.soaOwner == "" {
				if len(res.authority) != 0 {
					t.Errorf("authority %v, want none", res.authority)
				}
				return
			}
			if len(res.answer) != 0 || len(res.authority) != 1 {
				t.Fatalf("want no answer and one SOA in authority\n%s", res.raw)
			}
			soa, ok := res.authority[0].(*dns.SOA)
			if !ok {
				t.Fatalf("authority %v is not an SOA", res.authority[0])
			}
			if soa.Hdr.Name != tt.soaOwner || soa.Minttl != negTTL || soa.Hdr.Ttl != negTTL {
				t.Errorf("SOA %v, want owner %s with TTL and MINIMUM %d", soa, tt.soaOwner, negTTL)
			}
		})
	}
}

func TestDigNameIsGoneAfterItsTTL(t *testing.T) {
	digPath(t)
	srv, _ := startServer(t, testConfig(t))
	post(t, srv.APIAddr(), "brief.example", "10.9.9.9", 1)
	if res := dig(t, srv.DNSAddr(), "brief.example", "A"); res.status != "NOERROR" || len(res.answer) != 1 {
		t.Fatalf("right after registration: %s with %d answers\n%s", res.status, len(res.answer), res.raw)
	} else if ttl := res.answer[0].Header().Ttl; ttl != 1 {
		t.Errorf("TTL %d, want 1", ttl)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		res := dig(t, srv.DNSAddr(), "brief.example", "A")
		if res.status == "NXDOMAIN" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s 3s after a 1s TTL\n%s", res.status, res.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if recs := listRecords(t, srv.APIAddr()); len(recs) != 0 {
		t.Errorf("GET /records still lists %v", recs)
	}
}

func TestDigManyRecordsTruncateOverUDP(t *testing.T) {
	digPath(t)
	cfg := testConfig(t)
	srv, _ := startServer(t, cfg)
	const n = 150
	var want []string
	for i := range n {
		ip := fmt.Sprintf("10.1.%d.%d", i/200, i%200+1)
		post(t, srv.APIAddr(), "swarm.example", ip, 60)
		want = append(want, ip)
	}
	slices.Sort(want)

	tests := []struct {
		name     string
		args     []string
		tc       bool
		maxBytes int // of the answer, 0 for no check
	}{
		{name: "UDP with dig's EDNS0 buffer sets TC", args: []string{"+ignore"}, tc: true, maxBytes: cfg.MaxUDPSize},
		{name: "UDP without EDNS0 sets TC within 512 bytes", args: []string{"+ignore", "+noedns"}, tc: true, maxBytes: 512},
		{name: "UDP with a huge EDNS0 buffer is still capped by the server", args: []string{"+ignore", "+bufsize=65000"}, tc: true, maxBytes: cfg.MaxUDPSize},
		{name: "TCP gives the full answer", args: []string{"+tcp"}},
		{name: "dig retries a truncated UDP answer over TCP", args: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := dig(t, srv.DNSAddr(), append([]string{"swarm.example", "A"}, tt.args...)...)
			if res.status != "NOERROR" {
				t.Fatalf("status %s\n%s", res.status, res.raw)
			}
			if res.hasFlag("tc") != tt.tc {
				t.Fatalf("flags %v, want tc=%v", res.flags, tt.tc)
			}
			got := addrsOf(res.answer)
			if !tt.tc {
				if !slices.Equal(got, want) {
					t.Errorf("got %d addresses, want all %d", len(got), n)
				}
				return
			}
			if len(got) >= n {
				t.Errorf("a truncated answer has all %d addresses", len(got))
			}
			if m := msgSize.FindStringSubmatch(res.raw); m == nil {
				t.Errorf("dig printed no message size")
			} else if size := atoi(t, m[1]); size > tt.maxBytes {
				t.Errorf("answer is %d bytes, over %d", size, tt.maxBytes)
			}
		})
	}
}

// TestDNSRejectsNonsense sends well-formed messages that ask for something
// the server does not do.
func TestDNSRejectsNonsense(t *testing.T) {
	srv, _ := startServer(t, testConfig(t))
	post(t, srv.APIAddr(), "node.example", "10.0.0.1", 60)
	query := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		return m
	}
	tests := []struct {
		name  string
		msg   func() *dns.Msg
		rcode int
	}{
		{"two questions are a format error", func() *dns.Msg {
			m := query("node.example.", dns.TypeA)
			m.Question = append(m.Question, m.Question[0])
			return m
		}, dns.RcodeFormatError},
		{"no question is a format error", func() *dns.Msg {
			m := query("node.example.", dns.TypeA)
			m.Question = nil
			return m
		}, dns.RcodeFormatError},
		{"NOTIFY is not implemented", func() *dns.Msg {
			m := query("node.example.", dns.TypeSOA)
			m.Opcode = dns.OpcodeNotify
			return m
		}, dns.RcodeNotImplemented},
		{"UPDATE is not implemented", func() *dns.Msg {
			m := query("node.example.", dns.TypeSOA)
			m.Opcode = dns.OpcodeUpdate
			return m
		}, dns.RcodeNotImplemented},
		{"the CHAOS class is refused", func() *dns.Msg {
			m := query("version.bind.", dns.TypeTXT)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}, dns.RcodeRefused},
		{"the root name is refused", func() *dns.Msg { return query(".", dns.TypeNS) }, dns.RcodeRefused},
		{"EDNS version 1 is BADVERS", func() *dns.Msg {
			m := query("node.example.", dns.TypeA)
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
			return m
		}, dns.RcodeBadVers},
		{"a plain query still works", func() *dns.Msg { return query("node.example.", dns.TypeA) }, dns.RcodeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, network := range []string{"udp", "tcp"} {
				c := dns.Client{Net: network, Timeout: 2 * time.Second}
				resp, _, err := c.Exchange(tt.msg(), srv.DNSAddr())
				if err != nil {
					t.Fatalf("%s: %v", network, err)
				}
				if resp.Rcode != tt.rcode {
					t.Errorf("%s: rcode %s, want %s", network, dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
				}
			}
		})
	}
}

func TestGarbageLeavesDNSServerAnswering(t *testing.T) {
	srv, _ := startServer(t, testConfig(t))
	post(t, srv.APIAddr(), "node.example", "10.0.0.1", 60)
	valid, err := new(dns.Msg).SetQuestion("node.example.", dns.TypeA).Pack()
	if err != nil {
		t.Fatal(err)
	}
	rng := newRand(t)
	packets := []struct {
		name string
		make func() []byte
	}{
		{"random bytes", func() []byte { b := make([]byte, rng.IntN(700)); fillRand(rng, b); return b }},
		{"truncated header", func() []byte { return valid[:rng.IntN(12)] }},
		{"truncated question", func() []byte { return valid[:12+rng.IntN(len(valid)-12)] }},
		{"header claiming 65535 questions", func() []byte {
			b := slices.Clone(valid)
			b[4], b[5] = 0xff, 0xff
			return b
		}},
		{"a response instead of a query", func() []byte {
			b := slices.Clone(valid)
			b[2] |= 0x80
			return b
		}},
		{"a compression pointer to itself", func() []byte {
			b := slices.Clone(valid[:12])
			return append(b, 0xc0, 12, 0, 1, 0, 1)
		}},
		{"a valid query with random bit flips", func() []byte {
			b := slices.Clone(valid)
			b[rng.IntN(len(b))] ^= byte(1 << rng.IntN(8))
			return b
		}},
	}
	conn, err := net.Dial("udp", srv.DNSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 2000 {
		p := packets[i%len(packets)]
		if _, err := conn.Write(p.make()); err != nil {
			t.Fatalf("send %s: %v", p.name, err)
		}
	}
	// And over TCP: a length prefix promising more than is sent, junk, and
	// a connection closed mid-message.
	for _, junk := range [][]byte{{0xff, 0xff, 1, 2, 3}, {0, 5, 0, 0, 0, 0, 0}, {0, 40}, valid} {
		c, err := net.Dial("tcp", srv.DNSAddr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(junk)
		c.Close()
	}
	// The kernel may drop a query that arrives while the socket buffer is
	// still full of garbage, so ask the way resolvers do: again on timeout.
	for _, network := range []string{"udp", "tcp"} {
		c := dns.Client{Net: network, Timeout: time.Second}
		var lastErr error
		testwait.Until(t, 10*time.Second, "a "+network+" answer after the garbage", func() bool {
			resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("node.example.", dns.TypeA), srv.DNSAddr())
			if err != nil {
				lastErr = err
				return false
			}
			if len(resp.Answer) != 1 {
				t.Fatalf("after garbage, %s answer %v", network, resp.Answer)
			}
			return true
		})
		if lastErr != nil {
			t.Logf("%s needed a retry after the garbage: %v", network, lastErr)
		}
	}
	if _, err := Resolve(t.Context(), srv.DNSAddr(), "node.example"); err != nil {
		t.Fatalf("after garbage: %v", err)
	}
}
