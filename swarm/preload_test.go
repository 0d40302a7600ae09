package swarm

import (
	"testing"

	"btclient/peerwire"
	"btclient/torrent"
)

func TestPiecesArePreloadedOnlyWhileWritesAreBehind(t *testing.T) {
	const pieces, piece = 64, 256 << 10
	tests := []struct {
		name    string
		backlog int // pieces waiting for the hash workers
		want    bool
	}{
		{"writes keep up", 0, false},
		{"just under the backlog", preloadBacklog - 1, false},
		{"at the backlog", preloadBacklog, true},
		{"far behind", 3 * preloadBacklog, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &torrent.MetaInfo{Name: "x", PieceLength: piece, TotalLength: pieces*piece - 1000,
				Pieces: make([][20]byte, pieces)}
			tr, err := New(DefaultConfig(), Options{Meta: m, Storage: newMemStorage(0, nil)})
			if err != nil {
				t.Fatal(err)
			}
			l := &loop{t: tr, preload: make(chan pieceRange, 1), hashQueue: make([]hashJob, tt.backlog)}
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
