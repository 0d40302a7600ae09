package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"btclient/session"
)

// statusJSON describes one torrent in GET /status; fields may be added,
// never renamed.
type statusJSON struct {
	ID             int            `json:"id"`
	Name           string         `json:"name"`
	InfoHash       string         `json:"info_hash"`
	Size           int64          `json:"size"`
	Done           int64          `json:"done"`
	Downloaded     int64          `json:"downloaded"`
	Uploaded       int64          `json:"uploaded"`
	DownRate       float64        `json:"down_rate"`
	UpRate         float64        `json:"up_rate"`
	Peers          int            `json:"peers"`
	State          string         `json:"state"`
	Error          string         `json:"error,omitempty"`
	Pieces         int            `json:"pieces"`
	HavePieces     int            `json:"have_pieces"`
	Wasted         int64          `json:"wasted"`
	BadPeers       int            `json:"bad_peers"`
	MetadataPieces int            `json:"metadata_pieces,omitempty"`
	MetadataHave   int            `json:"metadata_have,omitempty"`
	Hashed         int            `json:"hashed_on_start"`
	Learned        map[string]int `json:"peers_learned,omitempty"`
	Magnet         string         `json:"magnet"`
	MetadataFrom   []string       `json:"metadata_from,omitempty"`
	DHT            *dhtJSON       `json:"dht,omitempty"`
}

// dhtJSON is the session's DHT node in GET /status.
type dhtJSON struct {
	Nodes         int   `json:"nodes"`
	GoodNodes     int   `json:"good_nodes"`
	InfoHashes    int   `json:"info_hashes"`
	PeersStored   int   `json:"peers_stored"`
	Lookups       int64 `json:"lookups"`
	LookupsFailed int64 `json:"lookups_failed"`
	Announces     int64 `json:"announces"`
}

func dhtStatus(sess *session.Session) *dhtJSON {
	st, ok := sess.Discovery().DHTStats()
	if !ok {
		return nil
	}
	return &dhtJSON{Nodes: st.Nodes, GoodNodes: st.GoodNodes, InfoHashes: st.InfoHashes, PeersStored: st.Peers,
		Lookups: st.Lookups, LookupsFailed: st.LookupsFailed, Announces: st.Announces}
}

func statusOf(s session.Status) statusJSON {
	return statusJSON{
		ID: s.ID, Name: s.Name, InfoHash: fmt.Sprintf("%x", s.InfoHash), Size: s.Size, Done: s.Done,
		Downloaded: s.Downloaded, Uploaded: s.Uploaded, DownRate: s.DownRate, UpRate: s.UpRate,
		Peers: s.Peers, State: string(s.State), Error: s.Error, Pieces: s.Pieces, HavePieces: s.HavePieces,
		Wasted: s.Wasted, BadPeers: s.BadPeers, MetadataPieces: s.MetadataPieces, MetadataHave: s.MetadataHave,
		Hashed: s.Hashed, Learned: s.Learned, Magnet: s.Magnet, MetadataFrom: s.MetadataFrom,
	}
}

// statusHandler serves /status and /metrics. With one torrent (the
// single-torrent command) /status is that torrent's object; a daemon's
// lists every torrent beside the session's totals.
// shared, when set, gives a daemon's "share" object (its shared folders
// and what its index publishes).
func statusHandler(sess *session.Session, one *session.Torrent, shared func() map[string]any) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if one != nil {
			st := statusOf(one.Status())
			st.DHT = dhtStatus(sess)
			_ = json.NewEncoder(w).Encode(st)
			return
		}
		// The totals sit under their own key: embedded, their "Torrents"
		// would clash with "torrents" for any case-insensitive decoder
		// (Go's among them).
		body := struct {
			Torrents []statusJSON   `json:"torrents"`
			Totals   session.Totals `json:"totals"`
			DHT      *dhtJSON       `json:"dht,omitempty"`
			Share    map[string]any `json:"share,omitempty"`
		}{Torrents: []statusJSON{}, Totals: sess.Totals(), DHT: dhtStatus(sess)}
		if shared != nil {
			body.Share = shared()
		}
		for _, t := range sess.List() {
			body.Torrents = append(body.Torrents, statusOf(t.Status()))
		}
		_ = json.NewEncoder(w).Encode(body)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w, sess)
	})
	return mux
}

// writeMetrics writes one series per torrent, labelled by info hash and
// name, and the session's totals, in the Prometheus text format.
func writeMetrics(w io.Writer, sess *session.Session) {
	var sts []session.Status
	for _, t := range sess.List() {
		sts = append(sts, t.Status())
	}
	perTorrent := []struct {
		name, typ, help string
		value           func(session.Status) float64
	}{
		{"btclient_size_bytes", "gauge", "Total size of the torrent.", func(s session.Status) float64 { return float64(s.Size) }},
		{"btclient_done_bytes", "gauge", "Verified bytes on disk.", func(s session.Status) float64 { return float64(s.Done) }},
		{"btclient_downloaded_bytes_total", "counter", "Payload bytes received this run.", func(s session.Status) float64 { return float64(s.Downloaded) }},
		{"btclient_uploaded_bytes_total", "counter", "Payload bytes sent this run.", func(s session.Status) float64 { return float64(s.Uploaded) }},
		{"btclient_download_rate_bytes", "gauge", "Download rate in bytes per second.", func(s session.Status) float64 { return s.DownRate }},
		{"btclient_upload_rate_bytes", "gauge", "Upload rate in bytes per second.", func(s session.Status) float64 { return s.UpRate }},
		{"btclient_peers", "gauge", "Connected peers.", func(s session.Status) float64 { return float64(s.Peers) }},
		{"btclient_wasted_bytes_total", "counter", "Bytes of pieces that failed their hash check.", func(s session.Status) float64 { return float64(s.Wasted) }},
		{"btclient_bad_peers_total", "counter", "Peers dropped for bad data or protocol abuse.", func(s session.Status) float64 { return float64(s.BadPeers) }},
		{"btclient_seeding", "gauge", "1 when the download is complete and verified.", func(s session.Status) float64 {
			if s.State == session.StateSeeding {
				return 1
			}
			return 0
		}},
	}
	for _, m := range perTorrent {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for _, s := range sts {
			fmt.Fprintf(w, "%s{info_hash=\"%x\",name=%q} %g\n", m.name, s.InfoHash, s.Name, m.value(s))
		}
	}
	tot := sess.Totals()
	for _, m := range []struct {
		name, typ, help string
		v               float64
	}{
		{"btclient_session_torrents", "gauge", "Torrents in the session.", float64(tot.Torrents)},
		{"btclient_session_active_torrents", "gauge", "Torrents running.", float64(tot.Active)},
		{"btclient_session_download_rate_bytes", "gauge", "Download rate of every torrent together.", tot.DownRate},
		{"btclient_session_upload_rate_bytes", "gauge", "Upload rate of every torrent together.", tot.UpRate},
		{"btclient_session_downloaded_bytes_total", "counter", "Payload bytes received this run, every torrent.", float64(tot.Downloaded)},
		{"btclient_session_uploaded_bytes_total", "counter", "Payload bytes sent this run, every torrent.", float64(tot.Uploaded)},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", m.name, m.help, m.name, m.typ, m.name, m.v)
	}
	if d := dhtStatus(sess); d != nil {
		for _, m := range []struct {
			name, typ, help string
			v               float64
		}{
			{"btclient_dht_nodes", "gauge", "Nodes in the DHT routing table.", float64(d.Nodes)},
			{"btclient_dht_good_nodes", "gauge", "Nodes in the DHT routing table heard from lately.", float64(d.GoodNodes)},
			{"btclient_dht_peers_stored", "gauge", "Peers announced to our DHT node.", float64(d.PeersStored)},
			{"btclient_dht_lookups_total", "counter", "DHT lookups run.", float64(d.Lookups)},
			{"btclient_dht_lookups_failed_total", "counter", "DHT lookups that reached no node.", float64(d.LookupsFailed)},
			{"btclient_dht_announces_total", "counter", "announce_peer queries DHT nodes accepted from us.", float64(d.Announces)},
		} {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", m.name, m.help, m.name, m.typ, m.name, m.v)
		}
	}
}

// serveStatus starts the status server on addr; stop shuts it down. one,
// when set, is the torrent a single-torrent /status describes.
func serveStatus(ctx context.Context, addr string, sess *session.Session, one *session.Torrent, shared func() map[string]any, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status listener: %w", err)
	}
	srv := &http.Server{
		Handler:           statusHandler(sess, one, shared),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("status server stopped", "err", err)
		}
	}()
	log.Info("status listening", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}
