package dnsd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrNotFound reports that a DNS server has no addresses for a name.
var ErrNotFound = errors.New("name not found")

// queryTimeout bounds one DNS exchange when ctx has no earlier deadline.
const queryTimeout = 2 * time.Second

// Resolve looks name up as A (and AAAA) records at the dnsd server
// (HOST:PORT), returning all addresses: IPv4 first, then IPv6. A truncated
// UDP answer is retried over TCP. A name with no addresses gives an error
// that wraps ErrNotFound.
func Resolve(ctx context.Context, server, name string) ([]netip.Addr, error) {
	var addrs []netip.Addr
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, rcode, err := query(ctx, server, name, qtype)
		if err != nil {
			return nil, fmt.Errorf("resolve %s at %s: %w", name, server, err)
		}
		if rcode == dns.RcodeNameError {
			return nil, fmt.Errorf("resolve %s at %s: %w (NXDOMAIN)", name, server, ErrNotFound)
		}
		if rcode != dns.RcodeSuccess {
			return nil, fmt.Errorf("resolve %s at %s: server answered %s", name, server, dns.RcodeToString[rcode])
		}
		for _, rr := range rrs {
			switch rr := rr.(type) {
			case *dns.A:
				if ip, ok := netip.AddrFromSlice(rr.A); ok {
					addrs = append(addrs, ip.Unmap())
				}
			case *dns.AAAA:
				if ip, ok := netip.AddrFromSlice(rr.AAAA); ok {
					addrs = append(addrs, ip)
				}
			}
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s at %s: %w (no addresses)", name, server, ErrNotFound)
	}
	return addrs, nil
}

// query asks server one question over UDP, and again over TCP if the answer
// was truncated; it returns the answer section and the rcode.
func query(ctx context.Context, server, name string, qtype uint16) ([]dns.RR, int, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(dns.DefaultMsgSize, false)
	resp, err := exchange(ctx, "udp", server, m)
	if err == nil && resp.Truncated {
		resp, err = exchange(ctx, "tcp", server, m)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("query for %s: %w", dns.TypeToString[qtype], err)
	}
	return resp.Answer, resp.Rcode, nil
}

func exchange(ctx context.Context, network, server string, m *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	c := &dns.Client{Net: network, UDPSize: dns.DefaultMsgSize}
	resp, _, err := c.ExchangeContext(ctx, m, server)
	if err != nil {
		return nil, fmt.Errorf("over %s: %w", network, err)
	}
	return resp, nil
}

// ResolveBootstrap turns "name:port" entries into "ip:port" entries: each
// name through the dnsd server first (all its A and AAAA records), then the
// system resolver as fallback; IP literals pass through. server may be ""
// (system only). Entries that resolve nowhere are left out and named in the
// returned error, so a caller may go on with a partial list; the list has no
// duplicates.
func ResolveBootstrap(ctx context.Context, server string, entries []string) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	add := func(ip netip.Addr, port string) {
		s := net.JoinHostPort(ip.String(), port)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	var errs []error
	for _, entry := range entries {
		host, port, err := net.SplitHostPort(strings.TrimSpace(entry))
		if err != nil {
			errs = append(errs, fmt.Errorf("bootstrap entry %q: %w", entry, err))
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			add(ip, port)
			continue
		}
		addrs, err := resolveHost(ctx, server, host)
		if err != nil {
			errs = append(errs, fmt.Errorf("bootstrap entry %q: %w", entry, err))
			continue
		}
		for _, ip := range addrs {
			add(ip, port)
		}
	}
	return out, errors.Join(errs...)
}

// resolveHost asks the dnsd server, then the system resolver.
func resolveHost(ctx context.Context, server, host string) ([]netip.Addr, error) {
	var dnsdErr error
	if server != "" {
		addrs, err := Resolve(ctx, server, host)
		if err == nil {
			return addrs, nil
		}
		dnsdErr = err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		if dnsdErr != nil {
			return nil, fmt.Errorf("%w; system resolver: %w", dnsdErr, err)
		}
		return nil, fmt.Errorf("system resolver: %w", err)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}

// Register posts a record to a dnsd HTTP API (apiURL like
// http://host:8054; a bare host:port works too). ttl is rounded up to whole
// seconds; 0 lets the server pick its default.
func Register(ctx context.Context, apiURL, name, ip string, ttl time.Duration) error {
	if !strings.Contains(apiURL, "://") {
		apiURL = "http://" + apiURL
	}
	url := strings.TrimSuffix(apiURL, "/") + "/records"
	body, err := json.Marshal(registration{Name: name, IP: ip, TTL: int64((ttl + time.Second - 1) / time.Second)})
	if err != nil {
		return fmt.Errorf("register %s: %w", name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("register %s at %s: %w", name, apiURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("register %s at %s: %w", name, apiURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil
	}
	var apiErr struct {
		Error string `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if json.Unmarshal(raw, &apiErr) != nil || apiErr.Error == "" {
		apiErr.Error = strings.TrimSpace(string(raw))
	}
	return fmt.Errorf("register %s at %s: %s: %s", name, apiURL, resp.Status, apiErr.Error)
}
