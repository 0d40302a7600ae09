package swarm

import (
	"bytes"
	"context"
	"crypto/sha1"
	"testing"

	"btclient/peerwire"
	"btclient/torrent"
)

func TestPiecesArePreloadedOnlyWhileWritesAreBehind(t *testing.T) {
	const pieces, piece = 64, 256 << 10
	const slow, fast = slowWrites / 4, slowWrites * 4
	tests := []struct {
		name      string
		backlog   int     // pieces waiting for the hash workers
		writeRate float64 // how fast pieces reach storage
		want      bool
	}{
		{"slow writes, nothing waiting", 0, slow, false},
		{"slow writes, just under the backlog", preloadBacklog - 1, slow, false},
		{"slow writes, at the backlog", preloadBacklog, slow, true},
		{"slow writes, far behind", 3 * preloadBacklog, slow, true},
		{"fast writes, far behind: hashing is what lags", 3 * preloadBacklog, fast, false},
		{"no piece written yet", 3 * preloadBacklog, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &torrent.MetaInfo{Name: "x", PieceLength: piece, TotalLength: pieces*piece - 1000,
				Pieces: make([][20]byte, pieces)}
			tr, err := New(DefaultConfig(), Options{Meta: m, Storage: newMemStorage(0, nil)})
			if err != nil {
				t.Fatal(err)
			}
			l := &loop{t: tr, preload: make(chan pieceRange, 1), hashQueue: make([]hashJob, tt.backlog), writeRate: tt.writeRate}
			l.initPicker()
			p := &peer{bf: peerwire.NewBitfield(pieces), out: newOutbox(), outstanding: map[blockKey]struct{}{}}
			for i := range pieces {
				p.bf.Set(i)
			}
			pd := l.startPiece(p)
			if pd == nil {
				t.Fatal("no piece started")
			}
			select {
			case r := <-l.preload:
				if !tt.want {
					t.Fatalf("preloaded %+v with %d pieces waiting", r, tt.backlog)
				}
				want := pieceRange{off: int64(pd.index) * piece, n: int(m.PieceSize(pd.index))}
				if r != want {
					t.Fatalf("preloaded %+v, want piece %d's range %+v", r, pd.index, want)
				}
			default:
				if tt.want {
					t.Fatalf("nothing preloaded with %d pieces waiting", tt.backlog)
				}
			}
			// A full channel never blocks the loop: the write faults the pages in itself.
			if tt.want {
				l.preload <- pieceRange{}
				if l.startPiece(p) == nil {
					t.Fatal("no second piece started")
				}
			}
		})
	}
}

func TestHashWorkerReportsHowFastPiecesAreWritten(t *testing.T) {
	piece := bytes.Repeat([]byte("piece"), 100)
	tests := []struct {
		name      string
		want      [20]byte
		wantWrite bool
	}{
		{"a good piece is written and timed", sha1.Sum(piece), true},
		{"a bad piece is neither", [20]byte{1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store := newMemStorage(len(piece), nil)
			jobs, results := make(chan hashJob), make(chan hashResult)
			done := make(chan struct{})
			go func() { defer close(done); hashWorker(ctx, store, jobs, results) }()
			defer func() { cancel(); <-done }()
			jobs <- hashJob{blocks: [][]byte{piece[:200], piece[200:]}, want: tt.want}
			r := <-results
			if r.ok != tt.wantWrite || (r.writeRate > 0) != tt.wantWrite {
				t.Fatalf("ok %v, write rate %v; want written: %v", r.ok, r.writeRate, tt.wantWrite)
			}
			if tt.wantWrite && !bytes.Equal(store.data, piece) {
				t.Fatal("the piece did not reach storage")
			}
		})
	}
}
