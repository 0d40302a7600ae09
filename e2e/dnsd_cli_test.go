package e2e

import (
	"btclient/internal/testwait"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dnsdProc is a `btclient dnsd` process with its addresses.
type dnsdProc struct {
	*proc
	dns, api string
}

// startDNSD runs `btclient dnsd` on the given addresses and waits until it
// logs both listening lines.
func startDNSD(t *testing.T, label, dnsAddr, apiAddr string, extra ...string) dnsdProc {
	t.Helper()
	args := append([]string{"dnsd", "--listen", dnsAddr, "--api", apiAddr}, extra...)
	p := btclient(t, label, args...)
	testwait.Until(t, 10*time.Second, label+" listening", func() bool {
		out := p.out.String()
		return strings.Contains(out, "dns listening on "+dnsAddr) && strings.Contains(out, "api listening on "+apiAddr)
	})
	return dnsdProc{proc: p, dns: dnsAddr, api: apiAddr}
}

// dnsdPost registers a record over the HTTP API.
func dnsdPost(t *testing.T, apiAddr, name, ip string, ttl int) {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"ip":%q,"ttl":%d}`, name, ip, ttl)
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Post("http://"+apiAddr+"/records", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /records: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /records %s: %s", body, resp.Status)
	}
}

// dnsdDelete deletes records over the HTTP API (path like "name?ip=...").
func dnsdDelete(t *testing.T, apiAddr, path string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, "http://"+apiAddr+"/records/"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("DELETE /records/%s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE /records/%s: %s", path, resp.Status)
	}
}

// dnsdDigBinary finds dig: skipped without it, unless CI is set.
func dnsdDigBinary(t *testing.T) string {
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

var dnsdDigStatus = regexp.MustCompile(`status: ([A-Z]+)`)

// dnsdDigAnswer is what dig said: the status, the answer's addresses
// (sorted) and TTLs, and whether an SOA came in the authority section.
type dnsdDigAnswer struct {
	status string
	addrs  []string
	ttls   []int
	soa    bool
	raw    string
}

// dnsdDig runs dig against server (HOST:PORT) for name and qtype.
func dnsdDig(t *testing.T, server, name, qtype string, extra ...string) dnsdDigAnswer {
	t.Helper()
	host, port, ok := strings.Cut(server, ":")
	if !ok {
		t.Fatalf("bad server %q", server)
	}
	args := append([]string{"@" + host, "-p", port, name, qtype, "+norec", "+time=2", "+tries=1"}, extra...)
	out, err := exec.Command(dnsdDigBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	a := dnsdDigAnswer{raw: string(out)}
	if m := dnsdDigStatus.FindStringSubmatch(a.raw); m != nil {
		a.status = m[1]
	}
	section := ""
	for line := range strings.Lines(a.raw) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasSuffix(line, "SECTION:"):
			section = line
		case line == "" || strings.HasPrefix(line, ";"):
			section = ""
		case section == ";; ANSWER SECTION:":
			f := strings.Fields(line) // name ttl class type data
			if len(f) == 5 && (f[3] == "A" || f[3] == "AAAA") {
				a.addrs = append(a.addrs, f[4])
				var ttl int
				fmt.Sscan(f[1], &ttl)
				a.ttls = append(a.ttls, ttl)
			}
		case section == ";; AUTHORITY SECTION:":
			if f := strings.Fields(line); len(f) > 3 && f[3] == "SOA" {
				a.soa = true
			}
		}
	}
	slices.Sort(a.addrs)
	return a
}

// dnsdResolves reports whether dig finds exactly want (none: NXDOMAIN).
func dnsdResolves(t *testing.T, server, name string, want ...string) bool {
	t.Helper()
	a := dnsdDig(t, server, name, "A")
	if len(want) == 0 {
		return a.status == "NXDOMAIN"
	}
	return a.status == "NOERROR" && slices.Equal(a.addrs, want)
}

func TestDNSDAnswersDigAndStopsOnSIGTERM(t *testing.T) {
	dnsdDigBinary(t)
	d := startDNSD(t, "dnsd", hostPort("127.0.0.1", freePort(t, "127.0.0.1")), hostPort("127.0.0.1", freePort(t, "127.0.0.1")))
	dnsdPost(t, d.api, "seeder.swarm.test", "127.0.0.11", 120)
	dnsdPost(t, d.api, "seeder.swarm.test", "127.0.0.12", 120)

	tests := []struct {
		name   string
		qname  string
		qtype  string
		extra  []string
		status string
		addrs  []string
		soa    bool
	}{
		{"a registered name answers its addresses over UDP", "seeder.swarm.test", "A", nil, "NOERROR", []string{"127.0.0.11", "127.0.0.12"}, false},
		{"a registered name answers its addresses over TCP", "seeder.swarm.test", "A", []string{"+tcp"}, "NOERROR", []string{"127.0.0.11", "127.0.0.12"}, false},
		{"names are case-insensitive", "SEEDER.Swarm.Test", "A", nil, "NOERROR", []string{"127.0.0.11", "127.0.0.12"}, false},
		{"an unknown name is NXDOMAIN with an SOA", "leecher.swarm.test", "A", nil, "NXDOMAIN", nil, true},
		{"AAAA for an A-only name is NOERROR with no answer", "seeder.swarm.test", "AAAA", nil, "NOERROR", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := dnsdDig(t, d.dns, tt.qname, tt.qtype, tt.extra...)
			if a.status != tt.status || !slices.Equal(a.addrs, tt.addrs) || a.soa != tt.soa {
				t.Fatalf("got %s %v soa=%v, want %s %v soa=%v\n%s", a.status, a.addrs, a.soa, tt.status, tt.addrs, tt.soa, a.raw)
			}
			for _, ttl := range a.ttls {
				if ttl > 120 || ttl < 115 {
					t.Errorf("TTL %d, want about 120", ttl)
				}
			}
		})
	}

	d.signal(syscall.SIGTERM)
	if code := d.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0\n%s", code, d.out.String())
	}
}

func TestDNSDReplicatesBetweenThreeProcesses(t *testing.T) {
	dnsdDigBinary(t)
	var dnsAddr, apiAddr [3]string
	for i := range 3 {
		dnsAddr[i] = hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
		apiAddr[i] = hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	}
	// A chain: the first pushes to the second, the second to the third.
	peers := [3][]string{{"--peers", apiAddr[1]}, {"--peers", apiAddr[2]}, nil}
	var d [3]dnsdProc
	for i := 2; i >= 0; i-- {
		d[i] = startDNSD(t, fmt.Sprintf("dnsd%d", i+1), dnsAddr[i], apiAddr[i], peers[i]...)
	}

	dnsdPost(t, apiAddr[0], "tracker.swarm.test", "127.0.0.21", 300)
	dnsdPost(t, apiAddr[0], "tracker.swarm.test", "127.0.0.22", 300)
	testwait.Until(t, 10*time.Second, "a record posted to the first resolves at the third", func() bool {
		return dnsdResolves(t, dnsAddr[2], "tracker.swarm.test", "127.0.0.21", "127.0.0.22")
	})

	dnsdDelete(t, apiAddr[0], "tracker.swarm.test?ip=127.0.0.21")
	testwait.Until(t, 10*time.Second, "a deletion at the first reaches the third", func() bool {
		return dnsdResolves(t, dnsAddr[2], "tracker.swarm.test", "127.0.0.22")
	})

	d[2].signal(syscall.SIGTERM)
	if code := d[2].wait(10 * time.Second); code != 0 {
		t.Fatalf("third server exited %d, want 0", code)
	}
	dnsdPost(t, apiAddr[0], "late.swarm.test", "127.0.0.23", 300)
	startDNSD(t, "dnsd3-restarted", dnsAddr[2], apiAddr[2])
	testwait.Until(t, 10*time.Second, "the restarted third server catches up", func() bool {
		return dnsdResolves(t, dnsAddr[2], "tracker.swarm.test", "127.0.0.22") &&
			dnsdResolves(t, dnsAddr[2], "late.swarm.test", "127.0.0.23")
	})
}

func TestDNSDRejectsBadUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"an unknown flag", []string{"dnsd", "--nope"}},
		{"a stray argument", []string{"dnsd", "extra"}},
		{"a zero gossip interval", []string{"dnsd", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0", "--gossip-interval", "0s"}},
		{"a malformed listen address", []string{"dnsd", "--listen", "nonsense", "--api", "127.0.0.1:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := btclient(t, "dnsd", tt.args...)
			if code := p.wait(10 * time.Second); code != 2 {
				t.Fatalf("exit status %d, want 2\n%s", code, p.out.String())
			}
		})
	}
}
