package swarm

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"btclient/peerwire"
)

// Serve accepts peer-wire connections on ln until ctx is done: it reads each
// peer's handshake and hands the connection to the torrent route returns for
// its info hash (nil: the connection is closed). One listener can so serve
// every torrent of a session. At most maxHalfOpen connections may be in
// their handshake, each for at most timeout: a newcomer beyond that closes
// the oldest, so a slowloris holding every slot cannot lock honest peers out.
// Serve closes ln when ctx is done.
func Serve(ctx context.Context, ln net.Listener, route func(infoHash [20]byte) *Torrent, maxHalfOpen int, timeout time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var half halfOpen
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			log.Warn("accept failed", "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
				continue
			case <-ctx.Done():
				return
			}
		}
		half.add(nc, maxHalfOpen)
		wg.Go(func() {
			err := serveOne(ctx, nc, route, timeout)
			half.remove(nc)
			if err != nil {
				nc.Close()
			}
		})
	}
}

// serveOne reads one peer's handshake and routes it.
func serveOne(ctx context.Context, nc net.Conn, route func([20]byte) *Torrent, timeout time.Duration) error {
	if err := nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	theirs, err := peerwire.ReadHandshake(nc)
	if err != nil {
		return err
	}
	t := route(theirs.InfoHash)
	if t == nil {
		return errors.New("swarm: handshake for a torrent we do not serve")
	}
	return t.AddConn(ctx, nc, theirs)
}

// halfOpen tracks incoming connections still in their handshake, oldest first.
type halfOpen struct {
	mu    sync.Mutex
	conns []net.Conn
}

// add records nc, closing the oldest connections while more than max are open.
func (h *halfOpen) add(nc net.Conn, max int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.conns) >= max {
		h.conns[0].Close()
		h.conns = h.conns[1:]
	}
	h.conns = append(h.conns, nc)
}

func (h *halfOpen) remove(nc net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range h.conns {
		if c == nc {
			h.conns = append(h.conns[:i], h.conns[i+1:]...)
			return
		}
	}
}
