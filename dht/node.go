package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Node is one mainline DHT node: it answers KRPC queries, keeps a routing
// table and a peer store, and runs lookups and announces for the program.
type Node struct {
	cfg  Config
	log  *slog.Logger
	tr   Transport
	addr netip.AddrPort
	id   ID
	now  func() time.Time

	mu     sync.Mutex // guards table, store and tok; never held across I/O
	table  *table
	store  *peerStore
	tok    *tokens
	saved  time.Time
	guard  *guard
	boot   []string
	verify chan struct{} // one per verifying ping in flight

	txMu    sync.Mutex
	pending map[string]*transaction

	running  atomic.Bool
	lifeMu   sync.Mutex    // orders spawn against closing stopped
	stopped  chan struct{} // closed when Run stops serving
	bg       context.Context
	cancelBG context.CancelFunc
	wg       sync.WaitGroup // goroutines Run owns besides the read loop
	joined   chan struct{}  // closed after the first join attempt

	stats counters
}

// transaction is a query of ours awaiting its answer from addr.
type transaction struct {
	addr netip.AddrPort
	done chan result
}

// result is an answer: a reply, or the error that stands for it.
type result struct {
	id  ID
	r   *replyArgs
	err error
}

// RemoteError is a KRPC error answer.
type RemoteError struct {
	Code    int64
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("dht: remote error %d: %s", e.Code, e.Message)
}

var (
	errTimeout = errors.New("dht: query timed out")
	errStopped = errors.New("dht: node has stopped")
	errBusy    = errors.New("dht: too many queries in flight")
	errBudget  = errors.New("dht: amplification budget spent")
)

// New checks cfg, binds the transport and loads the saved table, so Addr
// and the id are known at once. Call Run to serve.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := cfg.Transport
	if tr == nil {
		u, err := ListenUDP(cfg.ListenAddr)
		if err != nil {
			return nil, err
		}
		tr = u
	}
	n := &Node{
		cfg:     cfg,
		tr:      tr,
		addr:    tr.LocalAddr(),
		now:     time.Now,
		guard:   newGuard(&cfg),
		boot:    cfg.Bootstrap,
		verify:  make(chan struct{}, cfg.MaxVerifying),
		pending: make(map[string]*transaction),
		stopped: make(chan struct{}),
		joined:  make(chan struct{}),
	}
	now := n.now()
	n.id = randomID()
	var restored []nodeInfo
	if cfg.StateFile != "" {
		id, nodes, err := loadState(cfg.StateFile)
		switch {
		case err == nil:
			n.id, restored = id, nodes
		case errors.Is(err, errNoState):
		default:
			log.Warn("dht: saved table unreadable, starting afresh", "file", cfg.StateFile, "err", err)
		}
	}
	n.bg, n.cancelBG = context.WithCancel(context.Background())
	n.log = log.With("dht", n.addr.String())
	n.table = newTable(n.id, &cfg)
	n.store = newPeerStore(&cfg)
	n.tok = newTokens(cfg.TokenInterval, now)
	for _, ni := range restored {
		if usable(ni.Addr) && ni.Addr != n.addr {
			n.table.restore(ni, now)
		}
	}
	return n, nil
}

// ID returns the node id.
func (n *Node) ID() ID { return n.id }

// Addr returns the address the node's transport is bound to.
func (n *Node) Addr() netip.AddrPort { return n.addr }

// Run serves until ctx is done, joins the DHT (through the saved table and
// the bootstrap nodes), refreshes the table, and on a clean exit saves the
// table to Config.StateFile. It closes the transport before it returns.
func (n *Node) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("dht: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() { readErr <- n.readLoop() }()
	n.spawn(func() { n.maintain(ctx) })

	var err error
	select {
	case <-ctx.Done():
	case err = <-readErr:
		n.log.Error("dht: transport failed", "err", err)
	}
	cancel()
	n.cancelBG()
	n.lifeMu.Lock()
	close(n.stopped)
	n.lifeMu.Unlock()
	n.tr.Close()
	if err == nil {
		<-readErr
	}
	n.wg.Wait()
	if serr := n.save(); serr != nil {
		n.log.Warn("dht: saving the table", "err", serr)
		if err == nil {
			err = serr
		}
	}
	return err
}

// locked runs f holding n.mu, which a panic in f releases too.
func locked[T any](n *Node, f func() T) T {
	n.mu.Lock()
	defer n.mu.Unlock()
	return f()
}

func (n *Node) stopping() bool {
	select {
	case <-n.stopped:
		return true
	default:
		return false
	}
}

// readLoop reads datagrams one by one, with one byte of slack to see those
// over MaxPacketSize, until the transport closes.
func (n *Node) readLoop() error {
	buf := make([]byte, n.cfg.MaxPacketSize+1)
	for {
		k, from, err := n.tr.ReadFrom(buf)
		if err != nil {
			if n.stopping() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) || errors.Is(err, errClosed) {
				return err
			}
			n.stats.readErrors.Add(1)
			time.Sleep(10 * time.Millisecond) // a persistent error must not spin
			continue
		}
		n.handlePacket(buf[:k], from)
	}
}

// handlePacket handles one datagram; nothing a packet holds can crash the
// node.
func (n *Node) handlePacket(b []byte, from netip.AddrPort) {
	defer func() {
		if r := recover(); r != nil {
			n.stats.panics.Add(1)
			n.log.Error("dht: packet handler panicked", "from", from, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	n.stats.packetsIn.Add(1)
	n.stats.bytesIn.Add(int64(len(b)))
	if !usable(from) {
		n.stats.malformed.Add(1)
		return
	}
	now := n.now()
	if n.guard.received(from, len(b), now) {
		n.stats.blocked.Add(1)
		return
	}
	if len(b) > n.cfg.MaxPacketSize {
		n.stats.oversized.Add(1)
		n.junk(from, now)
		return
	}
	m, err := decodeMessage(b)
	if err != nil {
		n.stats.malformed.Add(1)
		n.junk(from, now)
		return
	}
	if m.Y == kindQuery {
		n.handleQuery(m, from, now)
	} else {
		n.handleResponse(m, from, now)
	}
}

func (n *Node) junk(from netip.AddrPort, now time.Time) {
	if n.guard.junk(from, now) {
		n.log.Debug("dht: blocking a source of junk", "from", from, "for", n.cfg.BlockDuration)
	}
}

// handleQuery answers a query within the source's rate limit and
// amplification budget, and considers the querier for the table.
func (n *Node) handleQuery(m *message, from netip.AddrPort, now time.Time) {
	if !n.guard.allowQuery(from, now) {
		n.stats.rateLimited.Add(1)
		return
	}
	n.stats.queriesIn.Add(1)
	id, ok := idFrom(m.A.ID)
	if !ok {
		n.sendError(from, m.T, errProtocol, "bad or missing id", now)
		return
	}
	r := map[string]any{"id": string(n.id[:])}
	switch m.Q {
	case methodPing:
	case methodFindNode:
		target, ok := idFrom(m.A.Target)
		if !ok {
			n.sendError(from, m.T, errProtocol, "bad or missing target", now)
			return
		}
		r["nodes"] = n.compactClosest(target)
	case methodGetPeers:
		ih, ok := idFrom(m.A.InfoHash)
		if !ok {
			n.sendError(from, m.T, errProtocol, "bad or missing info_hash", now)
			return
		}
		var peers []netip.AddrPort
		locked(n, func() bool {
			r["token"] = n.tok.issue(from.Addr(), ih, now)
			peers = n.store.get(ih, n.cfg.MaxValues, now)
			return true
		})
		if len(peers) == 0 {
			r["nodes"] = n.compactClosest(ih)
			break
		}
		// Values cost 8 bytes each: send no more than the budget allows.
		values := make([]string, len(peers))
		for i, p := range peers {
			values[i] = string(appendCompactAddr(nil, p))
		}
		r["values"] = values
		pkt, err := encodeReply(m.T, r)
		if err != nil {
			return
		}
		if over := len(pkt) - n.guard.budget(from, now); over > 0 {
			keep := len(values) - (over+7)/8
			if keep <= 0 {
				delete(r, "values")
				r["nodes"] = n.compactClosest(ih)
			} else {
				r["values"] = values[:keep]
			}
		}
	case methodAnnouncePeer:
		ih, ok := idFrom(m.A.InfoHash)
		if !ok {
			n.sendError(from, m.T, errProtocol, "bad or missing info_hash", now)
			return
		}
		port := m.A.Port
		if m.A.ImpliedPort != 0 {
			port = int64(from.Port())
		}
		if port <= 0 || port > 65535 {
			n.sendError(from, m.T, errProtocol, "bad port", now)
			return
		}
		valid := locked(n, func() bool {
			if !n.tok.valid(m.A.Token, from.Addr(), ih, now) {
				return false
			}
			n.store.add(ih, netip.AddrPortFrom(from.Addr(), uint16(port)), now)
			return true
		})
		if !valid {
			n.stats.badTokens.Add(1)
			n.junk(from, now)
			n.sendError(from, m.T, errProtocol, "bad token", now)
			return
		}
	default:
		n.sendError(from, m.T, errMethod, "method unknown", now)
		return
	}
	n.sendReply(from, m.T, r, now)
	if m.RO != 1 {
		if locked(n, func() bool { return n.table.queried(nodeInfo{ID: id, Addr: from}, now) }) {
			n.ping(from, true)
		}
	}
}

// compactClosest returns the compact form of the K nodes closest to target.
func (n *Node) compactClosest(target ID) string {
	nodes := locked(n, func() []nodeInfo { return n.table.closest(target, n.cfg.K, n.now()) })
	b := make([]byte, 0, len(nodes)*compactNodeLen)
	for _, ni := range nodes {
		b = appendCompactNode(b, ni)
	}
	return string(b)
}

// handleResponse hands an answer to the query it answers, if we sent that
// query to the address it came from, and records the node as verified.
func (n *Node) handleResponse(m *message, from netip.AddrPort, now time.Time) {
	tx := n.takePending(m.T, from)
	if tx == nil {
		n.stats.unsolicited.Add(1)
		n.junk(from, now)
		return
	}
	if m.Y == kindError {
		code, msg := m.errorReply()
		tx.done <- result{err: &RemoteError{Code: code, Message: msg}}
		return
	}
	id, ok := idFrom(m.R.ID)
	if !ok {
		n.stats.malformed.Add(1)
		n.junk(from, now)
		tx.done <- result{err: fmt.Errorf("%w: reply without an id", errMalformed)}
		return
	}
	if _, err := parseCompactNodes(m.R.Nodes); err != nil {
		// A node that sends junk is not added, and its answer is not used.
		n.stats.malformed.Add(1)
		n.junk(from, now)
		tx.done <- result{err: err}
		return
	}
	if m.RO != 1 {
		stale := locked(n, func() *nodeInfo {
			_, stale := n.table.verified(nodeInfo{ID: id, Addr: from}, now)
			return stale
		})
		if stale != nil {
			n.ping(stale.Addr, false)
		}
	}
	tx.done <- result{id: id, r: &m.R}
}

// register records a transaction under a fresh id.
func (n *Node) register(tx *transaction) (string, error) {
	n.txMu.Lock()
	defer n.txMu.Unlock()
	if len(n.pending) >= n.cfg.MaxPending {
		return "", errBusy
	}
	for {
		var b [4]byte
		v := rand.Uint32()
		b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		tid := string(b[:])
		if _, taken := n.pending[tid]; !taken {
			n.pending[tid] = tx
			return tid, nil
		}
	}
}

// takePending removes and returns the transaction tid if it went to from.
func (n *Node) takePending(tid string, from netip.AddrPort) *transaction {
	n.txMu.Lock()
	defer n.txMu.Unlock()
	tx := n.pending[tid]
	if tx == nil || tx.addr != from {
		return nil
	}
	delete(n.pending, tid)
	return tx
}

func (n *Node) forget(tid string) {
	n.txMu.Lock()
	delete(n.pending, tid)
	n.txMu.Unlock()
}

// query sends one query and waits for its answer. triggered marks a packet
// the remote side caused (a verifying ping): it spends that address's
// amplification budget. onSlow, if set, is called once after SlowQuery
// without an answer. A timeout counts against the node in the table.
func (n *Node) query(ctx context.Context, to netip.AddrPort, method string, args map[string]any, triggered bool, onSlow func()) (result, error) {
	if n.stopping() {
		return result{}, errStopped
	}
	tx := &transaction{addr: to, done: make(chan result, 1)}
	tid, err := n.register(tx)
	if err != nil {
		return result{}, err
	}
	defer n.forget(tid)
	args["id"] = string(n.id[:])
	pkt, err := encodeQuery(tid, method, args)
	if err != nil {
		return result{}, fmt.Errorf("dht: encode %s: %w", method, err)
	}
	if triggered && !n.guard.spend(to, len(pkt), n.now()) {
		n.stats.amplification.Add(1)
		return result{}, errBudget
	}
	n.send(pkt, to)
	timeout := time.NewTimer(n.cfg.QueryTimeout)
	defer timeout.Stop()
	var slow <-chan time.Time
	if onSlow != nil {
		t := time.NewTimer(n.cfg.SlowQuery)
		defer t.Stop()
		slow = t.C
	}
	for {
		select {
		case r := <-tx.done:
			return r, r.err
		case <-slow:
			slow = nil
			onSlow()
		case <-timeout.C:
			n.stats.timeouts.Add(1)
			locked(n, func() bool { n.table.failed(to, n.now()); return true })
			return result{}, errTimeout
		case <-ctx.Done():
			return result{}, ctx.Err()
		case <-n.stopped:
			return result{}, errStopped
		}
	}
}

func (n *Node) send(pkt []byte, to netip.AddrPort) {
	if _, err := n.tr.WriteTo(pkt, to); err != nil {
		n.stats.writeErrors.Add(1)
		return
	}
	n.stats.packetsOut.Add(1)
	n.stats.bytesOut.Add(int64(len(pkt)))
}

// sendReply and sendError answer a query if the budget allows.
func (n *Node) sendReply(to netip.AddrPort, tid string, r map[string]any, now time.Time) {
	pkt, err := encodeReply(tid, r)
	if err != nil {
		n.log.Error("dht: encode reply", "err", err)
		return
	}
	n.sendTriggered(pkt, to, now)
}

func (n *Node) sendError(to netip.AddrPort, tid string, code int, msg string, now time.Time) {
	n.stats.protocolErrors.Add(1)
	pkt, err := encodeError(tid, code, msg)
	if err != nil {
		return
	}
	n.sendTriggered(pkt, to, now)
}

func (n *Node) sendTriggered(pkt []byte, to netip.AddrPort, now time.Time) {
	if !n.guard.spend(to, len(pkt), now) {
		n.stats.amplification.Add(1)
		return
	}
	n.send(pkt, to)
}

// ping checks a node in the background, bounded by MaxVerifying: an
// answer puts it in the table (handleResponse does), silence counts
// against it. triggered says the node's own packet caused the ping.
func (n *Node) ping(to netip.AddrPort, triggered bool) {
	if n.stopping() {
		return
	}
	select {
	case n.verify <- struct{}{}:
	default:
		n.stats.verifySkipped.Add(1)
		return
	}
	if !n.spawn(func() {
		defer func() { <-n.verify }()
		n.query(n.bg, to, methodPing, map[string]any{}, triggered, nil)
	}) {
		<-n.verify
	}
}

// spawn runs f on a goroutine Run waits for, unless Run is stopping.
func (n *Node) spawn(f func()) bool {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.stopping() {
		return false
	}
	n.wg.Go(f)
	return true
}

// AddNode pings the DHT node at addr and adds it to the table if it
// answers. It is how a peer's BEP 5 port message (peer-wire id 9) reaches
// the table. It does nothing once Run has returned.
func (n *Node) AddNode(addr netip.AddrPort) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if !usable(addr) || addr == n.addr {
		return
	}
	n.ping(addr, false)
}

// maintain joins, then keeps the table fresh: it rejoins while the table
// holds fewer than K nodes, refreshes stale buckets, sweeps the peer store and saves the table.
func (n *Node) maintain(ctx context.Context) {
	n.join(ctx)
	close(n.joined)
	t := time.NewTicker(n.cfg.MaintenanceInterval)
	defer t.Stop()
	// While the table is small the node rejoins, every interval at first and
	// less often (doubling up to RefreshInterval, or a minute while the
	// table is empty) while that finds no more nodes: a network of three
	// nodes stays small.
	backoff := n.cfg.MaintenanceInterval
	var nextJoin time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := n.now()
		var nodes int
		var stale []ID
		saveDue := locked(n, func() bool {
			nodes, _, _ = n.table.counts(now)
			if nodes > 0 {
				stale = n.table.staleBuckets(now, n.cfg.RefreshInterval)
			}
			n.store.sweep(now)
			return n.cfg.StateFile != "" && now.Sub(n.saved) >= n.cfg.SaveInterval
		})
		switch {
		case nodes >= n.cfg.K:
			backoff = n.cfg.MaintenanceInterval
		case !now.Before(nextJoin):
			n.join(ctx) // alone or nearly: the bootstrap nodes may be up by now
			wait := backoff
			if nodes == 0 {
				wait = min(wait, time.Minute)
			}
			nextJoin = now.Add(wait)
			backoff = min(2*backoff, n.cfg.RefreshInterval)
		}
		for _, id := range stale {
			n.lookup(ctx, id, false)
		}
		if saveDue {
			if err := n.save(); err != nil {
				n.log.Warn("dht: saving the table", "err", err)
			}
		}
	}
}

// join looks up our own id through the table and the bootstrap nodes, then
// refreshes the buckets that are not full, so far buckets fill too.
func (n *Node) join(ctx context.Context) {
	res, err := n.lookup(ctx, n.id, false)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Info("dht: cannot join yet", "err", err)
		}
		return
	}
	now := n.now()
	var ids []ID
	nodes := locked(n, func() int {
		for i, b := range n.table.buckets[:len(n.table.buckets)-1] {
			if len(b.nodes) < n.cfg.K {
				ids = append(ids, randomIDWithPrefix(n.id, i))
			}
		}
		nodes, _, _ := n.table.counts(now)
		return nodes
	})
	for _, id := range ids {
		n.lookup(ctx, id, false)
	}
	n.log.Info("dht: joined", "nodes", nodes, "queries", res.queries)
}

// bootstrapAddrs resolves the bootstrap nodes.
func (n *Node) bootstrapAddrs(ctx context.Context) []netip.AddrPort {
	var out []netip.AddrPort
	for _, b := range n.boot {
		if ap, err := netip.ParseAddrPort(b); err == nil {
			out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
			continue
		}
		host, port, err := net.SplitHostPort(b)
		if err != nil {
			continue
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip4", host)
		cancel()
		if err != nil {
			n.log.Warn("dht: bootstrap node unresolved", "node", b, "err", err)
			continue
		}
		for _, ip := range ips {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(p)))
		}
	}
	return out
}
