package tracker

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"btclient/bencode"
)

// ServerConfig holds the server's tunables. Zero fields take the values of
// DefaultServerConfig.
type ServerConfig struct {
	// Interval is the announce interval given to clients. A peer that has
	// not announced for 2 × Interval is forgotten.
	Interval time.Duration
	// MinInterval is the `min interval` given to clients.
	MinInterval time.Duration
	// MaxSwarms caps the torrents tracked; announces for a new torrent beyond
	// it are refused.
	MaxSwarms int
	// MaxPeersPerSwarm caps the peers remembered per torrent, and MaxPeers
	// across all torrents. A new peer beyond either cap still gets a peer
	// list but is not remembered.
	MaxPeersPerSwarm int
	MaxPeers         int
	// DefaultNumWant is how many peers a reply holds when the client does not
	// say; MaxNumWant bounds what it may ask for.
	DefaultNumWant int
	MaxNumWant     int
	// MaxScrapeHashes bounds the info_hash parameters of one scrape.
	MaxScrapeHashes int
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// DefaultServerConfig returns the defaults: a 2-minute interval and caps that
// keep the server within some tens of megabytes under a flood.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		Interval:         2 * time.Minute,
		MinInterval:      time.Minute,
		MaxSwarms:        10_000,
		MaxPeersPerSwarm: 2_000,
		MaxPeers:         200_000,
		DefaultNumWant:   50,
		MaxNumWant:       200,
		MaxScrapeHashes:  100,
		Now:              time.Now,
	}
}

// fullSweepEvery limits how often a full tracker sweeps everything in the hope
// of making room, so a flood cannot make every request walk every swarm.
const fullSweepEvery = time.Second

// Server is an HTTP tracker with in-memory swarms. It answers /announce and
// /scrape; Run must be running for swarms nobody asks about to be forgotten.
type Server struct {
	cfg ServerConfig

	mu            sync.Mutex
	swarms        map[[20]byte]*swarm
	peers         int // across all swarms
	lastFullSweep time.Time
}

// NewServer returns a server with cfg, its zero fields filled from
// DefaultServerConfig.
func NewServer(cfg ServerConfig) *Server {
	def := DefaultServerConfig()
	if cfg.Interval <= 0 {
		cfg.Interval = def.Interval
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = min(def.MinInterval, cfg.Interval)
	}
	if cfg.MaxSwarms <= 0 {
		cfg.MaxSwarms = def.MaxSwarms
	}
	if cfg.MaxPeersPerSwarm <= 0 {
		cfg.MaxPeersPerSwarm = def.MaxPeersPerSwarm
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = def.MaxPeers
	}
	if cfg.DefaultNumWant <= 0 {
		cfg.DefaultNumWant = def.DefaultNumWant
	}
	if cfg.MaxNumWant <= 0 {
		cfg.MaxNumWant = def.MaxNumWant
	}
	if cfg.MaxScrapeHashes <= 0 {
		cfg.MaxScrapeHashes = def.MaxScrapeHashes
	}
	if cfg.Now == nil {
		cfg.Now = def.Now
	}
	return &Server{cfg: cfg, swarms: make(map[[20]byte]*swarm)}
}

// Run forgets expired peers and empty swarms every half interval until ctx
// is done.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(max(s.cfg.Interval/2, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			s.sweepLocked(s.cfg.Now())
			s.mu.Unlock()
		}
	}
}

// ServeHTTP answers GET /announce and GET /scrape. Every request it can read
// gets HTTP 200 with a bencoded body, a `failure reason` when it is bad.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var body []byte
	switch r.URL.Path {
	case "/announce":
		body = s.announce(r.URL.RawQuery, r.RemoteAddr)
	case "/scrape":
		body = s.scrape(r.URL.RawQuery)
	default:
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// badRequest is a reason to refuse a request, told to the client.
type badRequest string

func (e badRequest) Error() string { return string(e) }

// The bencoded shapes of the server's replies.
type (
	failureReply struct {
		Reason string `bencode:"failure reason"`
	}
	announceReply struct {
		Interval    int64 `bencode:"interval"`
		MinInterval int64 `bencode:"min interval"`
		Complete    int   `bencode:"complete"`
		Incomplete  int   `bencode:"incomplete"`
		// Peers is a compact []byte (BEP 23) or a []dictPeer.
		Peers  any    `bencode:"peers"`
		Peers6 []byte `bencode:"peers6,omitempty"`
	}
	dictPeer struct {
		IP     string `bencode:"ip"`
		Port   int    `bencode:"port"`
		PeerID []byte `bencode:"peer id,omitempty"`
	}
	scrapeReply struct {
		Files map[string]scrapeFile `bencode:"files"`
	}
	scrapeFile struct {
		Complete   int `bencode:"complete"`
		Downloaded int `bencode:"downloaded"`
		Incomplete int `bencode:"incomplete"`
	}
)

// encodeReply bencodes one of the reply types above.
func encodeReply(v any) []byte {
	b, err := bencode.Marshal(v)
	if err != nil {
		// The reply types hold only strings, integers, byte slices and
		// maps with string keys, which always encode.
		return []byte("d14:failure reason14:internal errore")
	}
	return b
}

func failureBody(reason string) []byte {
	return encodeReply(failureReply{Reason: reason})
}

// announceParams is a validated announce.
type announceParams struct {
	infoHash, peerID [20]byte
	addr             netip.AddrPort
	seeder           bool
	event            Event
	numWant          int
	compact          bool
	noPeerID         bool
}

// announce answers one announce query from remoteAddr with a bencoded body.
func (s *Server) announce(rawQuery, remoteAddr string) []byte {
	p, err := s.parseAnnounce(rawQuery, remoteAddr)
	if err != nil {
		return failureBody(err.Error())
	}
	peers, complete, incomplete, err := s.record(p)
	if err != nil {
		return failureBody(err.Error())
	}
	reply := announceReply{
		Interval:    int64(max(s.cfg.Interval/time.Second, 1)),
		MinInterval: int64(max(s.cfg.MinInterval/time.Second, 1)),
		Complete:    complete,
		Incomplete:  incomplete,
	}
	if p.compact {
		// BEP 23 for IPv4, the peers6 key of BEP 7 for IPv6: the address
		// then the port, big-endian.
		v4 := []byte{}
		for _, sp := range peers {
			ip, port := sp.addr.Addr(), sp.addr.Port()
			if ip.Is4() {
				a := ip.As4()
				v4 = append(append(v4, a[:]...), byte(port>>8), byte(port))
			} else {
				a := ip.As16()
				reply.Peers6 = append(append(reply.Peers6, a[:]...), byte(port>>8), byte(port))
			}
		}
		reply.Peers = v4
	} else {
		list := make([]dictPeer, 0, len(peers))
		for _, sp := range peers {
			d := dictPeer{IP: sp.addr.Addr().String(), Port: int(sp.addr.Port())}
			if !p.noPeerID {
				d.PeerID = sp.id[:]
			}
			list = append(list, d)
		}
		reply.Peers = list
	}
	return encodeReply(reply)
}

func (s *Server) parseAnnounce(rawQuery, remoteAddr string) (announceParams, error) {
	var p announceParams
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return p, badRequest("malformed query string")
	}
	if p.infoHash, err = hashParam(q, "info_hash"); err != nil {
		return p, err
	}
	if p.peerID, err = hashParam(q, "peer_id"); err != nil {
		return p, err
	}
	if !q.Has("port") {
		return p, badRequest("missing port")
	}
	port, err := strconv.ParseUint(q.Get("port"), 10, 16)
	if err != nil || port == 0 {
		return p, badRequest("invalid port")
	}
	for _, name := range []string{"uploaded", "downloaded"} {
		if _, err := countParam(q, name); err != nil {
			return p, err
		}
	}
	left, err := countParam(q, "left")
	if err != nil {
		return p, err
	}
	// A client that does not say what it lacks is counted as a leecher.
	p.seeder = q.Has("left") && left == 0
	switch ev := Event(q.Get("event")); ev {
	case EventNone, EventStarted, EventCompleted, EventStopped:
		p.event = ev
	case "empty", "paused": // "empty" from old clients, "paused" from BEP 21
		p.event = EventNone
	default:
		return p, badRequest("unknown event")
	}
	if p.event == EventCompleted {
		p.seeder = true
	}
	p.numWant = s.cfg.DefaultNumWant
	if q.Has("numwant") {
		n, err := strconv.ParseInt(q.Get("numwant"), 10, 64)
		if err != nil {
			return p, badRequest("invalid numwant")
		}
		if n >= 0 {
			p.numWant = int(min(n, int64(s.cfg.MaxNumWant)))
		}
	}
	p.compact = q.Get("compact") != "0"
	p.noPeerID = q.Get("no_peer_id") == "1"

	remote, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return p, badRequest("cannot tell the address of the request")
	}
	ip := remote.Addr().Unmap().WithZone("")
	// The ip parameter is trusted only from loopback, where tests and local
	// proxies announce on behalf of other addresses.
	if ip.IsLoopback() && q.Has("ip") {
		claimed, err := netip.ParseAddr(q.Get("ip"))
		if err != nil {
			return p, badRequest("invalid ip")
		}
		ip = claimed.Unmap().WithZone("")
	}
	p.addr = netip.AddrPortFrom(ip, uint16(port))
	return p, nil
}

// hashParam reads a required 20-byte parameter.
func hashParam(q url.Values, name string) ([20]byte, error) {
	var h [20]byte
	if !q.Has(name) {
		return h, badRequest("missing " + name)
	}
	v := q.Get(name)
	if len(v) != 20 {
		return h, badRequest(fmt.Sprintf("%s is %d bytes, want 20", name, len(v)))
	}
	copy(h[:], v)
	return h, nil
}

// countParam reads an optional non-negative byte count.
func countParam(q url.Values, name string) (int64, error) {
	if !q.Has(name) {
		return 0, nil
	}
	n, err := strconv.ParseInt(q.Get(name), 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("invalid " + name)
	}
	return n, nil
}

// record applies an announce to the swarms and returns the peers to give
// back and the swarm's seeder and leecher counts.
func (s *Server) record(p announceParams) (peers []swarmPeer, complete, incomplete int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	sw := s.swarms[p.infoHash]
	if sw == nil {
		if p.event == EventStopped {
			return nil, 0, 0, nil
		}
		if len(s.swarms) >= s.cfg.MaxSwarms {
			s.sweepIfDue(now)
		}
		if len(s.swarms) >= s.cfg.MaxSwarms {
			return nil, 0, 0, badRequest("tracker is full, try again later")
		}
		sw = newSwarm()
		s.swarms[p.infoHash] = sw
	}
	s.peers -= sw.expire(now.Add(-s.ttl()))

	known, sameHost := sw.owner(p.peerID, p.addr.Addr())
	switch {
	case known && !sameHost:
		// Another host using a known peer id may not move or remove that
		// peer; it still gets its peer list.
	case p.event == EventStopped:
		if sw.remove(p.peerID) {
			s.peers--
		}
	case known:
		sw.update(p.peerID, p.addr, p.seeder, p.event == EventCompleted, now)
	default:
		if s.peers >= s.cfg.MaxPeers {
			s.sweepIfDue(now)
			// The sweep drops empty swarms, this one included.
			s.swarms[p.infoHash] = sw
		}
		if sw.len() < s.cfg.MaxPeersPerSwarm && s.peers < s.cfg.MaxPeers {
			sw.add(p.peerID, p.addr, p.seeder, p.event == EventCompleted, now)
			s.peers++
		}
	}
	if p.event != EventStopped {
		peers = sw.pick(p.peerID, p.addr, p.seeder, p.numWant)
	}
	complete, incomplete = sw.seeders, sw.leechers()
	if sw.len() == 0 {
		delete(s.swarms, p.infoHash)
	}
	return peers, complete, incomplete, nil
}

// scrape answers one scrape query with a bencoded body.
func (s *Server) scrape(rawQuery string) []byte {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return failureBody("malformed query string")
	}
	hashes := q["info_hash"]
	if len(hashes) > s.cfg.MaxScrapeHashes {
		return failureBody(fmt.Sprintf("at most %d info_hash per scrape", s.cfg.MaxScrapeHashes))
	}
	for _, h := range hashes {
		if len(h) != 20 {
			return failureBody(fmt.Sprintf("info_hash is %d bytes, want 20", len(h)))
		}
	}
	files := make(map[string]scrapeFile)
	s.mu.Lock()
	now := s.cfg.Now()
	cutoff := now.Add(-s.ttl())
	stats := func(ih [20]byte) scrapeFile {
		var f scrapeFile
		if sw := s.swarms[ih]; sw != nil {
			s.peers -= sw.expire(cutoff)
			f = scrapeFile{Complete: sw.seeders, Incomplete: sw.leechers(), Downloaded: sw.downloaded}
		}
		return f
	}
	if len(hashes) == 0 {
		for ih := range s.swarms {
			files[string(ih[:])] = stats(ih)
		}
	}
	for _, h := range hashes {
		files[h] = stats([20]byte([]byte(h)))
	}
	s.mu.Unlock()
	return encodeReply(scrapeReply{Files: files})
}

// ttl is how long a peer is remembered after its last announce.
func (s *Server) ttl() time.Duration { return 2 * s.cfg.Interval }

// sweepIfDue sweeps, at most once per fullSweepEvery.
func (s *Server) sweepIfDue(now time.Time) {
	if now.Sub(s.lastFullSweep) < fullSweepEvery && !s.lastFullSweep.After(now) {
		return
	}
	s.sweepLocked(now)
}

// sweepLocked forgets expired peers and the swarms they leave empty.
func (s *Server) sweepLocked(now time.Time) {
	s.lastFullSweep = now
	cutoff := now.Add(-s.ttl())
	for ih, sw := range s.swarms {
		s.peers -= sw.expire(cutoff)
		if sw.len() == 0 {
			delete(s.swarms, ih)
		}
	}
}
