package overlay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxPullHashes caps the info hashes one pull answer names.
const maxPullHashes = 64

// Node is one member of the overlay: it serves requests, spreads provider
// entries by gossip, checks the health of the nodes it knows and answers
// Lookup and Discover for the local program.
type Node struct {
	cfg     Config
	log     *slog.Logger
	tr      Transport
	addr    string
	codec   codec
	store   *Store
	members *members

	lookups  *limiter // per source IP, lookup requests
	requests *limiter // per source IP, every request

	buffered atomic.Int64  // bytes of partly read long lines, all connections
	slots    chan struct{} // one per inbound connection being served
	outbound chan struct{} // one per outbound exchange of the background loops
	rumors   chan rumor

	// manualRumors leaves the rumor queue to the caller (simulations drain it
	// hop by hop instead of a goroutine draining it at once).
	manualRumors bool

	running atomic.Bool

	connMu sync.Mutex
	conns  map[net.Conn]struct{}

	stats nodeStats
}

// nodeStats counts what the defences dropped; tests read them.
type nodeStats struct {
	unauthenticated atomic.Int64
	unsolicited     atomic.Int64
	rateLimited     atomic.Int64
	refusedConns    atomic.Int64
	badMessages     atomic.Int64
	panics          atomic.Int64
}

// NewNode checks cfg and binds the listener, so Addr is known at once. Call
// Run to serve.
func NewNode(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		t, err := NewTCPTransport(cfg.ListenAddr)
		if err != nil {
			return nil, err
		}
		tr = t
	}
	addr, err := advertiseAddr(cfg.Advertise, tr.Addr())
	if err != nil {
		tr.Close()
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg:      cfg,
		log:      log.With("overlay", addr),
		tr:       tr,
		addr:     addr,
		codec:    codec{key: cfg.SwarmKey, maxAge: cfg.MaxMessageAge.Milliseconds(), now: func() int64 { return time.Now().UnixMilli() }},
		store:    NewStore(limitsFrom(cfg)),
		members:  newMembers(addr, cfg),
		lookups:  newLimiter(cfg.LookupRate, cfg.LookupBurst),
		requests: newLimiter(cfg.RequestRate, cfg.RequestBurst),
		slots:    make(chan struct{}, cfg.MaxConns),
		outbound: make(chan struct{}, cfg.OutboundConcurrency),
		rumors:   make(chan rumor, cfg.RumorQueue),
		conns:    make(map[net.Conn]struct{}),
	}
	return n, nil
}

// advertiseAddr works out the overlay address others should dial.
func advertiseAddr(adv string, bound net.Addr) (string, error) {
	bhost, bport, err := net.SplitHostPort(bound.String())
	if err != nil {
		return "", fmt.Errorf("overlay listener address %s: %w", bound, err)
	}
	if adv != "" {
		if host, port, err := net.SplitHostPort(adv); err == nil {
			if host == "" {
				host = detectHost()
			}
			return net.JoinHostPort(host, port), nil
		}
		return net.JoinHostPort(strings.Trim(adv, "[]"), bport), nil
	}
	if ip := net.ParseIP(bhost); bhost == "" || (ip != nil && ip.IsUnspecified()) {
		bhost = detectHost()
	}
	return net.JoinHostPort(bhost, bport), nil
}

// detectHost returns the first global unicast IPv4 address of this host, or
// 127.0.0.1 when there is none.
func detectHost() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// Addr returns the overlay address others dial to reach this node.
func (n *Node) Addr() string { return n.addr }

// LiveNodes returns the overlay nodes this node currently believes alive.
func (n *Node) LiveNodes() []string { return n.members.live() }

// Store returns the node's provider store (read it; the node writes it).
func (n *Node) Store() *Store { return n.store }

// Run serves connections and runs the gossip and health loops until ctx is
// done; then it closes the listener and every connection, waits for all its
// goroutines and returns nil. Call it once.
func (n *Node) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return fmt.Errorf("overlay %s: Run called twice", n.addr)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	acceptErr := make(chan error, 1)
	wg.Go(func() { acceptErr <- n.acceptLoop(ctx, &wg) })
	wg.Go(func() { n.gossipLoop(ctx) })
	wg.Go(func() { n.healthLoop(ctx) })
	if !n.manualRumors {
		wg.Go(func() { n.rumorLoop(ctx) })
	}
	n.log.Info("overlay node running", "bootstrap", n.cfg.Bootstrap, "swarm_key", n.cfg.SwarmKey != nil)

	var err error
	select {
	case <-ctx.Done():
	case err = <-acceptErr:
		cancel()
	}
	n.tr.Close()
	n.connMu.Lock()
	for c := range n.conns {
		c.Close()
	}
	n.connMu.Unlock()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("overlay %s: %w", n.addr, err)
	}
	return nil
}

// acceptLoop accepts until the listener closes; connections beyond MaxConns
// are closed at once.
func (n *Node) acceptLoop(ctx context.Context, wg *sync.WaitGroup) error {
	for {
		c, err := n.tr.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		select {
		case n.slots <- struct{}{}:
		default:
			n.stats.refusedConns.Add(1)
			c.Close()
			continue
		}
		n.connMu.Lock()
		if ctx.Err() != nil {
			n.connMu.Unlock()
			c.Close()
			<-n.slots
			return nil
		}
		n.conns[c] = struct{}{}
		n.connMu.Unlock()
		wg.Go(func() {
			defer func() {
				n.connMu.Lock()
				delete(n.conns, c)
				n.connMu.Unlock()
				<-n.slots
			}()
			n.serveConn(ctx, c)
		})
	}
}

// serveConn reads requests line by line and writes their answers.
func (n *Node) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	defer func() {
		if r := recover(); r != nil {
			n.stats.panics.Add(1)
			n.log.Error("overlay connection handler panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	remoteIP := hostOf(c.RemoteAddr().String())
	lr := newLineReader(c, n.cfg.MaxLineBytes, &n.buffered, n.cfg.MaxBufferedBytes)
	for range n.cfg.MaxMessagesPerConn {
		if err := c.SetReadDeadline(time.Now().Add(n.cfg.ConnIdleTimeout)); err != nil {
			return
		}
		line, err := lr.readLine()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				n.log.Debug("overlay connection closed", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		reply, keep := n.handleLine(ctx, remoteIP, line)
		if reply != nil {
			if err := c.SetWriteDeadline(time.Now().Add(n.cfg.ConnIdleTimeout)); err != nil {
				return
			}
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
		if !keep {
			return
		}
	}
}

// handleLine handles one request line from remoteIP and returns the line to
// answer with (nil for none) and whether the connection may carry more.
func (n *Node) handleLine(ctx context.Context, remoteIP string, line []byte) (reply []byte, keep bool) {
	defer func() {
		if r := recover(); r != nil {
			n.stats.panics.Add(1)
			n.log.Error("overlay message handler panicked", "panic", r, "stack", string(debug.Stack()))
			reply, keep = nil, false
		}
	}()
	if !n.requests.allow(remoteIP) {
		n.stats.rateLimited.Add(1)
		return nil, false
	}
	m, err := n.codec.decode(line)
	if err != nil {
		if n.codec.key != nil {
			// Strangers learn nothing, not even why.
			n.stats.unauthenticated.Add(1)
			return nil, false
		}
		n.stats.badMessages.Add(1)
		return n.errorReply("invalid message: not a JSON object"), true
	}
	resp, keep := n.handle(ctx, remoteIP, m)
	if resp == nil {
		return nil, keep
	}
	out, err := n.codec.encode(*resp)
	if err != nil {
		n.log.Error("overlay encode reply", "err", err)
		return nil, false
	}
	return out, keep
}

func (n *Node) errorReply(text string) []byte {
	out, err := n.codec.encode(message{Type: typeError, Error: text, From: n.addr})
	if err != nil {
		return nil
	}
	return out
}

// handle dispatches one decoded request.
func (n *Node) handle(ctx context.Context, remoteIP string, m message) (*message, bool) {
	if isReply(m.Type) {
		// Answers are read only on connections we opened, right after our
		// request; arriving as a request they are unsolicited.
		n.stats.unsolicited.Add(1)
		return nil, false
	}
	switch m.Type {
	case typePing:
		n.members.learn(m.From)
		return &message{Type: typePong, From: n.addr, Nodes: capped(n.members.live(), n.cfg.MaxNodesPerMessage)}, true
	case typeLookup:
		ih, err := ParseInfoHash(m.InfoHash)
		if err != nil {
			n.stats.badMessages.Add(1)
			return &message{Type: typeError, Error: err.Error(), From: n.addr}, true
		}
		if !n.lookups.allow(remoteIP) {
			n.stats.rateLimited.Add(1)
			return &message{Type: typeError, Error: "rate limited", From: n.addr}, false
		}
		n.members.learn(m.From)
		limit := m.Limit
		if limit <= 0 || limit > n.cfg.MaxProvidersPerReply {
			limit = n.cfg.MaxProvidersPerReply
		}
		return &message{
			Type: typeLookupReply, InfoHash: m.InfoHash, From: n.addr,
			Providers: n.store.Lookup(ih, limit),
			Nodes:     n.members.sample(n.cfg.NodesSample, m.From),
		}, true
	case typePull:
		theirs := make(map[string]bool, len(m.Hashes))
		for _, h := range capped(m.Hashes, n.cfg.MaxInfoHashes) {
			theirs[h] = true
		}
		var missing []string
		for _, ih := range n.store.InfoHashes() {
			if h := hexHash(ih); !theirs[h] && len(n.store.Entries(ih)) > 0 {
				missing = append(missing, h)
				if len(missing) == maxPullHashes {
					break
				}
			}
		}
		n.members.learn(m.From)
		return &message{Type: typePullReply, Hashes: missing, From: n.addr}, true
	case typeAnnounce, typeGossip:
		ih, err := ParseInfoHash(m.InfoHash)
		if err != nil {
			n.stats.badMessages.Add(1)
			return &message{Type: typeError, Error: err.Error(), From: n.addr}, true
		}
		if m.Type == typeGossip && len(m.Providers) == 0 && !n.lookups.allow(remoteIP) {
			// A gossip that brings nothing is a read, limited like lookup.
			n.stats.rateLimited.Add(1)
			return &message{Type: typeError, Error: "rate limited", From: n.addr}, false
		}
		ps := capped(m.Providers, n.cfg.MaxProvidersPerReply)
		if m.Type == typeAnnounce {
			ps = n.ownAddresses(ps, remoteIP)
		}
		changed := n.store.Merge(ih, ps, remoteIP)
		n.members.learn(m.From)
		n.members.learn(capped(m.Nodes, n.cfg.MaxNodesPerMessage)...)
		if len(changed) > 0 {
			n.queueRumor(rumor{ih: ih, ps: changed, exclude: m.From})
		}
		if m.Type == typeAnnounce {
			return nil, true
		}
		return &message{
			Type: typeGossipReply, InfoHash: m.InfoHash, From: n.addr,
			Providers: n.store.Newer(ih, ps, n.cfg.MaxProvidersPerReply),
			Nodes:     n.members.sample(n.cfg.NodesSample, m.From),
		}, true
	default:
		n.stats.badMessages.Add(1)
		return &message{Type: typeError, Error: fmt.Sprintf("unknown message type %q", truncate(m.Type, 32)), From: n.addr}, true
	}
}

// ownAddresses rewrites the host of directly announced providers to the IP the
// announce came from, keeping the claimed port: a provider can only announce
// itself. Announces from this host (loopback or our own IP) keep the claimed
// host, which may name an interface the connection did not use.
func (n *Node) ownAddresses(ps []Provider, remoteIP string) []Provider {
	ip := net.ParseIP(remoteIP)
	if ip == nil || ip.IsLoopback() || remoteIP == hostOf(n.addr) {
		return ps
	}
	out := make([]Provider, 0, len(ps))
	for _, p := range ps {
		_, port, err := net.SplitHostPort(p.Addr)
		if err != nil {
			continue
		}
		p.Addr = net.JoinHostPort(remoteIP, port)
		out = append(out, p)
	}
	return out
}

// hostOf returns the host part of a host:port, or s itself.
func hostOf(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

func capped[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// exchange dials addr, sends reqs one by one and reads the expected answer to
// each; it returns the answers read so far, which may be fewer than reqs when
// err is set. The whole exchange is bounded by timeout.
func (n *Node) exchange(ctx context.Context, addr string, timeout time.Duration, reqs ...message) ([]message, error) {
	return exchange(ctx, n.tr.DialContext, n.codec, n.cfg.MaxLineBytes, addr, timeout, reqs...)
}

type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

func exchange(ctx context.Context, dial dialFunc, cd codec, maxLine int, addr string, timeout time.Duration, reqs ...message) ([]message, error) {
	s, err := openSession(ctx, dial, cd, maxLine, addr, timeout)
	if err != nil {
		return nil, err
	}
	defer s.close()
	var replies []message
	for _, req := range reqs {
		m, err := s.roundTrip(req)
		if err != nil {
			return replies, err
		}
		if m != nil {
			replies = append(replies, *m)
		}
	}
	return replies, nil
}

// session is one outbound connection on which we send requests and read
// their answers, all before one deadline. Answers are only ever read here,
// right after the request they answer.
type session struct {
	addr   string
	c      net.Conn
	lr     *lineReader
	cd     codec
	cancel context.CancelFunc
	stop   func() bool
}

func openSession(ctx context.Context, dial dialFunc, cd codec, maxLine int, addr string, timeout time.Duration) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	c, err := dial(ctx, addr)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("dial overlay node %s: %w", addr, err)
	}
	deadline, _ := ctx.Deadline()
	if err := c.SetDeadline(deadline); err != nil {
		c.Close()
		cancel()
		return nil, fmt.Errorf("overlay node %s: %w", addr, err)
	}
	return &session{
		addr: addr, c: c, cd: cd, cancel: cancel,
		lr:   newLineReader(c, maxLine, nil, 0),
		stop: context.AfterFunc(ctx, func() { c.Close() }),
	}, nil
}

func (s *session) close() {
	s.stop()
	s.c.Close()
	s.cancel()
}

// roundTrip sends req and, if its type has an answer, reads and checks it.
func (s *session) roundTrip(req message) (*message, error) {
	line, err := s.cd.encode(req)
	if err != nil {
		return nil, err
	}
	if _, err := s.c.Write(line); err != nil {
		return nil, fmt.Errorf("send %s to %s: %w", req.Type, s.addr, err)
	}
	want := wantReply(req.Type)
	if want == "" {
		return nil, nil
	}
	raw, err := s.lr.readLine()
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", want, s.addr, err)
	}
	m, err := s.cd.decode(raw)
	if err != nil {
		return nil, fmt.Errorf("answer from %s: %w", s.addr, err)
	}
	if m.Type == typeError {
		return nil, fmt.Errorf("overlay node %s: %s", s.addr, truncate(m.Error, 200))
	}
	if m.Type != want {
		return nil, fmt.Errorf("overlay node %s answered %s with %q", s.addr, req.Type, truncate(m.Type, 32))
	}
	if (want == typeGossipReply || want == typeLookupReply) && m.InfoHash != req.InfoHash {
		return nil, fmt.Errorf("overlay node %s answered for another info hash", s.addr)
	}
	return &m, nil
}
