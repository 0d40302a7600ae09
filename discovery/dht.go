package discovery

import "context"

// announceDHT looks the torrent up in the DHT and announces it there, again
// and again while it runs: every DHTRetryInterval while a download lacks
// peers, every DHTInterval otherwise (DHT nodes forget announces after
// 30 minutes). Private torrents never touch the DHT.
func (s *Service) announceDHT(ctx context.Context, p Params, t Torrent) {
	completed := t.Completed()
	for {
		st := t.State()
		if st.Private {
			return
		}
		if st.Complete {
			completed = nil
		}
		found, err := s.dht.Announce(ctx, p.InfoHash, s.cfg.PeerPort, false)
		if err != nil && ctx.Err() == nil {
			s.log.Debug("dht announce failed", "err", err)
		}
		if len(found) > 0 {
			addrs := make([]string, len(found))
			for i, a := range found {
				addrs[i] = a.String()
			}
			t.AddPeers(FromDHT, addrs)
		}
		if !wait(ctx, s.nextRound(st, s.cfg.DHTInterval, s.cfg.DHTRetryInterval), completed) {
			return
		}
	}
}
