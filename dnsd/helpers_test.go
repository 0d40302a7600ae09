package dnsd

import (
	"btclient/internal/testwait"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testConfig is a server on loopback with free ports and short timers.
func testConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.API = "127.0.0.1:0"
	cfg.GossipInterval = 200 * time.Millisecond
	cfg.GossipTimeout = time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return cfg
}

// startServer runs a server until the test ends or stop is called; stop
// waits for Serve to return and fails the test if it returned an error.
func startServer(t *testing.T, cfg Config) (srv *Server, stop func()) {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	return srv, testwait.Run(t, "Serve", srv.Serve)
}

// freeAddr returns a loopback address whose TCP and UDP ports were free a
// moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if pc, err := net.ListenPacket("udp", addr); err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// post registers a record over the API and fails the test if it is refused.
func post(t *testing.T, apiAddr, name, ip string, ttl int) {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"ip":%q,"ttl":%d}`, name, ip, ttl)
	status, resp := do(t, http.MethodPost, "http://"+apiAddr+"/records", body)
	if status != http.StatusCreated {
		t.Fatalf("POST /records %s: %d %s", body, status, resp)
	}
}

// do sends one API request and returns the status and body.
func do(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, buf.Bytes()
}

// listRecords reads GET /records.
func listRecords(t *testing.T, apiAddr string) []Record {
	t.Helper()
	status, body := do(t, http.MethodGet, "http://"+apiAddr+"/records", "")
	if status != http.StatusOK {
		t.Fatalf("GET /records: %d %s", status, body)
	}
	var recs []Record
	if err := json.Unmarshal(body, &recs); err != nil {
		t.Fatalf("GET /records: %v in %s", err, body)
	}
	return recs
}

// digPath finds the dig binary. Without it the test is skipped, unless CI
// is set: there dig must be installed.
func digPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("dig")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("dig is required when CI is set (install Debian's dnsutils): %v", err)
		}
		t.Skip("dig not found (install Debian's dnsutils); set CI=true to make this a failure")
	}
	return p
}

// digResult is what dig printed, parsed.
type digResult struct {
	status    string   // NOERROR, NXDOMAIN, ...
	flags     []string // qr aa tc ...
	answer    []dns.RR
	authority []dns.RR
	raw       string
}

func (d digResult) hasFlag(f string) bool {
	for _, x := range d.flags {
		if x == f {
			return true
		}
	}
	return false
}

var (
	digStatus = regexp.MustCompile(`status: ([A-Z]+)`)
	digFlags  = regexp.MustCompile(`;; flags: ([a-z ]*);`)
)

// dig runs the real dig against server (HOST:PORT) with +norec and a short
// timeout, then the given arguments, and parses its output.
func dig(t *testing.T, server string, args ...string) digResult {
	t.Helper()
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"@" + host, "-p", port, "+norec", "+time=2", "+tries=1"}, args...)
	out, err := exec.Command(digPath(t), argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	res := digResult{raw: string(out)}
	if m := digStatus.FindStringSubmatch(res.raw); m != nil {
		res.status = m[1]
	}
	if m := digFlags.FindStringSubmatch(res.raw); m != nil {
		res.flags = strings.Fields(m[1])
	}
	var section *[]dns.RR
	for line := range strings.Lines(res.raw) {
		line = strings.TrimSpace(line)
		switch {
		case line == ";; ANSWER SECTION:":
			section = &res.answer
		case line == ";; AUTHORITY SECTION:":
			section = &res.authority
		case line == "" || strings.HasPrefix(line, ";"):
			section = nil
		case section != nil:
			rr, err := dns.NewRR(line)
			if err != nil {
				t.Fatalf("dig printed a record miekg/dns cannot parse: %q: %v", line, err)
			}
			*section = append(*section, rr)
		}
	}
	if res.status == "" {
		t.Fatalf("dig %s printed no status:\n%s", strings.Join(argv, " "), out)
	}
	return res
}

// addrsOf lists the addresses in A and AAAA records, sorted.
func addrsOf(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	slices.Sort(out)
	return out
}

// msgSize finds the size of the answer in dig's output.
var msgSize = regexp.MustCompile(`MSG SIZE\s+rcvd: (\d+)`)

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newRand is a random source whose seed is logged, so a failure can be replayed.
func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed>>1))
}

func fillRand(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	ip, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return ip
}

// sameAddresses compares records by name and address only.
func sameAddresses(got, want []Record) bool {
	key := func(rs []Record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name+" "+r.IP.String())
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(got), key(want))
}
