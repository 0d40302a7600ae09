package overlay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The records this node publishes live in its origin table; the node keeps
// the copies on their owners in step:
//   - a new or changed record is sent at once to its owners (put);
//   - every ping to a node carries the digest of the records that node should
//     hold from this one and the time until which they are all renewed; the
//     node extends their lease when its digest agrees and asks for a sync
//     when it does not, which then sends the full set for that node (in
//     chunks) and replaces what it held. Membership changes move records
//     this way: a new owner's digest is wrong until synced, and a node that
//     no longer owns a record is synced to a set without it.
// So the steady state costs one digest per ping, whatever the number of
// records, and renewing a record without change costs nothing on the wire.

// owned is one record of the origin table.
type owned struct {
	r      Record // r.Expires: when it goes unless published again
	source string // "" for this node's own; the IP of a direct announce
}

type originTable struct {
	maxBytes     int64
	maxPerSource int

	mu       sync.Mutex
	recs     map[recKey]*owned
	bytes    int64
	bySource map[string]int
}

type recKey struct {
	kind string
	key  [20]byte
	id   string
}

func newOriginTable(c Config) *originTable {
	return &originTable{maxBytes: c.MaxStoreBytes, maxPerSource: c.MaxEntriesPerSource,
		recs: make(map[recKey]*owned), bySource: make(map[string]int)}
}

var errOriginFull = errors.New("origin table full")

// set records r (normalized, Expires set) as published from source and
// reports whether it changed what the owners must hold. Publishing the same
// content again only extends its lease.
func (t *originTable) set(r Record, source string, now time.Time) (bool, error) {
	k := recKey{r.Kind, r.Key, r.ID}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.recs[k]
	if old != nil && !expired(old.r, now) {
		if r.Seen.Before(old.r.Seen) {
			return false, nil
		}
		if sameContent(old.r, r) {
			if r.Expires.After(old.r.Expires) {
				old.r.Expires = r.Expires
			}
			return false, nil
		}
		if r.Seen.Equal(old.r.Seen) && !recordWins(r, old.r) {
			r.Seen = old.r.Seen.Add(time.Millisecond) // a change must be a newer write
		}
	}
	grow := r.size()
	if old != nil {
		grow -= old.r.size()
	}
	if t.bytes+grow > t.maxBytes {
		return false, errOriginFull
	}
	if old == nil && source != "" {
		if t.bySource[source] >= t.maxPerSource {
			return false, fmt.Errorf("%w for source %s", errOriginFull, source)
		}
		t.bySource[source]++
	}
	if old != nil {
		source = old.source
	}
	t.bytes += grow
	t.recs[k] = &owned{r: r, source: source}
	return true, nil
}

// sweep drops expired records and reports whether any went.
func (t *originTable) sweep(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	gone := false
	for k, o := range t.recs {
		if expired(o.r, now) {
			t.drop(k, o)
			gone = true
		}
	}
	return gone
}

func (t *originTable) drop(k recKey, o *owned) {
	delete(t.recs, k)
	t.bytes -= o.r.size()
	if o.source != "" {
		if t.bySource[o.source]--; t.bySource[o.source] <= 0 {
			delete(t.bySource, o.source)
		}
	}
}

// len returns the number of records, expired ones not yet swept included.
func (t *originTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.recs)
}

// lease is what a ping tells one owner: the digest of the records it should
// hold and until when they are all renewed, but the dying ones: records
// that will expire before the next ping can renew them, which keep their
// own expiry. Too many dying records to name mean no renewal this time.
type lease struct {
	d     digest
	exp   time.Time
	dying []Record
}

// leases computes, for every node of rg, the lease of the records it owns;
// a record expiring within margin is dying.
// It gives up, returning nil, once ctx is done: a node that publishes a
// million records takes a second over them.
func (t *originTable) leases(ctx context.Context, rg *ring, replicas, maxDying int, margin time.Duration, now time.Time) map[string]*lease {
	out := make(map[string]*lease)
	t.mu.Lock()
	defer t.mu.Unlock()
	i := 0
	for _, o := range t.recs {
		if i++; i%4096 == 0 && ctx.Err() != nil {
			return nil
		}
		r := &o.r
		if expired(*r, now) {
			continue
		}
		fp := r.fingerprint()
		dying := r.Expires.Before(now.Add(margin))
		rg.eachOwner(r.Key, replicas, func(addr string) {
			l := out[addr]
			if l == nil {
				l = &lease{}
				out[addr] = l
			}
			l.d.addFingerprint(fp)
			switch {
			case dying:
				if len(l.dying) <= maxDying {
					l.dying = append(l.dying, Record{Kind: r.Kind, Key: r.Key, ID: r.ID, Seen: r.Seen})
				}
			case l.exp.IsZero() || r.Expires.Before(l.exp):
				l.exp = r.Expires
			}
		})
	}
	for _, l := range out {
		if len(l.dying) > maxDying {
			l.exp, l.dying = time.Time{}, nil
		}
	}
	return out
}

// recordsFor returns the unexpired records addr owns in rg, or ctx's error
// once it is done.
func (t *originTable) recordsFor(ctx context.Context, rg *ring, replicas int, addr string, now time.Time) ([]Record, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Record
	i := 0
	for _, o := range t.recs {
		if i++; i%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !expired(o.r, now) && rg.owns(addr, o.r.Key, replicas) {
			out = append(out, o.r)
		}
	}
	return out, nil
}

// Publish makes r known to the overlay: it is stored on the nodes that own
// r.Key and found there by Query until it expires, ProviderTTL after the
// last Publish of it (publish again to keep it; publishing unchanged content
// costs no traffic). A zero Seen means now; an older Seen than the one
// published is ignored. The error is for an invalid record, a full origin
// table or a cancelled ctx; owners that miss the write are repaired by the
// next digest exchange.
func (n *Node) Publish(ctx context.Context, r Record) error {
	return n.publish(ctx, r, "")
}

// PublishBatch publishes many records at once, as Publish does one by one,
// but sends each owner the new and changed ones in as few lines as
// possible: how a node with many torrents announces them.
func (n *Node) PublishBatch(ctx context.Context, rs []Record) error {
	now := time.Now()
	var changed []Record
	var firstErr error
	for _, r := range rs {
		if r.Seen.IsZero() {
			r.Seen = now
		}
		r.Expires = time.Time{}
		if err := r.validate(n.cfg.MaxValueBytes); err != nil {
			firstErr = cmp.Or(firstErr, fmt.Errorf("publish: %w", err))
			continue
		}
		r = n.store.normalize(r, now)
		ok, err := n.origin.set(r, "", now)
		if err != nil {
			firstErr = cmp.Or(firstErr, fmt.Errorf("publish %s/%s: %w", r.Kind, truncate(r.ID, 32), err))
		}
		if ok {
			changed = append(changed, r)
		}
	}
	byOwner := make(map[string][]Record)
	rg := n.ring()
	for _, r := range changed {
		for _, o := range n.targets(rg, r.Key) {
			byOwner[o] = append(byOwner[o], r)
		}
	}
	var wg sync.WaitGroup
	for o, rs := range byOwner {
		if o == n.addr {
			n.store.Put(n.addr, rs)
			continue
		}
		select {
		case n.outbound <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return fmt.Errorf("publish: %w", ctx.Err())
		}
		wg.Go(func() {
			defer func() { <-n.outbound }()
			var msgs []message
			for i := 0; i < len(rs); i += n.cfg.MaxRecordsPerMessage {
				msgs = append(msgs, message{Type: typePut, From: n.addr, Records: rs[i:min(i+n.cfg.MaxRecordsPerMessage, len(rs))]})
			}
			_, err := n.exchange(ctx, o, n.health.scale(n.cfg.GossipTimeout), msgs...)
			n.outcome(ctx, o, err)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return firstErr
}

// Withdraw publishes a tombstone for (kind, key, id): readers stop
// returning the record at once, and the tombstone itself expires after
// ProviderTTL.
func (n *Node) Withdraw(ctx context.Context, kind string, key [20]byte, id string) error {
	return n.publish(ctx, Record{Kind: kind, Key: key, ID: id, Stopped: true}, "")
}

func (n *Node) publish(ctx context.Context, r Record, source string) error {
	now := time.Now()
	if r.Seen.IsZero() {
		r.Seen = now
	}
	r.Expires = time.Time{}
	if err := r.validate(n.cfg.MaxValueBytes); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	r = n.store.normalize(r, now)
	if expired(r, now) {
		return nil
	}
	changed, err := n.origin.set(r, source, now)
	if err != nil {
		return fmt.Errorf("publish %s/%s: %w", r.Kind, truncate(r.ID, 32), err)
	}
	if changed {
		n.pushRecord(ctx, r)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// targets returns the nodes a new record of key goes to: its owners, and
// while this node knows fewer live nodes than Replicas (it is joining, or
// the overlay is small) its bootstrap nodes too.
func (n *Node) targets(rg *ring, key [20]byte) []string {
	out := rg.owners(key, n.cfg.Replicas)
	if len(rg.addrs) < n.cfg.Replicas {
		for _, b := range n.members.bootstraps() {
			if !slices.Contains(out, b) {
				out = append(out, b)
			}
		}
	}
	return out
}

// pushRecord sends r to its owners in parallel (itself included, locally).
func (n *Node) pushRecord(ctx context.Context, r Record) {
	var wg sync.WaitGroup
	for _, o := range n.targets(n.ring(), r.Key) {
		if o == n.addr {
			n.store.Put(n.addr, []Record{r})
			continue
		}
		wg.Go(func() {
			_, err := n.exchange(ctx, o, n.health.scale(n.cfg.GossipTimeout), message{Type: typePut, From: n.addr, Records: []Record{r}})
			n.outcome(ctx, o, err)
		})
	}
	wg.Wait()
}

// outcome records how a request to addr went. A refused or broken
// connection counts toward addr's death; a timeout only gets addr probed
// soon: probes are the failure detector (probeOutcome), and a put or query
// that runs late on a busy node says little about the other one.
func (n *Node) outcome(ctx context.Context, addr string, err error) {
	if err != nil && isTimeout(err) {
		if ctx.Err() == nil {
			n.members.suspect(addr)
		}
		return
	}
	n.probeOutcome(ctx, addr, err)
}

// probeOutcome records how a probe (or a request whose failure is as good
// as a failed probe) went.
func (n *Node) probeOutcome(ctx context.Context, addr string, err error) {
	var refused *remoteError
	if err == nil || errors.As(err, &refused) {
		if n.members.ok(addr) {
			n.log.Debug("overlay node alive", "node", addr)
		}
		return
	}
	if ctx.Err() == nil && n.members.fail(addr) {
		n.nodeDied(addr, err)
	}
}

// nodeDied forgets what addr published: its records go with it, after a
// grace of two health rounds in which a node declared dead by mistake
// renews them (ExpireOrigin).
func (n *Node) nodeDied(addr string, err error) {
	k := n.store.ExpireOrigin(addr, time.Now().Add(2*n.cfg.HealthInterval))
	n.log.Info("overlay node dead", "node", addr, "err", err, "records_expiring", k)
}

// syncTo sends addr the full set of this node's records it owns, replacing
// what it held from this node.
func (n *Node) syncTo(ctx context.Context, addr string) error {
	rs, err := n.origin.recordsFor(ctx, n.ring(), n.cfg.Replicas, addr, time.Now())
	if err != nil {
		return fmt.Errorf("sync %s: %w", addr, err)
	}
	if addr == n.addr {
		n.store.BeginSync(n.addr)
		n.store.Put(n.addr, rs)
		n.store.EndSync(n.addr)
		return nil
	}
	per := n.cfg.MaxRecordsPerMessage
	var msgs []message
	for i := 0; i == 0 || i < len(rs); i += per {
		m := message{Type: typeSync, From: n.addr, Records: rs[i:min(i+per, len(rs))], Reset: i == 0}
		msgs = append(msgs, m)
	}
	msgs[len(msgs)-1].Done = true
	_, err = n.exchange(ctx, addr, n.health.scale(n.cfg.GossipTimeout+time.Duration(len(msgs))*10*time.Millisecond), msgs...)
	return err
}

// Announce records p as a provider of infoHash: Publish of its provider
// record (Kind KindProvider, Key infoHash, ID p.Addr). A zero LastSeen means
// now; announce again within ProviderTTL to stay, and with Stopped to leave.
func (n *Node) Announce(ctx context.Context, infoHash [20]byte, p Provider) error {
	if p.LastSeen.IsZero() {
		p.LastSeen = time.Now()
	}
	if err := p.validate(); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	return n.publish(ctx, providerRecord(infoHash, p), "")
}

// ProviderRecord returns the record Announce publishes for p as a provider
// of infoHash (for PublishBatch).
func ProviderRecord(infoHash [20]byte, p Provider) Record { return providerRecord(infoHash, p) }
