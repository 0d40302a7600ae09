package tracker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultUDPRetry is how long the client first waits for a UDP tracker's
// reply before it sends the request again. Each further wait doubles, and
// the Timeout bounds them all: 1, 2, 4 s and the rest of 10 s by default.
// BEP 15's 15 s doubling up to an hour suits no user; libtorrent and
// Transmission also give up on a silent tracker within seconds.
const DefaultUDPRetry = time.Second

// udpConnIDLifetime is how long a connection id may be used after it was
// received (BEP 15); udpMaxConnIDs bounds how many trackers' ids are kept.
const (
	udpConnIDLifetime = time.Minute
	udpMaxConnIDs     = 256
)

// errUDPNoReply means an exchange ran out of the attempts it was allowed
// before the context's deadline.
var errUDPNoReply = errors.New("no reply")

// udpState is what a Client remembers between UDP exchanges: each
// tracker's connection id and the key it announces with.
type udpState struct {
	mu      sync.Mutex
	connIDs map[netip.AddrPort]udpConnID
	key     uint32
	keySet  bool
}

type udpConnID struct {
	id      uint64
	expires time.Time
}

// connID returns the live connection id for the tracker at addr.
func (s *udpState) connID(addr netip.AddrPort, now time.Time) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.connIDs[addr]
	if !ok || !now.Before(c.expires) {
		return 0, false
	}
	return c.id, true
}

func (s *udpState) setConnID(addr netip.AddrPort, id uint64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connIDs == nil {
		s.connIDs = make(map[netip.AddrPort]udpConnID)
	}
	if _, known := s.connIDs[addr]; !known && len(s.connIDs) >= udpMaxConnIDs {
		for a, c := range s.connIDs {
			if !now.Before(c.expires) {
				delete(s.connIDs, a)
			}
		}
		for a := range s.connIDs {
			if len(s.connIDs) < udpMaxConnIDs {
				break
			}
			delete(s.connIDs, a)
		}
	}
	s.connIDs[addr] = udpConnID{id: id, expires: now.Add(udpConnIDLifetime)}
}

func (s *udpState) forget(addr netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.connIDs, addr)
}

// announceKey is the client's BEP 15 key: random, and the same for every
// announce of this Client, so a tracker can tell it is still us after an
// address change.
func (s *udpState) announceKey() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.keySet {
		s.key, s.keySet = randomUint32(), true
	}
	return s.key
}

func randomUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return binary.BigEndian.Uint32(b[:])
}

// udpTracker is a parsed udp:// announce URL.
type udpTracker struct {
	host string
	port uint16
	// urlData is the URL's path and query, sent as BEP 41 URLData.
	urlData string
}

func parseUDPURL(s string) (udpTracker, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return udpTracker{}, fmt.Errorf("bad tracker URL: %w", err)
	}
	if u.Scheme != "udp" {
		return udpTracker{}, fmt.Errorf("unsupported tracker URL scheme %q", u.Scheme)
	}
	host, portStr := u.Hostname(), u.Port()
	if host == "" {
		return udpTracker{}, errors.New("tracker URL has no host")
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return udpTracker{}, errors.New("UDP tracker URL needs a port")
	}
	t := udpTracker{host: host, port: uint16(port)}
	if u.Path != "" || u.RawQuery != "" {
		t.urlData = u.EscapedPath()
		if u.RawQuery != "" {
			t.urlData += "?" + u.RawQuery
		}
	}
	return t, nil
}

func isUDPURL(s string) bool {
	return len(s) >= 6 && strings.EqualFold(s[:6], "udp://")
}

// udpSession is one conversation with one address of a UDP tracker.
type udpSession struct {
	c       *Client
	conn    *net.UDPConn
	addr    netip.AddrPort
	urlData string
	buf     []byte
	// maxAttempts, when set, is how many times an exchange may send its
	// request; otherwise the context's deadline alone ends it.
	maxAttempts int
}

// v6 reports whether the tracker is reached over IPv6, which makes its
// announce replies carry 18-byte peers.
func (s *udpSession) v6() bool { return s.addr.Addr().Is6() }

// udpDo resolves the tracker of rawURL and runs op against its addresses in
// turn until one does not refuse the packets, within c's Timeout.
func (c *Client) udpDo(ctx context.Context, rawURL string, op func(context.Context, *udpSession, uint64) error) error {
	t, err := parseUDPURL(rawURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	addrs, err := resolveUDP(ctx, t.host)
	if err != nil {
		return err
	}
	for i, ip := range addrs {
		err = c.udpSession(ctx, netip.AddrPortFrom(ip, t.port), t.urlData, op)
		if err == nil || i == len(addrs)-1 || !errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
	}
	return err
}

func resolveUDP(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", host)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}

// udpSession runs op with a connection id for the tracker at addr: a cached
// one if it is still fresh, else one from a connect exchange. A tracker
// that ignores or refuses a cached id (it may have restarted, or tie ids to
// our port) is asked for a new one once.
func (c *Client) udpSession(ctx context.Context, addr netip.AddrPort, urlData string,
	op func(context.Context, *udpSession, uint64) error) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "udp", addr.String())
	if err != nil {
		return err
	}
	conn := nc.(*net.UDPConn)
	defer conn.Close()
	// A cancelled ctx cuts a pending read short.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	s := &udpSession{c: c, conn: conn, addr: addr, urlData: urlData, buf: make([]byte, udpMaxReply+1)}

	if id, ok := c.udp.connID(addr, c.clock()); ok {
		s.maxAttempts = 1
		err := op(ctx, s, id)
		var fe *FailureError
		if ctx.Err() != nil || !errors.Is(err, errUDPNoReply) && !errors.As(err, &fe) {
			return err
		}
		c.udp.forget(addr)
		s.maxAttempts = 0
	}
	id, err := s.connect(ctx)
	if err != nil {
		return err
	}
	return op(ctx, s, id)
}

// connect asks the tracker for a connection id and remembers it.
func (s *udpSession) connect(ctx context.Context) (uint64, error) {
	tid := randomUint32()
	p, err := s.exchange(ctx, connectRequest(tid), tid, udpConnect)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	id, err := parseConnectReply(p)
	if err != nil {
		return 0, err
	}
	s.c.udp.setConnID(s.addr, id, s.c.clock())
	return id, nil
}

// exchange sends req and returns the reply that carries transaction id tid
// and action want, or the tracker's error reply as a *FailureError. Every
// other datagram is dropped unread. The request is sent again after
// c.UDPRetry, then after waits that double, until the context ends or
// s.maxAttempts sends went unanswered.
func (s *udpSession) exchange(ctx context.Context, req []byte, tid, want uint32) ([]byte, error) {
	deadline, hasDeadline := ctx.Deadline()
	wait := s.c.udpRetry()
	for attempt := 0; s.maxAttempts == 0 || attempt < s.maxAttempts; attempt++ {
		if _, err := s.conn.Write(req); err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
		until := time.Now().Add(wait)
		if hasDeadline && deadline.Before(until) {
			until = deadline
		}
		if err := s.conn.SetReadDeadline(until); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", errUDPNoReply, err)
		}
		for {
			n, err := s.conn.Read(s.buf)
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					return nil, fmt.Errorf("%w: %w", errUDPNoReply, ctxErr)
				}
				if hasDeadline && !time.Now().Before(deadline) {
					return nil, fmt.Errorf("%w: %w", errUDPNoReply, context.DeadlineExceeded)
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // send again
				}
				return nil, fmt.Errorf("receive: %w", err)
			}
			p := s.buf[:n]
			switch classifyReply(p, tid, want) {
			case replyAnswer:
				return p, nil
			case replyFailure:
				return nil, parseUDPError(p)
			}
		}
		wait = min(2*wait, time.Minute)
	}
	return nil, errUDPNoReply
}

// announceUDP announces to a udp:// tracker.
func (c *Client) announceUDP(ctx context.Context, rawURL string, req AnnounceRequest) (*AnnounceResponse, error) {
	if _, err := udpEvent(req.Event); err != nil {
		return nil, err
	}
	key := c.udp.announceKey()
	var resp *AnnounceResponse
	err := c.udpDo(ctx, rawURL, func(ctx context.Context, s *udpSession, connID uint64) error {
		tid := randomUint32()
		pkt, err := announceRequest(connID, tid, req, key, s.urlData)
		if err != nil {
			return err
		}
		p, err := s.exchange(ctx, pkt, tid, udpAnnounce)
		if err != nil {
			return err
		}
		resp, err = parseAnnounceReply(p, s.v6())
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// scrapeUDP scrapes a udp:// tracker, udpMaxScrapeHashes torrents a request.
func (c *Client) scrapeUDP(ctx context.Context, rawURL string, hashes [][20]byte) (map[[20]byte]ScrapeStats, error) {
	if len(hashes) == 0 {
		return nil, errors.New("a UDP scrape needs at least one info hash")
	}
	out := make(map[[20]byte]ScrapeStats, len(hashes))
	err := c.udpDo(ctx, rawURL, func(ctx context.Context, s *udpSession, connID uint64) error {
		for start := 0; start < len(hashes); start += udpMaxScrapeHashes {
			batch := hashes[start:min(start+udpMaxScrapeHashes, len(hashes))]
			tid := randomUint32()
			p, err := s.exchange(ctx, scrapeRequest(connID, tid, batch), tid, udpScrape)
			if err != nil {
				return err
			}
			if err := parseScrapeReply(p, batch, out); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
