package discovery

import (
	"context"
	"math/rand/v2"
	"time"

	"btclient/tracker"
)

// announceTrackers announces to the torrent's trackers (BEP 12 tiers, each
// shuffled once), never more often than a tracker's min interval except for
// lifecycle events. In auto mode it waits for the fallback gate, which a
// seeder opens at once.
func (s *Service) announceTrackers(ctx context.Context, p Params, t Torrent, tiers [][]string, g *fallbackGate) {
	select {
	case <-g.opened:
		if s.cfg.Mode == ModeAuto && (len(s.cfg.Overlay.Bootstrap) > 0 || s.cfg.Overlay.ResolveBootstrap != nil) && !t.State().Complete {
			s.log.Info("overlay found no peers; falling back to the tracker")
		}
	case <-ctx.Done():
		return
	}
	tiers = cloneTiers(tiers)
	for _, tier := range tiers {
		rand.Shuffle(len(tier), func(i, j int) { tier[i], tier[j] = tier[j], tier[i] })
	}
	ev := tracker.EventStarted
	started := false
	completed := t.Completed()
	for {
		st := t.State()
		if st.Complete && completed != nil {
			completed = nil
			if started {
				ev = tracker.EventCompleted
			}
		}
		pause := s.cfg.PeerRetryInterval
		resp, url, err := s.tracker.AnnounceTiers(ctx, tiers, s.request(p, st, ev))
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Debug("tracker announce failed", "err", err)
			}
			pause = max(pause, 5*time.Second)
		default:
			started, ev = true, tracker.EventNone
			if resp.Warning != "" {
				s.log.Warn("tracker warning", "url", url, "warning", resp.Warning)
			}
			addrs := make([]string, 0, len(resp.Peers))
			for _, peer := range resp.Peers {
				addrs = append(addrs, peer.String())
			}
			if len(addrs) > 0 {
				t.AddPeers(FromTracker, addrs)
			}
			// The tracker's interval, at most 30 s while a download lacks
			// peers, never below its min interval or 5 s.
			interval := resp.Interval
			if interval <= 0 {
				interval = 30 * time.Minute
			}
			pause = max(s.nextRound(st, interval, min(interval, 30*time.Second)), resp.MinInterval, 5*time.Second)
		}
		if !wait(ctx, pause, completed) {
			break
		}
	}
	if started {
		sctx, cancel := s.stopContext(ctx)
		defer cancel()
		_, _, _ = s.tracker.AnnounceTiers(sctx, tiers, s.request(p, t.State(), tracker.EventStopped))
	}
}

func (s *Service) request(p Params, st State, ev tracker.Event) tracker.AnnounceRequest {
	return tracker.AnnounceRequest{
		InfoHash: p.InfoHash, PeerID: p.PeerID, Port: uint16(s.cfg.PeerPort),
		Uploaded: st.Uploaded, Downloaded: st.Downloaded, Left: st.Left,
		Event: ev, NumWant: 50,
	}
}

func cloneTiers(tiers [][]string) [][]string {
	out := make([][]string, len(tiers))
	for i, t := range tiers {
		out[i] = append([]string(nil), t...)
	}
	return out
}
