package index

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"btclient/overlay"
)

// RenewEvery is how often a node publishes its names again: the overlay
// drops a record ProviderTTL (90 s) after its last Publish, and renewing
// an unchanged record costs nothing on the wire.
const RenewEvery = 30 * time.Second

// OverlayStore is the index on a running overlay node. Each node's record
// of a torrent is its own: the ID is "<info hash>@<node address>", and the
// node that holds it reports the origin it took it from.
func OverlayStore(n *overlay.Node) Store { return nodeStore{n} }

type nodeStore struct{ n *overlay.Node }

func (s nodeStore) id(id string) string { return id + "@" + s.n.Addr() }

func (s nodeStore) Publish(ctx context.Context, puts []Put) error {
	rs := make([]overlay.Record, len(puts))
	for i, p := range puts {
		rs[i] = overlay.Record{Kind: Kind, Key: p.Key, ID: s.id(p.ID), Value: p.Value}
	}
	return s.n.PublishBatch(ctx, rs)
}

func (s nodeStore) Withdraw(ctx context.Context, key [20]byte, id string) error {
	return s.n.Withdraw(ctx, Kind, key, s.id(id))
}

func (s nodeStore) Query(ctx context.Context, key [20]byte, limit int) ([]Record, error) {
	rs, err := s.n.Query(ctx, Kind, key, limit)
	return records(rs), err
}

// ClientStore searches through the overlay nodes at addrs without running
// a node: the first that answers asks the key's owners for it. It cannot
// publish.
func ClientStore(addrs []string, swarmKey []byte) Store {
	if len(swarmKey) == 0 {
		swarmKey = nil // an empty key is no key, not a key of nothing
	}
	return clientStore{addrs: addrs, c: &overlay.Client{SwarmKey: swarmKey}}
}

type clientStore struct {
	addrs []string
	c     *overlay.Client
}

var errReadOnly = errors.New("index: a search client cannot publish")

func (clientStore) Publish(context.Context, []Put) error             { return errReadOnly }
func (clientStore) Withdraw(context.Context, [20]byte, string) error { return errReadOnly }

func (s clientStore) Query(ctx context.Context, key [20]byte, limit int) ([]Record, error) {
	var errs []error
	for _, a := range s.addrs {
		rs, err := s.c.Query(ctx, a, Kind, key, limit)
		if err == nil {
			return records(rs), nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a, err))
	}
	return nil, errors.Join(errs...)
}

// records turns overlay records into the index's: the ID's info hash, and
// the origin the holder saw (the ID's claim when it reports none).
func records(rs []overlay.Record) []Record {
	out := make([]Record, 0, len(rs))
	for _, r := range rs {
		ih, claimed, ok := strings.Cut(r.ID, "@")
		if !ok {
			continue
		}
		origin := r.Origin
		if origin == "" {
			origin = claimed
		}
		out = append(out, Record{Origin: origin, ID: ih, Value: r.Value})
	}
	return out
}
