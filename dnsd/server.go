// Package dnsd is a small replicated DNS service: names registered over an
// HTTP API are answered as A and AAAA records over UDP and TCP, expire after
// their TTL, and are gossiped to peer servers (last writer wins), so that
// btclient nodes can find each other by name. Resolve, ResolveBootstrap and
// Register are the client side.
//
// There are no zones: a server is authoritative for every registered name,
// whatever domain it sits in, and its negative answers carry an SOA owned
// by the queried name's parent. The HTTP API, replication included, is
// unauthenticated and meant for a private network.
//
// Files: config.go (Config), names.go (name and address rules), store.go
// (records, tombstones, merging), dns.go (answers), api.go (HTTP API),
// gossip.go (replication), server.go (sockets and lifetime), client.go.
package dnsd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
)

// Server is one dnsd server: DNS over UDP and TCP, the HTTP API, and the
// replication loop. Create it with New, bind with Listen, run with Serve
// (or both with ListenAndServe).
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *store
	repl  *replicator
	api   *api
	dns   *dnsHandler

	udp     net.PacketConn
	tcp     net.Listener
	apiLn   net.Listener
	serving bool
}

// New checks cfg and returns a server that has not bound anything yet.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st := newStore(cfg, time.Now)
	repl := newReplicator(cfg, st, log)
	return &Server{
		cfg:   cfg,
		log:   log,
		store: st,
		repl:  repl,
		api:   newAPI(cfg, st, log, repl.changed),
		dns:   newDNSHandler(cfg, st, log),
	}, nil
}

// Listen binds the DNS sockets (UDP and TCP on one port) and the API
// listener. After it returns, DNSAddr and APIAddr tell where they are.
func (s *Server) Listen() error {
	if s.udp != nil {
		return errors.New("dnsd: Listen called twice")
	}
	udp, tcp, err := listenDNS(s.cfg.Listen)
	if err != nil {
		return err
	}
	apiLn, err := net.Listen("tcp", s.cfg.API)
	if err != nil {
		udp.Close()
		tcp.Close()
		return fmt.Errorf("dnsd: listen for the API on %s: %w", s.cfg.API, err)
	}
	s.udp, s.tcp, s.apiLn = udp, tcp, apiLn
	return nil
}

// listenDNS binds UDP and TCP on the same port. With port 0 the UDP port is
// picked first and TCP tries to follow it; a few tries cover the rare case
// where that TCP port is taken.
func listenDNS(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dnsd: DNS listen address %q: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 10
	}
	for i := 0; ; i++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnsd: listen for DNS on udp %s: %w", addr, err)
		}
		udpPort := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, udpPort))
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if i+1 >= tries {
			return nil, nil, fmt.Errorf("dnsd: listen for DNS on tcp %s: %w", net.JoinHostPort(host, udpPort), err)
		}
	}
}

// DNSAddr is the address DNS is served on (UDP and TCP), once Listen has run.
func (s *Server) DNSAddr() string {
	if s.udp == nil {
		return ""
	}
	return s.udp.LocalAddr().String()
}

// APIAddr is the address of the HTTP API, once Listen has run.
func (s *Server) APIAddr() string {
	if s.apiLn == nil {
		return ""
	}
	return s.apiLn.Addr().String()
}

// ListenAndServe binds and then serves until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Serve answers DNS and API requests and replicates until ctx is done, then
// shuts everything down and returns nil once every goroutine it started has
// ended. It returns an error if a server fails on its own. Listen must have
// run; a Server serves once.
func (s *Server) Serve(ctx context.Context) error {
	if s.udp == nil {
		return errors.New("dnsd: Serve called before Listen")
	}
	if s.serving {
		return errors.New("dnsd: Serve called twice")
	}
	s.serving = true

	udpSrv := &dns.Server{
		PacketConn:   s.udp,
		Handler:      s.dns,
		UDPSize:      dns.DefaultMsgSize,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
	}
	tcpSrv := &dns.Server{
		Listener:      netutil.LimitListener(s.tcp, s.cfg.MaxConns),
		Handler:       s.dns,
		ReadTimeout:   2 * time.Second,
		WriteTimeout:  2 * time.Second,
		IdleTimeout:   func() time.Duration { return 8 * time.Second },
		MaxTCPQueries: 128,
	}
	httpSrv := &http.Server{
		Handler:           s.api.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() { errc <- wrapServeErr("dns udp", udpSrv.ActivateAndServe()) })
	wg.Go(func() { errc <- wrapServeErr("dns tcp", tcpSrv.ActivateAndServe()) })
	wg.Go(func() {
		errc <- wrapServeErr("api", httpSrv.Serve(netutil.LimitListener(s.apiLn, s.cfg.MaxConns)))
	})
	wg.Go(func() { s.repl.run(ctx) })

	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errc:
		if failed == nil {
			failed = errors.New("dnsd: a server stopped on its own")
		}
		cancel()
	}

	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = httpSrv.Shutdown(shutdownCtx)
	_ = udpSrv.ShutdownContext(shutdownCtx)
	_ = tcpSrv.ShutdownContext(shutdownCtx)
	// Closing the sockets as well ends a server whose goroutine had not
	// started serving yet when Shutdown ran (Shutdown then has no effect).
	s.udp.Close()
	s.tcp.Close()
	s.apiLn.Close()
	wg.Wait()
	return failed
}

// wrapServeErr adds context to the error a server returned; the errors of a
// normal shutdown come back as nil.
func wrapServeErr(what string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("dnsd: %s server: %w", what, err)
}
