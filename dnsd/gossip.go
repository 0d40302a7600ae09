package dnsd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// replicator keeps the store in step with the peers: every GossipInterval,
// and at once after a local change, it posts the whole record set to each
// peer and merges the peer's record set from the reply (push-pull). The
// first round runs at start, so a restarted server catches up at once.
type replicator struct {
	store    *store
	log      *slog.Logger
	peers    []string // gossip URLs
	client   *http.Client
	interval time.Duration
	timeout  time.Duration
	maxBody  int64
	kick     chan struct{} // a pending "push now"; capacity 1
}

func newReplicator(cfg Config, st *store, log *slog.Logger) *replicator {
	r := &replicator{
		store:    st,
		log:      log,
		client:   &http.Client{},
		interval: cfg.GossipInterval,
		timeout:  cfg.GossipTimeout,
		maxBody:  cfg.MaxGossipBody,
		kick:     make(chan struct{}, 1),
	}
	for _, p := range cfg.Peers {
		r.peers = append(r.peers, gossipURL(p))
	}
	return r
}

// gossipURL turns a peer's API address (HOST:PORT or a URL) into the URL of
// its replication endpoint.
func gossipURL(peer string) string {
	if !strings.Contains(peer, "://") {
		peer = "http://" + peer
	}
	return strings.TrimSuffix(peer, "/") + "/gossip"
}

// changed asks for a push as soon as possible; many calls before the push
// runs make one push.
func (r *replicator) changed() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run gossips until ctx is done, and sweeps expired records on each tick.
func (r *replicator) run(ctx context.Context) {
	defer r.client.CloseIdleConnections()
	failing := make(map[string]bool) // peers whose last exchange failed, for quieter logs
	ticker := time.NewTicker(r.interval)
	defer ticker.Stop()
	for {
		r.round(ctx, failing)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			r.store.sweep()
		case <-r.kick:
		}
	}
}

// round exchanges records with every peer in parallel.
func (r *replicator) round(ctx context.Context, failing map[string]bool) {
	if len(r.peers) == 0 {
		return
	}
	body, err := json.Marshal(gossipMessage{Records: r.store.snapshot()})
	if err != nil {
		r.log.Error("gossip: encode records", "err", err)
		return
	}
	errs := make([]error, len(r.peers))
	var wg sync.WaitGroup
	for i, peer := range r.peers {
		wg.Go(func() { errs[i] = r.exchange(ctx, peer, body) })
	}
	wg.Wait()
	for i, peer := range r.peers {
		switch {
		case errs[i] != nil && !failing[peer] && ctx.Err() == nil:
			r.log.Warn("gossip with peer failed", "peer", peer, "err", errs[i])
			failing[peer] = true
		case errs[i] == nil && failing[peer]:
			r.log.Info("gossip with peer works again", "peer", peer)
			delete(failing, peer)
		}
	}
}

// exchange posts our records to one peer and merges its reply.
func (r *replicator) exchange(ctx context.Context, url string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("gossip request to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("gossip with %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("gossip with %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	var reply gossipMessage
	if err := json.NewDecoder(io.LimitReader(resp.Body, r.maxBody)).Decode(&reply); err != nil {
		return fmt.Errorf("gossip with %s: decode reply: %w", url, err)
	}
	if n := r.store.merge(reply.Records); n > 0 {
		r.log.Debug("gossip: merged records", "peer", url, "changed", n)
		r.changed() // pass news on to the other peers
	}
	return nil
}
