package discovery

import (
	"context"
	"encoding/hex"
	"slices"
	"time"

	"btclient/overlay"
)

// announceOverlay keeps the torrent announced as a provider in the overlay
// (started, routinely, completed, stopped) and looks up the others: every
// round while downloading; once complete, every SeedLookupInterval.
// Leechers find a seeder, not the reverse, so a complete torrent also opens
// the fallback gate at once: trackers hear of a seeder, as of every other
// client's, while the gate keeps downloads off them as long as the overlay
// yields peers.
func (s *Service) announceOverlay(ctx context.Context, p Params, t Torrent, g *fallbackGate) {
	completed := t.Completed()
	started := false
	lastLookup := time.Now()
	for {
		st := t.State()
		if st.Private {
			g.open() // the overlay never hears of a private torrent
			return
		}
		if st.Complete {
			completed = nil // announced with left 0 from now on
			g.open()
		}
		prov := overlay.Provider{Addr: s.peerAdv, PeerID: hex.EncodeToString(p.PeerID[:]), Left: st.Left}
		err := s.node.Announce(ctx, p.InfoHash, prov)
		started = started || err == nil
		if err == nil && (!st.Complete || time.Since(lastLookup) >= s.cfg.SeedLookupInterval) {
			lastLookup = time.Now()
			addrs := s.lookup(ctx, p.InfoHash, !st.Complete)
			g.found(len(addrs))
			if len(addrs) > 0 {
				t.AddPeers(FromOverlay, addrs)
			}
		} else if err != nil && ctx.Err() == nil {
			g.found(0)
			s.log.Debug("overlay announce failed", "err", err)
		}
		if !wait(ctx, s.nextRound(st, s.cfg.AnnounceInterval, s.cfg.PeerRetryInterval), completed) {
			break
		}
		if st := t.State(); st.Complete {
			completed = nil
		}
	}
	if started {
		sctx, cancel := s.stopContext(ctx)
		defer cancel()
		prov := overlay.Provider{Addr: s.peerAdv, PeerID: hex.EncodeToString(p.PeerID[:]), Stopped: true}
		_ = s.node.Announce(sctx, p.InfoHash, prov)
	}
}

// lookup asks the overlay for providers: the key's owners first and, for a
// download (search), a breadth-first discovery when they know none but us.
// A seeder skips the search: alone with its torrent it would run one for
// every torrent it seeds, every round, and find no one.
func (s *Service) lookup(ctx context.Context, infoHash [20]byte, search bool) []string {
	const want = 50
	ps, err := s.node.Lookup(ctx, infoHash, want)
	if err == nil && len(ps) <= 1 && search {
		ps, err = s.node.Discover(ctx, infoHash, 3, want)
	}
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range ps {
		if p.Addr != s.peerAdv && !slices.Contains(out, p.Addr) {
			out = append(out, p.Addr)
		}
	}
	return out
}
