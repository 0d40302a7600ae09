package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"btclient/swarm"
	"btclient/torrent"
)

// statusJSON is the body of GET /status; fields may be added, never renamed.
type statusJSON struct {
	Name       string  `json:"name"`
	InfoHash   string  `json:"info_hash"`
	Size       int64   `json:"size"`
	Done       int64   `json:"done"`
	Downloaded int64   `json:"downloaded"`
	Uploaded   int64   `json:"uploaded"`
	DownRate   float64 `json:"down_rate"`
	UpRate     float64 `json:"up_rate"`
	Peers      int     `json:"peers"`
	State      string  `json:"state"`
	Pieces     int     `json:"pieces"`
	HavePieces int     `json:"have_pieces"`
	Wasted     int64   `json:"wasted"`
	BadPeers   int     `json:"bad_peers"`
}

func statusOf(meta *torrent.MetaInfo, s swarm.Stats) statusJSON {
	return statusJSON{
		Name: meta.Name, InfoHash: fmt.Sprintf("%x", meta.InfoHash), Size: s.Size, Done: s.Done,
		Downloaded: s.Downloaded, Uploaded: s.Uploaded, DownRate: s.DownRate, UpRate: s.UpRate,
		Peers: s.Peers, State: string(s.State), Pieces: s.Pieces, HavePieces: s.HavePieces,
		Wasted: s.Wasted, BadPeers: s.BadPeers,
	}
}

// statusHandler serves /status and /metrics from the session's snapshot.
func statusHandler(meta *torrent.MetaInfo, t *swarm.Torrent) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(statusOf(meta, t.Stats()))
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		s := t.Stats()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		ih := fmt.Sprintf("%x", meta.InfoHash)
		metric := func(name, typ, help string, v float64) {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s{info_hash=%q} %g\n", name, help, name, typ, name, ih, v)
		}
		metric("btclient_size_bytes", "gauge", "Total size of the torrent.", float64(s.Size))
		metric("btclient_done_bytes", "gauge", "Verified bytes on disk.", float64(s.Done))
		metric("btclient_downloaded_bytes_total", "counter", "Payload bytes received this run.", float64(s.Downloaded))
		metric("btclient_uploaded_bytes_total", "counter", "Payload bytes sent this run.", float64(s.Uploaded))
		metric("btclient_download_rate_bytes", "gauge", "Download rate in bytes per second.", s.DownRate)
		metric("btclient_upload_rate_bytes", "gauge", "Upload rate in bytes per second.", s.UpRate)
		metric("btclient_peers", "gauge", "Connected peers.", float64(s.Peers))
		metric("btclient_wasted_bytes_total", "counter", "Bytes of pieces that failed their hash check.", float64(s.Wasted))
		metric("btclient_bad_peers_total", "counter", "Peers dropped for bad data or protocol abuse.", float64(s.BadPeers))
		seeding := 0.0
		if s.State == swarm.StateSeeding {
			seeding = 1
		}
		metric("btclient_seeding", "gauge", "1 when the download is complete and verified.", seeding)
	})
	return mux
}

// serveStatus starts the status server on addr; stop shuts it down.
func serveStatus(ctx context.Context, addr string, meta *torrent.MetaInfo, t *swarm.Torrent, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status listener: %w", err)
	}
	srv := &http.Server{
		Handler:           statusHandler(meta, t),
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
