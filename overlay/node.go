package overlay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Node is one member of the overlay: it serves requests, holds the records
// it owns, keeps the records it publishes on their owners, checks the health
// of the nodes it knows and answers Query, Lookup and Discover for the local
// program.
type Node struct {
	cfg     Config
	log     *slog.Logger
	tr      Transport
	addr    string
	codec   codec
	store   *Store
	origin  *originTable
	members *members

	ringMu    sync.Mutex
	ringCache *ring
	ringVer   uint64
	// syncSkips counts, per node, syncs put off because its view differed.
	syncSkips map[string]int
	// fixedRing, when set, replaces the ring of live nodes (simulations
	// give every node the same membership without running health checks).
	fixedRing func() *ring

	lookups  *limiter // per source IP, lookup requests
	requests *limiter // per source IP, every request

	buffered atomic.Int64  // bytes of partly read long lines, all connections
	slots    chan struct{} // one per inbound connection being served
	outbound chan struct{} // one per outbound exchange of the background loops

	running atomic.Bool

	connMu sync.Mutex
	conns  map[net.Conn]struct{}

	stats   nodeStats
	traffic traffic
	health  localHealth
}

// traffic counts the lines this node sent as requests and read as answers,
// by request type (the simulation and the scale script read it).
type traffic struct {
	mu sync.Mutex
	by map[string]*TrafficCount
}

// TrafficCount is the requests of one type a node made and the bytes they
// and their answers took on the wire.
type TrafficCount struct {
	Requests int64
	Bytes    int64
}

func (t *traffic) add(typ string, bytes int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.by == nil {
		t.by = make(map[string]*TrafficCount)
	}
	c := t.by[typ]
	if c == nil {
		c = &TrafficCount{}
		t.by[typ] = c
	}
	c.Requests++
	c.Bytes += int64(bytes)
}

// Traffic returns what this node's own requests cost so far, by type.
func (n *Node) Traffic() map[string]TrafficCount {
	n.traffic.mu.Lock()
	defer n.traffic.mu.Unlock()
	out := make(map[string]TrafficCount, len(n.traffic.by))
	for k, v := range n.traffic.by {
		out[k] = *v
	}
	return out
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
	if cfg.MaxOriginBytes == 0 {
		cfg.MaxOriginBytes = cfg.MaxStoreBytes / 8
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
		origin:   newOriginTable(cfg),
		members:  newMembers(addr, cfg),
		lookups:  newLimiter(cfg.LookupRate, cfg.LookupBurst),
		requests: newLimiter(cfg.RequestRate, cfg.RequestBurst),
		slots:    make(chan struct{}, cfg.MaxConns),
		outbound: make(chan struct{}, cfg.OutboundConcurrency),
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

// Store returns the records this node holds as an owner (read it; the node
// writes it).
func (n *Node) Store() *Store { return n.store }

// Run serves connections and runs the health loop until ctx is
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
	wg.Go(func() { n.healthLoop(ctx) })
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
			// Say so rather than just close: a node that gets an answer
			// knows this one is alive, only busy, and does not declare
			// it dead (the write lands in the socket's buffer).
			n.stats.refusedConns.Add(1)
			if c.SetWriteDeadline(time.Now().Add(100*time.Millisecond)) == nil {
				c.Write(n.errorReply("busy: too many connections"))
			}
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
	if m.V > ProtocolVersion {
		n.stats.badMessages.Add(1)
		return n.errorMsg(fmt.Sprintf("protocol version %d is newer than this node's (%d): upgrade it", m.V, ProtocolVersion)), false
	}
	switch m.Type {
	case typePing:
		n.members.learn(m.From)
		view := n.ring().view
		pong := &message{Type: typePong, From: n.addr, View: view}
		if m.View == "" || m.View != view {
			pong.Nodes = capped(n.members.live(), n.cfg.MaxNodesPerMessage)
		}
		if n.isOrigin(m.From, remoteIP) {
			d := n.store.Digest(m.From)
			// An origin beyond its caps here cannot match; it is renewed
			// as it is rather than synced again and again.
			if d.hex() == m.Sum && d.count == m.Count || n.store.OriginFull(m.From) {
				if m.Exp > 0 {
					n.store.Renew(m.From, time.UnixMilli(m.Exp), capped(m.Records, n.cfg.MaxRecordsPerMessage))
				}
			} else {
				pong.Sync = true
			}
		}
		return pong, true
	case typeLookup:
		ih, err := ParseInfoHash(m.InfoHash)
		if err != nil {
			n.stats.badMessages.Add(1)
			return n.errorMsg(err.Error()), true
		}
		rs, ok := n.read(ctx, remoteIP, m.From, KindProvider, ih, m.Limit, n.cfg.MaxProvidersPerReply)
		if !ok {
			return n.errorMsg("rate limited"), false
		}
		return &message{Type: typeLookupReply, InfoHash: m.InfoHash, From: n.addr, Providers: providersOf(rs),
			Nodes: n.nodesFor(ih, m.From)}, true
	case typeQuery:
		key, err := ParseInfoHash(m.Key)
		if err == nil {
			err = validKind(m.Kind)
		}
		if err != nil {
			n.stats.badMessages.Add(1)
			return n.errorMsg(err.Error()), true
		}
		rs, ok := n.read(ctx, remoteIP, m.From, m.Kind, key, m.Limit, n.cfg.MaxRecordsPerMessage)
		if !ok {
			return n.errorMsg("rate limited"), false
		}
		return &message{Type: typeQueryReply, Kind: m.Kind, Key: m.Key, From: n.addr,
			Records: rs, Nodes: n.nodesFor(key, m.From)}, true
	case typePut, typeSync:
		if !n.isOrigin(m.From, remoteIP) {
			n.stats.badMessages.Add(1)
			return n.errorMsg("records must come from their origin node"), true
		}
		n.members.learn(m.From)
		rs := capped(m.Records, n.cfg.MaxRecordsPerMessage)
		if m.Type == typePut {
			n.store.Put(m.From, rs)
			return &message{Type: typePutReply, From: n.addr}, true
		}
		if m.Reset {
			n.store.BeginSync(m.From)
		}
		n.store.Put(m.From, rs)
		if m.Done {
			n.store.EndSync(m.From)
		}
		return &message{Type: typeSyncReply, From: n.addr}, true
	case typeAnnounce:
		ih, err := ParseInfoHash(m.InfoHash)
		if err != nil {
			n.stats.badMessages.Add(1)
			return n.errorMsg(err.Error()), true
		}
		// The node publishes what it is told, its pushes to the owners all
		// bounded by one GossipTimeout.
		pctx, cancel := context.WithTimeout(ctx, n.cfg.GossipTimeout)
		defer cancel()
		for _, p := range n.ownAddresses(capped(m.Providers, n.cfg.MaxProvidersPerReply), remoteIP) {
			if p.validate() != nil {
				continue
			}
			if err := n.publish(pctx, providerRecord(ih, p), remoteIP); err != nil {
				n.log.Debug("overlay direct announce refused", "remote", remoteIP, "err", err)
			}
		}
		return nil, true
	default:
		n.stats.badMessages.Add(1)
		return n.errorMsg(fmt.Sprintf("unknown message type %q", truncate(m.Type, 32))), true
	}
}

// read answers a lookup or query of (kind, key) from remoteIP, at most
// limit records (0 or more than max: max): a client (no from) gets the
// owners' records, asked on its behalf, a node this node's own. ok is false
// when the reader is over its rate.
func (n *Node) read(ctx context.Context, remoteIP, from, kind string, key [20]byte, limit, max int) (rs []Record, ok bool) {
	if !n.lookups.allow(n.readerKey(remoteIP, from)) {
		n.stats.rateLimited.Add(1)
		return nil, false
	}
	n.members.learn(from)
	if limit <= 0 || limit > max {
		limit = max
	}
	if from != "" {
		return n.store.Query(kind, key, limit), true
	}
	qctx, cancel := context.WithTimeout(ctx, 2*n.cfg.LookupTimeout)
	defer cancel()
	rs, _ = n.Query(qctx, kind, key, limit)
	return rs, true
}

func (n *Node) errorMsg(text string) *message {
	return &message{Type: typeError, Error: text, From: n.addr}
}

// readerKey is what the lookup rate limit counts a read against: the
// source IP, and within it the asking node when that is a live member of
// ours (several nodes may share an IP, as on one host's loopback; the
// per-IP limit on all requests still bounds them together).
func (n *Node) readerKey(remoteIP, from string) string {
	if from != "" && n.isOrigin(from, remoteIP) && n.members.isLive(from) {
		return remoteIP + " " + from
	}
	return remoteIP
}

// isOrigin reports whether a message from remoteIP may speak for the
// records of the node at from: it must be a node address other than ours,
// on the connection's IP (any loopback IP for a loopback connection: local
// nodes dial from 127.0.0.1 whatever address they listen on), unless from
// names a host rather than an IP.
func (n *Node) isOrigin(from, remoteIP string) bool {
	if from == "" || from == n.addr || !validNodeAddr(from) {
		return false
	}
	host := hostOf(from)
	hip := net.ParseIP(host)
	if hip == nil {
		return true
	}
	ip := net.ParseIP(remoteIP)
	return ip == nil || host == remoteIP || ip.IsLoopback() && hip.IsLoopback()
}

// nodesFor lists the nodes an answer about key names: the key's owners as
// this node sees them, then a random sample, never asker or this node.
func (n *Node) nodesFor(key [20]byte, asker string) []string {
	out := slices.DeleteFunc(n.ring().owners(key, n.cfg.Replicas), func(a string) bool { return a == asker || a == n.addr })
	for _, a := range n.members.sample(n.cfg.NodesSample, asker) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return capped(out, n.cfg.MaxNodesPerMessage)
}

// ring returns the ring of this node and the live nodes, rebuilt when the
// live view changed.
func (n *Node) ring() *ring {
	if n.fixedRing != nil {
		return n.fixedRing()
	}
	v := n.members.version()
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	if n.ringCache == nil || n.ringVer != v {
		n.ringCache = newRing(append(n.members.live(), n.addr))
		n.ringVer = v
	}
	return n.ringCache
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
	cd := n.codec
	cd.traffic = &n.traffic
	return exchange(ctx, n.tr.DialContext, cd, n.cfg.MaxLineBytes, addr, timeout, reqs...)
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
		if err := ctx.Err(); err != nil {
			return replies, err // a long sync stops with its node
		}
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

// remoteError is an error answer: the node is alive but refused.
type remoteError struct{ addr, text string }

func (e *remoteError) Error() string { return fmt.Sprintf("overlay node %s: %s", e.addr, e.text) }

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
		if s.cd.traffic != nil {
			s.cd.traffic.add(req.Type, len(line))
		}
		return nil, nil
	}
	raw, err := s.lr.readLine()
	if s.cd.traffic != nil {
		s.cd.traffic.add(req.Type, len(line)+len(raw)+1)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", want, s.addr, err)
	}
	m, err := s.cd.decode(raw)
	if err != nil {
		return nil, fmt.Errorf("answer from %s: %w", s.addr, err)
	}
	if m.Type == typeError {
		return nil, &remoteError{addr: s.addr, text: truncate(m.Error, 200)}
	}
	if m.Type != want {
		return nil, fmt.Errorf("overlay node %s answered %s with %q", s.addr, req.Type, truncate(m.Type, 32))
	}
	if m.V > ProtocolVersion {
		return nil, fmt.Errorf("overlay node %s answered in protocol version %d, newer than %d", s.addr, m.V, ProtocolVersion)
	}
	if want == typeLookupReply && m.InfoHash != req.InfoHash || want == typeQueryReply && (m.Key != req.Key || m.Kind != req.Kind) {
		return nil, fmt.Errorf("overlay node %s answered for another info hash", s.addr)
	}
	return &m, nil
}
